//! Drop counters: every rejected datagram is counted under its reason, never crashes.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    Malformed,
    BadMac1,
    CookieSent,
    BadMac2,
    UnknownPeer,
    UnknownIndex,
    BadAuth,
    Replay,
    Duplicate,
    StaleEpoch,
    SimultaneousInitiation,
    Policy,
    BadKey,
    BadConfirm,
    Busy,
    /// An Init keyed with a chain this side does not hold, or a bootstrap refused because
    /// this side holds a chain and the peer has no bootstrap PSK.
    ChainMismatch,
    /// A bootstrap Init whose timestamp is too far from our clock to tell it from a replay.
    ClockSkew,
    /// A version-1 message for a peer that has spoken version 2 (or whose `min_version`
    /// is 2): never believed, whatever it carries.
    Downgrade,
    /// A version this side does not speak with that peer (`max_version`).
    UnsupportedVersion,
}

impl DropReason {
    pub const ALL: [DropReason; 19] = [
        Self::Malformed,
        Self::BadMac1,
        Self::CookieSent,
        Self::BadMac2,
        Self::UnknownPeer,
        Self::UnknownIndex,
        Self::BadAuth,
        Self::Replay,
        Self::Duplicate,
        Self::StaleEpoch,
        Self::SimultaneousInitiation,
        Self::Policy,
        Self::BadKey,
        Self::BadConfirm,
        Self::Busy,
        Self::ChainMismatch,
        Self::ClockSkew,
        Self::Downgrade,
        Self::UnsupportedVersion,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::BadMac1 => "bad_mac1",
            Self::CookieSent => "cookie_sent",
            Self::BadMac2 => "bad_mac2",
            Self::UnknownPeer => "unknown_peer",
            Self::UnknownIndex => "unknown_index",
            Self::BadAuth => "bad_auth",
            Self::Replay => "replay",
            Self::Duplicate => "duplicate",
            Self::StaleEpoch => "stale_epoch",
            Self::SimultaneousInitiation => "simultaneous_initiation",
            Self::Policy => "policy",
            Self::BadKey => "bad_key",
            Self::BadConfirm => "bad_confirm",
            Self::Busy => "busy",
            Self::ChainMismatch => "chain_mismatch",
            Self::ClockSkew => "clock_skew",
            Self::Downgrade => "downgrade",
            Self::UnsupportedVersion => "unsupported_version",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Counts per drop reason, indexed in the order of [`DropReason::ALL`].
#[derive(Debug, Clone, Default)]
pub struct Counters {
    drops: [u64; DropReason::ALL.len()],
    pub accepted: u64,
}

impl Counters {
    pub fn record(&mut self, r: DropReason) {
        if let Some(c) = self.drops.get_mut(r as usize) {
            *c += 1;
        }
    }
    pub fn get(&self, r: DropReason) -> u64 {
        self.drops.get(r as usize).copied().unwrap_or(0)
    }
    pub fn dropped_total(&self) -> u64 {
        self.drops.iter().sum()
    }
    pub fn iter(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL.iter().map(|r| (*r, self.get(*r)))
    }
}
