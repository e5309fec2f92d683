//! The control socket `/run/trident/NAME.sock`: one connection, one JSON status, closed.
//! A unix socket in the file system (not abstract), so `trident status` finds interfaces
//! of every network namespace on the machine.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot};

use crate::error::TunnelError;
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
        std::fs::create_dir_all(dir).map_err(err)?;
        if path.exists() {
            if std::os::unix::net::UnixStream::connect(&path).is_ok() {
                return Err(TunnelError::AlreadyRunning(name.to_owned()));
            }
            std::fs::remove_file(&path).map_err(err)?;
        }
        let listener = UnixListener::bind(&path).map_err(err)?;
        // Status shows public keys and traffic counters only, but keep it to root.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
        Ok((Self { path }, listener))
    }

    /// Serves status requests until the driver goes away.
    pub fn serve(
        listener: UnixListener,
        requests: mpsc::Sender<StatusRequest>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    continue;
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
