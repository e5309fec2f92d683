//! What arrives from the hub: keymix datagrams (handed to the keymix side) and WireGuard
//! messages, routed by the receiver index the way the data plane routes them.

use std::net::SocketAddr;

use boringtun::noise::TunnResult;
use tunnel::handshake_rx::{self, Fed, InitOutcome, Responder};
use tunnel::tunn_index::tunn_index_of;
use tunnel::wire::{self, WireKind};

use super::{send, Spoke, HUB};
use crate::icmp;

/// WireGuard's cookie reply: the hub answered a handshake with a cookie, not a session.
const WG_COOKIE_REPLY: u32 = 3;

impl Spoke {
    /// One datagram from the network.
    pub fn on_datagram(&mut self, datagram: &[u8], src: SocketAddr) {
        if keymix::is_keymix(datagram) {
            self.on_keymix_datagram(datagram, src);
            return;
        }
        match wire::classify(datagram) {
            Some(WireKind::HandshakeInit { .. }) => self.on_initiation(datagram, src),
            Some(WireKind::ToIndex { receiver_idx, data }) => {
                let index = tunn_index_of(receiver_idx);
                if self.indices.owner(index) != Some(HUB) {
                    return;
                }
                if data {
                    self.on_data(index, datagram, src);
                } else {
                    self.on_handshake_to_index(index, datagram, src);
                }
            }
            None => {}
        }
    }

    /// The hub's own initiation (it starts one when the spoke's does not arrive).
    fn on_initiation(&mut self, datagram: &[u8], src: SocketAddr) {
        let Self {
            peers,
            peer_keys,
            indices,
            socket,
            report,
            out,
            private,
            public,
            limits,
            ..
        } = self;
        let mut responder = Responder {
            private,
            public,
            indices,
            rate_limiter: limits.for_tunns(),
        };
        let outcome = handshake_rx::on_initiation(
            peers,
            peer_keys,
            &mut responder,
            src,
            datagram,
            out,
            &mut |d, to| {
                send(socket, report, d, to);
            },
        );
        if matches!(outcome, InitOutcome::Unknown | InitOutcome::Dropped(..)) {
            report.wireguard_rejected += 1;
        }
    }

    /// A handshake response or a cookie reply to one of our Tunns.
    fn on_handshake_to_index(&mut self, index: u32, datagram: &[u8], src: SocketAddr) {
        if wire_type(datagram) == Some(WG_COOKIE_REPLY) {
            self.report.wireguard_cookies += 1;
        }
        let Self {
            peers,
            socket,
            report,
            out,
            ..
        } = self;
        let Some(tunn) = peers.first_mut().and_then(|p| p.tunn_by_index(index)) else {
            return;
        };
        let fed = handshake_rx::feed_handshake(&mut tunn.tunn, src.ip(), datagram, out, &mut |d| {
            send(socket, report, d, src);
        });
        if fed == Fed::Rejected {
            report.wireguard_rejected += 1;
        }
    }

    /// A data message: decrypted; an echo reply counts, an answered session is confirmed.
    fn on_data(&mut self, index: u32, datagram: &[u8], src: SocketAddr) {
        let Some(peer) = self.peers.first_mut() else {
            return;
        };
        let answering = peer.slots.by_index(index).is_some();
        let Some(tunn) = peer.tunn_by_index(index) else {
            return;
        };
        let reply = match tunn
            .tunn
            .decapsulate(Some(src.ip()), datagram, &mut self.out)
        {
            TunnResult::WriteToTunnelV4(packet, _) => icmp::echo_reply(packet, self.hub_inner),
            TunnResult::Done | TunnResult::WriteToTunnelV6(..) => None,
            TunnResult::WriteToNetwork(_) => return,
            TunnResult::Err(_) => {
                self.report.wireguard_rejected += 1;
                return;
            }
        };
        if answering {
            if let Some((timestamp, dropped)) = peer.confirm(index) {
                for t in dropped {
                    self.indices.release(t.index);
                }
                self.endpoint.record_wireguard_initiation(HUB, timestamp.0);
                self.drain_keymix();
            }
        }
        if let Some((ident, seq)) = reply {
            self.on_echo_reply(ident, seq);
        }
    }
}

/// The little-endian message type of a WireGuard datagram (3: a cookie reply).
fn wire_type(datagram: &[u8]) -> Option<u32> {
    let b: [u8; 4] = datagram.get(..4)?.try_into().ok()?;
    Some(u32::from_le_bytes(b))
}
