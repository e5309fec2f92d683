//! An initiation that goes unanswered is not always lost: the peer may hold only the other
//! bootstrap PSK (a rotation under way) or another chain (a gateway back from a failover, a
//! restored backup). Both switches below replace our live Init, once per attempt, with the
//! same QKD key IDs (the peer has not consumed them: it did not answer).

use std::time::Instant;

use super::initiator::{Initiation, SentInit};
use super::{later, Session};
use crate::message::Init;
use crate::shared::Shared;
use crate::Version;

/// During a bootstrap PSK rotation, an Init unanswered this long is replaced by one keyed
/// with the other PSK (after two retransmissions: a slow answer to the first is unlikely).
const PSK_SWITCH_AFTER: std::time::Duration = std::time::Duration::from_secs(3);
/// With a bootstrap PSK configured, a chain-keyed Init unanswered this long is replaced by a
/// bootstrap Init (C_0 from the PSK): the peer may hold another chain (a gateway back from a
/// failover with its old state file, a restored backup). The bootstrap needs the PSK, so
/// this lowers no bar; it costs the chain's history, not its security.
const BOOTSTRAP_FALLBACK_AFTER: std::time::Duration = std::time::Duration::from_secs(10);
/// A version-2 Init unanswered this long is replaced by a version-1 one while the peer has
/// not been seen to speak version 2 (it may not have upgraded yet).
const VERSION_FALLBACK_AFTER: std::time::Duration = std::time::Duration::from_secs(3);

/// When each replacement of an unanswered Init falls due; `None` for one this Init does
/// not get. The timer asks for the earliest, so a replacement goes out on time, not at the
/// next retransmission (up to 4 s later: the e2e t_static_key_psk_rotation lost its key).
pub(super) struct ReplacementsDue {
    pub psk: Option<Instant>,
    pub version: Option<Instant>,
    pub bootstrap: Option<Instant>,
}

impl ReplacementsDue {
    pub fn earliest(&self) -> Option<Instant> {
        [self.psk, self.version, self.bootstrap]
            .into_iter()
            .flatten()
            .min()
    }
}

impl Session {
    pub(super) fn replacements_due(&self, s: &SentInit) -> ReplacementsDue {
        ReplacementsDue {
            psk: (self.psks.rotating() && !s.psk_switched)
                .then(|| later(s.keyed_at, PSK_SWITCH_AFTER)),
            version: (s.version == Version::V2
                && !s.version_switched
                && self.may_fall_back_to_v1())
            .then(|| later(s.keyed_at, VERSION_FALLBACK_AFTER)),
            bootstrap: (!s.bootstrap && !s.fallback && self.psks.configured())
                .then(|| later(s.started, BOOTSTRAP_FALLBACK_AFTER)),
        }
    }

    /// See [`crate::Endpoint::transmit_failed`].
    pub(crate) fn transmit_failed(&mut self, payload: &[u8]) {
        if let Some(Initiation::Sent(s)) = &mut self.initiating {
            if s.bytes.get(..Init::mac1_offset(&s.bytes))
                == payload.get(..Init::mac1_offset(payload))
            {
                s.unsent = true;
            }
        }
    }

    /// Our Init never left: a fresh one (new timestamp, index and ephemerals, the same QKD
    /// key IDs, keyed as before) takes its place, keeping the attempt's schedule.
    pub(super) fn refresh_init(&mut self, sh: &mut Shared, now: Instant) {
        let Some(Initiation::Sent(s)) = self.initiating.take() else {
            return;
        };
        let qkd = s.qkd_for_replacement();
        let bootstrap_over_chain = s.bootstrap && self.state.has_chain();
        self.send_init(sh, now, qkd, bootstrap_over_chain, s.version);
        if let Some(Initiation::Sent(n)) = &mut self.initiating {
            n.fallback = s.fallback;
            n.psk_switched = s.psk_switched;
            n.version_switched = s.version_switched;
            n.started = s.started;
            n.keyed_at = s.keyed_at;
            n.retransmit = s.retransmit;
            let word = sh.rng_word();
            n.retransmit.schedule_next(now, word);
        }
    }

    /// A rotation is under way and our Init has gone unanswered: the peer may hold only the
    /// other bootstrap PSK. Send the same QKD key IDs in a fresh Init keyed with it.
    pub(super) fn switch_psk(&mut self, sh: &mut Shared, now: Instant) {
        let Some(Initiation::Sent(s)) = self.initiating.take() else {
            return;
        };
        self.psks.unanswered(s.psk);
        let qkd = s.qkd_for_replacement();
        // Info: at most once an exchange, and only while a rotation is under way; it shows
        // in the log why an exchange during a rotation took 3 s longer.
        tracing::info!(
            peer = %self.short,
            "keymix Init unanswered during a bootstrap PSK rotation: trying the other PSK"
        );
        let bootstrap_over_chain = s.bootstrap && self.state.has_chain();
        self.send_init(sh, now, qkd, bootstrap_over_chain, s.version);
        if let Some(Initiation::Sent(n)) = &mut self.initiating {
            n.psk_switched = true;
            n.fallback = s.fallback;
            n.version_switched = s.version_switched;
            n.started = s.started;
        }
    }

    /// Our version-2 Init has gone unanswered and the peer has never spoken version 2:
    /// it may not have upgraded. Send a version-1 Init (same QKD key IDs, same keying) in
    /// its place, once per attempt; the next attempt tries version 2 again.
    pub(super) fn switch_version(&mut self, sh: &mut Shared, now: Instant) {
        let Some(Initiation::Sent(s)) = self.initiating.take() else {
            return;
        };
        let qkd = s.qkd_for_replacement();
        tracing::debug!(
            peer = %self.short,
            "keymix version-2 Init unanswered: trying version 1 (the peer may not have upgraded)"
        );
        let bootstrap_over_chain = s.bootstrap && self.state.has_chain();
        self.send_init(sh, now, qkd, bootstrap_over_chain, Version::V1);
        if let Some(Initiation::Sent(n)) = &mut self.initiating {
            n.version_switched = true;
            // Version 1 gets both PSKs too: four combinations in about 9 s (campaign seed
            // 1007859: a peer not yet upgraded, during a rotation).
            n.psk_switched = false;
            n.fallback = s.fallback;
            n.started = s.started;
        }
    }

    /// Our chain-keyed Init has gone unanswered and a bootstrap PSK guards bootstraps: send
    /// a bootstrap Init (same QKD key IDs) in its place. The chain is kept until the
    /// bootstrap completes; if it does not, the next attempt is chain-keyed again.
    pub(super) fn fall_back_to_bootstrap(&mut self, sh: &mut Shared, now: Instant) {
        let Some(Initiation::Sent(s)) = self.initiating.take() else {
            return;
        };
        let qkd = s.qkd_for_replacement();
        tracing::info!(
            peer = %self.short,
            epoch = self.state.epoch,
            "keymix Init unanswered: falling back to a bootstrap by the bootstrap PSK (the peer \
             may hold another chain)"
        );
        // A bootstrap starts again from our highest version: a peer that refused our chain
        // Init in either version may take a bootstrap in version 2 (campaign seed 1116137:
        // a version-1 fallback met a peer pinned to 2).
        let version = self.init_version();
        self.send_init(sh, now, qkd, true, version);
        if let Some(Initiation::Sent(n)) = &mut self.initiating {
            n.fallback = true;
            // A bootstrap is keyed with the PSK's C_0: it gets both PSKs too, whatever the
            // chain Init tried (campaign seed 1044668).
            n.psk_switched = false;
            n.version_switched = false;
            n.started = s.started;
        }
    }
}
