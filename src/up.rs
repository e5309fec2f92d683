//! `trident up CONFIG.toml`: load the config, run the tunnel until SIGINT or SIGTERM.
//! SIGHUP (like `trident reload`) re-reads the same file and applies peer changes live.

use std::path::Path;

use anyhow::{Context, Result};
use tokio::signal::unix::{signal, SignalKind};

pub fn up(config_path: &Path) -> Result<()> {
    let crate::config::Loaded { settings, warnings } = crate::config::load(config_path)?;
    // The same checks as `trident check`; each warning is logged once.
    for warning in &warnings {
        tracing::warn!("{warning}");
    }
    if let Some(path) = &settings.keylog_file {
        // Loud on purpose: the file lets anyone who reads it decrypt recorded traffic.
        let warning = format!(
            "WARNING: the key log is ON: {} receives every epoch's key-source secrets; \
             anyone who reads it can decrypt recorded traffic. Use it for audits only.",
            path.display()
        );
        tracing::warn!("{warning}");
    }
    // Before the runtime starts threads: capabilities are per thread (tunnel::privileges).
    let low_port = (1..1024).contains(&settings.listen_port);
    tunnel::privileges::drop_to_net_admin(low_port).context("dropping privileges")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(async move {
        let mut sigint = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
        let mut sigterm = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
        let shutdown = async move {
            tokio::select! {
                _ = sigint.recv() => {}
                _ = sigterm.recv() => {}
            }
        };
        let mut sighup = signal(SignalKind::hangup()).context("installing SIGHUP handler")?;
        let name = settings.name.clone();
        let result = if settings.wireguard.is_some() {
            // Handled, so SIGHUP no longer ends `up`; live reload needs the built-in plane.
            tokio::spawn(async move {
                while sighup.recv().await.is_some() {
                    tracing::warn!(
                        "SIGHUP: reload is not available with an external WireGuard; restart"
                    );
                }
            });
            if settings.metrics_listen.is_some() {
                tracing::warn!("metrics_listen is ignored with an external WireGuard data plane");
            }
            // An existing WireGuard carries the traffic; Trident sets its PSKs.
            tunnel::external::run(settings, shutdown).await
        } else {
            let path = config_path.to_owned();
            let reloader = tunnel::reload::Reloader::new(Box::new(move || {
                let loaded = crate::config::load(&path).map_err(|e| e.to_string())?;
                for warning in &loaded.warnings {
                    tracing::warn!("{warning}");
                }
                Ok(loaded.settings)
            }));
            let trigger = reloader.trigger();
            tokio::spawn(async move {
                while sighup.recv().await.is_some() {
                    tracing::info!("SIGHUP: reloading the config");
                    let request = tunnel::reload::ReloadRequest { reply: None };
                    if trigger.send(request).await.is_err() {
                        break;
                    }
                }
            });
            tunnel::driver::run_reloadable(settings, shutdown, Some(reloader)).await
        };
        result.with_context(|| format!("interface {name}"))
    })
}
