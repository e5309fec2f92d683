//! What status says about a peer, and the hints behind a "blocked" reason: chains that
//! cannot be reconciled without the operator, clocks too far apart for a bootstrap. Hints
//! from unauthenticated input only show while the peer is not up.

use std::time::{Duration, Instant};

use super::{Session, MISMATCH_MEMORY};
use crate::config::QkdPolicy;
use crate::sources::SourceMask;
use crate::status::{PeerState, PeerStatus};

/// A bootstrap Init too far from our clock.
pub(super) fn clock_skew(skew: Duration) -> String {
    format!(
        "bootstrap Init {} s off our clock (limit {} s): check both clocks",
        skew.as_secs(),
        super::BOOTSTRAP_MAX_CLOCK_SKEW.as_secs()
    )
}

/// A C_0 Init over our chain, without a bootstrap PSK.
pub(super) fn bootstrap_refused(our_epoch: u64) -> String {
    format!(
        "the peer restarted its chain (lost its state?) but this side holds epoch \
         {our_epoch}; with no bootstrap PSK only the operator may re-bootstrap: \
         `trident reset` for this peer on this side"
    )
}

fn peer_chain_unknown(epoch: u64) -> String {
    format!(
        "the peer continues a chain at epoch {} that this side does not have (state \
         lost?): run `trident reset` for this peer on the peer's side",
        epoch.saturating_sub(1)
    )
}

impl Session {
    pub(super) fn note_mismatch(&mut self, now: Instant, why: String) {
        tracing::warn!(peer = self.id, %why, "keymix chain mismatch");
        self.mismatch = Some((now, why));
    }

    /// An Init for an epoch no chain of ours can key: the peer holds a chain we lack, or
    /// the two chains are epochs apart (a stale or restored state file). Unverifiable, so
    /// only a hint.
    pub(super) fn unverifiable_epoch_hint(&self, epoch: u64) -> Option<String> {
        let ours = self.state.epoch;
        if !self.state.has_chain() {
            return (epoch > 1).then(|| peer_chain_unknown(epoch));
        }
        (epoch > ours + 1 || epoch + 1 < ours).then(|| {
            format!(
                "the peer's chain is at epoch {}, ours at {ours} (a stale or restored state \
                 file?): run `trident reset` for this peer on both sides",
                epoch.saturating_sub(1)
            )
        })
    }

    /// An Init whose epoch we expected failed authentication: forged, or keyed with a
    /// chain that diverged from ours (e.g. we answered a recorded bootstrap Init after
    /// losing our state).
    pub(super) fn note_unverified_init(&mut self, now: Instant, epoch: u64) {
        let why = if self.state.has_chain() {
            format!(
                "the peer's Init for epoch {epoch} does not authenticate against our chain \
                 (diverged chains, or forged): if this persists, run `trident reset` for this \
                 peer on both sides"
            )
        } else {
            peer_chain_unknown(epoch)
        };
        self.note_mismatch(now, why);
    }

    pub(crate) fn status(&self, now: Instant) -> PeerStatus {
        let mismatch = self
            .mismatch
            .as_ref()
            .filter(|(at, _)| now.saturating_duration_since(*at) < MISMATCH_MEMORY)
            .map(|(_, why)| why.clone());
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
                    PeerState::Up
                };
                st.epoch = Some(c.epoch);
                st.epoch_age = Some(now.saturating_duration_since(c.established));
                st.sources = c.sources;
                st.qkd_key_ids = c.key_ids.clone();
                st.auth = Some(c.auth);
            }
        }
        if let Some(why) = mismatch {
            if matches!(st.state, PeerState::Connecting | PeerState::Blocked) {
                st.state = PeerState::Blocked;
                st.reason = Some(why);
            }
        }
        st
    }
}
