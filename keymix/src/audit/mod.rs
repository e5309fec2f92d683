//! The RNDL audit (`trident audit`): from a capture of the WAN and a key log, rebuild each
//! epoch's PSK the way an attacker who broke a given set of sources would, and report
//! whether it matches. Pure functions over datagrams and declared secrets: reading capture
//! files (pcap, link layers, IP reassembly) is the CLI's job, so this crate stays free of I/O.

use std::net::SocketAddr;

mod analysis;
mod broken;
mod exchanges;

pub use analysis::{analyse, AuditReport, EpochResult, Outcome, Unknown};
pub use broken::Broken;

/// One UDP datagram seen on the WAN, after IP reassembly: what the audit reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub payload: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
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
