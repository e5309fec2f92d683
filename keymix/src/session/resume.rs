//! After an exchange whose keys differed (the peer answered our Init, authenticated, but
//! derived another key: the KMEs handed out different keys), the next attempt starts with
//! the keying the peer answered, with a fresh QKD key. Starting over from the configured
//! PSK, our highest version and our chain would go through every replacement again (3 s
//! each, up to 30 s) before it reached the keying the peer has just shown it takes
//! (campaign seed 2099413: a peer not yet upgraded, reset with a new bootstrap PSK during a
//! rotation, answered a fallback bootstrap whose QKD key came from a mismatched KME; the
//! next attempt needed 29 s to find that keying again).
//!
//! Only an authenticated Resp sets it (under the Init's auth key: our chain, or C_0 with
//! the bootstrap PSK, or the static keys where no PSK is configured), it lives in memory
//! only, and it picks among replacements we would send anyway: which version, PSK and
//! keying come first. A commit, a reset or a reload clears it.

use std::time::Instant;

use super::bootstrap_psk::PskChoice;
use super::initiator::{Initiation, SentInit};
use super::Session;
use crate::shared::Shared;
use crate::Version;
use zeroize::Zeroizing;

/// The keying of an Init the peer answered.
#[derive(Clone, Copy, Debug)]
pub(super) struct Resume {
    version: Version,
    /// Keyed with C_0 (a bootstrap).
    bootstrap: bool,
    psk: PskChoice,
}

impl Resume {
    pub(super) fn of(sent: &SentInit) -> Self {
        Self {
            version: sent.version,
            bootstrap: sent.bootstrap,
            psk: sent.psk,
        }
    }
}

impl Session {
    /// The first Init of an attempt: keyed as the last answered one (if any, and if the
    /// config still allows it), else with our chain, in our highest version.
    pub(super) fn send_first_init(
        &mut self,
        sh: &mut Shared,
        now: Instant,
        qkd: Option<(Vec<String>, Zeroizing<Vec<u8>>)>,
    ) {
        let highest = self.init_version();
        let Some(r) = self.resume.take() else {
            self.send_init(sh, now, qkd, false, highest);
            return;
        };
        let version = if r.version == Version::V1 && self.may_fall_back_to_v1() {
            Version::V1
        } else {
            highest
        };
        // Over a chain only with a bootstrap PSK, as the bootstrap fallback itself.
        let bootstrap_over_chain = r.bootstrap && self.state.has_chain() && self.psks.configured();
        self.psks.resume(r.psk);
        tracing::debug!(
            peer = %self.short,
            ?version,
            bootstrap = r.bootstrap,
            "keymix: the last exchange's keys differed; trying again keyed as the peer answered"
        );
        self.send_init(sh, now, qkd, bootstrap_over_chain, version);
        if let Some(Initiation::Sent(n)) = &mut self.initiating {
            n.fallback = bootstrap_over_chain;
        }
    }

    /// A commit, a reset or a reload: what the last exchange taught no longer holds.
    pub(super) fn forget_resume(&mut self) {
        self.resume = None;
    }
}
