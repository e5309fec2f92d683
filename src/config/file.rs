//! The config file's shape as serde reads it: one struct per TOML table, unknown keys
//! refused, and every value an error can point at kept with its span (`Spanned`), so
//! `load` can name the line. What the values mean is `load`'s business (config.rs).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use ip_network::IpNetwork;
use keymix::{PublicKey, QkdPolicy};
use serde::{Deserialize, Deserializer};
use toml::Spanned;
use tunnel::settings::parse_allowed_ip;
use tunnel::InterfaceAddress;

use super::qkd::QkdSection;
use super::wgquick;
use crate::keys::decode_key;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ConfigFile {
    pub(super) interface: InterfaceSection,
    #[serde(default)]
    pub(super) keymix: KeymixSection,
    pub(super) qkd: Option<QkdSection>,
    #[serde(default, rename = "peer")]
    pub(super) peers: Vec<PeerSection>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct InterfaceSection {
    pub(super) name: Spanned<String>,
    pub(super) private_key_file: Spanned<PathBuf>,
    pub(super) listen_port: u16,
    /// Bind the UDP socket to this address only (a site's virtual address in an HA pair),
    /// even before it is present on this host (IP_FREEBIND).
    pub(super) listen_address: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) address: Vec<Parsed<InterfaceAddress>>,
    pub(super) mtu: Option<Spanned<u16>>,
    /// Where each peer's keymix chain is kept across restarts.
    pub(super) state_dir: Option<Spanned<PathBuf>>,
    /// An existing WireGuard interface whose PSKs Trident sets (config/wireguard.rs).
    pub(super) wireguard: Option<Spanned<String>>,
    /// Opt-in Prometheus endpoint, e.g. "127.0.0.1:9586" (GET /metrics).
    pub(super) metrics_listen: Option<Spanned<String>>,
    /// wg-quick's Table, FwMark and PreUp/PostUp/PreDown/PostDown (config/wgquick.rs).
    pub(super) table: Option<wgquick::Table>,
    pub(super) fwmark: Option<wgquick::Fwmark>,
    #[serde(default)]
    pub(super) pre_up: wgquick::Commands,
    #[serde(default)]
    pub(super) post_up: wgquick::Commands,
    #[serde(default)]
    pub(super) pre_down: wgquick::Commands,
    #[serde(default)]
    pub(super) post_down: wgquick::Commands,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct KeymixSection {
    #[serde(default = "default_epoch_secs")]
    pub(super) epoch_secs: Spanned<u64>,
    #[serde(default = "default_reject_after_secs")]
    pub(super) reject_after_secs: Spanned<u64>,
    /// Default: "preferred" with a `[qkd]` table, else "off".
    pub(super) qkd: Option<Spanned<Parsed<QkdPolicy>>>,
    pub(super) bootstrap_psk_file: Option<Spanned<PathBuf>>,
    /// The RNDL key log (holds secrets; for `trident audit`).
    pub(super) keylog_file: Option<Spanned<PathBuf>>,
    /// The keymix protocol versions spoken with every peer (default 1 and 2).
    pub(super) min_version: Option<Spanned<u8>>,
    pub(super) max_version: Option<Spanned<u8>>,
}

impl Default for KeymixSection {
    fn default() -> Self {
        Self {
            epoch_secs: default_epoch_secs(),
            reject_after_secs: default_reject_after_secs(),
            qkd: None,
            bootstrap_psk_file: None,
            keylog_file: None,
            min_version: None,
            max_version: None,
        }
    }
}

pub(super) fn default_epoch_secs() -> Spanned<u64> {
    Spanned::new(0..0, 120)
}

pub(super) fn default_reject_after_secs() -> Spanned<u64> {
    Spanned::new(0..0, 180)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PeerSection {
    pub(super) public_key: Spanned<Parsed<PublicKeyValue>>,
    pub(super) endpoint: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) allowed_ips: Vec<Parsed<AllowedIp>>,
    pub(super) persistent_keepalive: Option<u16>,
    /// The peer's SAE ID at its own KME; required when QKD is on (ETSI 014).
    pub(super) sae_id: Option<Spanned<String>>,
    /// The system ID of the peer's Key Provider; required when QKD is on (SKIP).
    pub(super) remote_system_id: Option<Spanned<String>>,
    /// A bootstrap PSK shared with this peer only (`trident genpsk`).
    pub(super) bootstrap_psk_file: Option<Spanned<PathBuf>>,
    /// "off": a plain WireGuard peer (config/wireguard.rs).
    pub(super) keymix: Option<Spanned<String>>,
    /// The static PSK of a `keymix = "off"` peer.
    pub(super) preshared_key_file: Option<Spanned<PathBuf>>,
}

/// A string value parsed with `FromStr`, so a bad value is reported with its own span.
#[derive(Default)]
pub(super) struct Parsed<T>(pub(super) T);

impl<'de, T> Deserialize<'de> for Parsed<T>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map(Parsed).map_err(serde::de::Error::custom)
    }
}

pub(super) struct PublicKeyValue(pub(super) PublicKey);

impl FromStr for PublicKeyValue {
    type Err = &'static str;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let key =
            decode_key(s).ok_or("not a base64 32-byte key (as printed by `trident pubkey`)")?;
        Ok(Self(PublicKey::from(*key)))
    }
}

pub(super) struct AllowedIp(pub(super) IpNetwork);

impl FromStr for AllowedIp {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_allowed_ip(s).map(AllowedIp)
    }
}
