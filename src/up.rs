//! `trident up CONFIG.toml`: load the config, run the tunnel until SIGINT, SIGTERM or
//! `trident down` (the control socket's SIGTERM: the same hooks and teardown). SIGHUP
//! (like `trident reload`) re-reads the same file and applies peer changes live; what
//! `trident showconf` prints follows only a reload that was applied.

use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::oneshot;

pub fn up(config_path: &Path) -> Result<()> {
    // With what `up` would otherwise run into half-way (after pre_up): a running
    // interface of this name, a device in the way, a state directory that cannot be one.
    let loaded = crate::config::load_for_start(config_path)?;
    if loaded.running {
        let name = &loaded.settings.name;
        anyhow::bail!(
            "interface {name} is already running (its control socket answers): `trident down \
             {name}` stops it; `trident reload {name}` applies a changed config"
        );
    }
    let crate::config::Loaded {
        settings,
        warnings,
        kp_check,
        shown,
        running: _,
        qkd_table,
    } = loaded;
    // The same checks as `trident check`; each warning is logged once.
    for warning in &warnings {
        tracing::warn!("{warning}");
    }
    tunnel::process_control::set_running_config(shown_config(config_path, "started", &shown));
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
            // Taken now, before the control socket exists, so no `down` finds it missing.
            let down = tunnel::process_control::down_requested();
            async move {
                tokio::select! {
                    _ = sigint.recv() => {}
                    _ = sigterm.recv() => {}
                    () = down => {}
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
                // The key source was built at start; the tunnel would keep running it.
                if loaded.qkd_table != qkd_table {
                    return Err(
                        "changing the [qkd] table needs a restart of the interface (the KME \
                         client is set up at start)"
                            .to_owned(),
                    );
                }
                for warning in &loaded.warnings {
                    tracing::warn!("{warning}");
                }
                // Shown by `showconf` once the reload is applied (tunnel::process_control).
                tunnel::process_control::set_reload_candidate(shown_config(
                    &path,
                    "reloaded",
                    &loaded.shown,
                ));
                Ok(loaded.settings)
            }));
            let trigger = reloader.trigger();
            tokio::spawn(async move {
                while sighup.recv().await.is_some() {
                    tracing::info!("SIGHUP: reloading the config");
                    let (reply, answer) = oneshot::channel();
                    let request = tunnel::reload::ReloadRequest { reply: Some(reply) };
                    if trigger.send(request).await.is_err() {
                        break;
                    }
                    let applied = answer.await.is_ok_and(|a| a.ok);
                    tunnel::process_control::reload_finished(applied);
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

/// `showconf`'s text: where it came from, then the re-rendered config.
fn shown_config(config_path: &Path, how: &str, shown: &str) -> String {
    let path = std::path::absolute(config_path).unwrap_or_else(|_| config_path.to_owned());
    let when = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!(
        "# the running config of this interface: {} ({how} at unix time {when}), defaults\n\
         # filled in; secrets are shown as the files that hold them\n{shown}",
        path.display()
    )
}

/// Where the interface is in its life, for which hooks still apply.
const NOT_UP: u8 = 0;
const UP: u8 = 1;
const POST_UP_FAILED: u8 = 2;
