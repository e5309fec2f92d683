//! Version 2's hiding keys as one peer's session holds them (docs/PROTOCOL.md, "Hiding
//! keys"): the pseudonyms the peer's Inits may carry, which the endpoint keeps in its table
//! to find the peer without trying every peer's keys, and the keys that hide our own Inits.

use boringtun::x25519::{PublicKey, StaticSecret};

use super::bootstrap_psk::PskChoice;
use super::candidates::ChainChoice;
use super::Session;
use crate::counters::DropReason;
use crate::hide::{self, HidePrk, ATTEMPTS, PSEUDONYM_LEN};
use crate::schedule::{self, Secret32};
use crate::shared::Shared;
use crate::Version;

/// A candidate chain key (with its bootstrap PSK) that a pseudonym names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    /// Keyed with a chain key we hold: current C_m, the tentative one, or C_{m-1}.
    Chain(ChainChoice, PskChoice),
    /// A bootstrap keyed with C_0 of this bootstrap PSK.
    Boot(PskChoice),
}

pub(crate) type Pseudonym = [u8; PSEUDONYM_LEN];

/// How our own version-2 Init is hidden.
pub(super) struct OwnHiding {
    pub pseudonym: Pseudonym,
    pub mac1_key: Secret32,
    pub k_init: Secret32,
}

impl Session {
    /// (chain, bootstrap) generations: the first changes whenever a chain key the peer's
    /// pseudonyms derive from may have changed (every persisted change of the state), the
    /// second when the bootstrap PSKs (or the versions spoken) change. The endpoint
    /// recomputes the pseudonyms it holds for the peer when either moves.
    pub(crate) fn hiding_generation(&self) -> (u64, u64) {
        (self.chain_generation.get(), self.boot_generation.get())
    }

    pub(super) fn chain_keys_changed(&self) {
        self.chain_generation
            .set(self.chain_generation.get().wrapping_add(1));
    }

    pub(super) fn psks_changed(&self) {
        self.chain_keys_changed();
        self.boot_generation
            .set(self.boot_generation.get().wrapping_add(1));
    }

    /// The exchange indices the peer's messages may name now: our live Init's, the Init
    /// we confirmed last (its Resp may come again), our live Resp's.
    pub(crate) fn live_indices(&self) -> [Option<u32>; 3] {
        [
            self.initiating.as_ref().and_then(|i| i.init_index()),
            self.last_confirm.as_ref().map(|c| c.init_index),
            self.responding.as_ref().and_then(|r| r.resp_index()),
        ]
    }

    /// Whether version 2 may be spoken with this peer.
    pub(crate) fn speaks_v2(&self) -> bool {
        self.cfg.max_version >= Version::V2
    }

    /// The chain keys a chain-keyed Init of the peer's may be keyed with now.
    fn chain_slots(&self) -> Vec<(ChainChoice, &[u8; 32])> {
        let mut out = Vec::with_capacity(3);
        if self.state.has_chain() {
            out.push((ChainChoice::Current, &self.state.chain));
            if let Some(prev) = &self.state.prev_chain {
                out.push((ChainChoice::Previous, prev));
            }
        }
        if let Some(t) = &self.state.tentative {
            out.push((ChainChoice::Tentative, &t.chain));
        }
        out
    }

    /// Every pseudonym the peer's chain-keyed Inits may carry now (j = 0..7 for each
    /// chain key we hold and each bootstrap PSK we accept).
    pub(crate) fn chain_pseudonyms(&self) -> Vec<(Pseudonym, Slot)> {
        let mut out = Vec::new();
        if !self.speaks_v2() {
            return out;
        }
        for (psk, p) in self.psks.accepted() {
            for (choice, chain) in self.chain_slots() {
                let prk = HidePrk::new(chain, p.psk.as_deref());
                for j in 0..ATTEMPTS {
                    out.push((
                        prk.pseudonym(&self.peer_public, j),
                        Slot::Chain(choice, psk),
                    ));
                }
            }
        }
        out
    }

    /// The pseudonyms of the peer's bootstrap Inits made in `minute` (only with a
    /// bootstrap PSK: without one a bootstrap takes the DH path).
    pub(crate) fn boot_pseudonyms(&self, minute: u64) -> Vec<(Pseudonym, Slot)> {
        let mut out = Vec::new();
        if !self.speaks_v2() {
            return out;
        }
        for (psk, p) in self.psks.accepted() {
            if let Some(key) = p.psk.as_deref() {
                let prk = HidePrk::new(p.chain0(Version::V2), Some(key));
                for j in 0..ATTEMPTS {
                    out.push((
                        prk.boot_pseudonym(&self.peer_public, minute, j),
                        Slot::Boot(psk),
                    ));
                }
            }
        }
        out
    }

    /// PRK_hide of the chain key a slot names (None: we no longer hold it).
    pub(crate) fn hide_prk(&self, slot: Slot) -> Option<HidePrk> {
        let (chain, psk) = match slot {
            Slot::Chain(choice, psk) => {
                let chain = self
                    .chain_slots()
                    .into_iter()
                    .find(|(c, _)| *c == choice)
                    .map(|(_, k)| k)?;
                (chain, psk)
            }
            Slot::Boot(psk) => (&**self.psks.get(psk).chain0(Version::V2), psk),
        };
        Some(HidePrk::new(chain, self.psks.get(psk).psk.as_deref()))
    }

    /// K_init of a peer's bootstrap Init that a boot pseudonym named: the DH with our
    /// static key and C_0 of that PSK.
    pub(crate) fn boot_init_key(
        &self,
        sh: &Shared,
        psk: PskChoice,
        e_init: &[u8; 32],
    ) -> Result<Secret32, DropReason> {
        let dh = sh.static_secret.diffie_hellman(&PublicKey::from(*e_init));
        if !dh.was_contributory() {
            return Err(DropReason::BadKey);
        }
        Ok(hide::boot_init_key(
            self.psks.get(psk).chain0(Version::V2),
            dh.as_bytes(),
            e_init,
            &sh.static_public,
        ))
    }

    /// The next attempt number for our Inits of `key` (an epoch, or a bootstrap's minute):
    /// 0 for the first, then 1, 2, ... mod 8.
    fn next_attempt(&mut self, key: (bool, u64)) -> u8 {
        let j = match self.attempts {
            Some((k, j)) if k == key => (j + 1) % ATTEMPTS,
            _ => 0,
        };
        self.attempts = Some((key, j));
        j
    }

    /// How our version-2 Init keyed with `chain` (C_0 for a bootstrap) is hidden.
    pub(super) fn own_hiding(
        &mut self,
        sh: &mut Shared,
        bootstrap: bool,
        chain: &[u8; 32],
        psk: PskChoice,
        e_secret: &StaticSecret,
        timestamp: u64,
    ) -> OwnHiding {
        let e_init = PublicKey::from(e_secret).to_bytes();
        let e_init = &e_init;
        let psk_b = self.psks.get(psk).psk.clone();
        let prk = HidePrk::new(chain, psk_b.as_deref());
        if !bootstrap {
            let j = self.next_attempt((false, self.state.epoch + 1));
            return OwnHiding {
                pseudonym: prk.pseudonym(&sh.static_public, j),
                mac1_key: prk.mac1_key(),
                k_init: prk.init_key(e_init),
            };
        }
        let dh = e_secret.diffie_hellman(&PublicKey::from(self.peer_public));
        let k_init = hide::boot_init_key(chain, dh.as_bytes(), e_init, &self.peer_public);
        match psk_b {
            Some(_) => {
                let minute = hide::minute_of(timestamp);
                let j = self.next_attempt((true, minute));
                OwnHiding {
                    pseudonym: prk.boot_pseudonym(&sh.static_public, minute, j),
                    mac1_key: prk.mac1_key(),
                    k_init,
                }
            }
            None => {
                let mut pseudonym = [0u8; PSEUDONYM_LEN];
                sh.rng.fill(&mut pseudonym);
                OwnHiding {
                    pseudonym,
                    mac1_key: zeroize::Zeroizing::new(schedule::mac1_key_with(
                        Version::V2.labels(),
                        &self.peer_public,
                    )),
                    k_init,
                }
            }
        }
    }
}
