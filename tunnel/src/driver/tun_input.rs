//! User packets from the TUN device: routed by destination to a peer (cryptokey routing),
//! encrypted with its sending Tunn straight into the UDP send batch, sent in GSO runs.
//! The hot path: no allocation, no lock, one route lookup per run of equal destinations.

use std::net::IpAddr;

use boringtun::noise::{Tunn, TunnResult};
use keymix::PeerId;

use super::{Driver, Io};
use crate::counters::TunnelDrop;
use crate::packet_batch::TunRx;

impl Driver {
    /// Encrypts a TUN batch into `udp_tx` (sent by [`Self::flush_udp`]).
    pub(super) fn on_tun_batch(&mut self, io: &Io, batch: &TunRx, out: &mut [u8]) {
        let max_segments = io.udp_state.max_gso_segments();
        let Self {
            peers,
            allowed_ips,
            counters,
            udp_tx,
            ..
        } = self;
        counters.add(TunnelDrop::TunReadDropped, batch.dropped());
        // Routes cannot change within a batch, whose packets mostly share a destination.
        let mut last_route: Option<(IpAddr, Option<PeerId>)> = None;
        for packet in batch.iter() {
            let Some(dst) = Tunn::dst_address(packet) else {
                counters.count(TunnelDrop::NoRoute);
                continue;
            };
            let route = match last_route {
                Some((ip, route)) if ip == dst => route,
                _ => {
                    let route = allowed_ips.lookup(dst);
                    last_route = Some((dst, route));
                    route
                }
            };
            let Some(peer) = route.and_then(|id| peers.get_mut(id)) else {
                counters.count(TunnelDrop::NoRoute);
                continue;
            };
            let endpoint = peer.endpoint;
            let Some(tunn) = peer.sending_tunn() else {
                // Fail closed: no live PSK, no WireGuard session, no traffic.
                counters.count(TunnelDrop::NoEpoch);
                continue;
            };
            // Encrypt straight into the send batch; the scratch buffer only if it is full.
            let (space, batched) = match udp_tx.space(packet.len()) {
                Some(space) => (space, true),
                None => (&mut *out, false),
            };
            let base = space.as_ptr() as usize;
            match tunn.tunn.encapsulate(packet, space) {
                TunnResult::WriteToNetwork(datagram) => match endpoint {
                    Some(to) if batched && datagram.as_ptr() as usize == base => {
                        let len = datagram.len();
                        udp_tx.commit(len, to, max_segments);
                        peer.tx_packets = peer.tx_packets.saturating_add(1);
                    }
                    Some(to) => {
                        io.send_udp(datagram, to, counters);
                        peer.tx_packets = peer.tx_packets.saturating_add(1);
                    }
                    None => counters.count(TunnelDrop::NoEndpoint),
                },
                TunnResult::Err(e) => {
                    tracing::trace!("encapsulate: {e:?}");
                    counters.count(TunnelDrop::WireguardRejected);
                }
                _ => {}
            }
        }
    }

    /// Sends the datagrams `on_tun_batch` encrypted (GSO runs, waiting for socket space).
    pub(super) async fn flush_udp(&mut self, io: &Io) {
        if self.udp_tx.is_empty() {
            return;
        }
        let failed = self.udp_tx.flush(&io.udp, &io.udp_state, io.map_v4).await;
        for _ in 0..failed {
            self.counters.count(TunnelDrop::IoError);
        }
    }
}
