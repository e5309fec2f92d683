//! Recomputes every derivable value of a vector file from its inputs with the independent
//! formulas of vectors/spec.rs, so a vector that passes here is one another implementation
//! can reproduce from docs/PROTOCOL.md alone. A file holds one exchange (unprefixed names)
//! or several consecutive ones (names prefixed `exchange<j>.`, j from 1, after the shared
//! static values); vectors/verify_exchange.rs checks one exchange, vectors/verify_state.rs
//! the state files.

use std::collections::{BTreeMap, BTreeSet};

use super::spec::*;
use super::verify_exchange::{exchange, statics, Outcome};
use super::verify_state;

/// A vector file: `name = hex` lines. Every line must end up either declared an input or
/// checked against a recomputation. Names are looked up under `prefix`.
pub struct Vector {
    pub name: String,
    pub prefix: String,
    values: BTreeMap<String, Vec<u8>>,
    seen: BTreeSet<String>,
}

impl Vector {
    pub fn parse(name: &str, text: &str) -> Self {
        let values = super::values::parse(name, text);
        Self {
            name: name.into(),
            prefix: String::new(),
            values,
            seen: BTreeSet::new(),
        }
    }

    fn key(&self, k: &str) -> String {
        format!("{}{k}", self.prefix)
    }

    pub fn has(&self, k: &str) -> bool {
        self.values.contains_key(&self.key(k))
    }

    pub fn input(&mut self, k: &str) -> Option<Vec<u8>> {
        let k = self.key(k);
        let v = self.values.get(&k).cloned();
        if v.is_some() {
            self.seen.insert(k);
        }
        v
    }

    pub fn need(&mut self, k: &str) -> Vec<u8> {
        self.input(k)
            .unwrap_or_else(|| panic!("{}: no {}{k}", self.name, self.prefix))
    }

    /// Compares a recomputed value with the file's, when the file has it.
    pub fn check(&mut self, k: &str, computed: &[u8]) {
        let k = self.key(k);
        if let Some(v) = self.values.get(&k) {
            assert_eq!(
                hex(v),
                hex(computed),
                "{}: {k} differs from the recomputation",
                self.name
            );
            self.seen.insert(k);
        }
    }

    fn finish(&self) {
        for k in self.values.keys() {
            assert!(
                self.seen.contains(k),
                "{}: {k} is neither an input nor checked",
                self.name
            );
        }
    }
}

/// What a verified file showed, for the test that the set of files covers each case.
#[derive(Debug, Default)]
pub struct Summary {
    /// The exchanges' epochs, in file order.
    pub epochs: Vec<u64>,
    /// The initiator's static public key is bytewise larger than the responder's.
    pub larger_key_initiates: bool,
    /// Responder state files checked (after a Resp, after a Confirm).
    pub responder_states: usize,
    /// An epoch-1 exchange (keyed with C_0 under a bootstrap PSK) over the responder's
    /// chain of an earlier exchange in the file.
    pub bootstrap_over_chain: bool,
}

/// Recomputes the exchange(s) of `v` and compares.
pub fn verify(v: &mut Vector) -> Summary {
    let st = statics(v);
    let mut summary = Summary {
        larger_key_initiates: st.s_i > st.s_r,
        ..Summary::default()
    };
    if v.has("init") {
        let c_prev = v.input("c_prev").map(|c| arr32(&c));
        let out = exchange(v, &st, c_prev);
        verify_state::initiator(v, &st, &out);
        summary.epochs.push(out.n);
    } else {
        // Consecutive exchanges: each chain-keyed one is keyed with the C_n this check
        // computed for the one before; nothing of the chain is read from the file.
        let mut done: Vec<Outcome> = Vec::new();
        for j in 1.. {
            v.prefix = format!("exchange{j}.");
            if !v.has("init") {
                break;
            }
            let c_prev = match done.last() {
                // Epoch 1 is a bootstrap, keyed with C_0 (also over a chain).
                Some(prev) if v.epoch() != 1 => {
                    assert_eq!(v.epoch(), prev.n + 1, "{}: exchange {j}", v.name);
                    Some(prev.c_n)
                }
                _ => None,
            };
            let out = exchange(v, &st, c_prev);
            summary.responder_states += verify_state::responder(v, &st, &done, &out);
            if out.n == 1 && !done.is_empty() {
                assert!(!st.psk_b.is_empty(), "a bootstrap over a chain needs psk_b");
                summary.bootstrap_over_chain = true;
            }
            summary.epochs.push(out.n);
            done.push(out);
        }
        v.prefix.clear();
        assert!(done.len() >= 2, "{}: fewer than two exchanges", v.name);
    }
    v.finish();
    summary
}

impl Vector {
    /// The epoch of the Init under the current prefix (u64 little-endian at offset 8).
    fn epoch(&self) -> u64 {
        le64(&self.values[&self.key("init")][8..16])
    }
}
