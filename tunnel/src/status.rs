//! What `trident status` shows: the JSON the control socket sends, field names fixed by the
//! spec (issue 3); extra fields come after the required ones.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InterfaceStatus {
    pub interface: String,
    pub public_key: String,
    pub listen_port: u16,
    pub peers: Vec<PeerReport>,
    /// Dropped datagrams/packets by reason: keymix's reasons and the tunnel's own.
    pub dropped: BTreeMap<String, u64>,
    pub dropped_total: u64,
    /// Path of the RNDL key log when it is on (it holds secrets), else null.
    #[serde(default)]
    pub keylog: Option<String>,
    /// "built-in" (Trident's own WireGuard) or "external" (an existing interface's PSKs).
    #[serde(default = "built_in")]
    pub data_plane: String,
    /// The WireGuard interface of the external data plane.
    #[serde(default)]
    pub wireguard: Option<ExternalReport>,
}

fn built_in() -> String {
    "built-in".to_owned()
}

/// The existing WireGuard interface whose PSKs Trident sets.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ExternalReport {
    pub interface: String,
    /// "kernel", or the userspace program serving the UAPI socket ("wireguard-go").
    pub implementation: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PeerReport {
    pub public_key: String,
    pub endpoint: Option<String>,
    /// "connecting" | "up" | "degraded" | "blocked".
    pub state: String,
    pub epoch: Option<u64>,
    pub epoch_age_secs: Option<u64>,
    pub sources: SourcesReport,
    pub qkd_key_id: Option<String>,
    pub last_handshake_secs: Option<u64>,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub last_kme_error: Option<String>,
    pub keymix_exchanges: u64,
    pub allowed_ips: Vec<String>,
    pub persistent_keepalive: Option<u16>,
    /// Epochs with a live WireGuard Tunn (current first).
    pub tunnel_epochs: Vec<u64>,
    /// The peer's QKD policy: "off" | "preferred" | "required".
    #[serde(default)]
    pub qkd_policy: String,
    /// What authenticated the current epoch: "chain" | "bootstrap-psk" | "static-only".
    #[serde(default)]
    pub auth: Option<String>,
    /// Why the peer is blocked (e.g. a chain mismatch) and the fix, when known.
    #[serde(default)]
    pub reason: Option<String>,
    /// The persisted chain's epoch (0: none); ahead of `epoch` right after a restart.
    #[serde(default)]
    pub chain_epoch: u64,
    /// A plain WireGuard peer (`keymix = "off"`): no keymix, a static PSK or none.
    #[serde(default)]
    pub classic: bool,
    /// External data plane: what the WireGuard peer's PSK is ("epoch 7", "random (...)").
    #[serde(default)]
    pub installed_psk: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct SourcesReport {
    pub x25519: bool,
    pub mlkem: bool,
    pub qkd: bool,
}
