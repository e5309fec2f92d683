//! What the built-in data plane reports: `trident status` (keymix's view of each peer
//! with the Tunns it has here) and the metrics snapshot.

use std::collections::BTreeMap;
use std::time::Instant;

use base64::Engine;
use keymix::SourceMask;

use super::{classic, Driver};
use crate::metrics;
use crate::status::{InterfaceStatus, PeerReport, SourcesReport};

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
                let live: Vec<u64> = peer.tunns().map(|t| t.epoch).collect();
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
                PeerReport {
                    public_key: b64.encode(peer.public_key.as_bytes()),
                    endpoint: peer.endpoint.map(|e| e.to_string()),
                    state: state.to_owned(),
                    epoch: st.epoch,
                    epoch_age_secs: st.epoch_age.map(|a| a.as_secs()),
                    sources: SourcesReport {
                        x25519: st.sources.contains(SourceMask::X25519),
                        mlkem: st.sources.contains(SourceMask::MLKEM),
                        qkd: st.sources.contains(SourceMask::QKD),
                    },
                    qkd_key_id: st.qkd_key_ids.first().cloned(),
                    last_handshake_secs: peer.last_handshake().map(|d| d.as_secs()),
                    rx_bytes: rx,
                    tx_bytes: tx,
                    last_kme_error: st.last_kme_error.clone(),
                    keymix_exchanges: st.exchanges,
                    allowed_ips: peer.allowed_ips.iter().map(|n| n.to_string()).collect(),
                    persistent_keepalive: peer.persistent_keepalive,
                    tunnel_epochs: live,
                    qkd_policy: peer.qkd_policy.to_string(),
                    auth: st.auth.map(|a| a.as_str().to_owned()),
                    reason: st.reason.clone(),
                    chain_epoch: st.chain_epoch,
                    classic: peer.classic,
                    installed_psk: None,
                }
            })
            .collect();
        let mut dropped = BTreeMap::new();
        for (reason, n) in self.endpoint.counters().iter() {
            dropped.insert(format!("keymix_{}", reason.as_str()), n);
        }
        for (reason, n) in self.counters.iter() {
            dropped.insert(reason.as_str().to_owned(), n);
        }
        let dropped_total = dropped.values().fold(0u64, |a, b| a.saturating_add(*b));
        InterfaceStatus {
            interface: self.name.clone(),
            public_key: b64.encode(self.public_key.as_bytes()),
            listen_port: self.listen_port,
            peers,
            dropped,
            dropped_total,
            keylog: self.keylog.as_ref().map(|k| k.path().display().to_string()),
            data_plane: "built-in".to_owned(),
            wireguard: None,
        }
    }
}
