//! The endpoint's lookup tables: from a static public key, an exchange index or a
//! version-2 pseudonym to the peer, and the peers' timer deadlines in order. A datagram
//! costs one hash lookup whatever the number of peers; a timer wakes only the sessions
//! that are due. Each table is brought up to date from the session after every call into
//! it ([`Tables::sync`]), so no session has to know the tables exist.

use std::collections::{BTreeSet, HashMap};
use std::ops::RangeInclusive;
use std::time::Instant;

use crate::event::PeerId;
use crate::session::{Pseudonym, Session, Slot};

/// What the tables hold for one peer, to take it out again.
#[derive(Default)]
struct PeerRows {
    static_key: Option<[u8; 32]>,
    indices: Vec<u32>,
    chain_generation: Option<u64>,
    chain: Vec<Pseudonym>,
    boot_generation: Option<u64>,
    /// Bootstrap pseudonyms per minute of the window.
    boot: Vec<(u64, Vec<Pseudonym>)>,
    deadline: Option<Instant>,
}

#[derive(Default)]
pub(super) struct Tables {
    by_static: HashMap<[u8; 32], PeerId>,
    by_index: HashMap<u32, PeerId>,
    pseudonyms: HashMap<Pseudonym, (PeerId, Slot)>,
    deadlines: BTreeSet<(Instant, PeerId)>,
    rows: Vec<PeerRows>,
    /// The minutes whose bootstrap pseudonyms are held (the bootstrap clock window).
    window: Option<RangeInclusive<u64>>,
}

impl Tables {
    pub fn peer_by_static(&self, key: &[u8; 32]) -> Option<PeerId> {
        self.by_static.get(key).copied()
    }

    pub fn peer_by_index(&self, index: u32) -> Option<PeerId> {
        self.by_index.get(&index).copied()
    }

    pub fn pseudonym(&self, p: &Pseudonym) -> Option<(PeerId, Slot)> {
        self.pseudonyms.get(p).copied()
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|(t, _)| *t)
    }

    /// The peers whose deadline has come.
    pub fn due(&self, now: Instant) -> Vec<PeerId> {
        self.deadlines
            .iter()
            .take_while(|(t, _)| *t <= now)
            .map(|(_, p)| *p)
            .collect()
    }

    fn row(&mut self, peer: PeerId) -> &mut PeerRows {
        if self.rows.len() <= peer {
            self.rows.resize_with(peer + 1, PeerRows::default);
        }
        &mut self.rows[peer]
    }

    /// Takes every row of `peer` out (a removed peer).
    pub fn remove(&mut self, peer: PeerId) {
        let Some(row) = self.rows.get_mut(peer).map(std::mem::take) else {
            return;
        };
        if let Some(k) = row.static_key {
            self.by_static.remove(&k);
        }
        for i in row.indices {
            if self.by_index.get(&i) == Some(&peer) {
                self.by_index.remove(&i);
            }
        }
        for p in row.chain.iter().chain(row.boot.iter().flat_map(|(_, v)| v)) {
            if self
                .pseudonyms
                .get(p)
                .is_some_and(|(owner, _)| *owner == peer)
            {
                self.pseudonyms.remove(p);
            }
        }
        if let Some(t) = row.deadline {
            self.deadlines.remove(&(t, peer));
        }
    }

    /// Brings `peer`'s rows up to date with its session.
    pub fn sync(&mut self, peer: PeerId, s: &Session) {
        let window = self.window.clone();
        let by_index = &mut self.by_index;
        let pseudonyms = &mut self.pseudonyms;
        let deadlines = &mut self.deadlines;
        if self.rows.len() <= peer {
            self.rows.resize_with(peer + 1, PeerRows::default);
        }
        let Some(row) = self.rows.get_mut(peer) else {
            return;
        };
        if row.static_key.is_none() {
            row.static_key = Some(*s.public_key());
            self.by_static.insert(*s.public_key(), peer);
        }
        let indices: Vec<u32> = s.live_indices().into_iter().flatten().collect();
        if indices != row.indices {
            for i in &row.indices {
                if by_index.get(i) == Some(&peer) {
                    by_index.remove(i);
                }
            }
            for i in &indices {
                by_index.insert(*i, peer);
            }
            row.indices = indices;
        }
        let (chain_gen, boot_gen) = s.hiding_generation();
        if row.chain_generation != Some(chain_gen) {
            drop_all(pseudonyms, peer, &row.chain);
            row.chain = insert_all(pseudonyms, peer, s.chain_pseudonyms());
            row.chain_generation = Some(chain_gen);
        }
        if row.boot_generation != Some(boot_gen) {
            for (_, v) in std::mem::take(&mut row.boot) {
                drop_all(pseudonyms, peer, &v);
            }
            for minute in window.into_iter().flatten() {
                let v = insert_all(pseudonyms, peer, s.boot_pseudonyms(minute));
                row.boot.push((minute, v));
            }
            row.boot_generation = Some(boot_gen);
        }
        let deadline = s.poll_timeout();
        if deadline != row.deadline {
            if let Some(t) = row.deadline {
                deadlines.remove(&(t, peer));
            }
            if let Some(t) = deadline {
                deadlines.insert((t, peer));
            }
            row.deadline = deadline;
        }
    }

    /// Moves the bootstrap window to `window` (the minutes within the bootstrap clock
    /// window of our clock): drops the minutes that left it, adds those that entered.
    pub fn set_window<'a>(
        &mut self,
        window: RangeInclusive<u64>,
        sessions: impl Iterator<Item = (PeerId, &'a Session)>,
    ) {
        if self.window.as_ref() == Some(&window) {
            return;
        }
        let pseudonyms = &mut self.pseudonyms;
        for (peer, row) in self.rows.iter_mut().enumerate() {
            row.boot.retain(|(m, v)| {
                let keep = window.contains(m);
                if !keep {
                    drop_all(pseudonyms, peer, v);
                }
                keep
            });
        }
        for (peer, s) in sessions {
            if let Some(row) = self.rows.get_mut(peer) {
                for minute in window.clone() {
                    if !row.boot.iter().any(|(m, _)| *m == minute) {
                        let v = insert_all(pseudonyms, peer, s.boot_pseudonyms(minute));
                        row.boot.push((minute, v));
                    }
                }
            }
        }
        self.window = Some(window);
    }

    /// Makes sure `peer` has a row (a new peer before its first sync).
    pub fn add(&mut self, peer: PeerId) {
        self.row(peer);
    }
}

fn drop_all(table: &mut HashMap<Pseudonym, (PeerId, Slot)>, peer: PeerId, keys: &[Pseudonym]) {
    for p in keys {
        if table.get(p).is_some_and(|(owner, _)| *owner == peer) {
            table.remove(p);
        }
    }
}

fn insert_all(
    table: &mut HashMap<Pseudonym, (PeerId, Slot)>,
    peer: PeerId,
    entries: Vec<(Pseudonym, Slot)>,
) -> Vec<Pseudonym> {
    entries
        .into_iter()
        .map(|(p, slot)| {
            table.insert(p, (peer, slot));
            p
        })
        .collect()
}
