//! The TOML config of `trident up`: wg-quick's names plus `[keymix]` and `[qkd]`. Unknown
//! keys are errors. Every error is one line naming the file, the line, the key and what is
//! wrong (`main` prints it and exits with 2). Relative paths are relative to the config
//! file's directory.
//!
//! QKD: a `[qkd]` table (kme_url, sae_id, ca_file, cert_file, key_file, timeout_secs) makes
//! `[keymix] qkd` default to "preferred"; "preferred" or "required" without it is an error,
//! and every `[[peer]]` then needs its `sae_id`. The table becomes an ETSI 014 client that the
//! tunnel uses as its QKD key source.

use std::collections::HashSet;
use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use ip_network::IpNetwork;
use keymix::etsi014::{ClientSetupError, Etsi014Client, Etsi014ClientConfig, TlsSetupError};
use keymix::qkd::QkdKeySource;
use keymix::{PeerConfig, PublicKey, QkdPolicy, StaticSecret};
use serde::{Deserialize, Deserializer};
use toml::Spanned;
use tunnel::settings::{parse_allowed_ip, CONTROL_DIR};
use tunnel::{InterfaceAddress, PeerSettings, TunnelSettings};
use zeroize::Zeroizing;

use crate::keys::decode_key;

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    interface: InterfaceSection,
    #[serde(default)]
    keymix: KeymixSection,
    qkd: Option<QkdSection>,
    #[serde(default, rename = "peer")]
    peers: Vec<PeerSection>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InterfaceSection {
    name: Spanned<String>,
    private_key_file: Spanned<PathBuf>,
    listen_port: u16,
    #[serde(default)]
    address: Vec<Parsed<InterfaceAddress>>,
    mtu: Option<Spanned<u16>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeymixSection {
    #[serde(default = "default_epoch_secs")]
    epoch_secs: Spanned<u64>,
    #[serde(default = "default_reject_after_secs")]
    reject_after_secs: Spanned<u64>,
    /// Default: "preferred" with a `[qkd]` table, else "off".
    qkd: Option<Spanned<Parsed<QkdPolicy>>>,
    bootstrap_psk_file: Option<Spanned<PathBuf>>,
    /// The RNDL key log (holds secrets; for `trident audit`).
    keylog_file: Option<Spanned<PathBuf>>,
}

impl Default for KeymixSection {
    fn default() -> Self {
        Self {
            epoch_secs: default_epoch_secs(),
            reject_after_secs: default_reject_after_secs(),
            qkd: None,
            bootstrap_psk_file: None,
            keylog_file: None,
        }
    }
}

fn default_epoch_secs() -> Spanned<u64> {
    Spanned::new(0..0, 120)
}

fn default_reject_after_secs() -> Spanned<u64> {
    Spanned::new(0..0, 180)
}

/// How this site reaches its KME (ETSI GS QKD 014 over HTTPS with mutual TLS).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QkdSection {
    /// `https://host:port` of the site's KME (optionally with a path prefix).
    kme_url: Spanned<String>,
    /// This site's SAE ID at its KME.
    sae_id: Spanned<String>,
    /// The only CA trusted for the KME's server certificate.
    ca_file: Spanned<PathBuf>,
    /// This SAE's client certificate and key (PEM).
    cert_file: Spanned<PathBuf>,
    key_file: Spanned<PathBuf>,
    /// Bound of one KME call in seconds (default 5).
    timeout_secs: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PeerSection {
    public_key: Spanned<Parsed<PublicKeyValue>>,
    endpoint: Option<Spanned<String>>,
    #[serde(default)]
    allowed_ips: Vec<Parsed<AllowedIp>>,
    persistent_keepalive: Option<u16>,
    /// The peer's SAE ID at its own KME; required when QKD is on.
    sae_id: Option<Spanned<String>>,
}

/// A string value parsed with `FromStr`, so a bad value is reported with its own span.
#[derive(Default)]
struct Parsed<T>(T);

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

struct PublicKeyValue(PublicKey);

impl FromStr for PublicKeyValue {
    type Err = &'static str;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let key =
            decode_key(s).ok_or("not a base64 32-byte key (as printed by `trident pubkey`)")?;
        Ok(Self(PublicKey::from(*key)))
    }
}

struct AllowedIp(IpNetwork);

impl FromStr for AllowedIp {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_allowed_ip(s).map(AllowedIp)
    }
}

/// Turns spans into line numbers and dotted key names for messages.
struct Source<'a> {
    file: &'a Path,
    text: &'a str,
}

impl Source<'_> {
    /// Relative paths in a config file are relative to the file's directory, so a config
    /// directory works wherever it is and whatever the working directory of `trident up`.
    fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            return path.to_owned();
        }
        match self.file.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.join(path),
            _ => path.to_owned(),
        }
    }

    fn line_of(&self, offset: usize) -> usize {
        self.text
            .get(..offset)
            .map_or(1, |before| before.matches('\n').count() + 1)
    }

    /// The dotted key at a span: the `[table]` (or `[[table]]`) above it plus the key
    /// written on its line.
    fn key_at(&self, offset: usize) -> Option<String> {
        let before = self.text.get(..offset)?;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line_end = self
            .text
            .get(offset..)
            .and_then(|rest| rest.find('\n'))
            .map_or(self.text.len(), |i| offset + i);
        let line = self.text.get(line_start..line_end)?.trim();
        let table = before
            .get(..line_start)?
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| l.starts_with('['))
            .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_owned());
        if line.starts_with('[') {
            return Some(
                line.trim_matches(|c| c == '[' || c == ']')
                    .trim()
                    .to_owned(),
            );
        }
        let key = line.split_once('=').map(|(k, _)| k.trim().to_owned())?;
        Some(match table {
            Some(t) => format!("{t}.{key}"),
            None => key,
        })
    }

    fn error(
        &self,
        span: Option<Range<usize>>,
        key: &str,
        message: impl Into<String>,
    ) -> ConfigError {
        let known = span.filter(|s| !(s.start == 0 && s.end == 0));
        ConfigError {
            file: self.file.to_owned(),
            line: known.as_ref().map(|s| self.line_of(s.start)),
            key: Some(key.to_owned()),
            message: message.into(),
        }
    }

    fn parse_error(&self, e: &toml::de::Error) -> ConfigError {
        let span = e.span();
        let mut message = e.message().trim().to_owned();
        let key = span.as_ref().and_then(|s| self.key_at(s.start));
        // serde says "unknown field `x`, expected ..." without the table; the key names it.
        if message.starts_with("missing field") {
            if let Some(table) = span.as_ref().and_then(|s| self.key_at(s.start)) {
                message = format!("{message} in [{}]", table.split('.').next().unwrap_or(""));
            }
        }
        ConfigError {
            file: self.file.to_owned(),
            line: span.as_ref().map(|s| self.line_of(s.start)),
            key,
            message,
        }
    }
}

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
    let text = value.get_ref();
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    text.to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| {
            src.error(
                Some(value.span()),
                key,
                format!("{text:?} is not HOST:PORT (e.g. \"203.0.113.2:51820\")"),
            )
        })
}

/// Reads and checks a config file; every problem is a [`ConfigError`].
pub fn load(path: &Path) -> Result<TunnelSettings, ConfigError> {
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
    if epoch_secs == 0 {
        return Err(src.error(
            Some(keymix.epoch_secs.span()),
            "keymix.epoch_secs",
            "must be at least 1",
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
    let qkd_client = match (&qkd, policy) {
        (_, QkdPolicy::Off) => None,
        (Some(q), _) => Some(qkd_client(&src, q)?),
        (None, _) => {
            return Err(src.error(
                keymix.qkd.as_ref().map(Spanned::span),
                "keymix.qkd",
                format!("qkd = \"{policy}\" needs a [qkd] table (kme_url, sae_id, ca_file, cert_file, key_file)"),
            ))
        }
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
        let mut keymix_config = PeerConfig::new(public_key);
        keymix_config.epoch = Duration::from_secs(epoch_secs);
        keymix_config.reject_after = Duration::from_secs(reject_after_secs);
        keymix_config.qkd = policy;
        keymix_config.bootstrap_psk = bootstrap_psk.clone();
        keymix_config.kme_timeout = Duration::from_secs(kme_timeout) + KME_TIMEOUT_MARGIN;
        keymix_config.peer_sae_id = match &peer.sae_id {
            Some(id) if id.get_ref().trim().is_empty() => {
                return Err(src.error(Some(id.span()), "peer.sae_id", "must not be empty"))
            }
            Some(id) => Some(id.get_ref().clone()),
            None if policy != QkdPolicy::Off => {
                return Err(src.error(
                    Some(peer.public_key.span()),
                    "peer.sae_id",
                    format!("missing: qkd = \"{policy}\" needs the peer's SAE ID at its KME"),
                ))
            }
            None => None,
        };
        peer_settings.push(PeerSettings {
            endpoint,
            allowed_ips: peer.allowed_ips.into_iter().map(|a| a.0 .0).collect(),
            // 0 means off, as in wg.
            persistent_keepalive: peer.persistent_keepalive.filter(|k| *k > 0),
            keymix: keymix_config,
        });
    }

    Ok(TunnelSettings {
        name,
        private_key,
        listen_port: interface.listen_port,
        addresses: interface.address.into_iter().map(|a| a.0).collect(),
        mtu,
        peers: peer_settings,
        local_sae_id: qkd.map(|q| q.sae_id.into_inner()),
        qkd_source: qkd_client,
        keylog_file,
        control_dir: PathBuf::from(CONTROL_DIR),
        state_dir: None,
    })
}

/// Checks the `[qkd]` table and builds the ETSI 014 client (loads the TLS files; no
/// network I/O, so an unreachable KME is a runtime state, not a config error).
fn qkd_client(src: &Source, q: &QkdSection) -> Result<Arc<dyn QkdKeySource>, ConfigError> {
    if q.sae_id.get_ref().trim().is_empty() {
        return Err(src.error(Some(q.sae_id.span()), "qkd.sae_id", "must not be empty"));
    }
    let timeout = match &q.timeout_secs {
        None => DEFAULT_KME_TIMEOUT_SECS,
        Some(t) if (1..=300).contains(t.get_ref()) => *t.get_ref(),
        Some(t) => {
            return Err(src.error(
                Some(t.span()),
                "qkd.timeout_secs",
                "must be between 1 and 300",
            ))
        }
    };
    let files = [
        (&q.ca_file, "qkd.ca_file"),
        (&q.cert_file, "qkd.cert_file"),
        (&q.key_file, "qkd.key_file"),
    ]
    .map(|(p, key)| (src.resolve(p.get_ref()), p.span(), key));
    let [(ca_file, ..), (cert_file, ..), (key_file, ..)] = files.clone();
    let config = Etsi014ClientConfig {
        kme_url: q.kme_url.get_ref().clone(),
        ca_file,
        cert_file,
        key_file,
        timeout: Duration::from_secs(timeout),
    };
    match Etsi014Client::new(&config) {
        Ok(client) => Ok(Arc::new(client)),
        Err(ClientSetupError::Url(e)) => Err(src.error(Some(q.kme_url.span()), "qkd.kme_url", e)),
        Err(ClientSetupError::Tls(e)) => {
            // Name the key of the file the TLS error is about; a bad pair (key does not
            // match the certificate) is reported at cert_file.
            let about = match &e {
                TlsSetupError::Io { path, .. }
                | TlsSetupError::TooLarge { path }
                | TlsSetupError::Pem { path, .. } => files.iter().find(|(p, ..)| p == path),
                TlsSetupError::Rustls(_) => None,
            };
            let (span, key) = about.map_or((q.cert_file.span(), "qkd.cert_file"), |(_, s, k)| {
                (s.clone(), *k)
            });
            Err(src.error(Some(span), key, e.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        path
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("trident-config-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        dir
    }

    const KEY: &str = "YE1pzMgAo3J5DClDVMaZv0l7hLjxjpnG2aHDBCeVjXc=";
    const PEER: &str = "ISVz4o732eUIYv8xk2Kao9J8Jj25aHR3T4H6aLt5h34=";

    fn good(dir: &Path) -> String {
        let key = write(dir, "a.key", KEY);
        format!(
            "[interface]\nname = \"trA\"\nprivate_key_file = \"{}\"\nlisten_port = 51820\naddress = [\"10.99.0.1/24\"]\n\n[[peer]]\npublic_key = \"{PEER}\"\nendpoint = \"203.0.113.2:51820\"\nallowed_ips = [\"10.99.0.2/32\", \"192.168.20.0/24\"]\npersistent_keepalive = 25\n",
            key.display()
        )
    }

    #[test]
    fn good_config_has_defaults() {
        let dir = temp_dir("good");
        let path = write(&dir, "a.toml", &good(&dir));
        let settings = load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(settings.mtu, DEFAULT_MTU);
        assert_eq!(settings.peers.len(), 1);
        let peer = &settings.peers[0];
        assert_eq!(peer.keymix.epoch, Duration::from_secs(120));
        assert_eq!(peer.keymix.reject_after, Duration::from_secs(180));
        assert_eq!(peer.allowed_ips.len(), 2);
        assert_eq!(peer.persistent_keepalive, Some(25));
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let dir = temp_dir("unknown");
        let text = good(&dir).replace("listen_port = 51820\n", "listen_port = 51820\ncolour = 1\n");
        let path = write(&dir, "a.toml", &text);
        let e = load(&path).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            e.contains("line 5") && e.contains("interface.colour"),
            "{e}"
        );
    }

    #[test]
    fn bad_value_names_key_and_line() {
        let dir = temp_dir("bad");
        let text = good(&dir).replace("192.168.20.0/24", "192.168.20.0/40");
        let path = write(&dir, "a.toml", &text);
        let e = load(&path).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            e.contains("line 10") && e.contains("peer.allowed_ips"),
            "{e}"
        );
    }

    #[test]
    fn qkd_policy_without_qkd_table_is_an_error() {
        let dir = temp_dir("qkd-missing");
        let text = good(&dir).replace("[[peer]]", "[keymix]\nqkd = \"required\"\n\n[[peer]]");
        let path = write(&dir, "a.toml", &text);
        let e = load(&path).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            e.contains("keymix.qkd") && e.contains("[qkd]") && e.contains("line 8"),
            "{e}"
        );
    }

    /// A `[qkd]` table with the files `kme-sim init` writes, referenced relative to the
    /// config's directory.
    fn with_qkd(dir: &Path, peer_sae: Option<&str>) -> String {
        let sim_dir = dir.join("kme");
        if !sim_dir.join("kme-a.toml").exists() {
            keymix::etsi014::sim::init(
                &sim_dir,
                "SAE_A",
                "SAE_B",
                keymix::etsi014::sim::DEFAULT_LISTEN_A,
                keymix::etsi014::sim::DEFAULT_LISTEN_B,
                keymix::etsi014::sim::DEFAULT_LINK_A,
                keymix::etsi014::sim::DEFAULT_LINK_B,
            )
            .unwrap_or_else(|e| panic!("{e}"));
        }
        let peer_line = peer_sae.map_or(String::new(), |s| format!("sae_id = \"{s}\"\n"));
        format!(
            "{}{peer_line}\n[qkd]\nkme_url = \"https://127.0.0.1:8443\"\nsae_id = \"SAE_A\"\nca_file = \"kme/ca.pem\"\ncert_file = \"kme/SAE_A.pem\"\nkey_file = \"kme/SAE_A.key\"\n",
            good(dir)
        )
    }

    #[test]
    fn qkd_table_defaults_to_preferred_with_relative_paths() {
        let dir = temp_dir("qkd-good");
        let path = write(&dir, "a.toml", &with_qkd(&dir, Some("SAE_B")));
        let settings = load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(settings.qkd_source.is_some());
        assert_eq!(settings.local_sae_id.as_deref(), Some("SAE_A"));
        let peer = &settings.peers[0];
        assert_eq!(peer.keymix.qkd, QkdPolicy::Preferred);
        assert_eq!(peer.keymix.peer_sae_id.as_deref(), Some("SAE_B"));
    }

    #[test]
    fn qkd_peer_without_sae_id_and_bad_files_are_errors() {
        let dir = temp_dir("qkd-bad");
        let path = write(&dir, "a.toml", &with_qkd(&dir, None));
        let e = load(&path).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("peer.sae_id"), "{e}");
        let text = with_qkd(&dir, Some("SAE_B")).replace("kme/SAE_A.key", "kme/nope.key");
        let path = write(&dir, "a.toml", &text);
        let e = load(&path).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("qkd.key_file") && e.contains("nope.key"), "{e}");
    }
}
