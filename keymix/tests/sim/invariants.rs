//! The safety bookkeeping checked after every step (the checks themselves sit where the
//! outputs come out: driver.rs and world.rs).
//!
//! 1. Equal PSKs: two commits (one per side) of one exchange, or of one epoch derived from
//!    the same previous chain key C_{n-1} (a real chain: fresh secrets make it unique to
//!    one lineage), carry the same PSK. Epoch 1 derives from the public C_0, which every
//!    bootstrap shares, so it is matched by exchange; a split there shows as a chain
//!    mismatch at epoch 2, which the liveness check catches.
//! 2. No honest commit of a PSK a rogue endpoint derived, unless the policy let the rogue
//!    in (driver.rs, `check_commit`).
//! 3. No DecKeys KME request after a datagram that is forged, from a rogue the policy
//!    refuses, or a replay; a replay is never accepted as authenticated and changes no
//!    state (driver.rs, world.rs).
//! 4. The chain epoch never goes back except by reset or accepted bootstrap (driver.rs).
//! 5. No panic (the runner catches it with the seed), every drop counted (world.rs).

use std::collections::{BTreeMap, BTreeSet};

type Psk = [u8; 32];

#[derive(Default)]
pub struct Monitor {
    pub failure: Option<String>,
    /// Every PSK a rogue endpoint derived.
    pub rogue_psks: BTreeSet<Psk>,
    /// Honest commits of rogue-derived PSKs the policy allowed.
    pub hijacks: u64,
    /// Restarts without state, resets.
    pub lineage_breaks: u64,
    by_prev: BTreeMap<(u64, Psk), [Option<Psk>; 2]>,
    by_exchange: BTreeMap<(u64, [u8; 32], u32), [Option<Psk>; 2]>,
}

impl Monitor {
    pub fn lineage_break(&mut self) {
        self.lineage_breaks += 1;
    }

    /// Records an honest commit; returns the violation, if any.
    pub fn record_commit(
        &mut self,
        side: usize,
        epoch: u64,
        psk: Psk,
        prev: Option<Psk>,
        exchange: Option<(u64, [u8; 32], u32)>,
    ) -> Option<String> {
        let mut why = None;
        if let Some(id) = exchange {
            let slot = self.by_exchange.entry(id).or_default();
            if slot[1 - side].is_some_and(|other| other != psk) {
                why = Some(format!(
                    "invariant 1: the two sides derived different PSKs from one exchange \
                     (epoch {epoch}, init index {})",
                    id.2
                ));
            }
            slot[side] = Some(psk);
        }
        if let (Some(prev), true) = (prev, epoch >= 2) {
            let slot = self.by_prev.entry((epoch, prev)).or_default();
            if slot[1 - side].is_some_and(|other| other != psk) {
                why = Some(format!(
                    "invariant 1: the sides committed different PSKs for epoch {epoch} \
                     from the same chain C_{}",
                    epoch - 1
                ));
            }
            slot[side] = Some(psk);
        }
        why
    }
}
