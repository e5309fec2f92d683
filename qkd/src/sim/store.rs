//! Keys that the master SAE already has and that wait, at the slave's KME, for the slave.
//! A key leaves the store exactly once: when its designated slave asks for it, or when it
//! has waited longer than the time to live (a slave that never asks must not fill the
//! store for good: a full store makes every further `enc_keys` fail).

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

struct Waiting {
    master_sae: String,
    slave_sae: String,
    key: Zeroizing<Vec<u8>>,
    expires: Instant,
}

/// A key with its ID.
pub type IdentifiedKey = (String, Zeroizing<Vec<u8>>);

/// Why keys could not be handed out.
#[derive(Debug, PartialEq, Eq)]
pub enum TakeError {
    /// Unknown, already delivered, expired, or asked for twice in one request.
    NotFound,
    /// The caller is not the key's designated slave, or names another master.
    NotAuthorized,
}

pub struct KeyStore {
    keys: HashMap<String, Waiting>,
    /// Key IDs in insertion order with their expiry (non-decreasing, one TTL for all), so
    /// expiring is a pop from the front. Entries of keys already taken are skipped then.
    expiry: VecDeque<(Instant, String)>,
    capacity: usize,
    ttl: Duration,
}

impl KeyStore {
    /// `capacity` bounds the memory a peer (or a master SAE that never tells its slave the
    /// key IDs) can make us hold; `ttl` how long a key waits for its slave.
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        Self {
            keys: HashMap::new(),
            expiry: VecDeque::new(),
            capacity,
            ttl,
        }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Drops (and so wipes) every key whose time to live has run out at `now`.
    pub fn expire(&mut self, now: Instant) {
        while let Some((expires, _)) = self.expiry.front() {
            if *expires > now {
                break;
            }
            if let Some((expires, id)) = self.expiry.pop_front() {
                // The ID may have been taken (and, in theory, pushed again later).
                if self.keys.get(&id).is_some_and(|w| w.expires == expires) {
                    self.keys.remove(&id);
                }
            }
        }
        // Taken keys leave their entry behind until it expires; keep the queue in
        // proportion to the store when keys are fetched much faster than they expire.
        if self.expiry.len() > self.capacity.saturating_mul(2).max(1024) {
            let keys = &self.keys;
            self.expiry
                .retain(|(e, id)| keys.get(id).is_some_and(|w| w.expires == *e));
        }
    }

    /// Store a batch pushed by the master's KME at `now`: all of it, or none of it.
    pub fn insert_batch(
        &mut self,
        master_sae: &str,
        slave_sae: &str,
        batch: Vec<IdentifiedKey>,
        now: Instant,
    ) -> Result<(), String> {
        self.expire(now);
        if self.keys.len().saturating_add(batch.len()) > self.capacity {
            return Err(format!(
                "key store full ({} of {} keys waiting for their slave)",
                self.keys.len(),
                self.capacity
            ));
        }
        let mut seen = HashSet::new();
        for (id, _) in &batch {
            if self.keys.contains_key(id) || !seen.insert(id.as_str()) {
                return Err(format!("duplicate key_ID {id}"));
            }
        }
        let expires = now + self.ttl;
        for (id, key) in batch {
            self.expiry.push_back((expires, id.clone()));
            self.keys.insert(
                id,
                Waiting {
                    master_sae: master_sae.to_owned(),
                    slave_sae: slave_sae.to_owned(),
                    key,
                    expires,
                },
            );
        }
        Ok(())
    }

    /// Hand out `ids` to `caller`, who names `master_sae` as the master: all of them (removed
    /// from the store), or none.
    pub fn take(
        &mut self,
        caller: &str,
        master_sae: &str,
        ids: &[String],
        now: Instant,
    ) -> Result<Vec<IdentifiedKey>, TakeError> {
        self.expire(now);
        let mut seen = HashSet::new();
        for id in ids {
            let waiting = self.keys.get(id).ok_or(TakeError::NotFound)?;
            if !seen.insert(id.as_str()) {
                return Err(TakeError::NotFound);
            }
            if waiting.slave_sae != caller || waiting.master_sae != master_sae {
                return Err(TakeError::NotAuthorized);
            }
        }
        Ok(ids
            .iter()
            .filter_map(|id| self.keys.remove(id).map(|w| (id.clone(), w.key)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(300);

    fn key(id: &str) -> IdentifiedKey {
        (id.to_owned(), Zeroizing::new(vec![7u8; 32]))
    }

    #[test]
    fn unfetched_keys_expire_and_free_the_store() {
        let t0 = Instant::now();
        let mut store = KeyStore::new(2, TTL);
        store
            .insert_batch("A", "B", vec![key("k1"), key("k2")], t0)
            .unwrap();
        // Full: the slave never fetched.
        assert!(store
            .insert_batch("A", "B", vec![key("k3")], t0 + TTL / 2)
            .is_err());
        // Just before the TTL the keys are still there and can be fetched.
        let just_before = t0 + TTL - Duration::from_millis(1);
        assert_eq!(
            store
                .take("B", "A", &["k1".to_owned()], just_before)
                .unwrap()
                .len(),
            1
        );
        // At the TTL the rest is gone, and the store takes new keys again.
        assert_eq!(
            store.take("B", "A", &["k2".to_owned()], t0 + TTL),
            Err(TakeError::NotFound)
        );
        assert_eq!(store.len(), 0);
        store
            .insert_batch("A", "B", vec![key("k3"), key("k4")], t0 + TTL)
            .unwrap();
        assert_eq!(store.len(), 2);
    }

    #[test]
    fn a_taken_then_repushed_id_keeps_its_new_expiry() {
        let t0 = Instant::now();
        let mut store = KeyStore::new(10, TTL);
        store.insert_batch("A", "B", vec![key("k")], t0).unwrap();
        store.take("B", "A", &["k".to_owned()], t0).unwrap();
        let later = t0 + TTL / 2;
        store.insert_batch("A", "B", vec![key("k")], later).unwrap();
        store.expire(t0 + TTL);
        assert_eq!(store.len(), 1);
        store.expire(later + TTL);
        assert_eq!(store.len(), 0);
    }

    #[test]
    fn the_expiry_queue_stays_bounded_when_keys_are_fetched_at_once() {
        let t0 = Instant::now();
        let mut store = KeyStore::new(1, TTL);
        for i in 0..5000 {
            let id = format!("k{i}");
            store.insert_batch("A", "B", vec![key(&id)], t0).unwrap();
            store.take("B", "A", &[id], t0).unwrap();
        }
        assert!(store.expiry.len() <= 1025, "{}", store.expiry.len());
    }
}
