//! `[qkd] protocol = "skip"`: a SKIP Key Provider (draft-cisco-skip-02). Certificate mode
//! (`tls = "certificate"`: `ca_file`, optional `cert_file` + `key_file`) or PSK mode
//! (`tls = "psk"`: `psk_identity_file`, `psk_file` in hex, `tls_version` "1.3" or "1.2"),
//! the PSK files read under the file policy of config/files.rs (owned by root or us, not
//! readable by others, bounded).
//!
//! The capabilities check ([`KpCheck`]) needs the network, so `load` only prepares it;
//! `trident check` and `trident up` run it: a KP that reports another localSystemID, serves
//! no keys, or does not list a peer's `remote_system_id` is a config error (exit 2); a KP
//! that cannot be reached is a warning, since the QKD policy decides what an outage means.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use qkd::skip::{
    PskMaterial, PskTlsVersion, SkipClient, SkipClientConfig, SkipSetupError, SkipTls,
};
use toml::Spanned;

use super::qkd::{refuse, required, timeout_secs, tls_error, Protocol, QkdSection, QkdSetup};
use super::source::Source;
use super::ConfigError;

/// PSK identity and PSK files are a line each; anything larger is not one.
const MAX_PSK_FILE: usize = 4096;

/// The start-up capabilities check of a SKIP key source.
pub struct KpCheck {
    client: Arc<SkipClient>,
    file: PathBuf,
    url: String,
    local_line: Option<usize>,
    /// Each peer's remote system ID and the line it is on.
    peers: Vec<(String, Option<usize>)>,
}

impl KpCheck {
    /// Asks the KP for its capabilities. Ok with warnings (the KP could not be asked), or
    /// the config error of the first mismatch.
    pub async fn run(&self) -> Result<Vec<String>, ConfigError> {
        let caps = match self.client.capabilities().await {
            Ok(caps) => caps,
            Err(e) => {
                return Ok(vec![format!(
                    "cannot check the SKIP Key Provider's capabilities at {}: {e}; \
                     QKD keys will fail until it answers",
                    self.url
                )])
            }
        };
        let error = |line, key: &str, message: String| ConfigError {
            file: self.file.clone(),
            line,
            key: Some(key.to_owned()),
            message,
        };
        self.client
            .check_local(&caps)
            .map_err(|m| error(self.local_line, "qkd.local_system_id", m))?;
        for (id, line) in &self.peers {
            if !caps.lists_remote(id) {
                let listed: Vec<String> = caps
                    .remoteSystemID
                    .iter()
                    .take(8)
                    .map(|r| format!("{:?}", r.chars().take(64).collect::<String>()))
                    .collect();
                return Err(error(
                    *line,
                    "peer.remote_system_id",
                    format!(
                        "the Key Provider {:?} does not share keys with {id:?} (its \
                         capabilities list remoteSystemID [{}])",
                        self.client.local_system_id(),
                        listed.join(", ")
                    ),
                ));
            }
        }
        Ok(Vec::new())
    }
}

fn one_of<'a>(
    src: &Source,
    value: &'a Option<Spanned<String>>,
    key: &str,
    choices: &[&'a str],
) -> Result<Option<&'a str>, ConfigError> {
    match value {
        None => Ok(None),
        Some(v) if choices.contains(&v.get_ref().as_str()) => Ok(Some(v.get_ref().as_str())),
        Some(v) => Err(src.error(
            Some(v.span()),
            key,
            format!("{:?} is not one of {choices:?}", v.get_ref()),
        )),
    }
}

/// A secret file under the file policy (config/files.rs), at most 4 KiB.
fn read_secret(
    src: &Source,
    path: &Spanned<PathBuf>,
    key: &str,
) -> Result<zeroize::Zeroizing<Vec<u8>>, ConfigError> {
    super::files::read_secret(src, path, key, MAX_PSK_FILE)
}

fn psk_material(
    src: &Source,
    q: &QkdSection,
    why: &str,
) -> Result<(PskMaterial, PskTlsVersion), ConfigError> {
    let id_file = required(src, q, &q.psk_identity_file, "qkd.psk_identity_file", why)?;
    let psk_file = required(src, q, &q.psk_file, "qkd.psk_file", why)?;
    let version = match one_of(src, &q.tls_version, "qkd.tls_version", &["1.3", "1.2"])? {
        Some("1.2") => PskTlsVersion::Tls12,
        _ => PskTlsVersion::Tls13,
    };
    let identity = read_secret(src, id_file, "qkd.psk_identity_file")?;
    let key = read_secret(src, psk_file, "qkd.psk_file")?;
    let material = PskMaterial::from_files(&identity, &key)
        .map_err(|m| src.error(Some(psk_file.span()), "qkd.psk_file", m))?;
    Ok((material, version))
}

/// Checks a SKIP `[qkd]` table and builds the client (reads the TLS or PSK files; no
/// network I/O).
pub(super) fn skip_client(
    src: &Source,
    q: &QkdSection,
    peers: &[(String, Option<Range<usize>>)],
) -> Result<QkdSetup, ConfigError> {
    let etsi_key = "is an ETSI 014 key; with protocol = \"skip\" use kp_url and local_system_id";
    refuse(src, &q.kme_url, "qkd.kme_url", etsi_key)?;
    refuse(src, &q.sae_id, "qkd.sae_id", etsi_key)?;
    let why = "SKIP needs kp_url, local_system_id, and ca_file (tls = \"certificate\") or \
               psk_identity_file and psk_file (tls = \"psk\")";
    let kp_url = required(src, q, &q.kp_url, "qkd.kp_url", why)?;
    let local = required(src, q, &q.local_system_id, "qkd.local_system_id", why)?;
    if local.get_ref().trim().is_empty() {
        return Err(src.error(
            Some(local.span()),
            "qkd.local_system_id",
            "must not be empty",
        ));
    }
    let timeout = timeout_secs(src, q)?;
    let mut files = Vec::new();
    let tls = match one_of(src, &q.tls, "qkd.tls", &["certificate", "psk"])? {
        Some("psk") => {
            let not_here =
                "is for tls = \"certificate\"; PSK mode uses psk_identity_file and psk_file";
            refuse(src, &q.ca_file, "qkd.ca_file", not_here)?;
            refuse(src, &q.cert_file, "qkd.cert_file", not_here)?;
            refuse(src, &q.key_file, "qkd.key_file", not_here)?;
            let (material, version) = psk_material(src, q, why)?;
            SkipTls::Psk { material, version }
        }
        _ => {
            let not_here = "is for tls = \"psk\"";
            refuse(src, &q.psk_identity_file, "qkd.psk_identity_file", not_here)?;
            refuse(src, &q.psk_file, "qkd.psk_file", not_here)?;
            refuse(
                src,
                &q.tls_version,
                "qkd.tls_version",
                "is for tls = \"psk\" (certificate mode is TLS 1.3)",
            )?;
            let ca = required(src, q, &q.ca_file, "qkd.ca_file", why)?;
            files.push((src.resolve(ca.get_ref()), ca.span(), "qkd.ca_file"));
            let identity = match (&q.cert_file, &q.key_file) {
                (Some(c), Some(k)) => {
                    files.push((src.resolve(c.get_ref()), c.span(), "qkd.cert_file"));
                    files.push((src.resolve(k.get_ref()), k.span(), "qkd.key_file"));
                    Some((src.resolve(c.get_ref()), src.resolve(k.get_ref())))
                }
                (None, None) => None,
                (Some(c), None) => {
                    return Err(src.error(
                        Some(c.span()),
                        "qkd.key_file",
                        "missing: cert_file needs key_file",
                    ))
                }
                (None, Some(k)) => {
                    return Err(src.error(
                        Some(k.span()),
                        "qkd.cert_file",
                        "missing: key_file needs cert_file",
                    ))
                }
            };
            SkipTls::Certificate {
                ca_file: src.resolve(ca.get_ref()),
                identity,
            }
        }
    };
    super::files::check_tls_files(src, &files)?;
    let config = SkipClientConfig {
        kp_url: kp_url.get_ref().clone(),
        local_system_id: local.get_ref().clone(),
        tls,
        timeout: Duration::from_secs(timeout),
    };
    let cert_span = q
        .cert_file
        .as_ref()
        .or(q.ca_file.as_ref())
        .map_or(0..0, Spanned::span);
    let client = match SkipClient::new(config) {
        Ok(client) => Arc::new(client),
        Err(SkipSetupError::Url(e)) => return Err(src.error(Some(kp_url.span()), "qkd.kp_url", e)),
        Err(SkipSetupError::Tls(e)) => return Err(tls_error(src, e, &files, cert_span)),
        Err(SkipSetupError::Psk(e)) => {
            return Err(src.error(q.psk_file.as_ref().map(Spanned::span), "qkd.psk_file", e))
        }
    };
    let line = |span: &Option<Range<usize>>| span.as_ref().map(|s| src.line_at(s.start));
    let kp_check = KpCheck {
        client: client.clone(),
        file: src.file.to_owned(),
        url: kp_url.get_ref().clone(),
        local_line: line(&Some(local.span())),
        peers: peers
            .iter()
            .map(|(id, span)| (id.clone(), line(span)))
            .collect(),
    };
    Ok(QkdSetup {
        protocol: Protocol::Skip,
        source: client,
        local_id: local.get_ref().clone(),
        kp_check: Some(kp_check),
    })
}

#[cfg(test)]
#[path = "qkd_skip_tests.rs"]
mod tests;
