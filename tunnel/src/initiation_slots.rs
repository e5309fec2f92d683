//! WireGuard initiations of one peer that are not yet believed: answered ones waiting for the
//! peer to confirm them (its first data packet under the new session), and ones parked until
//! the key of their epoch lands here. A WireGuard initiation needs only the sender's static
//! key, so until a session it started is confirmed it moves no endpoint, advances no replay
//! record and touches no Tunn that carries traffic.
//!
//! Bounded: at most [`MAX_SLOTS`] per peer, one per source address. A new source takes the
//! place of the oldest entry that does not come from the peer's current endpoint, so a
//! flood of forged initiations from other addresses never pushes out the genuine peer's.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::epoch_tunn::EpochTunn;
use crate::initiation::Tai64n;

/// Entries per peer: the peer's current endpoint and a few others (roaming, NAT changes).
pub const MAX_SLOTS: usize = 4;
/// How long an answered initiation waits for the peer's confirmation. WireGuard's
/// initiator confirms at once (a keepalive) and retries after 5 s with a new initiation.
pub const ANSWERED_TTL: Duration = Duration::from_secs(10);
/// How long a parked initiation is worth answering (WireGuard retries after 5 s anyway).
pub const PARKED_TTL: Duration = Duration::from_secs(5);

pub enum Waiting {
    /// The key of its epoch has not landed here yet.
    Parked { datagram: Vec<u8>, epoch_tag: u32 },
    /// Answered by this Tunn (made for it alone); confirmed by the peer's data under it.
    Answered(Box<EpochTunn>),
}

pub struct Slot {
    pub src: SocketAddr,
    pub timestamp: Tai64n,
    pub received: Instant,
    pub waiting: Waiting,
}

impl Slot {
    fn expired(&self, now: Instant) -> bool {
        let ttl = match self.waiting {
            Waiting::Parked { .. } => PARKED_TTL,
            Waiting::Answered(_) => ANSWERED_TTL,
        };
        now.saturating_duration_since(self.received) >= ttl
    }

    fn into_tunn(self) -> Option<EpochTunn> {
        match self.waiting {
            Waiting::Answered(t) => Some(*t),
            Waiting::Parked { .. } => None,
        }
    }
}

/// Why an initiation was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotTaken {
    /// The same initiation (same timestamp) from the same source is already waiting.
    Duplicate,
}

#[derive(Default)]
pub struct InitiationSlots {
    slots: Vec<Slot>,
}

impl InitiationSlots {
    /// Takes `slot`, replacing the entry of the same source, or else the oldest entry not
    /// from `endpoint` when full. Returns the Tunns pushed out (their indices must be
    /// released).
    pub fn insert(
        &mut self,
        slot: Slot,
        endpoint: Option<SocketAddr>,
    ) -> Result<Vec<EpochTunn>, (NotTaken, Slot)> {
        let mut out = Vec::new();
        if let Some(i) = self.slots.iter().position(|s| s.src == slot.src) {
            if self.slots[i].timestamp == slot.timestamp {
                return Err((NotTaken::Duplicate, slot));
            }
            out.extend(self.slots.remove(i).into_tunn());
        } else if self.slots.len() >= MAX_SLOTS {
            let victim = self
                .slots
                .iter()
                .enumerate()
                .filter(|(_, s)| Some(s.src) != endpoint)
                .min_by_key(|(_, s)| s.received)
                .map(|(i, _)| i);
            if let Some(i) = victim {
                out.extend(self.slots.remove(i).into_tunn());
            }
        }
        self.slots.push(slot);
        Ok(out)
    }

    /// The answered Tunn with Tunn index `index`.
    pub fn by_index(&mut self, index: u32) -> Option<&mut EpochTunn> {
        self.slots.iter_mut().find_map(|s| match &mut s.waiting {
            Waiting::Answered(t) if t.index == index => Some(&mut **t),
            _ => None,
        })
    }

    /// Removes the answered entry of Tunn `index` (the peer confirmed it).
    pub fn take_answered(&mut self, index: u32) -> Option<(EpochTunn, Tai64n, SocketAddr)> {
        let i = self
            .slots
            .iter()
            .position(|s| matches!(&s.waiting, Waiting::Answered(t) if t.index == index))?;
        let slot = self.slots.remove(i);
        let (timestamp, src) = (slot.timestamp, slot.src);
        slot.into_tunn().map(|t| (t, timestamp, src))
    }

    /// Removes the parked entries for epoch tag `tag` that are still worth answering.
    pub fn take_parked(&mut self, tag: u32, now: Instant) -> Vec<Slot> {
        let (take, keep): (Vec<Slot>, Vec<Slot>) =
            std::mem::take(&mut self.slots).into_iter().partition(|s| {
                matches!(s.waiting, Waiting::Parked { epoch_tag, .. } if epoch_tag == tag)
                    && !s.expired(now)
            });
        self.slots = keep;
        take
    }

    /// Drops expired entries and those no longer above `record`; returns their Tunns.
    pub fn expire(&mut self, now: Instant, record: Option<Tai64n>) -> Vec<EpochTunn> {
        let (gone, keep): (Vec<Slot>, Vec<Slot>) = std::mem::take(&mut self.slots)
            .into_iter()
            .partition(|s| s.expired(now) || record.is_some_and(|r| s.timestamp <= r));
        self.slots = keep;
        gone.into_iter().filter_map(Slot::into_tunn).collect()
    }

    /// Everything, for a removed peer.
    pub fn clear(&mut self) -> Vec<EpochTunn> {
        std::mem::take(&mut self.slots)
            .into_iter()
            .filter_map(Slot::into_tunn)
            .collect()
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}
