//! The TOML config of `trident up`: wg-quick's names plus `[keymix]` and `[qkd]`. Unknown
//! keys are errors. Every error is one line naming the file, the line, the key and what is
//! wrong (`main` prints it and exits with 2). Relative paths are relative to the config
//! file's directory.
//!
//! QKD: a `[qkd]` table (ETSI 014: kme_url, sae_id, ca_file, cert_file, key_file,
//! timeout_secs; or `protocol = "skip"`: kp_url, local_system_id, tls, ... in
//! config/qkd_skip.rs) makes `[keymix] qkd` default to "preferred"; "preferred" or
//! "required" without it is an error, and every `[[peer]]` then needs its `sae_id` (SKIP:
//! `remote_system_id`). The table becomes the client the tunnel uses as its QKD key source.
//!
//! Authentication: `[interface] state_dir` (default `$STATE_DIRECTORY/NAME` under systemd,
//! else `/var/lib/trident/NAME`) keeps each peer's keymix chain across restarts; a
//! `[[peer]] bootstrap_psk_file` lets that peer re-bootstrap after losing its state. The
//! older `[keymix] bootstrap_psk_file` still applies to every peer without its own, with a
//! warning when several peers share it.

use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use keymix::{PeerConfig, PublicKey, QkdPolicy, StaticSecret};
use toml::Spanned;
use tunnel::settings::{Hooks, RouteTable};
use tunnel::{PeerSettings, TunnelSettings};
use zeroize::Zeroizing;

use crate::keys::decode_key;
use file::ConfigFile;

mod file;
mod qkd;
mod qkd_skip;
mod source;
mod validate;
mod wgquick;
mod wireguard;
use qkd::{peer_qkd_id, qkd_client};
pub use qkd_skip::KpCheck;
use source::Source;

const DEFAULT_MTU: u16 = 1420;
/// Linux interface names are at most 15 bytes (IFNAMSIZ - 1).
const MAX_NAME_LEN: usize = 15;
/// Default bound of one ETSI 014 call (connect, TLS, request, answer) when
/// `[qkd] timeout_secs` is not given.
const DEFAULT_KME_TIMEOUT_SECS: u64 = 5;
/// keymix waits this much longer than the client's own timeout, so the client's error (the
/// useful one, e.g. "connection refused") is what reaches `last_kme_error`.
const KME_TIMEOUT_MARGIN: Duration = Duration::from_secs(2);
/// Environment variable that switches the key log on (overrides `[keymix] keylog_file`).
pub const KEYLOG_ENV: &str = "TRIDENT_KEYLOG";
/// systemd's `StateDirectory=` sets this (colon-separated when several are listed).
const STATE_DIRECTORY_ENV: &str = "STATE_DIRECTORY";
/// Without systemd: `/var/lib/trident/NAME`.
const DEFAULT_STATE_ROOT: &str = "/var/lib/trident";
/// Upper bounds of the epoch schedule: a day per epoch, two days before a PSK is refused.
/// Larger values are typos, and once overflowed `Instant` (a panic).
const MAX_EPOCH_SECS: u64 = 86_400;
const MAX_REJECT_AFTER_SECS: u64 = 2 * 86_400;

/// A loaded config and what the operator should be warned about at start.
pub struct Loaded {
    pub settings: TunnelSettings,
    pub warnings: Vec<String>,
    /// SKIP: the Key Provider's capabilities check, run by `check` and `up` (it needs the
    /// network, which `load` never touches).
    pub kp_check: Option<KpCheck>,
}

/// The state directory when the config names none.
pub fn default_state_dir(name: &str) -> PathBuf {
    default_state_dir_in(std::env::var_os(STATE_DIRECTORY_ENV), name)
}

fn default_state_dir_in(state_directory: Option<std::ffi::OsString>, name: &str) -> PathBuf {
    let systemd = state_directory.and_then(|v| {
        let v = v.to_string_lossy().into_owned();
        v.split(':')
            .map(str::trim)
            .find(|d| !d.is_empty())
            .map(PathBuf::from)
    });
    systemd
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_ROOT))
        .join(name)
}

/// A config error: printed as one line, exit code 2.
#[derive(Debug)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "config error in {}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, " line {line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ", key `{key}`")?;
        }
        write!(f, ": {}", self.message.replace('\n', " "))
    }
}

impl std::error::Error for ConfigError {}

fn read_key_file(
    src: &Source,
    path: &Spanned<PathBuf>,
    key: &str,
) -> Result<Zeroizing<[u8; 32]>, ConfigError> {
    let file = &src.resolve(path.get_ref());
    let text = std::fs::read_to_string(file)
        .map(Zeroizing::new)
        .map_err(|e| {
            src.error(
                Some(path.span()),
                key,
                format!("cannot read {}: {e}", file.display()),
            )
        })?;
    decode_key(&text).ok_or_else(|| {
        src.error(
            Some(path.span()),
            key,
            format!("{} does not hold a base64 32-byte key", file.display()),
        )
    })
}

fn resolve_endpoint(
    src: &Source,
    value: &Spanned<String>,
    key: &str,
) -> Result<SocketAddr, ConfigError> {
    validate::resolve_endpoint(src, value, key)
}

/// Reads and checks a config file; every problem is a [`ConfigError`].
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_owned(),
        line: None,
        key: None,
        message: format!("cannot read: {e}"),
    })?;
    let src = Source {
        file: path,
        text: &text,
    };
    let file: ConfigFile = toml::from_str(&text).map_err(|e| src.parse_error(&e))?;
    let ConfigFile {
        interface,
        keymix,
        qkd,
        peers,
    } = file;

    let name = interface.name.get_ref().clone();
    if name.is_empty()
        || name.len() > MAX_NAME_LEN
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    {
        return Err(src.error(
            Some(interface.name.span()),
            "interface.name",
            format!("{name:?} is not a valid interface name (1-{MAX_NAME_LEN} characters of A-Z a-z 0-9 _ . -)"),
        ));
    }
    let private_key = read_key_file(
        &src,
        &interface.private_key_file,
        "interface.private_key_file",
    )?;
    let private_key = StaticSecret::from(*private_key);
    let own_public = PublicKey::from(&private_key);
    let mtu = match &interface.mtu {
        None => DEFAULT_MTU,
        Some(m) if (576..=65_535).contains(m.get_ref()) => *m.get_ref(),
        Some(m) => {
            return Err(src.error(
                Some(m.span()),
                "interface.mtu",
                "must be between 576 and 65535",
            ))
        }
    };

    let epoch_secs = *keymix.epoch_secs.get_ref();
    let reject_after_secs = *keymix.reject_after_secs.get_ref();
    if !(1..=MAX_EPOCH_SECS).contains(&epoch_secs) {
        return Err(src.error(
            Some(keymix.epoch_secs.span()),
            "keymix.epoch_secs",
            format!("must be between 1 and {MAX_EPOCH_SECS}"),
        ));
    }
    if reject_after_secs > MAX_REJECT_AFTER_SECS {
        return Err(src.error(
            Some(keymix.reject_after_secs.span()),
            "keymix.reject_after_secs",
            format!("must be at most {MAX_REJECT_AFTER_SECS}"),
        ));
    }
    if reject_after_secs <= epoch_secs {
        return Err(src.error(
            Some(keymix.reject_after_secs.span()),
            "keymix.reject_after_secs",
            format!("must be greater than epoch_secs ({epoch_secs}), or every PSK expires before the next one"),
        ));
    }
    let bootstrap_psk = match &keymix.bootstrap_psk_file {
        Some(p) => Some(read_key_file(&src, p, "keymix.bootstrap_psk_file")?),
        None => None,
    };
    let policy = match &keymix.qkd {
        Some(p) => p.get_ref().0,
        None if qkd.is_some() => QkdPolicy::Preferred,
        None => QkdPolicy::Off,
    };
    // The peers' SKIP remote IDs, for the Key Provider's capabilities check.
    let remote_ids: Vec<_> = peers
        .iter()
        .filter_map(|p| p.remote_system_id.as_ref())
        .map(|r| (r.get_ref().clone(), Some(r.span())))
        .collect();
    let qkd_setup = match (&qkd, policy) {
        (_, QkdPolicy::Off) => None,
        (Some(q), _) => Some(qkd_client(&src, q, &remote_ids)?),
        (None, _) => {
            return Err(src.error(
                keymix.qkd.as_ref().map(Spanned::span),
                "keymix.qkd",
                format!("qkd = \"{policy}\" needs a [qkd] table (kme_url, sae_id, ca_file, cert_file, key_file; or protocol = \"skip\" with kp_url, local_system_id, ...)"),
            ))
        }
    };
    let protocol = match &qkd {
        Some(q) => Some(q.protocol(&src)?),
        None => None,
    };
    let kme_timeout = qkd
        .as_ref()
        .and_then(|q| q.timeout_secs.as_ref())
        .map_or(DEFAULT_KME_TIMEOUT_SECS, |t| *t.get_ref());
    let keylog_file = match std::env::var_os(KEYLOG_ENV).filter(|v| !v.is_empty()) {
        Some(env) => Some(PathBuf::from(env)),
        None => keymix
            .keylog_file
            .as_ref()
            .map(|p| src.resolve(p.get_ref())),
    };

    let state_dir = match &interface.state_dir {
        Some(d) => src.resolve(d.get_ref()),
        None => default_state_dir(&name),
    };

    let external = wireguard::external_interface(&src, &interface, &peers)?;
    let metrics_listen = match &interface.metrics_listen {
        None => None,
        Some(m) => Some(m.get_ref().trim().parse::<SocketAddr>().map_err(|_| {
            src.error(
                Some(m.span()),
                "interface.metrics_listen",
                format!("{:?} is not IP:PORT (e.g. \"127.0.0.1:9586\")", m.get_ref()),
            )
        })?),
    };
    let listen_address = match &interface.listen_address {
        None => None,
        Some(a) => Some(a.get_ref().trim().parse::<IpAddr>().map_err(|_| {
            src.error(
                Some(a.span()),
                "interface.listen_address",
                format!(
                    "{:?} is not an IP address (e.g. the site's virtual address \"192.0.2.10\")",
                    a.get_ref()
                ),
            )
        })?),
    };
    let mut warnings = Vec::new();
    let mut sharing_interface_psk = 0usize;
    let mut seen = HashSet::new();
    let mut peer_settings = Vec::with_capacity(peers.len());
    for peer in peers {
        let public_key = peer.public_key.get_ref().0 .0;
        if public_key == own_public {
            return Err(src.error(
                Some(peer.public_key.span()),
                "peer.public_key",
                "is this interface's own public key",
            ));
        }
        // A low-order point makes the static-static X25519 all zero: a key anyone computes.
        if !private_key.diffie_hellman(&public_key).was_contributory() {
            return Err(src.error(
                Some(peer.public_key.span()),
                "peer.public_key",
                "is a low-order point (X25519 with it gives an all-zero secret)",
            ));
        }
        if !seen.insert(*public_key.as_bytes()) {
            return Err(src.error(
                Some(peer.public_key.span()),
                "peer.public_key",
                "appears in more than one [[peer]]",
            ));
        }
        let endpoint = match &peer.endpoint {
            Some(e) => Some(resolve_endpoint(&src, e, "peer.endpoint")?),
            None => None,
        };
        let classic = wireguard::classic_peer(&src, &peer, &mut warnings)?;
        let mut keymix_config = PeerConfig::new(public_key);
        keymix_config.epoch = Duration::from_secs(epoch_secs);
        keymix_config.reject_after = Duration::from_secs(reject_after_secs);
        keymix_config.qkd = policy;
        keymix_config.bootstrap_psk = match &peer.bootstrap_psk_file {
            Some(p) => Some(read_key_file(&src, p, "peer.bootstrap_psk_file")?),
            None => {
                sharing_interface_psk += usize::from(bootstrap_psk.is_some());
                bootstrap_psk.clone()
            }
        };
        keymix_config.kme_timeout = Duration::from_secs(kme_timeout) + KME_TIMEOUT_MARGIN;
        // The SAE ID (ETSI 014) or the remote system ID (SKIP): the ID keymix hands the
        // key source as "the other side".
        keymix_config.peer_sae_id = peer_qkd_id(&src, protocol, policy, classic.is_some(), &peer)?;
        peer_settings.push(PeerSettings {
            endpoint,
            allowed_ips: peer.allowed_ips.into_iter().map(|a| a.0 .0).collect(),
            // 0 means off, as in wg.
            persistent_keepalive: peer.persistent_keepalive.filter(|k| *k > 0),
            keymix: keymix_config,
            classic,
        });
    }

    if sharing_interface_psk > 1 {
        warnings.push(format!(
            "[keymix] bootstrap_psk_file is shared by {sharing_interface_psk} peers: A-B \
             authentication rests on a secret every other site also holds. Give each \
             [[peer]] its own bootstrap_psk_file (`trident genpsk`)."
        ));
    }

    let settings = TunnelSettings {
        name,
        private_key,
        listen_port: interface.listen_port,
        listen_address,
        addresses: interface.address.into_iter().map(|a| a.0).collect(),
        mtu,
        peers: peer_settings,
        local_sae_id: qkd_setup.as_ref().map(|s| s.local_id.clone()),
        qkd_source: qkd_setup.as_ref().map(|s| s.source.clone()),
        keylog_file,
        control_dir: crate::cli_extra::control_dir(),
        state_dir: Some(state_dir),
        wireguard: external,
        metrics_listen,
        table: interface.table.map_or(RouteTable::Auto, |t| t.0),
        fwmark: interface.fwmark.and_then(|f| f.0),
        hooks: Hooks {
            pre_up: interface.pre_up.0,
            post_up: interface.post_up.0,
            pre_down: interface.pre_down.0,
            post_down: interface.post_down.0,
        },
        on_up: None,
    };
    validate::check_loaded(&src, &settings, &mut warnings)?;
    if let Some(setup) = &qkd_setup {
        tracing::debug!(protocol = ?setup.protocol, "QKD key source configured");
    }
    Ok(Loaded {
        settings,
        warnings,
        kp_check: qkd_setup.and_then(|s| s.kp_check),
    })
}

#[cfg(test)]
mod tests;
