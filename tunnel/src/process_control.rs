//! What the control socket serves about the `trident up` process as a whole (one process,
//! one interface): `down`, the socket's SIGTERM, and `showconf`, the config it runs.
//!
//! Both are process-wide on purpose, as a signal is: `down` wakes the same shutdown path
//! as SIGTERM in the CLI (pre_down, routes, device, post_down), so it is a [`Notify`] the
//! CLI awaits next to its signals; the config text is set by the CLI at start and replaced
//! only when a reload was applied, so `showconf` never shows a file the interface refused.
//! A process that never asked for `down` (the tunnel used as a library) refuses it rather
//! than answer "shutting down" and do nothing.

use std::io::Read as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::control::ControlReply;
use crate::error::TunnelError;

static DOWN: Notify = Notify::const_new();
static DOWN_HANDLED: AtomicBool = AtomicBool::new(false);

#[derive(Default)]
struct Shown {
    /// The config the interface runs (rendered by the CLI: secrets appear as paths).
    running: Option<String>,
    /// The config of a reload in progress, running once the reload is applied.
    candidate: Option<String>,
}

static CONFIG: Mutex<Shown> = Mutex::new(Shown {
    running: None,
    candidate: None,
});

fn config() -> std::sync::MutexGuard<'static, Shown> {
    // A panic while holding it left plain strings behind: still usable.
    CONFIG
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Completes when a client sent `down`. Calling it is what makes `down` accepted.
pub fn down_requested() -> impl std::future::Future<Output = ()> {
    DOWN_HANDLED.store(true, Ordering::SeqCst);
    DOWN.notified()
}

/// The answer to `down` (control socket).
pub(crate) fn answer_down() -> ControlReply {
    if !DOWN_HANDLED.load(Ordering::SeqCst) {
        return ControlReply::error("this process does not handle `down`: send it SIGTERM");
    }
    tracing::info!("down requested on the control socket: shutting down as on SIGTERM");
    // A stored permit if the shutdown future is not being polled at this instant.
    DOWN.notify_one();
    ControlReply::ok("shutting down")
}

/// The config the interface was started with (`trident up`).
pub fn set_running_config(text: String) {
    *config() = Shown {
        running: Some(text),
        candidate: None,
    };
}

/// The config a reload is about to apply; running once [`reload_finished`] says so.
pub fn set_reload_candidate(text: String) {
    config().candidate = Some(text);
}

/// A reload ended: `applied` promotes the candidate, otherwise the running config stays.
pub fn reload_finished(applied: bool) {
    let mut shown = config();
    let candidate = shown.candidate.take();
    if applied {
        if let Some(text) = candidate {
            shown.running = Some(text);
        }
    }
}

/// The answer to `showconf` (control socket).
pub(crate) fn answer_showconf() -> ControlReply {
    match &config().running {
        Some(text) => ControlReply::ok(text.clone()),
        None => ControlReply::error("this interface has no config to show"),
    }
}

/// Whether an interface's control socket answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    Running,
    /// The socket file is there but nobody listens: the process died without cleaning up.
    Stale,
    Absent,
}

pub fn probe(path: &Path) -> Liveness {
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Liveness::Running,
        Err(_) if path.symlink_metadata().is_ok() => Liveness::Stale,
        Err(_) => Liveness::Absent,
    }
}

/// Asks a running interface for its config (`trident showconf`).
pub fn request_showconf(path: &Path) -> Result<ControlReply, TunnelError> {
    let (buf, _) = crate::control::request(path, "showconf\n")?;
    crate::control::parse_reply(path, &buf)
}

/// Asks a running interface to shut down (`trident down`) and waits, at most `wait`, until
/// its process has exited (hooks included); Ok(false) when it still runs after that.
pub fn request_down(path: &Path, wait: Duration) -> Result<(ControlReply, bool), TunnelError> {
    let (buf, pid) = crate::control::request(path, "down\n")?;
    let reply = crate::control::parse_reply(path, &buf)?;
    if !reply.ok {
        return Ok((reply, false));
    }
    let deadline = Instant::now() + wait;
    loop {
        let gone = match pid {
            Some(pid) => !process_alive(pid),
            None => probe(path) != Liveness::Running,
        };
        if gone {
            return Ok((reply, true));
        }
        if Instant::now() >= deadline {
            return Ok((reply, false));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether `pid` runs (a zombie waiting for its parent has finished).
fn process_alive(pid: i32) -> bool {
    let Ok(mut file) = std::fs::File::open(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let mut stat = String::new();
    if file.read_to_string(&mut stat).is_err() {
        return false;
    }
    // The state is the first field after the command name, which ends at the last ')'.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, None | Some('Z' | 'X' | 'x'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_reload_keeps_the_running_config() {
        set_running_config("a".into());
        set_reload_candidate("b".into());
        reload_finished(false);
        assert_eq!(answer_showconf().message, "a");
        set_reload_candidate("c".into());
        reload_finished(true);
        assert_eq!(answer_showconf().message, "c");
        // A finished reload without a candidate (the loader failed) changes nothing.
        reload_finished(true);
        assert_eq!(answer_showconf().message, "c");
    }

    #[test]
    fn this_process_is_alive_and_a_missing_one_is_not() {
        assert!(process_alive(std::process::id() as i32));
        assert!(!process_alive(i32::MAX));
    }

    #[test]
    fn probe_tells_stale_sockets_from_absent_ones() {
        let dir = std::env::temp_dir().join(format!("trident-probe-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.sock");
        assert_eq!(probe(&path), Liveness::Absent);
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        assert_eq!(probe(&path), Liveness::Running);
        drop(listener);
        assert_eq!(probe(&path), Liveness::Stale);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
