//! Configuration of the keymix endpoint and of each peer.

use std::time::Duration;

use boringtun::x25519::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

/// Whether an epoch needs a QKD key (docs/PROTOCOL.md, "Policy").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QkdPolicy {
    /// X25519 + ML-KEM-768 only; the KME is never asked.
    #[default]
    Off,
    /// Use QKD when the KME delivers; degrade to X25519 + ML-KEM-768 (visible in status).
    Preferred,
    /// No epoch without a QKD key: fail closed.
    Required,
}

impl std::str::FromStr for QkdPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "off" => Ok(Self::Off),
            "preferred" => Ok(Self::Preferred),
            "required" => Ok(Self::Required),
            other => Err(format!(
                "unknown qkd policy {other:?}: expected \"off\", \"preferred\" or \"required\""
            )),
        }
    }
}

impl std::fmt::Display for QkdPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Off => "off",
            Self::Preferred => "preferred",
            Self::Required => "required",
        })
    }
}

/// The local side: one per interface.
pub struct EndpointConfig {
    pub static_secret: StaticSecret,
    /// Our SAE ID at our KME (needed only when some peer uses QKD).
    pub local_sae_id: Option<String>,
    /// Initiations per second above which the endpoint answers with cookies first.
    pub load_threshold_per_sec: u32,
    /// Hand each epoch's per-source secrets out with the EpochKey, for the RNDL key log.
    pub keylog: bool,
}

impl EndpointConfig {
    pub fn new(static_secret: StaticSecret) -> Self {
        Self {
            static_secret,
            local_sae_id: None,
            load_threshold_per_sec: 64,
            keylog: false,
        }
    }
}

/// One peer of the endpoint.
#[derive(Clone)]
pub struct PeerConfig {
    pub public_key: PublicKey,
    pub bootstrap_psk: Option<Zeroizing<[u8; 32]>>,
    /// A new epoch every `epoch` (default 120 s).
    pub epoch: Duration,
    /// A PSK older than this is never used (default 180 s).
    pub reject_after: Duration,
    pub qkd: QkdPolicy,
    /// The peer's SAE ID at its KME (required unless `qkd` is off).
    pub peer_sae_id: Option<String>,
    /// How long to wait for the driver's answer to a KME request.
    pub kme_timeout: Duration,
    /// Whether the driver has an address for the peer. Without one this side never
    /// initiates; it answers the peer's Init and learns the address from it.
    pub endpoint_known: bool,
    /// The chain saved by an earlier run (None: no state file, first contact).
    pub state: Option<crate::ChainState>,
    /// The lowest keymix protocol version spoken with this peer (default 1: a peer that has
    /// not upgraded still gets a tunnel, until it has spoken version 2 once).
    pub min_version: crate::Version,
    /// The highest version spoken with this peer (default: the latest).
    pub max_version: crate::Version,
}

impl PeerConfig {
    pub fn new(public_key: PublicKey) -> Self {
        Self {
            public_key,
            bootstrap_psk: None,
            epoch: Duration::from_secs(120),
            reject_after: Duration::from_secs(180),
            qkd: QkdPolicy::Off,
            peer_sae_id: None,
            kme_timeout: Duration::from_secs(10),
            endpoint_known: true,
            state: None,
            min_version: crate::Version::V1,
            max_version: crate::Version::LATEST,
        }
    }
}
