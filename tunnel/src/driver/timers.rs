//! The 250 ms tick: boringtun's timers (keepalives, handshake retries) for every Tunn,
//! the reject age of old epochs, stale parked initiations, and the keymix responder's own
//! handshake when the initiator's does not arrive.

use std::time::{Duration, Instant};

use boringtun::noise::TunnResult;
use keymix::Role;

use super::{Driver, Io};
use crate::counters::TunnelDrop;

/// A keymix responder whose new Tunn has no session after this long starts the WireGuard
/// handshake itself. Needed when the peer restarted and reuses an epoch number: its
/// initiation can reach us before our keymix finishes and be answered by the old Tunn of
/// the same epoch tag (wrong PSK), and WireGuard would only retry after 5 s.
const RESPONDER_HANDSHAKE_AFTER: Duration = Duration::from_secs(1);

impl Driver {
    pub(super) fn on_wireguard_tick(&mut self, io: &Io, out: &mut [u8], ticks: u64) {
        let now = Instant::now();
        // With a shared rate limiter boringtun leaves the per-second reset to us.
        if ticks.is_multiple_of(4) {
            self.handshake_limits.reset();
        }
        let Self {
            peers,
            indices,
            counters,
            ..
        } = self;
        for peer in peers.iter_mut() {
            // boringtun's own warnings (handshake retries, expired connections) come from
            // update_timers below: this span names the peer in them.
            let span = tracing::info_span!("peer", peer = %peer.short());
            let _in_peer = span.enter();
            for t in peer.expire_by_age(now) {
                // Routine for the previous epoch; worth a warning when nothing is left.
                if peer.current.is_none() {
                    tracing::warn!(epoch = t.epoch, "last PSK past its reject age: no traffic");
                } else {
                    tracing::debug!(epoch = t.epoch, "previous PSK past its reject age");
                }
                indices.release(t.index);
            }
            let record = peer.last_initiation;
            for t in peer.slots.expire(now, record) {
                indices.release(t.index);
            }
            let endpoint = peer.endpoint;
            if let Some(g) = peer.current.as_mut().filter(|g| {
                g.primary.role == Role::Responder
                    && !g.has_session()
                    && now.saturating_duration_since(g.primary.installed)
                        >= RESPONDER_HANDSHAKE_AFTER
            }) {
                if let (TunnResult::WriteToNetwork(init), Some(to)) = (
                    g.primary.tunn.format_handshake_initiation(out, false),
                    endpoint,
                ) {
                    io.send_udp(init, to, counters);
                }
            }
            for t in peer.tunns_mut() {
                match t.tunn.update_timers(out) {
                    TunnResult::WriteToNetwork(datagram) => match endpoint {
                        Some(to) => io.send_udp(datagram, to, counters),
                        None => counters.count(TunnelDrop::NoEndpoint),
                    },
                    TunnResult::Err(e) => tracing::trace!("timers: {e:?}"),
                    _ => {}
                }
            }
        }
    }
}
