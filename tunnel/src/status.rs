//! What `trident status` shows: the JSON the control socket sends, field names fixed by the
//! spec (issue 3); extra fields come after the required ones.
//!
//! Both data planes build it through the constructors here, so keymix's view of a peer and
//! the drop counts read the same in either mode; each adds only what it alone knows.

use std::collections::BTreeMap;

use base64::Engine;
use keymix::{Endpoint, PeerStatus, PublicKey, QkdPolicy, SourceMask};
use serde::{Deserialize, Serialize};

use crate::keylog::KeyLog;

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
    /// The QKD key-delivery protocol ("etsi014", "skip"); null without a key source.
    #[serde(default)]
    pub qkd_protocol: Option<String>,
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
    /// "connecting" | "up" | "degraded" | "stale" | "blocked".
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
    /// Why the peer is blocked (local facts only: an expired key, a policy not met).
    #[serde(default)]
    pub reason: Option<String>,
    /// What the operator can do: from local facts or authenticated messages only.
    #[serde(default)]
    pub hint: Option<String>,
    /// Datagrams claiming to be this peer that did not authenticate (or only by a static
    /// key): counted, never acted on.
    #[serde(default)]
    pub unverified: u64,
    /// The last of them, as a fact.
    #[serde(default)]
    pub last_unverified: Option<String>,
    /// The operator acknowledged a static-key-only re-bootstrap (`trident reset
    /// --static-only`); shown until the chain has grown again.
    #[serde(default)]
    pub static_only_reset: bool,
    /// A new bootstrap PSK was loaded and the peer has not used it yet: both are accepted.
    #[serde(default)]
    pub psk_rotation: bool,
    /// Something the peer proved that the operator should know (it re-bootstrapped).
    #[serde(default)]
    pub warning: Option<String>,
    /// The persisted chain's epoch (0: none); ahead of `epoch` right after a restart.
    #[serde(default)]
    pub chain_epoch: u64,
    /// A plain WireGuard peer (`keymix = "off"`): no keymix, a static PSK or none.
    #[serde(default)]
    pub classic: bool,
    /// External data plane: what the WireGuard peer's PSK is ("epoch 7", "random (...)").
    #[serde(default)]
    pub installed_psk: Option<String>,
    /// The keymix protocol version of the live epoch's exchange.
    #[serde(default)]
    pub version: Option<u8>,
    /// The version the peer is held to (it has spoken it: nothing earlier is believed).
    #[serde(default)]
    pub pinned_version: Option<u8>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct SourcesReport {
    pub x25519: bool,
    pub mlkem: bool,
    pub qkd: bool,
}

impl InterfaceStatus {
    /// A built-in data plane's status with no peers and no drops yet; the external data
    /// plane overrides `data_plane` and `wireguard`.
    pub(crate) fn new(interface: &str, public_key: &PublicKey, listen_port: u16) -> Self {
        Self {
            interface: interface.to_owned(),
            public_key: base64::engine::general_purpose::STANDARD.encode(public_key.as_bytes()),
            listen_port,
            peers: Vec::new(),
            dropped: BTreeMap::new(),
            dropped_total: 0,
            keylog: None,
            data_plane: built_in(),
            wireguard: None,
            qkd_protocol: None,
        }
    }

    /// Names the QKD key source's protocol (`QkdBridge::protocol`).
    pub(crate) fn with_qkd_protocol(mut self, protocol: Option<&str>) -> Self {
        self.qkd_protocol = protocol.map(str::to_owned);
        self
    }

    /// Shows where the key log is written, when it is on.
    pub(crate) fn with_keylog(mut self, keylog: Option<&KeyLog>) -> Self {
        self.keylog = keylog.map(|k| k.path().display().to_string());
        self
    }

    pub(crate) fn with_peers(mut self, peers: Vec<PeerReport>) -> Self {
        self.peers = peers;
        self
    }

    /// `dropped` is [`keymix_dropped`] plus the data plane's own reasons.
    pub(crate) fn with_dropped(mut self, dropped: BTreeMap<String, u64>) -> Self {
        self.dropped_total = dropped.values().fold(0u64, |a, b| a.saturating_add(*b));
        self.dropped = dropped;
        self
    }
}

/// keymix's drop counts, named `keymix_<reason>` beside the data plane's own reasons.
pub(crate) fn keymix_dropped(endpoint: &Endpoint) -> BTreeMap<String, u64> {
    endpoint
        .counters()
        .iter()
        .map(|(reason, n)| (format!("keymix_{}", reason.as_str()), n))
        .collect()
}

impl PeerReport {
    /// keymix's view of one peer (`st`) under the data plane's verdict `state`; what only
    /// the data plane knows (endpoint, traffic, allowed IPs, Tunns or installed PSK) is
    /// left empty for it to fill in.
    pub(crate) fn keymix_view(
        public_key: String,
        state: &str,
        st: &PeerStatus,
        qkd_policy: QkdPolicy,
    ) -> Self {
        Self {
            public_key,
            endpoint: None,
            state: state.to_owned(),
            epoch: st.epoch,
            epoch_age_secs: st.epoch_age.map(|a| a.as_secs()),
            sources: SourcesReport {
                x25519: st.sources.contains(SourceMask::X25519),
                mlkem: st.sources.contains(SourceMask::MLKEM),
                qkd: st.sources.contains(SourceMask::QKD),
            },
            qkd_key_id: st.qkd_key_ids.first().cloned(),
            last_handshake_secs: None,
            rx_bytes: 0,
            tx_bytes: 0,
            last_kme_error: st.last_kme_error.clone(),
            keymix_exchanges: st.exchanges,
            allowed_ips: Vec::new(),
            persistent_keepalive: None,
            tunnel_epochs: Vec::new(),
            qkd_policy: qkd_policy.to_string(),
            auth: st.auth.map(|a| a.as_str().to_owned()),
            reason: st.reason.clone(),
            hint: st.hint.clone(),
            unverified: st.unverified,
            last_unverified: st.last_unverified.clone(),
            static_only_reset: st.static_only_reset,
            psk_rotation: st.psk_rotation,
            warning: st.warning.clone(),
            chain_epoch: st.chain_epoch,
            classic: false,
            installed_psk: None,
            version: st.version.map(keymix::Version::byte),
            pinned_version: st.pinned_version.map(keymix::Version::byte),
        }
    }
}
