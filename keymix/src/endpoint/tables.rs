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

/// The pseudonym table's key: a pseudonym's first 8 bytes. A pseudonym only routes an Init
/// to a peer and a slot; mac1 under that slot's key (and then the Init's AEAD) decides
/// whether the Init is the peer's, so matching on 64 of its 128 bits gives a forger
/// nothing: without the chain key it can no more hit 64 secret bits than 128. Two held
/// pseudonyms sharing a key (n²/2^65 for n held, about 1e-9 for a 1,000-peer hub's 190,000)
/// would cost one of them its Init, which the peer repeats with the next attempt number.
/// Half the key is half of what a hub holds per peer here (about 190 entries a peer: 21
/// minutes of bootstrap pseudonyms and the chain's), 17 instead of 33 bytes an entry.
type PseudonymKey = u64;

fn key_of(p: &Pseudonym) -> PseudonymKey {
    let mut k = [0u8; 8];
    k.copy_from_slice(&p[..8]);
    u64::from_le_bytes(k)
}

/// What the tables hold for one peer, to take it out again.
#[derive(Default)]
struct PeerRows {
    static_key: Option<[u8; 32]>,
    indices: Vec<u32>,
    chain_generation: Option<u64>,
    chain: Box<[PseudonymKey]>,
    boot_generation: Option<u64>,
    /// Bootstrap pseudonyms per minute of the window.
    boot: Vec<(u64, Box<[PseudonymKey]>)>,
    deadline: Option<Instant>,
}

#[derive(Default)]
pub(super) struct Tables {
    by_static: HashMap<[u8; 32], PeerId>,
    by_index: HashMap<u32, PeerId>,
    /// The peer as u32 (peers are counted from 0; one that does not fit has no pseudonyms
    /// here and so no version-2 Init routed to it, see [`insert_all`]).
    pseudonyms: HashMap<PseudonymKey, (u32, Slot)>,
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
        let (peer, slot) = self.pseudonyms.get(&key_of(p)).copied()?;
        Some((usize::try_from(peer).ok()?, slot))
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
        drop_all(&mut self.pseudonyms, peer, &row.chain);
        for (_, v) in &row.boot {
            drop_all(&mut self.pseudonyms, peer, v);
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

fn drop_all(table: &mut HashMap<PseudonymKey, (u32, Slot)>, peer: PeerId, keys: &[PseudonymKey]) {
    for k in keys {
        if table
            .get(k)
            .is_some_and(|(owner, _)| usize::try_from(*owner) == Ok(peer))
        {
            table.remove(k);
        }
    }
}

/// Adds `peer`'s pseudonyms; returns their keys, to take them out again (a boxed slice: no
/// spare capacity kept for every peer and minute).
fn insert_all(
    table: &mut HashMap<PseudonymKey, (u32, Slot)>,
    peer: PeerId,
    entries: Vec<(Pseudonym, Slot)>,
) -> Box<[PseudonymKey]> {
    let Ok(owner) = u32::try_from(peer) else {
        return Box::default();
    };
    entries
        .iter()
        .map(|(p, slot)| {
            let k = key_of(p);
            table.insert(k, (owner, *slot));
            k
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a hub pays per held pseudonym: 16 bytes an entry (plus hashbrown's control byte).
    #[test]
    fn a_pseudonym_entry_is_16_bytes() {
        assert_eq!(std::mem::size_of::<(PseudonymKey, (u32, Slot))>(), 16);
    }

    #[test]
    fn the_key_is_the_first_8_bytes_and_finds_the_peer() {
        let mut t = Tables::default();
        let p: Pseudonym = std::array::from_fn(|i| i as u8);
        let entries = vec![(p, Slot::Boot(crate::session::PskChoice::Current))];
        let keys = insert_all(&mut t.pseudonyms, 7, entries);
        assert_eq!(&*keys, &[u64::from_le_bytes([0, 1, 2, 3, 4, 5, 6, 7])]);
        assert_eq!(t.pseudonym(&p).map(|(peer, _)| peer), Some(7));
        drop_all(&mut t.pseudonyms, 6, &keys);
        assert!(t.pseudonym(&p).is_some(), "another peer's drop keeps it");
        drop_all(&mut t.pseudonyms, 7, &keys);
        assert!(t.pseudonym(&p).is_none());
    }
}
