//! Run-time changes of `key_rate_bps` and `qber`: the config file is re-read on SIGHUP and
//! whenever its modification time or size changes (polled every 500 ms), so a test or an
//! operator can play an eavesdropper by editing one line. Other fields need a restart.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use super::config::KmeConfig;
use super::state::{KmeState, RuntimeParams};

const POLL_INTERVAL: Duration = Duration::from_millis(500);

type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Watch `path` until `shutdown` flips. `hangup` comes from [`hangup_signal`], called before
/// this task is spawned so that a SIGHUP can never arrive before its handler exists (the
/// default action would end the process).
pub async fn watch_config(
    path: PathBuf,
    state: Arc<KmeState>,
    mut hangup: Hangup,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut applied = stamp(&path);
    // A file caught half-written fails to parse; it is retried on every tick until it parses
    // (an editor's next write may keep the same stamp), but reported once per version.
    let mut reported_bad: Stamp = None;
    let mut tick = tokio::time::interval(POLL_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let forced = tokio::select! {
            _ = tick.tick() => false,
            _ = next_hangup(&mut hangup) => true,
            _ = shutdown.changed() => return,
        };
        let now = stamp(&path);
        if !forced && now == applied {
            continue;
        }
        match KmeConfig::load(&path) {
            Ok(config) => {
                applied = now;
                reported_bad = None;
                apply(&state, &config);
            }
            Err(e) => {
                if forced || reported_bad != now {
                    tracing::warn!(error = %e, "config reload failed; keeping the running values");
                    reported_bad = now;
                }
            }
        }
    }
}

fn apply(state: &KmeState, config: &KmeConfig) {
    let params = RuntimeParams {
        key_rate_bps: config.key_rate_bps,
        qber: config.qber,
    };
    if state.set_runtime(params) {
        tracing::info!(
            key_rate_bps = params.key_rate_bps,
            qber = ?params.qber,
            effective_key_rate_bps = params.effective_rate_bps(),
            "key rate changed"
        );
    }
    let mut running = state.config.clone();
    running.key_rate_bps = config.key_rate_bps;
    running.qber = config.qber;
    if &running != config {
        tracing::warn!("only key_rate_bps and qber change at run time; restart for the rest");
    }
}

/// The SIGHUP stream, if there is one on this platform.
#[cfg(unix)]
pub type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
pub type Hangup = Option<()>;

/// Start listening for SIGHUP (needs a tokio runtime).
#[cfg(unix)]
pub fn hangup_signal() -> Hangup {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; relying on file polling");
            None
        }
    }
}

#[cfg(not(unix))]
pub fn hangup_signal() -> Hangup {
    None
}

#[cfg(unix)]
async fn next_hangup(hangup: &mut Hangup) {
    match hangup {
        Some(s) => {
            if s.recv().await.is_none() {
                // The signal stream is gone; stop selecting on it.
                *hangup = None;
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn next_hangup(_: &mut Hangup) {
    std::future::pending().await
}
