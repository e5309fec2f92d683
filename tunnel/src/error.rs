//! Errors of the data plane that end `run` or a control-socket query.
//!
//! A variant with a `source` does not repeat it in its message: the CLI prints the whole
//! chain (`{:#}`), so each OS error appears exactly once.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TunnelError {
    #[error("creating TUN device {name}{}", needs_net_admin(source))]
    Tun {
        name: String,
        source: std::io::Error,
    },
    #[error("binding UDP port {port}")]
    Udp { port: u16, source: std::io::Error },
    #[error("network configuration: `{command}` failed: {detail}")]
    NetConfig { command: String, detail: String },
    #[error("control socket {path}{}", needs_runtime_dir(source))]
    Control {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("interface {0} is already running (its control socket answers)")]
    AlreadyRunning(String),
    #[error("control socket {path} sent an unreadable status")]
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
    #[error("I/O on {what}")]
    Io {
        what: &'static str,
        source: std::io::Error,
    },
}

fn denied(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::PermissionDenied
}

/// EPERM creating the device means the capability is missing, whatever the uid.
fn needs_net_admin(e: &std::io::Error) -> &'static str {
    if denied(e) {
        " (creating a TUN device needs CAP_NET_ADMIN: run as root, or with \
         AmbientCapabilities=CAP_NET_ADMIN as contrib/systemd/trident@.service does)"
    } else {
        ""
    }
}

fn needs_runtime_dir(e: &std::io::Error) -> &'static str {
    if denied(e) {
        " (a non-root run needs a writable runtime directory: systemd's \
         RuntimeDirectory=trident sets RUNTIME_DIRECTORY)"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// anyhow's chain prints the source after the message: it must not be in it too.
    #[test]
    fn os_errors_are_printed_once_and_eperm_names_the_capability() {
        let e = TunnelError::Tun {
            name: "trA".into(),
            source: std::io::Error::from_raw_os_error(1),
        };
        let chain = anyhow_like(&e);
        assert_eq!(
            chain.matches("Operation not permitted").count(),
            1,
            "{chain}"
        );
        assert!(chain.contains("needs CAP_NET_ADMIN"), "{chain}");
        let e = TunnelError::Udp {
            port: 51820,
            source: std::io::Error::from_raw_os_error(98),
        };
        let chain = anyhow_like(&e);
        assert_eq!(chain.matches("in use").count(), 1, "{chain}");
    }

    fn anyhow_like(e: &dyn std::error::Error) -> String {
        let mut out = e.to_string();
        let mut next = e.source();
        while let Some(s) = next {
            out.push_str(": ");
            out.push_str(&s.to_string());
            next = s.source();
        }
        out
    }
}
