//! The `[qkd]` table: how this site reaches its QKD key source, checked and turned into a
//! client at load time. `protocol = "etsi014"` (the default) is an ETSI GS QKD 014 KME;
//! `protocol = "skip"` a SKIP Key Provider (config/qkd_skip.rs).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use keymix::qkd::QkdKeySource;
use keymix::QkdPolicy;
use qkd::{ClientSetupError, Etsi014Client, Etsi014ClientConfig, TlsSetupError};
use serde::Deserialize;
use toml::Spanned;

use super::file::PeerSection;
use super::qkd_skip::{skip_client, KpCheck};
use super::source::Source;
use super::{ConfigError, DEFAULT_KME_TIMEOUT_SECS};

/// How this site reaches its key source. Which keys apply depends on `protocol`; a key of
/// the other protocol is an error naming the one to use instead.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct QkdSection {
    /// "etsi014" (default) or "skip".
    pub(super) protocol: Option<Spanned<String>>,
    /// ETSI 014: `https://host:port` of the site's KME (optionally with a path prefix).
    pub(super) kme_url: Option<Spanned<String>>,
    /// ETSI 014: this site's SAE ID at its KME.
    pub(super) sae_id: Option<Spanned<String>>,
    /// The only CA trusted for the KME's (KP's) server certificate.
    pub(super) ca_file: Option<Spanned<PathBuf>>,
    /// The client certificate and key (PEM); optional with SKIP.
    pub(super) cert_file: Option<Spanned<PathBuf>>,
    pub(super) key_file: Option<Spanned<PathBuf>>,
    /// SKIP: `https://host:port` of the site's Key Provider.
    pub(super) kp_url: Option<Spanned<String>>,
    /// SKIP: the site's KP's system ID (its capabilities' localSystemID).
    pub(super) local_system_id: Option<Spanned<String>>,
    /// SKIP: "certificate" (default) or "psk".
    pub(super) tls: Option<Spanned<String>>,
    /// SKIP PSK mode: "1.3" (default) or "1.2" (DHE-PSK).
    pub(super) tls_version: Option<Spanned<String>>,
    /// SKIP PSK mode: the files with the PSK identity and the PSK (hex), mode 0600.
    pub(super) psk_identity_file: Option<Spanned<PathBuf>>,
    pub(super) psk_file: Option<Spanned<PathBuf>>,
    /// Bound of one call in seconds (default 5).
    pub(super) timeout_secs: Option<Spanned<u64>>,
}

/// The key-delivery protocol of a `[qkd]` table.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Protocol {
    Etsi014,
    Skip,
}

/// What a `[qkd]` table becomes.
pub(super) struct QkdSetup {
    pub(super) protocol: Protocol,
    pub(super) source: Arc<dyn QkdKeySource>,
    /// The SAE ID (ETSI 014) or local system ID (SKIP) keymix names itself by.
    pub(super) local_id: String,
    /// SKIP: the capabilities check `check` and `up` run before starting.
    pub(super) kp_check: Option<KpCheck>,
}

impl QkdSection {
    pub(super) fn protocol(&self, src: &Source) -> Result<Protocol, ConfigError> {
        match self
            .protocol
            .as_ref()
            .map(|p| (p.get_ref().as_str(), p.span()))
        {
            None | Some(("etsi014", _)) => Ok(Protocol::Etsi014),
            Some(("skip", _)) => Ok(Protocol::Skip),
            Some((other, span)) => Err(src.error(
                Some(span),
                "qkd.protocol",
                format!("{other:?} is not a protocol: \"etsi014\" or \"skip\""),
            )),
        }
    }
}

/// A required key of the table.
pub(super) fn required<'a, T>(
    src: &Source,
    q: &QkdSection,
    value: &'a Option<Spanned<T>>,
    key: &str,
    why: &str,
) -> Result<&'a Spanned<T>, ConfigError> {
    value.as_ref().ok_or_else(|| {
        src.error(
            q.protocol.as_ref().map(Spanned::span),
            key,
            format!("missing in [qkd]: {why}"),
        )
    })
}

/// A key that belongs to the other protocol.
pub(super) fn refuse<T>(
    src: &Source,
    value: &Option<Spanned<T>>,
    key: &str,
    instead: &str,
) -> Result<(), ConfigError> {
    match value {
        Some(v) => Err(src.error(Some(v.span()), key, instead)),
        None => Ok(()),
    }
}

/// The bound of one call; keymix waits a little longer (config.rs).
pub(super) fn timeout_secs(src: &Source, q: &QkdSection) -> Result<u64, ConfigError> {
    match &q.timeout_secs {
        None => Ok(DEFAULT_KME_TIMEOUT_SECS),
        Some(t) if (1..=300).contains(t.get_ref()) => Ok(*t.get_ref()),
        Some(t) => Err(src.error(
            Some(t.span()),
            "qkd.timeout_secs",
            "must be between 1 and 300",
        )),
    }
}

/// Checks the `[qkd]` table and builds its client (loads the TLS files; no network I/O,
/// so an unreachable KME is a runtime state, not a config error). `peers` are the peers'
/// remote IDs with their spans, for SKIP's capabilities check.
pub(super) fn qkd_client(
    src: &Source,
    q: &QkdSection,
    peers: &[(String, Option<std::ops::Range<usize>>)],
) -> Result<QkdSetup, ConfigError> {
    match q.protocol(src)? {
        Protocol::Etsi014 => etsi014_client(src, q),
        Protocol::Skip => skip_client(src, q, peers),
    }
}

fn etsi014_client(src: &Source, q: &QkdSection) -> Result<QkdSetup, ConfigError> {
    let skip_key = "is a SKIP key; with ETSI 014 (the default protocol) use kme_url, sae_id, \
                    ca_file, cert_file, key_file, or set protocol = \"skip\"";
    refuse(src, &q.kp_url, "qkd.kp_url", skip_key)?;
    refuse(src, &q.local_system_id, "qkd.local_system_id", skip_key)?;
    refuse(src, &q.tls, "qkd.tls", skip_key)?;
    refuse(src, &q.tls_version, "qkd.tls_version", skip_key)?;
    refuse(src, &q.psk_identity_file, "qkd.psk_identity_file", skip_key)?;
    refuse(src, &q.psk_file, "qkd.psk_file", skip_key)?;
    let why = "ETSI 014 needs kme_url, sae_id, ca_file, cert_file and key_file";
    let kme_url = required(src, q, &q.kme_url, "qkd.kme_url", why)?;
    let sae_id = required(src, q, &q.sae_id, "qkd.sae_id", why)?;
    let ca = required(src, q, &q.ca_file, "qkd.ca_file", why)?;
    let cert = required(src, q, &q.cert_file, "qkd.cert_file", why)?;
    let key = required(src, q, &q.key_file, "qkd.key_file", why)?;
    if sae_id.get_ref().trim().is_empty() {
        return Err(src.error(Some(sae_id.span()), "qkd.sae_id", "must not be empty"));
    }
    let timeout = timeout_secs(src, q)?;
    let files = [
        (ca, "qkd.ca_file"),
        (cert, "qkd.cert_file"),
        (key, "qkd.key_file"),
    ]
    .map(|(p, key)| (src.resolve(p.get_ref()), p.span(), key));
    super::files::check_tls_files(src, &files)?;
    let [(ca_file, ..), (cert_file, ..), (key_file, ..)] = files.clone();
    let config = Etsi014ClientConfig {
        kme_url: kme_url.get_ref().clone(),
        ca_file,
        cert_file,
        key_file,
        timeout: Duration::from_secs(timeout),
    };
    match Etsi014Client::new(&config) {
        Ok(client) => Ok(QkdSetup {
            protocol: Protocol::Etsi014,
            source: Arc::new(client),
            local_id: sae_id.get_ref().clone(),
            kp_check: None,
        }),
        Err(ClientSetupError::Url(e)) => Err(src.error(Some(kme_url.span()), "qkd.kme_url", e)),
        Err(ClientSetupError::Tls(e)) => Err(tls_error(src, e, &files, cert.span())),
    }
}

/// A TLS file error at the key of the file it is about; a bad pair (key does not match the
/// certificate) is reported at the certificate.
pub(super) fn tls_error(
    src: &Source,
    e: TlsSetupError,
    files: &[(PathBuf, std::ops::Range<usize>, &str)],
    cert_span: std::ops::Range<usize>,
) -> ConfigError {
    let about = match &e {
        TlsSetupError::Io { path, .. }
        | TlsSetupError::TooLarge { path }
        | TlsSetupError::Pem { path, .. } => files.iter().find(|(p, ..)| p == path),
        TlsSetupError::Rustls(_) => None,
    };
    let (span, key) = about.map_or((cert_span, "qkd.cert_file"), |(_, s, k)| (s.clone(), *k));
    // The whole chain: the OS error is the source of TlsSetupError::Io.
    src.error(Some(span), key, format!("{:#}", anyhow::Error::from(e)))
}

/// The peer's ID at its key source: `sae_id` (ETSI 014) or `remote_system_id` (SKIP),
/// required while QKD is on for a keymix peer; the other protocol's key is an error.
pub(super) fn peer_qkd_id(
    src: &Source,
    protocol: Option<Protocol>,
    policy: QkdPolicy,
    classic: bool,
    peer: &PeerSection,
) -> Result<Option<String>, ConfigError> {
    let (own, own_key, other, other_key, hint) = match protocol {
        Some(Protocol::Skip) => (
            &peer.remote_system_id,
            "peer.remote_system_id",
            &peer.sae_id,
            "peer.sae_id",
            "is an ETSI 014 key; with protocol = \"skip\" give the peer's KP's remote_system_id",
        ),
        _ => (
            &peer.sae_id,
            "peer.sae_id",
            &peer.remote_system_id,
            "peer.remote_system_id",
            "is a SKIP key; it needs [qkd] protocol = \"skip\" (ETSI 014 uses sae_id)",
        ),
    };
    refuse(src, other, other_key, hint)?;
    match own {
        Some(id) if id.get_ref().trim().is_empty() => {
            Err(src.error(Some(id.span()), own_key, "must not be empty"))
        }
        Some(id) => Ok(Some(id.get_ref().clone())),
        None if policy != QkdPolicy::Off && !classic => {
            let what = match protocol {
                Some(Protocol::Skip) => "the system ID of the peer's Key Provider",
                _ => "the peer's SAE ID at its KME",
            };
            Err(src.error(
                Some(peer.public_key.span()),
                own_key,
                format!("missing: qkd = \"{policy}\" needs {what}"),
            ))
        }
        None => Ok(None),
    }
}
