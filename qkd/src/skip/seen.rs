//! keyIds this client has already seen delivered. SKIP keys are single-use: a KP that hands
//! out a keyId twice, or a request for a keyId we already hold, means key reuse, and a
//! reused QKD key must never enter an epoch. Bounded: the oldest IDs are forgotten first.

use std::collections::{HashSet, VecDeque};

/// About a day of epochs at the default 120 s, for a few dozen peers.
pub const CAPACITY: usize = 4096;

#[derive(Default)]
pub struct SeenKeyIds {
    set: HashSet<String>,
    order: VecDeque<String>,
}

impl SeenKeyIds {
    /// Whether `canonical` (see `model::key_id_canonical`) was seen.
    pub fn contains(&self, canonical: &str) -> bool {
        self.set.contains(canonical)
    }

    /// Records `canonical`; false if it was already there.
    pub fn insert(&mut self, canonical: String) -> bool {
        if !self.set.insert(canonical.clone()) {
            return false;
        }
        self.order.push_back(canonical);
        while self.order.len() > CAPACITY {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_a_bounded_window() {
        let mut seen = SeenKeyIds::default();
        assert!(seen.insert("a".into()));
        assert!(!seen.insert("a".into()));
        for i in 0..CAPACITY {
            seen.insert(format!("k{i}"));
        }
        assert!(!seen.contains("a"));
        assert_eq!(seen.set.len(), CAPACITY);
    }
}
