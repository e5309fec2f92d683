//! Keys that the master SAE already has and that wait, at the slave's KME, for the slave.
//! A key leaves the store exactly once: when its designated slave asks for it.

use std::collections::{HashMap, HashSet};

use zeroize::Zeroizing;

struct Waiting {
    master_sae: String,
    slave_sae: String,
    key: Zeroizing<Vec<u8>>,
}

/// A key with its ID.
pub type IdentifiedKey = (String, Zeroizing<Vec<u8>>);

/// Why keys could not be handed out.
#[derive(Debug, PartialEq, Eq)]
pub enum TakeError {
    /// Unknown, already delivered, or asked for twice in one request.
    NotFound,
    /// The caller is not the key's designated slave, or names another master.
    NotAuthorized,
}

pub struct KeyStore {
    keys: HashMap<String, Waiting>,
    capacity: usize,
}

impl KeyStore {
    /// `capacity` bounds the memory a peer (or a master SAE that never tells its slave the
    /// key IDs) can make us hold.
    pub fn new(capacity: usize) -> Self {
        Self {
            keys: HashMap::new(),
            capacity,
        }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Store a batch pushed by the master's KME: all of it, or none of it.
    pub fn insert_batch(
        &mut self,
        master_sae: &str,
        slave_sae: &str,
        batch: Vec<IdentifiedKey>,
    ) -> Result<(), String> {
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
        for (id, key) in batch {
            self.keys.insert(
                id,
                Waiting {
                    master_sae: master_sae.to_owned(),
                    slave_sae: slave_sae.to_owned(),
                    key,
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
    ) -> Result<Vec<IdentifiedKey>, TakeError> {
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
