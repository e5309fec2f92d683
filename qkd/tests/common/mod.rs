//! What the ETSI 014 tests share: a throw-away directory, a simulated KME pair in it and the
//! SAEs' clients for it. Each test binary uses a part, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use qkd::model::Status;
use qkd::sim::{self, spawn_local_pair, InitOutput, KmeConfig, LocalPair, SimError};
use qkd::{Etsi014Client, Etsi014ClientConfig};

pub const SAE_A: &str = "SAE_A";
pub const SAE_B: &str = "SAE_B";

/// A fresh directory under the system temp dir, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let mut nonce = [0u8; 8];
        getrandom::fill(&mut nonce).unwrap();
        let name = format!(
            "trident-qkd-{tag}-{}-{}",
            std::process::id(),
            u64::from_le_bytes(nonce)
        );
        let dir = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `kme-sim init` into `dir` with the default listen and link addresses.
pub fn init_at_defaults(dir: &Path, sae_a: &str, sae_b: &str) -> Result<InitOutput, SimError> {
    sim::init(
        dir,
        sae_a,
        sae_b,
        sim::DEFAULT_LISTEN_A,
        sim::DEFAULT_LISTEN_B,
        sim::DEFAULT_LINK_A,
        sim::DEFAULT_LINK_B,
    )
}

/// A client of the KME at `url`, trusting `ca`, as the SAE of `cert` / `key`.
pub fn client(url: &str, ca: &Path, cert: &Path, key: &Path) -> Etsi014Client {
    Etsi014Client::new(&Etsi014ClientConfig {
        kme_url: url.to_owned(),
        ca_file: ca.to_owned(),
        cert_file: cert.to_owned(),
        key_file: key.to_owned(),
        timeout: Duration::from_secs(5),
    })
    .unwrap()
}

/// A running pair of simulated KMEs for SAE_A and SAE_B in `dir`, their configs changed by
/// `adjust` first.
pub async fn pair(dir: &TempDir, adjust: impl FnOnce(&mut KmeConfig, &mut KmeConfig)) -> LocalPair {
    spawn_local_pair(&dir.0, SAE_A, SAE_B, adjust)
        .await
        .unwrap()
}

/// A pair with a fixed pool (no refill), so that key counts are exact.
pub async fn fixed_pair(
    dir: &TempDir,
    adjust: impl FnOnce(&mut KmeConfig, &mut KmeConfig),
) -> LocalPair {
    pair(dir, |a, b| {
        a.key_rate_bps = 0.0;
        b.key_rate_bps = 0.0;
        adjust(a, b);
    })
    .await
}

/// The QBER a simulated KME reports in its Status extension.
pub fn qber_of(status: &Status) -> Option<f64> {
    status
        .status_extension
        .as_ref()?
        .get("trident_qber")?
        .as_f64()
}

/// SAE_A's client at its KME (A).
pub fn sae_a(pair: &LocalPair) -> Etsi014Client {
    let f = &pair.files;
    client(
        &pair.url_a(),
        &f.ca_file,
        &f.sae_a.cert_file,
        &f.sae_a.key_file,
    )
}

/// SAE_B's client at its KME (B).
pub fn sae_b(pair: &LocalPair) -> Etsi014Client {
    let f = &pair.files;
    client(
        &pair.url_b(),
        &f.ca_file,
        &f.sae_b.cert_file,
        &f.sae_b.key_file,
    )
}
