//! The peer's bootstrap PSK and its rotation (docs/PROTOCOL.md, "Bootstrap PSK rotation").
//!
//! The PSK enters C_0 and every auth key, so a side that reloads a new one cannot talk to a
//! peer still holding the old one. During a rotation the side that changed keeps the old
//! PSK as *previous*: as responder it accepts an Init under either, as initiator it tries
//! the new one first and the previous one on its next Init if the first goes unanswered.
//! The first exchange authenticated under the new PSK proves the peer holds it too, and the
//! previous one is forgotten. Rotating on both sides, in either order, never splits a pair.

use zeroize::Zeroizing;

use super::initiator::Initiation;
use super::responder::Responding;
use super::Session;

use crate::schedule::{self, Secret32};
use crate::Version;

/// Which of the two PSKs authenticated (or keys) a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PskChoice {
    Current,
    Previous,
}

/// One bootstrap PSK (or none) and the C_0 it gives in each protocol version.
pub(crate) struct BootstrapPsk {
    pub psk: Option<Secret32>,
    chain0_v1: Secret32,
    chain0_v2: Secret32,
}

impl BootstrapPsk {
    fn new(psk: Option<Secret32>) -> Self {
        let chain0_v1 = schedule::chain0_with(Version::V1.labels(), psk.as_deref());
        let chain0_v2 = schedule::chain0_with(Version::V2.labels(), psk.as_deref());
        Self {
            psk,
            chain0_v1,
            chain0_v2,
        }
    }

    /// C_0 of `version` (its labels differ, so does C_0).
    pub fn chain0(&self, version: Version) -> &Secret32 {
        match version {
            Version::V1 => &self.chain0_v1,
            Version::V2 => &self.chain0_v2,
        }
    }

    fn same_as(&self, other: Option<&[u8; 32]>) -> bool {
        match (self.psk.as_deref(), other) {
            (None, None) => true,
            (Some(a), Some(b)) => bool::from(subtle::ConstantTimeEq::ct_eq(&a[..], &b[..])),
            _ => false,
        }
    }
}

pub(crate) struct BootstrapPsks {
    current: BootstrapPsk,
    previous: Option<BootstrapPsk>,
    /// Which one our next Init is keyed with while a rotation is under way.
    next_try: PskChoice,
}

impl BootstrapPsks {
    pub fn new(psk: Option<Zeroizing<[u8; 32]>>) -> Self {
        Self {
            current: BootstrapPsk::new(psk),
            previous: None,
            next_try: PskChoice::Current,
        }
    }

    /// A reloaded config's PSK. Returns whether it changed; if so the old one stays
    /// accepted until the peer proves it holds the new one.
    pub fn update(&mut self, psk: Option<Zeroizing<[u8; 32]>>) -> bool {
        if self.current.same_as(psk.as_deref()) {
            return false;
        }
        let old = std::mem::replace(&mut self.current, BootstrapPsk::new(psk));
        // A second change before the first completed: the oldest is the one the peer may
        // still hold (it has not answered under the middle one).
        if self.previous.is_none() {
            self.previous = Some(old);
        }
        self.next_try = PskChoice::Current;
        true
    }

    pub fn get(&self, which: PskChoice) -> &BootstrapPsk {
        match (which, &self.previous) {
            (PskChoice::Previous, Some(p)) => p,
            _ => &self.current,
        }
    }

    /// Whether a configured PSK guards bootstraps with this peer.
    pub fn configured(&self) -> bool {
        self.current.psk.is_some()
    }

    pub fn rotating(&self) -> bool {
        self.previous.is_some()
    }

    /// The PSKs an incoming message may be keyed with, the configured one first.
    pub fn accepted(&self) -> impl Iterator<Item = (PskChoice, &BootstrapPsk)> {
        std::iter::once((PskChoice::Current, &self.current))
            .chain(self.previous.as_ref().map(|p| (PskChoice::Previous, p)))
    }

    /// The PSK for our next Init.
    pub fn for_init(&self) -> PskChoice {
        if self.previous.is_some() {
            self.next_try
        } else {
            PskChoice::Current
        }
    }

    /// A new attempt starts with the configured PSK: a peer that reloaded it too since the
    /// last exchange takes it at once, and its first exchange under it ends the rotation.
    /// (Staying with the previous PSK once it worked would never end a rotation in which
    /// we always initiate: the e2e t_static_key_psk_rotation in version 2.)
    pub fn new_attempt(&mut self) {
        self.next_try = PskChoice::Current;
    }

    /// Our Init keyed with `used` went unanswered: the next one tries the other PSK.
    pub fn unanswered(&mut self, used: PskChoice) {
        if self.previous.is_some() {
            self.next_try = match used {
                PskChoice::Current => PskChoice::Previous,
                PskChoice::Previous => PskChoice::Current,
            };
        }
    }

    /// A new attempt resumes with the PSK the peer authenticated last (see
    /// `resume::Resume`), while both are accepted.
    pub fn resume(&mut self, used: PskChoice) {
        if self.previous.is_some() {
            self.next_try = used;
        }
    }

    /// An operator reset: from now on only the configured PSK counts (a reset after a
    /// theft must not leave the stolen one accepted).
    pub fn end_rotation(&mut self) {
        self.previous = None;
        self.next_try = PskChoice::Current;
    }

    /// An exchange authenticated under `used`: under the current PSK the rotation is over
    /// (the peer holds it); under the previous one the rest of this attempt stays with it
    /// (the next attempt starts with the configured one again: [`Self::new_attempt`]).
    pub fn authenticated(&mut self, used: PskChoice) {
        match used {
            PskChoice::Current => {
                if self.previous.take().is_some() {
                    tracing::info!("bootstrap PSK rotation complete: the peer uses the new one");
                }
                self.next_try = PskChoice::Current;
            }
            PskChoice::Previous => self.next_try = PskChoice::Previous,
        }
    }
}

impl Session {
    /// A reload replaced the bootstrap PSK: what was *current* is *previous* now. An
    /// exchange under way keeps the PSK it was keyed with, so its label moves too (else an
    /// unanswered Init would "switch" to the very PSK it used: campaign seed 1070705).
    pub(super) fn relabel_live_exchanges(&mut self) {
        if let Some(Initiation::Sent(s)) = &mut self.initiating {
            s.psk = PskChoice::Previous;
        }
        match &mut self.responding {
            Some(Responding::Sent(s)) => s.psk = PskChoice::Previous,
            Some(Responding::AwaitingKme(w)) => w.relabel_psk(PskChoice::Previous),
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn psk(b: u8) -> Option<Zeroizing<[u8; 32]>> {
        Some(Zeroizing::new([b; 32]))
    }

    #[test]
    fn rotation_keeps_the_old_psk_until_the_new_one_authenticates() {
        let mut p = BootstrapPsks::new(psk(1));
        assert!(!p.update(psk(1)), "same PSK: no change");
        assert!(p.update(psk(2)));
        assert!(p.rotating());
        assert_eq!(p.accepted().count(), 2);
        assert_eq!(p.for_init(), PskChoice::Current);
        p.unanswered(PskChoice::Current);
        assert_eq!(p.for_init(), PskChoice::Previous);
        assert_eq!(p.get(PskChoice::Previous).psk.as_deref(), Some(&[1; 32]));
        p.authenticated(PskChoice::Previous);
        assert!(p.rotating(), "the peer still uses the old PSK");
        p.authenticated(PskChoice::Current);
        assert!(!p.rotating());
        assert_eq!(p.accepted().count(), 1);
        // Removing the PSK is a rotation too (to none).
        assert!(p.update(None));
        assert!(!p.configured() && p.rotating());
    }
}
