//! All Tunns of one PSK epoch of a peer: the *primary* Tunn, made when keymix agreed on the
//! epoch (it starts our own WireGuard handshakes and carries traffic once it has a session),
//! and up to two *answered* Tunns, each made to answer one WireGuard initiation of the peer
//! and kept only after the peer confirmed it (a data packet under its session decrypted,
//! which needs the epoch's PSK).
//!
//! Why several Tunns: a boringtun Tunn keeps its sessions in a ring of eight. Answering an
//! initiation inside the primary would let anyone holding the peer's static key (all an
//! initiation needs) evict the live session with eight forged initiations. Answering each
//! initiation in its own Tunn keeps forgeries away from traffic; when both sides initiate
//! at once (crossing handshakes), the primary and an answered Tunn each hold one of the two
//! sessions, so both decrypt, as two sessions in one ring would.

use std::time::{Duration, Instant};

use crate::epoch_tunn::EpochTunn;

/// Answered Tunns kept per epoch: the newest confirmed one and the one before it (whose
/// session may still carry packets in flight when the peer rekeyed).
const MAX_ANSWERED: usize = 2;

pub struct EpochTunns {
    pub primary: EpochTunn,
    /// Oldest first.
    answered: Vec<EpochTunn>,
    /// The epoch's reject age: the peer's at install, raised (never lowered) by a reload, so
    /// shorter timings cannot expire a key before its replacement is due.
    reject_after: Duration,
}

impl EpochTunns {
    pub fn new(primary: EpochTunn, reject_after: Duration) -> Self {
        Self {
            primary,
            answered: Vec::new(),
            reject_after,
        }
    }

    /// A reload's reject age: applies if it is longer (see `reject_after`).
    pub fn extend_reject_after(&mut self, reject_after: Duration) {
        self.reject_after = self.reject_after.max(reject_after);
    }

    pub fn epoch(&self) -> u64 {
        self.primary.epoch
    }

    /// Adds a Tunn the peer just confirmed; returns one pushed out (its index must be
    /// released). A primary without a session gives way to it instead of staying beside
    /// it: this side's own handshake got nowhere first, so the primary would carry nothing
    /// (its answer, if it comes, finds no Tunn and is dropped). That is every epoch of a
    /// hub, which knows no spoke's endpoint before the spoke's handshake, and a boringtun
    /// Tunn is 11 KB: two per epoch and peer were a third of a hub's memory per peer.
    pub fn add_answered(&mut self, tunn: EpochTunn) -> Option<EpochTunn> {
        if self.answered.is_empty() && !self.primary.has_session() {
            return Some(std::mem::replace(&mut self.primary, tunn));
        }
        self.answered.push(tunn);
        if self.answered.len() > MAX_ANSWERED {
            Some(self.answered.remove(0))
        } else {
            None
        }
    }

    pub fn tunns(&self) -> impl Iterator<Item = &EpochTunn> {
        std::iter::once(&self.primary).chain(self.answered.iter())
    }

    pub fn tunns_mut(&mut self) -> impl Iterator<Item = &mut EpochTunn> {
        std::iter::once(&mut self.primary).chain(self.answered.iter_mut())
    }

    /// Every Tunn of the epoch, for releasing their indices.
    pub fn into_tunns(self) -> impl Iterator<Item = EpochTunn> {
        std::iter::once(self.primary).chain(self.answered)
    }

    pub fn has_session(&self) -> bool {
        self.tunns().any(EpochTunn::has_session)
    }

    pub fn by_index(&mut self, index: u32) -> Option<&mut EpochTunn> {
        self.tunns_mut().find(|t| t.index == index)
    }

    /// The Tunn whose session is newest, or the primary when none has one (boringtun then
    /// queues the packet and starts a handshake).
    pub fn sending(&mut self) -> &mut EpochTunn {
        let newest = self
            .tunns()
            .enumerate()
            .filter_map(|(i, t)| t.last_handshake().map(|age| (i, age)))
            .min_by_key(|(_, age)| *age)
            .map_or(0, |(i, _)| i);
        match newest.checked_sub(1).and_then(|i| self.answered.get_mut(i)) {
            Some(t) => t,
            None => &mut self.primary,
        }
    }

    /// Most recent WireGuard handshake of the epoch.
    pub fn last_handshake(&self) -> Option<Duration> {
        self.tunns().filter_map(EpochTunn::last_handshake).min()
    }

    /// (tx, rx) bytes of user data through the epoch's Tunns.
    pub fn traffic(&self) -> (u64, u64) {
        self.tunns().fold((0, 0), |(tx, rx), t| {
            let (ttx, trx) = t.traffic();
            (tx.saturating_add(ttx), rx.saturating_add(trx))
        })
    }

    pub fn is_past(&self, now: Instant) -> bool {
        self.primary.is_past(self.reject_after, now)
    }
}
