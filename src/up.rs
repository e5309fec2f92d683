//! `trident up CONFIG.toml`: load the config, run the tunnel until SIGINT or SIGTERM.
//! SIGHUP (like `trident reload`) re-reads the same file and applies peer changes live.

use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::oneshot;

pub fn up(config_path: &Path) -> Result<()> {
    let crate::config::Loaded {
        settings,
        warnings,
        kp_check,
    } = crate::config::load(config_path)?;
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
    let mut settings = settings;
    runtime.block_on(async move {
        let mut sigint = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
        let mut sigterm = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
        // SKIP: the Key Provider must know every peer's KP before anything is set up.
        if let Some(check) = &kp_check {
            for warning in check.run().await? {
                tracing::warn!("{warning}");
            }
        }
        let name = settings.name.clone();
        let hooks = settings.hooks.clone();
        // pre_up: before anything exists; a failure ends `up` with nothing created.
        crate::hooks::run("pre_up", &name, &hooks.pre_up)
            .await
            .with_context(|| format!("interface {name}"))?;
        let (up_tx, up_rx) = oneshot::channel();
        settings.on_up = Some(up_tx);
        let phase = Arc::new(AtomicU8::new(NOT_UP));
        let (failed_tx, mut failed_rx) = oneshot::channel::<()>();
        {
            let (phase, name, post_up) = (phase.clone(), name.clone(), hooks.post_up.clone());
            tokio::spawn(async move {
                if up_rx.await.is_err() {
                    return; // the interface never came up
                }
                match crate::hooks::run("post_up", &name, &post_up).await {
                    Ok(()) => phase.store(UP, Ordering::SeqCst),
                    Err(e) => {
                        // As wg-quick: a failed PostUp takes the interface down again.
                        tracing::error!("{e:#}; shutting the interface down");
                        phase.store(POST_UP_FAILED, Ordering::SeqCst);
                        let _ = failed_tx.send(());
                    }
                }
            });
        }
        let shutdown = {
            let (phase, name, pre_down) = (phase.clone(), name.clone(), hooks.pre_down.clone());
            async move {
                tokio::select! {
                    _ = sigint.recv() => {}
                    _ = sigterm.recv() => {}
                    Ok(()) = &mut failed_rx => {}
                }
                // pre_down: shutdown has started, the interface is still there.
                if phase.load(Ordering::SeqCst) == UP {
                    if let Err(e) = crate::hooks::run("pre_down", &name, &pre_down).await {
                        tracing::error!("{e:#}");
                    }
                }
            }
        };
        let mut sighup = signal(SignalKind::hangup()).context("installing SIGHUP handler")?;
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
        let result = result.with_context(|| format!("interface {name}"));
        match phase.load(Ordering::SeqCst) {
            // post_down: after teardown, only for an interface that came up.
            UP => {
                if let Err(e) = crate::hooks::run("post_down", &name, &hooks.post_down).await {
                    tracing::error!("{e:#}");
                }
            }
            POST_UP_FAILED => {
                result?;
                anyhow::bail!("interface {name}: post_up failed; the interface was shut down");
            }
            _ => {}
        }
        result
    })
}

/// Where the interface is in its life, for which hooks still apply.
const NOT_UP: u8 = 0;
const UP: u8 = 1;
const POST_UP_FAILED: u8 = 2;
