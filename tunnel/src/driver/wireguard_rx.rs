//! WireGuard datagrams from the UDP socket, routed to their Tunn by index (crate docs).
//!
//! Where a peer's endpoint may move (roaming): only here, and only on proof the sender is
//! the peer (see [`crate::handshake_rx`]): a data message that decrypted and passed the
//! replay window, or a completed handshake. Keymix datagrams roam in `on_udp_batch`.

use std::net::{IpAddr, SocketAddr};

use boringtun::noise::TunnResult;
use keymix::PeerId;

use super::{Driver, Io};
use crate::counters::TunnelDrop;
use crate::handshake_rx::{self, Fed, InitOutcome, Responder, Screen};
use crate::packet_batch::NotQueued;
use crate::tunn_index::tunn_index_of;
use crate::wire::{self, WireKind};

const HANDSHAKE_RESPONSE: u8 = 2;

impl Driver {
    /// One WireGuard datagram.
    pub(super) fn on_wireguard(
        &mut self,
        io: &Io,
        src: SocketAddr,
        datagram: &[u8],
        out: &mut [u8],
    ) {
        match wire::classify(datagram) {
            None => self.counters.count(TunnelDrop::UnknownType),
            Some(WireKind::HandshakeInit { .. }) => self.on_handshake_init(io, src, datagram, out),
            Some(WireKind::ToIndex { receiver_idx, data }) => {
                let index = tunn_index_of(receiver_idx);
                let Some(peer_id) = self.indices.owner(index) else {
                    self.counters.count(TunnelDrop::UnknownIndex);
                    return;
                };
                if data {
                    self.on_data(io, peer_id, index, src, datagram);
                } else {
                    self.on_handshake_to_index(io, peer_id, index, src, datagram, out);
                }
            }
        }
    }

    fn on_handshake_init(&mut self, io: &Io, src: SocketAddr, datagram: &[u8], out: &mut [u8]) {
        if !self.screen_or_drop(io, src, datagram, out, TunnelDrop::BadInitiation) {
            return;
        }
        let Self {
            peers,
            peer_keys,
            counters,
            static_private,
            public_key,
            indices,
            rate_limiter,
            ..
        } = self;
        let mut responder = Responder {
            private: static_private,
            public: public_key,
            indices,
            rate_limiter: rate_limiter.clone(),
        };
        let outcome = handshake_rx::on_initiation(
            peers,
            peer_keys,
            &mut responder,
            src,
            datagram,
            out,
            &mut |d, to| io.send_udp(d, to, counters),
        );
        self.count_init(outcome);
    }

    /// mac1 (and the cookie under load) of a handshake message before any Diffie-Hellman,
    /// as WireGuard does; the only place one is counted against the limit. False when it
    /// goes no further: answered with a cookie, or dropped and counted as `reject`.
    fn screen_or_drop(
        &mut self,
        io: &Io,
        src: SocketAddr,
        datagram: &[u8],
        out: &mut [u8],
        reject: TunnelDrop,
    ) -> bool {
        match self.handshake_limits.screen(src.ip(), datagram, out) {
            Screen::Pass => true,
            Screen::Cookie(cookie) => {
                io.send_udp(cookie, src, &mut self.counters);
                false
            }
            Screen::Reject => {
                self.counters.count(reject);
                false
            }
        }
    }

    /// Answers the initiations a peer sent before the key of epoch tag `tag` landed here.
    pub(super) fn answer_parked(&mut self, io: &Io, peer_id: PeerId, tag: u32, out: &mut [u8]) {
        let Self {
            peers,
            counters,
            static_private,
            public_key,
            indices,
            rate_limiter,
            ..
        } = self;
        let Some(peer) = peers.get_mut(peer_id) else {
            return;
        };
        let mut responder = Responder {
            private: static_private,
            public: public_key,
            indices,
            rate_limiter: rate_limiter.clone(),
        };
        let outcomes =
            handshake_rx::on_key_landed(peer, peer_id, &mut responder, tag, out, &mut |d, to| {
                io.send_udp(d, to, counters)
            });
        for outcome in outcomes {
            self.count_init(outcome);
        }
    }

    fn count_init(&mut self, outcome: InitOutcome) {
        match outcome {
            InitOutcome::Answered(_) | InitOutcome::Parked(_) => {}
            InitOutcome::Dropped(peer, reason) => {
                tracing::trace!(peer, "initiation dropped: {}", reason.as_str());
                self.counters.count(reason);
            }
            InitOutcome::Unknown => self.counters.count(TunnelDrop::BadInitiation),
        }
    }

    /// A handshake response (screened like initiations) or a cookie reply to one of our
    /// Tunns. Only a response the Tunn completed moves the endpoint.
    fn on_handshake_to_index(
        &mut self,
        io: &Io,
        peer_id: PeerId,
        index: u32,
        src: SocketAddr,
        datagram: &[u8],
        out: &mut [u8],
    ) {
        if datagram.first() == Some(&HANDSHAKE_RESPONSE)
            && !self.screen_or_drop(io, src, datagram, out, TunnelDrop::WireguardRejected)
        {
            return;
        }
        let Self {
            peers, counters, ..
        } = self;
        let Some(peer) = peers.get_mut(peer_id) else {
            return;
        };
        let Some(tunn) = peer.tunn_by_index(index) else {
            counters.count(TunnelDrop::UnknownIndex);
            return;
        };
        let fed = handshake_rx::feed_handshake(&mut tunn.tunn, src.ip(), datagram, out, &mut |d| {
            io.send_udp(d, src, counters)
        });
        match fed {
            Fed::Proven => peer.endpoint = Some(src),
            // An initiation never reaches a Tunn by index; a cookie reply proves nothing.
            Fed::Answered | Fed::Unauthenticated => {}
            Fed::Rejected => counters.count(TunnelDrop::WireguardRejected),
        }
    }

    /// A data message: decrypted straight into the TUN batch. The endpoint moves only if
    /// it decrypted and passed the replay window (a packet or a keepalive).
    fn on_data(&mut self, io: &Io, peer_id: PeerId, index: u32, src: SocketAddr, datagram: &[u8]) {
        let Self {
            peers,
            allowed_ips,
            counters,
            tun_tx,
            indices,
            confirmed,
            rx_route,
            ..
        } = self;
        let Some(peer) = peers.get_mut(peer_id) else {
            return;
        };
        // Rare: the first data under a session an initiation of the peer's started.
        let answering = peer.slots.by_index(index).is_some();
        let Some(tunn) = peer.tunn_by_index(index) else {
            counters.count(TunnelDrop::UnknownIndex);
            return;
        };
        // A full turn leaves before more is decrypted (packet_batch::TURN_BYTES).
        if tun_tx.is_full() || tun_tx.turn_done() {
            io.flush_tun(tun_tx, counters);
        }
        let Some(slot) = tun_tx.slot(datagram.len()) else {
            counters.count(TunnelDrop::IoError);
            return;
        };
        let base = slot.as_ptr() as usize;
        let decrypted = match tunn.tunn.decapsulate(Some(src.ip()), datagram, slot) {
            TunnResult::WriteToTunnelV4(packet, from) => Some((packet, IpAddr::V4(from))),
            TunnResult::WriteToTunnelV6(packet, from) => Some((packet, IpAddr::V6(from))),
            // A keepalive: authenticated and within the replay window like any packet.
            TunnResult::Done => None,
            // boringtun answers data messages with nothing else; whatever it is, it is
            // no proof and goes nowhere.
            TunnResult::WriteToNetwork(_) => return,
            TunnResult::Err(e) => {
                tracing::trace!(%src, "WireGuard rejected: {e:?}");
                counters.count(TunnelDrop::WireguardRejected);
                return;
            }
        }
        // Keep the length and whether it sits at the start of the slot (only then can the
        // batch take it): the slot's borrow ends here, whatever the address family.
        .map(|(packet, from)| (packet.len(), packet.as_ptr() as usize == base, from));
        peer.endpoint = Some(src);
        if answering {
            // Decrypted under the answered session, so the sender holds the epoch's PSK:
            // now the initiation is believed (its Tunn joins the epoch, its timestamp
            // becomes the replay record, persisted with the chain).
            if let Some((timestamp, dropped)) = peer.confirm(index) {
                for t in dropped {
                    indices.release(t.index);
                }
                confirmed.push((peer_id, timestamp));
            }
        }
        let Some((len, at_start, from)) = decrypted else {
            return;
        };
        // One lookup per run of packets from the same inner source (most of a batch).
        let owner = match *rx_route {
            Some((ip, owner)) if ip == from => owner,
            _ => {
                let owner = allowed_ips.lookup(from);
                *rx_route = Some((from, owner));
                owner
            }
        };
        if owner != Some(peer_id) {
            counters.count(TunnelDrop::SourceNotAllowed);
        } else if !at_start {
            counters.count(TunnelDrop::IoError);
        } else if let Err(e) = tun_tx.commit(len) {
            counters.count(not_queued(e));
        } else {
            peer.rx_packets = peer.rx_packets.saturating_add(1);
        }
    }
}

fn not_queued(e: NotQueued) -> TunnelDrop {
    match e {
        NotQueued::Full => TunnelDrop::IoError,
        NotQueued::Malformed => TunnelDrop::MalformedInner,
    }
}
