//! Bounded IP reassembly for the audit. etherparse's `IpDefragBuf` rebuilds one packet;
//! its pool is unbounded (the crate says so), so the connection handling is here: at most
//! `MAX_PENDING` packets in reassembly (each at most 64 KiB by the IP length fields), and
//! a packet whose last fragment is older than `TIMEOUT_SECS` of capture time is given up.
//! Every packet given up is counted, so a fragment flood in the capture shows in the report.

use std::collections::HashMap;
use std::net::IpAddr;

use etherparse::defrag::IpDefragBuf;
use etherparse::{IpFragOffset, IpNumber};

/// Packets in reassembly at once; the oldest is given up to make room.
pub const MAX_PENDING: usize = 64;
/// Capture seconds after its latest fragment that a packet is given up (Linux's
/// `ipfrag_time` default).
pub const TIMEOUT_SECS: u64 = 30;

/// Which fragments belong together (RFC 791 / RFC 8200), plus where they were captured.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FragKey {
    pub interface: u32,
    pub vlans: Vec<u16>,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub id: u32,
    pub proto: u8,
}

/// One fragment as read from the capture.
pub struct Fragment<'a> {
    pub offset: IpFragOffset,
    pub more: bool,
    pub payload: &'a [u8],
}

pub enum Added {
    /// The packet is complete: its whole IP payload.
    Complete(Vec<u8>),
    /// More fragments are needed.
    Pending,
    /// The fragment contradicts the others (overlap past the end, bad length): the
    /// packet is dropped.
    Invalid,
}

#[derive(Default)]
pub struct Defrag {
    pending: HashMap<FragKey, (IpDefragBuf, u64)>,
    /// Packets given up: timed out, evicted, or still unfinished at the end.
    pub given_up: u64,
}

impl Defrag {
    pub fn add(&mut self, key: FragKey, time: u64, frag: Fragment<'_>) -> Added {
        self.expire(time);
        if !self.pending.contains_key(&key) && self.pending.len() >= MAX_PENDING {
            self.evict_oldest();
        }
        let (buf, last) = self.pending.entry(key.clone()).or_insert_with(|| {
            (
                IpDefragBuf::new(IpNumber(key.proto), Vec::new(), Vec::new()),
                time,
            )
        });
        *last = time;
        if buf.add(frag.offset, frag.more, frag.payload).is_err() {
            self.pending.remove(&key);
            return Added::Invalid;
        }
        if !buf.is_complete() {
            return Added::Pending;
        }
        match self.pending.remove(&key) {
            Some((buf, _)) => Added::Complete(buf.take_bufs().0),
            None => Added::Pending,
        }
    }

    /// Gives up packets whose latest fragment is more than `TIMEOUT_SECS` before `now`.
    fn expire(&mut self, now: u64) {
        let before = self.pending.len();
        self.pending
            .retain(|_, (_, last)| now.saturating_sub(*last) <= TIMEOUT_SECS);
        self.given_up += (before - self.pending.len()) as u64;
    }

    fn evict_oldest(&mut self) {
        let oldest = self
            .pending
            .iter()
            .min_by_key(|(_, (_, last))| *last)
            .map(|(k, _)| k.clone());
        if let Some(k) = oldest {
            self.pending.remove(&k);
            self.given_up += 1;
        }
    }

    /// The end of the capture: whatever is still in reassembly is given up.
    pub fn finish(&mut self) {
        self.given_up += self.pending.len() as u64;
        self.pending.clear();
    }
}
