//! What status says about a peer. The rule: what arrives unauthenticated may be counted,
//! never believed. A datagram that did not authenticate (or authenticated by a static key
//! alone, which a thief or a quantum attacker holds) is an *unverified* observation: it is
//! counted, its last description shown as a fact, logged at most once a minute, and it
//! never sets `blocked` or advises the operator to do anything. Advice (`hint`) comes only
//! from local facts (this side holds no chain and its bootstrap goes unanswered) or from
//! authenticated messages (a bootstrap Init authenticated by the bootstrap PSK whose clock
//! is off).

use std::time::{Duration, Instant};

use super::{Session, MISMATCH_MEMORY};
use crate::config::QkdPolicy;
use crate::sources::SourceMask;
use crate::status::{PeerState, PeerStatus};

/// At most one warning a minute per peer about unverified datagrams.
const LOG_EVERY: Duration = Duration::from_secs(60);
/// This side holds no chain and nothing authenticated came from the peer for this long (one
/// exchange lifetime): status explains what the operator can do. A local fact, not the
/// peer's word.
pub(super) const BOOTSTRAP_HINT_AFTER: Duration = super::EXCHANGE_LIFETIME;
/// How long a side that holds a chain but no live key waits for an authenticated message
/// before status says what to check (version 2 cannot attribute a datagram keyed with a
/// chain this side does not hold, so only the silence shows).
const CHAIN_SILENCE_HINT_AFTER: Duration = Duration::from_secs(60);

#[derive(Default)]
pub(super) struct Observations {
    unverified: u64,
    last_unverified: Option<(Instant, String)>,
    logged_at: Option<Instant>,
    suppressed: u64,
    /// A note from an authenticated message (e.g. a PSK-authenticated bootstrap Init whose
    /// clock is too far off).
    verified: Option<(Instant, String)>,
    /// A warning the peer proved (it re-bootstrapped over our chain).
    warning: Option<(Instant, String)>,
    /// The last sign of life of the pair: the session started, the chain was forgotten, or
    /// an authenticated message arrived. `None` until the session sets it.
    pub progress_at: Option<Instant>,
}

impl Observations {
    pub fn new(now: Instant) -> Self {
        Self {
            progress_at: Some(now),
            ..Self::default()
        }
    }
}

/// A bootstrap Init too far from our clock.
pub(super) fn clock_skew(skew: Duration) -> String {
    format!(
        "a bootstrap Init {} s off this side's clock (limit {} s)",
        skew.as_secs(),
        super::BOOTSTRAP_MAX_CLOCK_SKEW.as_secs()
    )
}

/// Why an Init claiming to be the peer was dropped before it authenticated (or because it
/// authenticated by a static key alone).
pub(super) enum Unverified {
    /// The auth tag did not verify under any chain key we hold.
    BadAuth { epoch: u64 },
    /// An epoch no chain key of ours can key.
    UnknownEpoch { epoch: u64 },
    /// A C_0 Init (static keys only, no bootstrap PSK) while we hold a chain.
    BootstrapRefused,
    /// A static-key-only bootstrap Init too far from our clock.
    ClockSkew(Duration),
    /// A version-1 message for a peer that has spoken version 2 (or must).
    Downgrade,
}

impl Session {
    /// `up`, or `stale` when the key's replacement is overdue: past the midpoint between
    /// the epoch and the reject age (and past the later side's own rekey), the reason
    /// saying how long is left and when the peer was last heard.
    fn stale_or_up(
        &self,
        c: &super::Committed,
        now: Instant,
        reason: &mut Option<String>,
    ) -> PeerState {
        let epoch = self.cfg.epoch;
        let stale_after = epoch
            .saturating_add(c.reject_after.saturating_sub(epoch) / 2)
            .max(
                epoch
                    .saturating_add(epoch / 8)
                    .saturating_add(Duration::from_secs(2)),
            );
        let age = now.saturating_duration_since(c.established);
        if age < stale_after {
            return PeerState::Up;
        }
        let left = c.reject_after.saturating_sub(age).as_secs();
        let heard = self
            .observations
            .progress_at
            .map(|t| now.saturating_duration_since(t).as_secs());
        *reason = Some(format!(
            "rekey overdue: key {} s old (epoch {} s), expires in {left} s; last authenticated \
             message from the peer {} s ago",
            age.as_secs(),
            epoch.as_secs(),
            heard.map_or_else(|| "never".to_owned(), |s| s.to_string())
        ));
        PeerState::Stale
    }

    /// Counts an unverified observation; logs it at most once a minute.
    pub(super) fn observe_unverified(&mut self, now: Instant, what: Unverified) {
        let ours = self.state.epoch;
        let text = match what {
            Unverified::BadAuth { epoch } => format!(
                "an Init for epoch {epoch} that does not authenticate under this side's \
                 chain (epoch {ours})"
            ),
            Unverified::UnknownEpoch { epoch } => format!(
                "an Init for epoch {epoch}, which no chain key of this side (epoch {ours}) \
                 can check"
            ),
            Unverified::BootstrapRefused => format!(
                "a bootstrap (C_0) Init refused: this side holds a chain at epoch {ours}, \
                 and a static key alone does not prove it comes from the peer"
            ),
            Unverified::ClockSkew(skew) => clock_skew(skew),
            Unverified::Downgrade => "a keymix version-1 message, refused: this peer has \
                 spoken version 2 (or min_version is 2), so version 1 is never believed for it"
                .to_string(),
        };
        let obs = &mut self.observations;
        obs.unverified = obs.unverified.saturating_add(1);
        let quiet = obs
            .logged_at
            .is_some_and(|at| now.saturating_duration_since(at) < LOG_EVERY);
        if quiet {
            obs.suppressed = obs.suppressed.saturating_add(1);
        } else {
            tracing::warn!(
                peer = %self.short,
                unverified = obs.unverified,
                suppressed = obs.suppressed,
                "keymix: unverified datagram claiming to be this peer ({text}); counted, \
                 not acted on"
            );
            obs.logged_at = Some(now);
            obs.suppressed = 0;
        }
        obs.last_unverified = Some((now, text));
    }

    /// A note from an authenticated message.
    pub(super) fn observe_verified(&mut self, now: Instant, text: String) {
        tracing::warn!(peer = %self.short, "keymix: {text}");
        self.observations.verified = Some((now, text));
    }

    /// The peer re-bootstrapped over our chain (authenticated by the bootstrap PSK): it
    /// lost its state or its operator reset it. Worth a warning on this side.
    pub(super) fn observe_rebootstrap(&mut self, now: Instant, our_epoch: u64) {
        let text = format!(
            "the peer re-bootstrapped over this side's chain (epoch {our_epoch}): it lost its \
             state, was reset, or could not get through with its chain (a gateway back from a \
             failover)"
        );
        tracing::warn!(peer = %self.short, "keymix: {text}");
        self.observations.warning = Some((now, text));
    }

    /// A message from the peer authenticated (or the session began or was reset): the
    /// clock of the bootstrap hint starts again.
    pub(crate) fn heard_from_peer(&mut self, now: Instant) {
        self.observations.progress_at = Some(now);
    }

    /// Advice from local facts and authenticated notes only.
    fn hint(&self, now: Instant) -> Option<String> {
        if let Some((at, text)) = &self.observations.verified {
            if now.saturating_duration_since(*at) < MISMATCH_MEMORY {
                return Some(format!("{text}: check both clocks (NTP)"));
            }
        }
        let since = self.observations.progress_at?;
        let waited = now.saturating_duration_since(since);
        if self.state.has_chain() {
            // Silence is a local fact, but one an attacker can cause by dropping packets:
            // it gets facts and a comparison to make, never a reset to run (issue 19).
            // Without a live key only: `stale` explains an overdue rekey.
            if self.committed.is_some() || waited < CHAIN_SILENCE_HINT_AFTER {
                return None;
            }
            return Some(format!(
                "this side holds a chain (epoch {}) and nothing authenticated came from the \
                 peer for {} s: check that the peer runs and is reachable, then compare `chain \
                 epoch` on both sides (diverged chains cannot talk; with a bootstrap PSK they \
                 re-bootstrap within a minute)",
                self.state.epoch,
                waited.as_secs()
            ));
        }
        if waited < BOOTSTRAP_HINT_AFTER {
            return None;
        }
        let secs = waited.as_secs();
        let fact = format!(
            "this side holds no chain with the peer (first contact, or its state was lost) and \
             nothing authenticated came from the peer for {secs} s"
        );
        Some(match (self.reachable, self.psks.configured()) {
            (true, true) => format!(
                "{fact}: check that the peer runs, is reachable, and holds the same bootstrap \
                 PSK for this side"
            ),
            (true, false) => format!(
                "{fact}. If the peer still holds a chain with this side it refuses a bootstrap \
                 by the static keys alone: give both sides a new bootstrap PSK (`trident \
                 genpsk`, `bootstrap_psk_file`, `trident reload`) and the pair re-bootstraps by \
                 itself, or accept a static-key-only first contact with `trident reset \
                 --static-only` for this side on the peer"
            ),
            (false, _) => format!(
                "{fact}, and it cannot start an exchange (no endpoint for the peer). If the \
                 peer still holds a chain with this side, run `trident reset` for this side on \
                 the peer (with a shared bootstrap PSK; without one give both sides a new \
                 bootstrap PSK first, or add `--static-only`)"
            ),
        })
    }

    pub(crate) fn status(&self, now: Instant) -> PeerStatus {
        let mut st = PeerStatus {
            state: PeerState::Connecting,
            epoch: None,
            chain_epoch: self.state.epoch,
            epoch_age: None,
            sources: SourceMask::default(),
            qkd_key_ids: Vec::new(),
            last_kme_error: self.kme_error.clone(),
            expired: false,
            exchanges: self.exchanges,
            last_exchange: self.last_exchange,
            auth: None,
            reason: None,
            hint: self.hint(now),
            unverified: self.observations.unverified,
            last_unverified: self
                .observations
                .last_unverified
                .as_ref()
                .map(|(at, text)| {
                    format!(
                        "{text}, {} s ago",
                        now.saturating_duration_since(*at).as_secs()
                    )
                }),
            static_only_reset: self.state.static_only_reset,
            psk_rotation: self.psks.rotating(),
            warning: self.observations.warning.as_ref().and_then(|(at, text)| {
                let ago = now.saturating_duration_since(*at);
                (ago < MISMATCH_MEMORY).then(|| format!("{text}, {} s ago", ago.as_secs()))
            }),
            version: None,
            pinned_version: crate::Version::from_byte(self.state.pinned_version),
        };
        match &self.committed {
            None => {
                if self.cfg.qkd == QkdPolicy::Required && self.kme_error.is_some() {
                    st.state = PeerState::Blocked;
                    st.reason = self.kme_error.clone();
                }
            }
            Some(c) => {
                st.expired = self.key_expired(c, now);
                st.state = if st.expired {
                    st.reason = Some("key past its reject age".into());
                    PeerState::Blocked
                } else if self.cfg.qkd != QkdPolicy::Off && !c.sources.has_qkd() {
                    if self.cfg.qkd == QkdPolicy::Required {
                        st.reason = Some("QKD required but the key has none".into());
                        PeerState::Blocked
                    } else {
                        PeerState::Degraded
                    }
                } else {
                    self.stale_or_up(c, now, &mut st.reason)
                };
                st.epoch = Some(c.epoch);
                st.epoch_age = Some(now.saturating_duration_since(c.established));
                st.sources = c.sources;
                st.qkd_key_ids = c.key_ids.clone();
                st.auth = Some(c.auth);
                st.version = Some(c.version);
            }
        }
        st
    }
}
