//! Datagrams from the UDP socket: keymix's go to the endpoint (and roam the peer once
//! authenticated), WireGuard's to `wireguard_rx`. keymix is drained once per batch.

use super::{Driver, Io};
use crate::keymix_io;
use crate::packet_batch::UdpRx;

impl Driver {
    pub(super) fn on_udp_batch(&mut self, io: &Io, batch: &UdpRx, out: &mut [u8]) {
        let mut keymix_input = false;
        self.rx_route = None;
        for (datagram, src) in batch.datagrams() {
            if keymix::is_keymix(datagram) {
                keymix_input = true;
                if let Some(peer) = keymix_io::accept_datagram(&mut self.endpoint, src, datagram) {
                    // Authenticated: the peer is at `src` now (roaming).
                    if let Some(p) = self.peers.get_mut(peer) {
                        p.endpoint = Some(src);
                    }
                }
            } else {
                self.on_wireguard(io, src, datagram, out);
            }
        }
        // Initiations confirmed by their sessions' first data: the replay record goes with
        // the chain (persisted through keymix).
        for (peer, timestamp) in std::mem::take(&mut self.confirmed) {
            self.endpoint.record_wireguard_initiation(peer, timestamp.0);
            keymix_input = true;
        }
        if keymix_input {
            self.drain_keymix(io, out);
        }
    }
}
