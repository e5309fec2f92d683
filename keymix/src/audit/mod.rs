//! The RNDL audit (`trident audit`): from a capture of the WAN and a key log, rebuild each
//! epoch's PSK the way an attacker who broke a given set of sources would, and report
//! whether it matches. Pure functions over bytes; the CLI reads the files.

mod analysis;
mod capture;

pub use analysis::{analyse, AuditReport, Broken, EpochResult};
pub use capture::{udp_datagrams, CaptureError, Datagram};

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("capture: {0}")]
    Capture(#[from] CaptureError),
    #[error(transparent)]
    KeyLog(#[from] crate::keylog::KeyLogError),
    #[error("unknown source {0:?}: expected x25519, mlkem, qkd or all")]
    UnknownSource(String),
}
