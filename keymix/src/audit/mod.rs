//! The RNDL audit (`trident audit`): from a capture of the WAN and a key log, rebuild each
//! epoch's PSK the way an attacker who broke a given set of sources would, and report
//! whether it matches. Pure functions over bytes; the CLI reads the files.

mod analysis;
mod broken;
mod capture;
mod exchanges;

pub use analysis::{analyse, AuditReport, EpochResult, Outcome, Unknown};
pub use broken::Broken;
pub use capture::{udp_datagrams, CaptureError, Datagram};

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("capture: {0}")]
    Capture(#[from] CaptureError),
    #[error(transparent)]
    KeyLog(#[from] crate::keylog::KeyLogError),
    #[error(
        "unknown source list {0:?}: expected x25519, ml-kem-768 (or mlkem), qkd, separated \
         by commas, or all, or none"
    )]
    UnknownSource(String),
    #[error(
        "the capture holds no keymix exchange (no Init with its Resp among its {datagrams} \
         UDP datagrams): nothing to audit"
    )]
    NoExchanges { datagrams: usize },
    #[error(
        "none of the key log's {entries} lines matches any of the capture's {exchanges} keymix \
         exchanges (a key log of another gateway pair, or of another time?): nothing to audit"
    )]
    KeyLogMatchesNothing { entries: usize, exchanges: usize },
}
