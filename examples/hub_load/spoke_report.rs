//! What the spokes tell the collector: milestones as they happen, and each spoke's
//! counters when it stops. Kept apart from the spoke so the collector depends on these
//! messages only, not on the protocol state behind them.

use std::time::Instant;

/// What a spoke tells the collector as it happens.
pub enum Note {
    /// keymix committed an epoch with the hub.
    Epoch { spoke: usize, at: Instant },
    /// The first echo reply came back through the tunnel: the spoke is up.
    Data { spoke: usize, at: Instant },
    /// The spoke stopped; its counters.
    Final(Box<SpokeReport>),
}

#[derive(Default, Debug, Clone, serde::Serialize)]
pub struct SpokeReport {
    pub spoke: usize,
    pub epochs: u64,
    pub keymix_cookies: u64,
    pub wireguard_cookies: u64,
    pub kme_requests: u64,
    pub kme_errors: u64,
    /// The KME errors by message (key IDs and numbers blanked), so a figure that counts
    /// failures also says which failure it was.
    pub kme_error_kinds: std::collections::BTreeMap<String, u64>,
    pub send_errors: u64,
    pub wireguard_rejected: u64,
    pub pings_sent: u64,
    pub pings_received: u64,
    pub pings_lost: u64,
    pub max_rtt_ms: f64,
    /// Epochs this spoke committed while its sampled pings ran.
    pub epochs_while_pinging: u64,
}
