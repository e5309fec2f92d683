//! A complete simulator pair on loopback ports chosen by the OS: `init` plus two `spawn`s,
//! for tests and demos that must not race on fixed ports.

use std::path::Path;

use tokio::net::TcpListener;

use super::config::KmeConfig;
use super::error::SimError;
use super::init::{init, InitOutput};
use super::kme::{spawn, KmeHandle, KmeListeners};

/// Two running KMEs linked to each other, and the files `init` wrote for them.
pub struct LocalPair {
    pub a: KmeHandle,
    pub b: KmeHandle,
    pub files: InitOutput,
}

impl LocalPair {
    /// `https://127.0.0.1:PORT` of KME A's SAE API.
    pub fn url_a(&self) -> String {
        format!("https://127.0.0.1:{}", self.a.api_addr.port())
    }

    /// `https://127.0.0.1:PORT` of KME B's SAE API.
    pub fn url_b(&self) -> String {
        format!("https://127.0.0.1:{}", self.b.api_addr.port())
    }

    /// `https://127.0.0.1:PORT` of a KME's SKIP listener (`psk`: the PSK-mode one).
    pub fn skip_url(&self, kme: &KmeHandle, psk: bool) -> String {
        let addr = if psk {
            kme.skip_psk_addr
        } else {
            kme.skip_addr
        };
        format!("https://127.0.0.1:{}", addr.map_or(0, |a| a.port()))
    }
}

async fn bind_loopback() -> Result<TcpListener, SimError> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    TcpListener::bind(addr)
        .await
        .map_err(|source| SimError::Bind { addr, source })
}

/// Set up `dir` (see [`init`]) for KMEs on fresh 127.0.0.1 ports, let `adjust` edit the two
/// configs (key rate, pool size, QBER...), save them, and start both KMEs.
pub async fn spawn_local_pair(
    dir: &Path,
    sae_a: &str,
    sae_b: &str,
    adjust: impl FnOnce(&mut KmeConfig, &mut KmeConfig),
) -> Result<LocalPair, SimError> {
    let api_a = bind_loopback().await?;
    let api_b = bind_loopback().await?;
    let link_a = bind_loopback().await?;
    let link_b = bind_loopback().await?;
    let skip = [
        bind_loopback().await?,
        bind_loopback().await?,
        bind_loopback().await?,
        bind_loopback().await?,
    ];
    let addr = |l: &TcpListener| {
        l.local_addr().map_err(|source| SimError::Bind {
            addr: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            source,
        })
    };
    let files = init(
        dir,
        sae_a,
        sae_b,
        addr(&api_a)?,
        addr(&api_b)?,
        addr(&link_a)?,
        addr(&link_b)?,
    )?;
    let mut config_a = KmeConfig::load(&files.config_a)?;
    let mut config_b = KmeConfig::load(&files.config_b)?;
    let [skip_a, skip_psk_a, skip_b, skip_psk_b] = skip;
    config_a.skip_listen = Some(addr(&skip_a)?);
    config_a.skip_psk_listen = Some(addr(&skip_psk_a)?);
    config_b.skip_listen = Some(addr(&skip_b)?);
    config_b.skip_psk_listen = Some(addr(&skip_psk_b)?);
    adjust(&mut config_a, &mut config_b);
    for (config, path) in [(&config_a, &files.config_a), (&config_b, &files.config_b)] {
        config.validate().map_err(|reason| SimError::Config {
            path: path.clone(),
            reason,
        })?;
        config.save(path)?;
    }
    let a = spawn(
        &files.config_a,
        Some(KmeListeners {
            api: api_a,
            link: link_a,
            skip: Some(skip_a),
            skip_psk: Some(skip_psk_a),
        }),
    )
    .await?;
    let b = spawn(
        &files.config_b,
        Some(KmeListeners {
            api: api_b,
            link: link_b,
            skip: Some(skip_b),
            skip_psk: Some(skip_psk_b),
        }),
    )
    .await?;
    Ok(LocalPair { a, b, files })
}
