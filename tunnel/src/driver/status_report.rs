//! What the built-in data plane reports: `trident status` (keymix's view of each peer
//! with the Tunns it has here) and the metrics snapshot.

use std::time::Instant;

use base64::Engine;

use super::{classic, Driver};
use crate::metrics;
use crate::status::{self, InterfaceStatus, PeerReport};

impl Driver {
    /// The status plus packet counts, for one metrics scrape.
    pub(super) fn metrics_snapshot(&self) -> metrics::Snapshot {
        let packets = self
            .peers
            .iter()
            .filter(|p| !p.removed)
            .map(|p| (p.tx_packets, p.rx_packets))
            .collect();
        metrics::Snapshot {
            status: self.status(Instant::now()),
            packets,
        }
    }

    pub(super) fn status(&self, now: Instant) -> InterfaceStatus {
        let b64 = base64::engine::general_purpose::STANDARD;
        let peers = self
            .peers
            .iter()
            .enumerate()
            .filter(|(_, peer)| !peer.removed)
            .map(|(id, peer)| {
                let st = self.endpoint.peer_status(id, now);
                let live: Vec<u64> = peer.epochs();
                // keymix knows the policy; the tunnel knows whether a Tunn is left. Either
                // one saying "no traffic" makes the peer blocked.
                let state = if peer.classic {
                    classic::state(peer)
                } else if st.expired || (st.epoch.is_some() && live.is_empty()) {
                    "blocked"
                } else {
                    st.state.as_str()
                };
                let (tx, rx) = peer.traffic();
                let key = b64.encode(peer.public_key.as_bytes());
                PeerReport {
                    endpoint: peer.endpoint.map(|e| e.to_string()),
                    last_handshake_secs: peer.last_handshake().map(|d| d.as_secs()),
                    rx_bytes: rx,
                    tx_bytes: tx,
                    allowed_ips: peer.allowed_ips.iter().map(|n| n.to_string()).collect(),
                    persistent_keepalive: peer.persistent_keepalive,
                    tunnel_epochs: live,
                    classic: peer.classic,
                    ..PeerReport::keymix_view(key, state, &st, peer.qkd_policy)
                }
            })
            .collect();
        let mut dropped = status::keymix_dropped(&self.endpoint);
        for (reason, n) in self.counters.iter() {
            dropped.insert(reason.as_str().to_owned(), n);
        }
        InterfaceStatus::new(&self.name, &self.public_key, self.listen_port)
            .with_keylog(self.keylog.as_ref())
            .with_qkd_protocol(self.qkd.protocol())
            .with_peers(peers)
            .with_dropped(dropped)
    }
}
