//! The `[qkd]` table: how this site reaches its KME, checked and turned into an ETSI 014
//! client at load time.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use keymix::qkd::QkdKeySource;
use qkd::{ClientSetupError, Etsi014Client, Etsi014ClientConfig, TlsSetupError};
use serde::Deserialize;
use toml::Spanned;

use super::source::Source;
use super::{ConfigError, DEFAULT_KME_TIMEOUT_SECS};

/// How this site reaches its KME (ETSI GS QKD 014 over HTTPS with mutual TLS).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct QkdSection {
    /// `https://host:port` of the site's KME (optionally with a path prefix).
    pub(super) kme_url: Spanned<String>,
    /// This site's SAE ID at its KME.
    pub(super) sae_id: Spanned<String>,
    /// The only CA trusted for the KME's server certificate.
    pub(super) ca_file: Spanned<PathBuf>,
    /// This SAE's client certificate and key (PEM).
    pub(super) cert_file: Spanned<PathBuf>,
    pub(super) key_file: Spanned<PathBuf>,
    /// Bound of one KME call in seconds (default 5).
    pub(super) timeout_secs: Option<Spanned<u64>>,
}

/// Checks the `[qkd]` table and builds the ETSI 014 client (loads the TLS files; no
/// network I/O, so an unreachable KME is a runtime state, not a config error).
pub(super) fn qkd_client(
    src: &Source,
    q: &QkdSection,
) -> Result<Arc<dyn QkdKeySource>, ConfigError> {
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
            // The whole chain: the OS error is the source of TlsSetupError::Io.
            Err(src.error(Some(span), key, format!("{:#}", anyhow::Error::from(e))))
        }
    }
}
