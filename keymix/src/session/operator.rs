//! The operator's re-bootstrap of one peer (`trident reset`). A reset forgets the chain, so
//! the next exchange is a first contact again; it must never lower the bar silently. With a
//! bootstrap PSK configured the re-bootstrap needs that PSK (post-quantum). Without one it
//! would rest on the static keys alone, which a thief or a quantum attacker holds: the
//! operator must say so explicitly (`--static-only`), and status shows it until the chain
//! has grown again.

use std::time::Instant;

use super::Session;
use crate::event::Event;
use crate::shared::Shared;

/// Why a reset was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResetRefused {
    #[error(
        "this peer has no bootstrap PSK, so after a reset the next first contact would rest on \
         the static keys alone (anyone holding one static private key could take the peer's \
         place). Either give both sides a new bootstrap PSK (`trident genpsk`, \
         `bootstrap_psk_file` in both configs, `trident reload`): a side that lost its state \
         then re-bootstraps by itself, no reset needed; or acknowledge a static-key-only first \
         contact with `trident reset --static-only`"
    )]
    NeedsPskOrAcknowledgement,
}

/// What a reset did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetBasis {
    /// The next bootstrap needs the configured bootstrap PSK.
    BootstrapPsk,
    /// The operator acknowledged a first contact by the static keys alone.
    StaticOnlyAcknowledged,
}

/// Whether an operator reset is allowed, and on what basis: with a bootstrap PSK
/// configured for the peer, or with the operator's static-only acknowledgement. The running
/// interface and the offline reset (a stopped interface's state file) both apply it.
pub fn reset_basis(psk_configured: bool, static_only: bool) -> Result<ResetBasis, ResetRefused> {
    if psk_configured {
        Ok(ResetBasis::BootstrapPsk)
    } else if static_only {
        Ok(ResetBasis::StaticOnlyAcknowledged)
    } else {
        Err(ResetRefused::NeedsPskOrAcknowledgement)
    }
}

impl Session {
    /// Forgets the chain (keeping both replay records), stops using the current key and
    /// starts a bootstrap exchange; refused when that would silently rest on the static keys.
    pub(crate) fn reset(
        &mut self,
        sh: &mut Shared,
        now: Instant,
        static_only: bool,
    ) -> Result<ResetBasis, ResetRefused> {
        let basis = reset_basis(self.psks.configured(), static_only)?;
        self.forget_resume();
        tracing::warn!(
            peer = %self.short,
            epoch = self.state.epoch,
            basis = ?basis,
            "chain reset by the operator"
        );
        self.state
            .forget_chain(basis == ResetBasis::StaticOnlyAcknowledged);
        self.psks.end_rotation();
        self.psks_changed();
        self.initiating = None;
        self.responding = None;
        self.last_confirm = None;
        self.persist(sh);
        if let Some(c) = self.committed.take() {
            sh.events.push_back(Event::Expired {
                peer: self.id,
                epoch: c.epoch,
            });
        }
        self.next_initiation_at = now;
        self.heard_from_peer(now);
        Ok(basis)
    }
}
