//! What `trident status` shows about a peer's keys, computed from the state machine.

use std::time::Duration;

use crate::sources::SourceMask;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerState {
    /// No epoch yet.
    Connecting,
    /// The policy is fully met.
    Up,
    /// QKD is preferred but the current epoch has none.
    Degraded,
    /// The policy is not met (expired key, or QKD required and unavailable): no traffic.
    Blocked,
}

impl PeerState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Up => "up",
            Self::Degraded => "degraded",
            Self::Blocked => "blocked",
        }
    }
}

#[derive(Debug, Clone)]
pub struct PeerStatus {
    pub state: PeerState,
    pub epoch: Option<u64>,
    pub epoch_age: Option<Duration>,
    pub sources: SourceMask,
    pub qkd_key_ids: Vec<String>,
    pub last_kme_error: Option<String>,
    /// True once the current key is past the reject age.
    pub expired: bool,
    /// Completed exchanges since start.
    pub exchanges: u64,
}
