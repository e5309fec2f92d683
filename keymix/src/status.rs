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
    /// The key still works but its replacement is overdue (the peer may be gone): traffic
    /// flows until the key's reject age, `reason` says how long is left.
    Stale,
    /// The policy is not met (expired key, or QKD required and unavailable): no traffic.
    Blocked,
}

impl PeerState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Up => "up",
            Self::Degraded => "degraded",
            Self::Stale => "stale",
            Self::Blocked => "blocked",
        }
    }
}

/// What authenticated the exchange of the current epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthBasis {
    /// The previous epoch's chain key (carries ML-KEM and QKD secrets): post-quantum.
    Chain,
    /// C_0 from the peer's bootstrap PSK (plus the static keys).
    BootstrapPsk,
    /// First contact without a bootstrap PSK: the static X25519 keys alone.
    StaticOnly,
}

impl AuthBasis {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Chain => "chain",
            Self::BootstrapPsk => "bootstrap-psk",
            Self::StaticOnly => "static-only",
        }
    }
}

#[derive(Debug, Clone)]
pub struct PeerStatus {
    pub state: PeerState,
    /// The live epoch (its PSK is in use).
    pub epoch: Option<u64>,
    /// The epoch of the persisted chain (0: none); after a restart it is ahead of `epoch`
    /// until the first exchange completes.
    pub chain_epoch: u64,
    pub epoch_age: Option<Duration>,
    pub sources: SourceMask,
    pub qkd_key_ids: Vec<String>,
    pub last_kme_error: Option<String>,
    /// True once the current key is past the reject age.
    pub expired: bool,
    /// Completed exchanges since start.
    pub exchanges: u64,
    /// Duration of the last exchange this side initiated (Init sent to Resp accepted;
    /// `None` before the first, or when the peer always initiates).
    pub last_exchange: Option<Duration>,
    /// What authenticated the current epoch.
    pub auth: Option<AuthBasis>,
    /// Why the peer is blocked (local facts only: an expired key, a policy not met).
    pub reason: Option<String>,
    /// What the operator can do, from local facts or authenticated messages only (never
    /// from a datagram that did not authenticate).
    pub hint: Option<String>,
    /// Datagrams claiming to be this peer that did not authenticate (or only by a static
    /// key): counted, never acted on.
    pub unverified: u64,
    /// The last of them, described as a fact (no advice).
    pub last_unverified: Option<String>,
    /// The operator acknowledged that the next first contact rests on the static keys
    /// alone (`trident reset --static-only`); shown until a chain-keyed epoch completes.
    pub static_only_reset: bool,
    /// A new bootstrap PSK was loaded and the peer has not used it yet: both are accepted.
    pub psk_rotation: bool,
    /// Something the operator should know that the peer proved (e.g. it re-bootstrapped:
    /// it lost its state or was reset), for ten minutes.
    pub warning: Option<String>,
    /// The keymix protocol version of the live epoch's exchange.
    pub version: Option<crate::Version>,
    /// The version this peer is pinned to (it has spoken it: nothing earlier is believed),
    /// if any.
    pub pinned_version: Option<crate::Version>,
}

impl PeerStatus {
    /// A peer nothing is known of yet.
    pub fn connecting() -> Self {
        Self {
            state: PeerState::Connecting,
            epoch: None,
            chain_epoch: 0,
            epoch_age: None,
            sources: SourceMask::default(),
            qkd_key_ids: Vec::new(),
            last_kme_error: None,
            expired: false,
            exchanges: 0,
            last_exchange: None,
            auth: None,
            reason: None,
            hint: None,
            unverified: 0,
            last_unverified: None,
            static_only_reset: false,
            psk_rotation: false,
            warning: None,
            version: None,
            pinned_version: None,
        }
    }
}
