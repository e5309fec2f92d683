//! The control socket `/run/trident/NAME.sock`: one connection, one JSON status, closed.
//! A unix socket in the file system (not abstract), so `trident status` finds interfaces
//! of every network namespace on the machine.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::stat::{umask, Mode};
use tokio::io::AsyncWriteExt;
use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot};

use crate::error::TunnelError;
use crate::secret_file;
use crate::status::InterfaceStatus;

/// A status request from a control connection to the driver, which owns the state.
pub type StatusRequest = oneshot::Sender<InterfaceStatus>;

pub fn socket_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.sock"))
}

/// The control socket's file; removed when dropped.
pub struct ControlSocket {
    path: PathBuf,
}

impl ControlSocket {
    /// Binds `dir/NAME.sock`, replacing a stale file but never a live interface's socket.
    pub fn bind(dir: &Path, name: &str) -> Result<(Self, UnixListener), TunnelError> {
        let path = socket_path(dir, name);
        let err = |source| TunnelError::Control {
            path: path.clone(),
            source,
        };
        // Status shows public keys and traffic counters only, but keep it to root: the
        // directory is 0700 and ours, so nobody else can reach or replace the socket.
        secret_file::ensure_private_dir(dir).map_err(TunnelError::ControlDir)?;
        if path.symlink_metadata().is_ok() {
            if std::os::unix::net::UnixStream::connect(&path).is_ok() {
                return Err(TunnelError::AlreadyRunning(name.to_owned()));
            }
            std::fs::remove_file(&path).map_err(err)?;
        }
        // The socket file is born 0600 (bind applies the umask); a chmod after bind would
        // leave a window with the default mode.
        let previous = umask(Mode::from_bits_truncate(0o177));
        let bound = UnixListener::bind(&path);
        umask(previous);
        let listener = bound.map_err(err)?;
        Ok((Self { path }, listener))
    }

    /// Serves status requests until the driver goes away.
    pub fn serve(
        listener: UnixListener,
        requests: mpsc::Sender<StatusRequest>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut backoff = Backoff::default();
            loop {
                let mut stream = match listener.accept().await {
                    Ok((stream, _)) => {
                        backoff.reset();
                        stream
                    }
                    Err(e) => {
                        // EMFILE and the like persist; retrying at once would spin a core.
                        let delay = backoff.next_delay();
                        tracing::warn!("control socket accept failed, retrying in {delay:?}: {e}");
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                };
                let (tx, rx) = oneshot::channel();
                if requests.send(tx).await.is_err() {
                    return;
                }
                let Ok(status) = rx.await else { return };
                let Ok(json) = serde_json::to_vec(&status) else {
                    continue;
                };
                let _ = tokio::time::timeout(Duration::from_secs(2), stream.write_all(&json)).await;
            }
        })
    }
}

/// Delay after consecutive accept errors: 100 ms, doubling up to 1 s, reset by a success.
#[derive(Debug, Default)]
struct Backoff {
    failures: u32,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(1);

    fn next_delay(&mut self) -> Duration {
        let delay = Self::FIRST
            .saturating_mul(1u32 << self.failures.min(4))
            .min(Self::MAX);
        self.failures = self.failures.saturating_add(1);
        delay
    }

    fn reset(&mut self) {
        self.failures = 0;
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Reads one status from a control socket (blocking; for the CLI).
pub fn query_status(path: &Path) -> Result<InterfaceStatus, TunnelError> {
    let err = |source| TunnelError::Control {
        path: path.to_owned(),
        source,
    };
    let mut stream = std::os::unix::net::UnixStream::connect(path).map_err(err)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(err)?;
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).map_err(err)?;
    serde_json::from_slice(&buf).map_err(|source| TunnelError::BadStatus {
        path: path.to_owned(),
        source,
    })
}

/// The control sockets present in `dir` (interface names).
pub fn list_interfaces(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_suffix(".sock").map(str::to_owned)
        })
        .collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt as _;

    use super::*;

    #[test]
    fn backoff_grows_to_one_second_and_resets() {
        let mut b = Backoff::default();
        let delays: Vec<_> = (0..7).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000, 1000]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(100));
    }

    #[tokio::test]
    async fn bind_makes_a_private_dir_and_a_0600_socket() {
        let dir = std::env::temp_dir().join(format!("trident-control-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let run = dir.join("run");
        let (control, _listener) = ControlSocket::bind(&run, "t0").unwrap();
        let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().mode() & 0o7777;
        assert_eq!(mode(&run), 0o700);
        assert_eq!(mode(&socket_path(&run, "t0")), 0o600);
        // The umask is restored for everything else the process creates.
        let probe = umask(Mode::from_bits_truncate(0o022));
        umask(probe);
        assert_ne!(probe.bits(), 0o177);
        drop(control);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
