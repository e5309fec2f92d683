//! Our side of an exchange as responder: authenticate the Init against the chain keys it
//! may be keyed with, check freshness, ask the KME (slave SAE), send Resp, commit on
//! Confirm or on the peer's next Init (docs/PROTOCOL.md, "State machine" and "Security").

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use boringtun::x25519::{PublicKey, StaticSecret};
use ml_kem::array::Array;
use ml_kem::{EncapsulationKey, MlKem768};

use super::bootstrap_psk::PskChoice;
use super::candidates::ChainChoice;
use super::material::check_keys;
use super::retransmit::Retransmit;
use super::Session;
use crate::config::QkdPolicy;
use crate::counters::DropReason;
use crate::event::{Destination, KmeRequestId, KmeRequestKind, Role};
use crate::frame::{Hidden, InitFrame};
use crate::keylog::KeyLogEntry;
use crate::mac;
use crate::message::{Confirm, Init};
use crate::message_v2::{ConfirmV2, CONFIRM_MAC1};
use crate::qkd::{QkdError, QkdKey};
use crate::schedule::{AuthKeys, EpochSecrets, Secret32};
use crate::shared::Shared;
use crate::sources::SourceMask;
use crate::Version;

/// A bootstrap (C_0-keyed) Init must carry a timestamp this close to our wall clock: a
/// responder that lost its state has no other way to tell a recorded Init from a new one.
pub const BOOTSTRAP_MAX_CLOCK_SKEW: Duration = Duration::from_secs(600);

/// Our exchange as responder.
pub(super) enum Responding {
    AwaitingKme(Box<ResponderWaiting>),
    Sent(Box<SentResp>),
}

impl Responding {
    pub(super) fn epoch(&self) -> u64 {
        match self {
            Self::AwaitingKme(w) => w.accepted.init.epoch,
            Self::Sent(s) => s.epoch,
        }
    }

    pub(super) fn awaits(&self, id: KmeRequestId) -> bool {
        matches!(self, Self::AwaitingKme(w) if w.request == id)
    }

    pub(super) fn resp_index(&self) -> Option<u32> {
        match self {
            Self::AwaitingKme(_) => None,
            Self::Sent(s) => Some(s.resp_index),
        }
    }
}

/// What an authenticated Init was accepted as.
pub(super) struct Accepted {
    pub(super) version: Version,
    pub(super) init: Init,
    /// Version 2: the Init's hiding keys (the Resp is hidden with them).
    pub(super) hidden: Option<Hidden>,
    /// Where the Init came from: the Resp goes there (an accepted Init does not move the
    /// peer's endpoint; see docs/PROTOCOL.md, "Roaming").
    pub(super) src: SocketAddr,
    pub(super) init_hash: [u8; 32],
    pub(super) chain: Secret32,
    pub(super) auth: AuthKeys,
    pub(super) bootstrap: bool,
    pub(super) psk: PskChoice,
}

pub(super) struct ResponderWaiting {
    request: KmeRequestId,
    pub(super) deadline: Instant,
    accepted: Accepted,
}

impl ResponderWaiting {
    pub(super) fn relabel_psk(&mut self, psk: PskChoice) {
        self.accepted.psk = psk;
    }
}

pub(super) struct SentResp {
    pub(super) version: Version,
    pub(super) epoch: u64,
    /// The source of the Init we answered: a copy of that Init gets the cached Resp there.
    pub(super) src: SocketAddr,
    /// The chain key that authenticated the Init (None: a bootstrap).
    pub(super) keyed_with: Option<Secret32>,
    /// The bootstrap PSK the Init was keyed with.
    pub(super) psk: PskChoice,
    pub(super) resp_index: u32,
    pub(super) init_hash: [u8; 32],
    pub(super) bytes: Vec<u8>,
    pub(super) secrets: EpochSecrets,
    pub(super) transcript: [u8; 32],
    pub(super) sources: SourceMask,
    pub(super) key_ids: Vec<String>,
    pub(super) keylog: Option<Box<KeyLogEntry>>,
    /// Version 2: the mac1 key of the peer's Confirm (K_mac1x).
    pub(super) confirm_mac1: Option<Secret32>,
    pub(super) retransmit: Retransmit,
}

impl Session {
    pub(super) fn responder_timeout(&mut self, sh: &mut Shared, now: Instant) {
        match &mut self.responding {
            Some(Responding::AwaitingKme(w)) if now >= w.deadline => {
                let request = w.request;
                self.responder_kme_answer(sh, now, request, Err(QkdError::Timeout));
            }
            Some(Responding::Sent(s)) if now < s.retransmit.give_up && now >= s.retransmit.next => {
                let word = sh.rng_word();
                s.retransmit.schedule_next(now, word);
                let payload = s.bytes.clone();
                sh.send(Destination::Peer(self.id), payload);
            }
            _ => {}
        }
    }

    /// Records an accepted Init's timestamp (persisted before anything acts on the Init):
    /// from now on that Init and every older one is a replay, also after a restart.
    fn accept_timestamp(&mut self, sh: &mut Shared, timestamp: u64) {
        self.state.highest_init_ts = timestamp;
        self.persist(sh);
    }

    pub(crate) fn handle_init(
        &mut self,
        sh: &mut Shared,
        now: Instant,
        src: SocketAddr,
        frame: InitFrame<'_>,
    ) -> Result<(), DropReason> {
        self.check_version(now, frame.version)?;
        let init_hash = frame.init_hash;
        match &self.responding {
            Some(Responding::Sent(s)) if s.init_hash == init_hash => {
                // A retransmission of the Init we answered: answer again while the
                // exchange is young, where the answered Init came from (a Resp is smaller
                // than an Init: no amplification, and no redirection by a copy).
                if now < s.retransmit.give_up {
                    sh.send(Destination::Addr(s.src), s.bytes.clone());
                }
                return Err(DropReason::Duplicate);
            }
            Some(Responding::AwaitingKme(w)) if w.accepted.init_hash == init_hash => {
                return Err(DropReason::Duplicate);
            }
            _ => {}
        }
        if frame.init.timestamp <= self.state.highest_init_ts {
            return Err(DropReason::Replay);
        }
        let m = self.authenticate_init(sh, now, &frame)?;
        let InitFrame {
            version,
            init,
            hidden,
            ..
        } = frame;
        // Authenticated from here on; nothing has changed yet, and every check that can
        // still refuse the Init comes before the first change (an `Err` changes nothing).
        let bootstrap = m.is_bootstrap(self.state.has_chain());
        if m.choice != ChainChoice::Current && init.timestamp <= self.state.tie_floor {
            // An Init of the peer's that lost a tie here (or an older one), seen keyed
            // otherwise than with our current chain: only as a current Init (the tie-lost
            // one's retransmission, keyed with C_m, which changes only at a commit, which
            // folds the floor away) could it still be genuine. A bootstrap that lost a
            // tie never passes: its sender answers ours, or tries again with a new one.
            return Err(DropReason::Replay);
        }
        if bootstrap {
            self.check_bootstrap(sh, now, &init, &m)?;
        }
        if m.choice == ChainChoice::Previous {
            // Never a second PSK under one epoch number: the peer moves forward through
            // the exchange it still holds, or (epochs apart) status names the fix.
            self.accept_timestamp(sh, init.timestamp);
            self.psks.authenticated(m.psk);
            self.heard_from_peer(now);
            self.help_peer_behind(sh, now, src);
            return Ok(());
        }
        if let Some(ours) = &self.initiating {
            if self.wins_tie(now, ours, &init, m.choice) {
                // Not recorded as seen: if ours goes unanswered, the peer's retransmission
                // of this very Init must still be accepted once ours is no longer young.
                // But never keyed with another chain (see `ChainState::tie_floor`); kept
                // across a restart, so written now if it rose (an authenticated Init of
                // the peer's: a replay of it finds the floor already there).
                if init.timestamp > self.state.tie_floor {
                    self.state.tie_floor = init.timestamp;
                    self.persist(sh);
                }
                return Err(DropReason::SimultaneousInitiation);
            }
        }
        if !init.proposed.has_qkd() && self.cfg.qkd == QkdPolicy::Required {
            // Authenticated, so the operator may hear of it; nothing else changes.
            self.kme_error = Some("peer offered no QKD key and policy is required".into());
            return Err(DropReason::Policy);
        }
        let ek_array = Array::from(*init.ek);
        if EncapsulationKey::<MlKem768>::new(&ek_array).is_err() || low_order(&init.e_init) {
            return Err(DropReason::BadKey);
        }
        // Accepted: every change happens from here on.
        if self.initiating.take().is_some() {
            tracing::debug!(
                peer = %self.short,
                "yielding our keymix initiation to the peer's"
            );
        }
        self.accept_timestamp(sh, init.timestamp);
        self.psks.authenticated(m.psk);
        self.heard_from_peer(now);
        if m.choice == ChainChoice::Bootstrap {
            self.observe_rebootstrap(now, self.state.epoch);
        }
        if m.choice == ChainChoice::Tentative {
            // The peer keyed this Init with the chain of the exchange we answered: it
            // holds C_n, so it completed that exchange (its Confirm was lost).
            self.commit_tentative(sh, now);
        }
        let accepted = Accepted {
            version,
            init,
            hidden,
            src,
            init_hash,
            chain: m.chain,
            auth: m.auth,
            bootstrap,
            psk: m.psk,
        };
        if accepted.init.proposed.has_qkd() && self.cfg.qkd != QkdPolicy::Off {
            let Some(master) = self.cfg.peer_sae_id.clone() else {
                let error = "no SAE ID configured for this peer".to_string();
                self.responder_kme_failed(sh, now, accepted, error);
                return Ok(());
            };
            let request = self.request_kme(
                sh,
                KmeRequestKind::DecKeys {
                    master_sae_id: master,
                    key_ids: accepted.init.key_ids.clone(),
                },
            );
            self.responding = Some(Responding::AwaitingKme(Box::new(ResponderWaiting {
                request,
                deadline: super::later(now, self.cfg.kme_timeout),
                accepted,
            })));
            return Ok(());
        }
        self.respond(sh, now, &accepted, None)
    }

    fn responder_kme_failed(
        &mut self,
        sh: &mut Shared,
        now: Instant,
        accepted: Accepted,
        error: String,
    ) {
        tracing::warn!(peer = %self.short, %error, "KME did not deliver the key (as slave)");
        self.kme_error = Some(error);
        if self.cfg.qkd == QkdPolicy::Required {
            self.responding = None;
            return;
        }
        let _ = self.respond(sh, now, &accepted, None);
    }

    pub(super) fn responder_kme_answer(
        &mut self,
        sh: &mut Shared,
        now: Instant,
        request: KmeRequestId,
        result: Result<Vec<QkdKey>, QkdError>,
    ) {
        let Some(Responding::AwaitingKme(w)) = self.responding.take() else {
            return;
        };
        if w.request != request {
            self.responding = Some(Responding::AwaitingKme(w));
            return;
        }
        let w = *w;
        match result.and_then(|keys| check_keys(keys, Some(&w.accepted.init.key_ids))) {
            Ok((_, key)) => {
                let _ = self.respond(sh, now, &w.accepted, Some(key));
            }
            Err(e) => self.responder_kme_failed(sh, now, w.accepted, e.to_string()),
        }
    }

    /// A Confirm for the exchange we answered: version 1's carries the epoch and mask
    /// (checked against ours), version 2's only the index, confirm_i and a mac1 under the
    /// exchange's K_mac1x (checked here: only this session holds it).
    pub(crate) fn handle_confirm(
        &mut self,
        sh: &mut Shared,
        now: Instant,
        version: Version,
        bytes: &[u8],
    ) -> Result<(), DropReason> {
        self.check_version(now, version)?;
        let Some(Responding::Sent(s)) = &self.responding else {
            return Err(DropReason::UnknownIndex);
        };
        let (receiver_index, confirm) = match version {
            Version::V1 => {
                let c = Confirm::parse(bytes).map_err(|_| DropReason::Malformed)?;
                if c.receiver_index == s.resp_index
                    && (s.epoch != c.epoch || s.sources != c.sources)
                {
                    return Err(DropReason::BadConfirm);
                }
                (c.receiver_index, c.confirm)
            }
            Version::V2 => {
                let c = ConfirmV2::parse(bytes).map_err(|_| DropReason::Malformed)?;
                let key = s.confirm_mac1.as_ref().ok_or(DropReason::UnknownIndex)?;
                let covered = bytes.get(..CONFIRM_MAC1).unwrap_or(&[]);
                if c.receiver_index != s.resp_index || !mac::verify(key, covered, &c.mac1) {
                    return Err(DropReason::BadMac1);
                }
                (c.receiver_index, c.confirm)
            }
        };
        if s.resp_index != receiver_index || s.version != version {
            return Err(DropReason::UnknownIndex);
        }
        if !mac::verify(&s.secrets.confirm_i2r, &s.transcript, &confirm) {
            return Err(DropReason::BadConfirm);
        }
        self.commit_tentative(sh, now);
        Ok(())
    }

    /// Commits the exchange we answered: with its PSK when we still hold it in memory,
    /// else (after a restart) only its chain, so the next exchange can follow.
    fn commit_tentative(&mut self, sh: &mut Shared, now: Instant) {
        if let Some(Responding::Sent(s)) = self.responding.take() {
            let s = *s;
            self.commit(
                sh,
                now,
                s.epoch,
                &s.secrets,
                s.sources,
                s.key_ids.clone(),
                Role::Responder,
                s.keyed_with.as_deref(),
                s.psk,
                s.keylog.clone(),
                s.version,
            );
        } else if let Some(t) = self.state.tentative.clone() {
            tracing::info!(
                peer = %self.short,
                epoch = t.epoch,
                "peer confirmed the exchange answered before our restart"
            );
            // Our restart lost which chain keyed it; normally the one we hold.
            let keyed_with = self.state.has_chain().then_some(self.state.chain);
            self.advance_chain(sh, t.epoch, &t.chain, keyed_with.as_ref());
        }
    }
}

/// Whether an X25519 public key gives an all-zero shared secret with every private key
/// (a low-order point): such an ephemeral is refused before anything changes.
fn low_order(public: &[u8; 32]) -> bool {
    let probe = StaticSecret::from([0x5a; 32]);
    !probe
        .diffie_hellman(&PublicKey::from(*public))
        .was_contributory()
}
