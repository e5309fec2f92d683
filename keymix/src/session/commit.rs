//! Committing an epoch: the chain advances and is persisted before the epoch's PSK is
//! handed out (`EpochKey`), so a restart continues from here.

use std::time::Instant;

use zeroize::Zeroizing;

use super::bootstrap_psk::PskChoice;
use super::retransmit::jitter;
use super::{later, Committed, Session};
use crate::chain_state::Tentative;
use crate::event::{EpochKey, Event, Role};
use crate::keylog::KeyLogEntry;
use crate::schedule::EpochSecrets;
use crate::shared::Shared;
use crate::sources::SourceMask;
use crate::status::AuthBasis;
use crate::Version;

impl Session {
    /// Moves the chain to `epoch` / `chain` and persists it; called before the epoch's PSK
    /// is handed out, so a restart continues from here. `keyed_with` is the chain key that
    /// authenticated the exchange (None for a bootstrap): a peer still holding only that
    /// one may re-run this epoch with it.
    pub(super) fn advance_chain(
        &mut self,
        sh: &mut Shared,
        epoch: u64,
        chain: &[u8; 32],
        keyed_with: Option<&[u8; 32]>,
    ) {
        self.state.prev_chain = keyed_with.copied();
        self.state.epoch = epoch;
        self.state.chain = *chain;
        self.state.fold_tie_floor();
        if keyed_with.is_some() {
            // The chain has grown again past an operator's static-only reset.
            self.state.static_only_reset = false;
        }
        if self
            .state
            .tentative
            .as_ref()
            .is_some_and(|t| t.epoch <= epoch)
        {
            self.state.tentative = None;
        }
        self.persist(sh);
    }

    /// Records the responder's answered exchange so that a restart can still accept the
    /// peer's next Init keyed with it (implicit confirmation).
    pub(super) fn record_tentative(&mut self, sh: &mut Shared, epoch: u64, chain: &[u8; 32]) {
        self.state.tentative = Some(Tentative {
            epoch,
            chain: *chain,
        });
        self.persist(sh);
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn commit(
        &mut self,
        sh: &mut Shared,
        now: Instant,
        epoch: u64,
        derived: &EpochSecrets,
        sources: SourceMask,
        key_ids: Vec<String>,
        role: Role,
        keyed_with: Option<&[u8; 32]>,
        psk: PskChoice,
        keylog: Option<Box<KeyLogEntry>>,
        version: Version,
    ) {
        self.forget_resume();
        // Once an exchange in version 2 completed, the peer is never spoken to in version 1
        // again (persisted with the chain: also after restarts).
        if version >= Version::V2 && version.byte() > self.state.pinned_version {
            self.state.pinned_version = version.byte();
        }
        self.advance_chain(sh, epoch, &derived.chain, keyed_with);
        let auth = if keyed_with.is_some() {
            AuthBasis::Chain
        } else if self.bootstrap_psk(psk).is_some() {
            AuthBasis::BootstrapPsk
        } else {
            AuthBasis::StaticOnly
        };
        self.psks.authenticated(psk);
        self.heard_from_peer(now);
        if auth == AuthBasis::StaticOnly {
            tracing::warn!(
                peer = %self.short,
                "first contact authenticated by the static keys alone (no bootstrap PSK)"
            );
        }
        self.committed = Some(Committed {
            epoch,
            reject_after: self.cfg.reject_after,
            sources,
            key_ids: key_ids.clone(),
            established: now,
            expired: false,
            auth,
            version,
        });
        self.exchanges += 1;
        if sources.has_qkd() {
            self.kme_error = None;
        }
        // Whatever exchange of ours or the peer's is for this epoch or older is superseded.
        if self.initiating.as_ref().is_some_and(|i| i.epoch() <= epoch) {
            self.initiating = None;
        }
        if self.responding.as_ref().is_some_and(|r| r.epoch() <= epoch) {
            self.responding = None;
        }
        // The preferred initiator rekeys on time; the other side only if it is overdue.
        let base = self.rekey_after();
        self.next_initiation_at = later(now, jitter(base, sh.rng_word()).min(base));
        // Debug: the data plane logs the commit at info, naming the peer by its key.
        tracing::debug!(peer = %self.short, epoch, %sources, ?role, auth = auth.as_str(), "new epoch key");
        sh.events.push_back(Event::EpochKey {
            peer: self.id,
            key: EpochKey {
                epoch,
                psk: Zeroizing::new(derived.psk),
                sources,
                qkd_key_ids: key_ids,
                established: now,
                role,
                keylog,
            },
        });
    }
}
