//! Errors of the KME simulator's setup and start-up (request-level errors are HTTP answers).

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::tls::TlsSetupError;

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config {path}: {reason}")]
    Config { path: PathBuf, reason: String },
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
    #[error("certificate generation failed: {0}")]
    Cert(String),
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Setup(String),
}

impl SimError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

impl From<rcgen::Error> for SimError {
    fn from(e: rcgen::Error) -> Self {
        Self::Cert(e.to_string())
    }
}
