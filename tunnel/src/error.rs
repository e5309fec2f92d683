//! Errors of the data plane that end `run` or a control-socket query.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TunnelError {
    #[error("creating TUN device {name}: {source}")]
    Tun {
        name: String,
        source: std::io::Error,
    },
    #[error("binding UDP port {port}: {source}")]
    Udp { port: u16, source: std::io::Error },
    #[error("network configuration: `{command}` failed: {detail}")]
    NetConfig { command: String, detail: String },
    #[error("control socket {path}: {source}")]
    Control {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("interface {0} is already running (its control socket answers)")]
    AlreadyRunning(String),
    #[error("control socket {path} sent an unreadable status: {source}")]
    BadStatus {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("opening the key log")]
    KeyLog(#[source] crate::secret_file::SecretFileError),
    #[error("control socket directory")]
    ControlDir(#[source] crate::secret_file::SecretFileError),
    #[error("state directory")]
    StateDir(#[source] crate::secret_file::SecretFileError),
    #[error("invalid settings: {0}")]
    Settings(String),
    #[error("I/O on {what}: {source}")]
    Io {
        what: &'static str,
        source: std::io::Error,
    },
}
