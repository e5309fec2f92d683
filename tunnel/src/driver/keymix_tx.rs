//! Sending keymix datagrams: larger than any WireGuard message, so they may be fragmented
//! by the IP layer (see `udp_fragment`), and a send the kernel still refuses as too big
//! is counted apart (`keymix_emsgsize` in `trident status`), since it means no exchange
//! can complete on this path.

use std::net::SocketAddr;

use super::Io;
use crate::counters::{TunnelCounters, TunnelDrop};
use crate::{udp_fragment, udp_socket};

impl Io {
    /// Sends one keymix datagram; false when the kernel refused it (it never left).
    pub(super) fn send_keymix(
        &self,
        payload: &[u8],
        to: SocketAddr,
        counters: &mut TunnelCounters,
    ) -> bool {
        let to = udp_socket::for_family(self.map_v4, to);
        let Err(e) = udp_fragment::send_fragmentable(&self.udp, self.map_v4, payload, to) else {
            return true;
        };
        if udp_fragment::is_too_big(&e) {
            tracing::debug!("keymix datagram of {} bytes to {to}: {e}", payload.len());
            counters.count(TunnelDrop::KeymixEmsgsize);
        } else {
            // E.g. EINVAL on an HA standby: its listen_address is not on this box yet.
            tracing::trace!("UDP send to {to}: {e}");
            counters.count(TunnelDrop::IoError);
        }
        false
    }
}
