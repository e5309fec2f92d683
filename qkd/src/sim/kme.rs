//! Starting and stopping one simulated KME: its SAE API, its end of the key link and its
//! config watcher.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::config::KmeConfig;
use super::error::SimError;
use super::link::{serve_link, LinkClient};
use super::reload::{hangup_signal, watch_config};
use super::server::serve_api;
use super::skip_server::{serve_certificate, serve_psk, SkipTlsContexts};
use super::state::KmeState;
use crate::tls::{self, TlsFiles};

/// Listeners bound by the caller (e.g. on port 0 in tests) instead of the config's addresses.
pub struct KmeListeners {
    pub api: TcpListener,
    pub link: TcpListener,
    /// SKIP in certificate mode and in PSK mode; None: not served.
    pub skip: Option<TcpListener>,
    pub skip_psk: Option<TcpListener>,
}

/// A running KME. Dropping it stops the KME.
pub struct KmeHandle {
    pub api_addr: SocketAddr,
    pub link_addr: SocketAddr,
    /// SKIP listeners (certificate mode, PSK mode), when served.
    pub skip_addr: Option<SocketAddr>,
    pub skip_psk_addr: Option<SocketAddr>,
    pub kme_id: String,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl KmeHandle {
    /// Stop serving; open connections are dropped.
    pub fn shutdown(&self) {
        let _ = self.shutdown.send(true);
    }

    /// Wait until the KME has stopped (after [`Self::shutdown`], or if a server task ended).
    pub async fn wait(mut self) {
        // One task ending means the KME no longer works as a whole; stop the rest too.
        let _ = self.tasks.join_next().await;
        self.shutdown();
        while self.tasks.join_next().await.is_some() {}
    }
}

impl Drop for KmeHandle {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        self.tasks.abort_all();
    }
}

/// Load `config_path` and start the KME on the tokio runtime; returns once it is listening.
pub async fn spawn(
    config_path: &Path,
    listeners: Option<KmeListeners>,
) -> Result<KmeHandle, SimError> {
    let config = KmeConfig::load(config_path)?;
    let api_tls = tls::server_config(&TlsFiles {
        ca_file: config.ca_file.clone(),
        cert_file: config.cert_file.clone(),
        key_file: config.key_file.clone(),
    })?;
    let link_files = TlsFiles {
        ca_file: config.link_ca_file.clone(),
        cert_file: config.link_cert_file.clone(),
        key_file: config.link_key_file.clone(),
    };
    let link_server_tls = tls::server_config(&link_files)?;
    let link_client_tls = tls::client_config(&link_files)?;
    let skip_tls = SkipTlsContexts::load(&config)?;

    let listeners = match listeners {
        Some(l) => l,
        None => KmeListeners {
            api: bind(config.listen).await?,
            link: bind(config.link_listen).await?,
            skip: bind_some(config.skip_listen).await?,
            skip_psk: bind_some(config.skip_psk_listen).await?,
        },
    };
    let local = |l: &TcpListener, addr| {
        l.local_addr()
            .map_err(|source| SimError::Bind { addr, source })
    };
    let api_addr = local(&listeners.api, config.listen)?;
    let link_addr = local(&listeners.link, config.link_listen)?;
    let skip_addr = listeners.skip.as_ref().and_then(|l| l.local_addr().ok());
    let skip_psk_addr = listeners
        .skip_psk
        .as_ref()
        .and_then(|l| l.local_addr().ok());

    let link = LinkClient::new(
        TlsConnector::from(link_client_tls),
        config.peer_link,
        config.peer_kme_id.clone(),
    );
    let kme_id = config.kme_id.clone();
    tracing::info!(
        kme = %kme_id,
        sae = %config.sae_id,
        %api_addr,
        %link_addr,
        peer_link = %config.peer_link,
        ?skip_addr,
        ?skip_psk_addr,
        "KME simulator listening"
    );
    let state = Arc::new(KmeState::new(config, link));
    let (shutdown, stop) = watch::channel(false);
    let mut tasks = JoinSet::new();
    tasks.spawn(serve_api(
        listeners.api,
        TlsAcceptor::from(api_tls),
        state.clone(),
        stop.clone(),
    ));
    tasks.spawn(serve_link(
        listeners.link,
        TlsAcceptor::from(link_server_tls),
        state.clone(),
        stop.clone(),
    ));
    if let (Some(listener), Some(acceptor)) = (listeners.skip, skip_tls.certificate) {
        tasks.spawn(serve_certificate(
            listener,
            acceptor,
            state.clone(),
            stop.clone(),
        ));
    }
    if let (Some(listener), Some(context)) = (listeners.skip_psk, skip_tls.psk) {
        tasks.spawn(serve_psk(listener, context, state.clone(), stop.clone()));
    }
    tasks.spawn(watch_config(
        config_path.to_owned(),
        state,
        hangup_signal(),
        stop,
    ));
    Ok(KmeHandle {
        api_addr,
        link_addr,
        skip_addr,
        skip_psk_addr,
        kme_id,
        shutdown,
        tasks,
    })
}

async fn bind_some(addr: Option<SocketAddr>) -> Result<Option<TcpListener>, SimError> {
    match addr {
        Some(addr) => bind(addr).await.map(Some),
        None => Ok(None),
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, SimError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| SimError::Bind { addr, source })
}

/// `kme-sim run`: serve the KME described by `config_path` until Ctrl-C (or SIGTERM).
pub async fn run(config_path: &Path) -> Result<(), SimError> {
    let mut handle = spawn(config_path, None).await?;
    let kme_id = handle.kme_id.clone();
    tokio::select! {
        _ = stop_signal() => {
            tracing::info!(kme = %kme_id, "stopping on signal");
            handle.shutdown();
            handle.wait().await;
            Ok(())
        }
        // The server tasks only end on shutdown, so one ending here has panicked.
        _ = handle.tasks.join_next() => {
            Err(SimError::Setup(format!("KME {kme_id} stopped unexpectedly")))
        }
    }
}

async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
