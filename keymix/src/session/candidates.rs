//! Which chain keys (and bootstrap PSKs) an incoming Init may be keyed with, and the one
//! that authenticates it (docs/PROTOCOL.md, "State machine", Responder step 1). Each check
//! costs one MAC: no X25519, ML-KEM or KME work happens before an Init authenticated.

use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use super::bootstrap_psk::PskChoice;
use super::diagnosis::Unverified;
use super::hiding::Slot;
use super::responder::BOOTSTRAP_MAX_CLOCK_SKEW;
use super::Session;
use crate::counters::DropReason;
use crate::frame::{InitFrame, Named};
use crate::mac;
use crate::message::Init;
use crate::schedule::{self, AuthKeys, Secret32};
use crate::shared::Shared;
use crate::Version;

/// Which chain key authenticated an Init.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum ChainChoice {
    /// C_n for epoch n+1 (C_0 for epoch 1 while we hold no chain).
    Current,
    /// The chain of the exchange we answered and still hold: the peer completed it.
    Tentative,
    /// Our previous chain for our current epoch: the peer missed our Confirm.
    Previous,
    /// C_0 while we hold a chain: the peer lost its state.
    Bootstrap,
}

/// The chain key, bootstrap PSK and auth keys that authenticated an Init.
pub(super) struct Matched {
    pub choice: ChainChoice,
    pub chain: Secret32,
    pub psk: PskChoice,
    pub auth: AuthKeys,
}

impl Matched {
    /// Keyed with C_0: a bootstrap exchange.
    pub fn is_bootstrap(&self, has_chain: bool) -> bool {
        match self.choice {
            ChainChoice::Bootstrap => true,
            ChainChoice::Current => !has_chain,
            ChainChoice::Tentative | ChainChoice::Previous => false,
        }
    }
}

impl Session {
    /// Candidate (choice, chain key, PSK) triples for an Init of `epoch` in `version`, most
    /// likely first: the configured bootstrap PSK before the previous one during a
    /// rotation. A version-2 Init's pseudonym (`named`) leaves only the candidate it names.
    pub(super) fn candidates(
        &self,
        epoch: u64,
        version: Version,
        named: Option<Named>,
    ) -> Vec<(ChainChoice, Secret32, PskChoice)> {
        let mut out = Vec::with_capacity(4);
        for (psk, p) in self.psks.accepted() {
            let chain0 = p.chain0(version);
            if epoch == self.state.epoch + 1 {
                let chain = if self.state.has_chain() {
                    &self.state.chain
                } else {
                    &**chain0
                };
                out.push((ChainChoice::Current, Zeroizing::new(*chain), psk));
            }
            if let Some(t) = &self.state.tentative {
                if epoch == t.epoch + 1 {
                    out.push((ChainChoice::Tentative, Zeroizing::new(t.chain), psk));
                }
            }
            if let Some(prev) = &self.state.prev_chain {
                if self.state.has_chain() && epoch == self.state.epoch {
                    out.push((ChainChoice::Previous, Zeroizing::new(*prev), psk));
                }
            }
            if epoch == 1 && self.state.has_chain() {
                out.push((ChainChoice::Bootstrap, chain0.clone(), psk));
            }
        }
        let has_chain = self.state.has_chain();
        out.retain(|(choice, _, psk)| {
            let c0 = matches!(choice, ChainChoice::Bootstrap)
                || (*choice == ChainChoice::Current && !has_chain);
            match named {
                None => true,
                Some(Named::Slot(Slot::Chain(c, p))) => *choice == c && *psk == p && !c0,
                Some(Named::Slot(Slot::Boot(p))) => c0 && *psk == p,
                Some(Named::StaticOnlyBootstrap) => c0 && self.psks.get(*psk).psk.is_none(),
            }
        });
        out
    }

    /// The candidate whose auth key verifies the Init's tag over `covered` (the bytes
    /// before the tag), if any.
    fn authenticate(
        &self,
        static_public: &[u8; 32],
        version: Version,
        init: &Init,
        covered: &[u8],
        named: Option<Named>,
    ) -> Option<Matched> {
        self.candidates(init.epoch, version, named)
            .into_iter()
            .find_map(|(choice, chain, psk)| {
                let auth = schedule::auth_keys_with(
                    version.labels(),
                    &chain,
                    &self.ss_static,
                    self.bootstrap_psk(psk),
                    &self.peer_public,
                    static_public,
                );
                mac::verify(&auth.i2r, covered, &init.auth).then_some(Matched {
                    choice,
                    chain,
                    psk,
                    auth,
                })
            })
    }

    /// Finds the chain key (and bootstrap PSK) that authenticates the Init; what fails is
    /// counted as unverified and changes nothing else.
    pub(super) fn authenticate_init(
        &mut self,
        sh: &Shared,
        now: Instant,
        frame: &InitFrame<'_>,
    ) -> Result<Matched, DropReason> {
        let init = &frame.init;
        let named = frame.hidden.as_ref().map(|h| h.named);
        if self.candidates(init.epoch, frame.version, named).is_empty() {
            self.observe_unverified(now, Unverified::UnknownEpoch { epoch: init.epoch });
            return Err(if !self.state.has_chain() && init.epoch > 1 {
                DropReason::ChainMismatch
            } else {
                DropReason::StaleEpoch
            });
        }
        let found = self.authenticate(
            &sh.static_public,
            frame.version,
            init,
            frame.auth_covered,
            named,
        );
        match found {
            Some(m) => Ok(m),
            None => {
                self.observe_unverified(now, Unverified::BadAuth { epoch: init.epoch });
                Err(DropReason::BadAuth)
            }
        }
    }

    /// A bootstrap (C_0-keyed) Init: within the clock window, and over an existing chain
    /// only with a bootstrap PSK. A static-key-only bootstrap proves nothing after
    /// bootstrap, so what it shows is only counted.
    pub(super) fn check_bootstrap(
        &mut self,
        sh: &Shared,
        now: Instant,
        init: &Init,
        m: &Matched,
    ) -> Result<(), DropReason> {
        let by_psk = self.bootstrap_psk(m.psk).is_some();
        let wall = sh.timestamp_now(now);
        let skew = Duration::from_nanos(wall.abs_diff(init.timestamp));
        if skew > BOOTSTRAP_MAX_CLOCK_SKEW {
            if by_psk {
                self.observe_verified(now, super::diagnosis::clock_skew(skew));
            } else {
                self.observe_unverified(now, Unverified::ClockSkew(skew));
            }
            return Err(DropReason::ClockSkew);
        }
        if m.choice == ChainChoice::Bootstrap && !by_psk {
            // C_0 is public without a bootstrap PSK: accepting it while we hold a chain
            // would let whoever holds (or computes) a static key reset the chain.
            self.observe_unverified(now, Unverified::BootstrapRefused);
            return Err(DropReason::ChainMismatch);
        }
        Ok(())
    }
}
