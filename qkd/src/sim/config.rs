//! One simulated KME's configuration file (TOML), as written by `init` and read by `run`.
//!
//! Relative paths are relative to the file's own directory, so a setup directory can be
//! moved as a whole.

use std::io::Read as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::SimError;

/// A config file is a few hundred bytes; refuse to parse anything unreasonably large.
const MAX_CONFIG_FILE: u64 = 64 * 1024;
/// Bounds every key container we serve well under the client's 1 MiB body limit.
const MAX_KEY_BYTES_PER_REQUEST: u64 = 512 * 1024;
/// IDs appear in URLs, file names and logs.
const MAX_ID_LEN: usize = 64;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KmeConfig {
    /// This KME's ID (`source_KME_ID` in Status).
    pub kme_id: String,
    /// The SAE this KME serves; it must present a client certificate with this CN.
    pub sae_id: String,
    /// The peer KME's ID; its link certificate must carry this CN.
    pub peer_kme_id: String,
    /// The SAE served by the peer KME: the only slave (and master) we share keys with.
    pub peer_sae_id: String,
    /// HTTPS address of the ETSI 014 API for the SAE.
    pub listen: SocketAddr,
    /// Address where the peer KME pushes keys to us.
    pub link_listen: SocketAddr,
    /// Address of the peer KME's link listener.
    pub peer_link: SocketAddr,
    /// CA of the SAE API: SAE client certificates and KME server certificates.
    pub ca_file: PathBuf,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// CA of the KME-to-KME link, distinct from `ca_file` so that no SAE certificate can
    /// ever authenticate on the link.
    pub link_ca_file: PathBuf,
    pub link_cert_file: PathBuf,
    pub link_key_file: PathBuf,
    /// Default key size in bits (Status `key_size`); also the unit of `stored_key_count`.
    pub key_size: u32,
    pub min_key_size: u32,
    pub max_key_size: u32,
    pub max_key_per_request: u32,
    /// Pool capacity in keys of `key_size` bits.
    pub max_key_count: u64,
    /// Keys in the pool at start-up; the pool starts full when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_key_count: Option<u64>,
    /// Secret key rate in bit/s (before the QBER penalty, when `qber` is set).
    /// Re-read at run time.
    pub key_rate_bps: f64,
    /// Quantum bit error rate in [0, 0.5]; the rate is scaled by 1 - 2 h(qber).
    /// Re-read at run time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qber: Option<f64>,
    /// Seconds a pushed key waits at the slave's KME before it is dropped unfetched;
    /// [`DEFAULT_KEY_TTL_SECS`] when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_ttl_secs: Option<u64>,
    /// SKIP in certificate mode (TLS 1.3 with `cert_file`): where this KP listens. Its
    /// localSystemID is `kme_id`, its remoteSystemID `peer_kme_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_listen: Option<SocketAddr>,
    /// Whether SKIP's certificate mode demands a client certificate (default true; false
    /// lets an encryptor without one in, as some KPs do).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_require_client_cert: Option<bool>,
    /// SKIP in PSK mode (TLS 1.3 external PSK or TLS 1.2 DHE-PSK): where this KP listens,
    /// and the files with the PSK identity (text) and the PSK (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_psk_listen: Option<SocketAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_psk_identity_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_psk_file: Option<PathBuf>,
}

/// Long enough for any slave that is alive (it asks within a round trip of its master),
/// short enough that a dead slave's keys do not fill the store for good.
pub const DEFAULT_KEY_TTL_SECS: u64 = 300;
/// A day: beyond that, a waiting key is not waiting for a live slave.
const MAX_KEY_TTL_SECS: u64 = 86_400;

impl KmeConfig {
    /// Read, parse and check `path`; relative paths inside are resolved against its directory.
    pub fn load(path: &Path) -> Result<Self, SimError> {
        let file = std::fs::File::open(path).map_err(|e| SimError::io(path, e))?;
        let mut text = String::new();
        file.take(MAX_CONFIG_FILE + 1)
            .read_to_string(&mut text)
            .map_err(|e| SimError::io(path, e))?;
        if text.len() as u64 > MAX_CONFIG_FILE {
            return Err(config_err(
                path,
                format!("larger than {MAX_CONFIG_FILE} bytes"),
            ));
        }
        let mut config: Self =
            toml::from_str(&text).map_err(|e| config_err(path, e.to_string()))?;
        config
            .validate()
            .map_err(|reason| config_err(path, reason))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [
            &mut config.ca_file,
            &mut config.cert_file,
            &mut config.key_file,
            &mut config.link_ca_file,
            &mut config.link_cert_file,
            &mut config.link_key_file,
        ] {
            *p = base.join(&*p);
        }
        for p in [
            &mut config.skip_psk_identity_file,
            &mut config.skip_psk_file,
        ]
        .into_iter()
        .flatten()
        {
            *p = base.join(&*p);
        }
        Ok(config)
    }

    /// Write as TOML (paths as they are in `self`, so a loaded config is saved with absolute
    /// paths). The file is replaced atomically: a running KME polls it and must never read
    /// half of it.
    pub fn save(&self, path: &Path) -> Result<(), SimError> {
        let text = toml::to_string_pretty(self).map_err(|e| config_err(path, e.to_string()))?;
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        std::fs::write(&tmp, text).map_err(|e| SimError::io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| SimError::io(path, e))
    }

    /// Check the values that the code relies on; the message names the offending field.
    pub fn validate(&self) -> Result<(), String> {
        for (name, id) in [
            ("kme_id", &self.kme_id),
            ("sae_id", &self.sae_id),
            ("peer_kme_id", &self.peer_kme_id),
            ("peer_sae_id", &self.peer_sae_id),
        ] {
            check_id(id).map_err(|e| format!("{name}: {e}"))?;
        }
        if self.sae_id == self.peer_sae_id || self.kme_id == self.peer_kme_id {
            return Err("own and peer IDs must differ".into());
        }
        if self.min_key_size == 0
            || !self.min_key_size.is_multiple_of(8)
            || !self.max_key_size.is_multiple_of(8)
            || !self.key_size.is_multiple_of(8)
        {
            return Err("key sizes must be positive multiples of 8".into());
        }
        if !(self.min_key_size <= self.key_size && self.key_size <= self.max_key_size) {
            return Err("need min_key_size <= key_size <= max_key_size".into());
        }
        if self.max_key_per_request == 0
            || u64::from(self.max_key_per_request) * u64::from(self.max_key_size) / 8
                > MAX_KEY_BYTES_PER_REQUEST
        {
            return Err(format!(
                "max_key_per_request * max_key_size must be between 1 and {} bits",
                MAX_KEY_BYTES_PER_REQUEST * 8
            ));
        }
        if self.max_key_count == 0 || self.max_key_count > 100_000_000 {
            return Err("max_key_count must be in 1..=100000000".into());
        }
        if self
            .initial_key_count
            .is_some_and(|n| n > self.max_key_count)
        {
            return Err("initial_key_count exceeds max_key_count".into());
        }
        if self
            .key_ttl_secs
            .is_some_and(|t| t == 0 || t > MAX_KEY_TTL_SECS)
        {
            return Err(format!("key_ttl_secs must be in 1..={MAX_KEY_TTL_SECS}"));
        }
        if self.skip_psk_listen.is_some()
            && (self.skip_psk_identity_file.is_none() || self.skip_psk_file.is_none())
        {
            return Err("skip_psk_listen needs skip_psk_identity_file and skip_psk_file".into());
        }
        check_runtime(self.key_rate_bps, self.qber)
    }

    /// How long a pushed key waits for its slave.
    pub fn key_ttl(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.key_ttl_secs.unwrap_or(DEFAULT_KEY_TTL_SECS))
    }

    /// The pool capacity in bits.
    pub fn capacity_bits(&self) -> u64 {
        self.max_key_count.saturating_mul(u64::from(self.key_size))
    }
}

/// The fields that may change while the KME runs.
pub(crate) fn check_runtime(key_rate_bps: f64, qber: Option<f64>) -> Result<(), String> {
    if !key_rate_bps.is_finite() || key_rate_bps < 0.0 {
        return Err("key_rate_bps must be a finite number >= 0".into());
    }
    if qber.is_some_and(|q| !(0.0..=0.5).contains(&q)) {
        return Err("qber must be in [0, 0.5]".into());
    }
    Ok(())
}

/// IDs are restricted to characters that are safe in URLs, file names and certificate CNs.
pub fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(format!("must have 1 to {MAX_ID_LEN} characters"));
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        || id.starts_with('.')
    {
        return Err(format!(
            "{id:?} may only use A-Z a-z 0-9 - _ . and must not start with ."
        ));
    }
    Ok(())
}

fn config_err(path: &Path, reason: impl Into<String>) -> SimError {
    SimError::Config {
        path: path.to_owned(),
        reason: reason.into(),
    }
}
