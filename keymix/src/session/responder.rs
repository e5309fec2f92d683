//! Our side of an exchange as responder: authenticate the Init against the chain keys it
//! may be keyed with, check freshness, ask the KME (slave SAE), send Resp, commit on
//! Confirm or on the peer's next Init (docs/PROTOCOL.md, "State machine" and "Security").

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use boringtun::x25519::{PublicKey, StaticSecret};
use ml_kem::array::Array;
use ml_kem::{EncapsulationKey, MlKem768};
use zeroize::Zeroizing;

use super::bootstrap_psk::PskChoice;
use super::candidates::ChainChoice;
use super::material::{check_keys, keylog_entry, sha256};
use super::retransmit::Retransmit;
use super::Session;
use crate::config::QkdPolicy;
use crate::counters::DropReason;
use crate::event::{Destination, KmeRequestId, KmeRequestKind, Role};
use crate::keylog::KeyLogEntry;
use crate::mac;
use crate::message::{Confirm, Init, Resp, MLKEM_CT_LEN};
use crate::qkd::{QkdError, QkdKey};
use crate::schedule::{self, AuthKeys, EpochSecrets, Secret32, SourceSecrets, Transcript};
use crate::shared::Shared;
use crate::sources::SourceMask;

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
}

/// What an authenticated Init was accepted as.
struct Accepted {
    init: Init,
    /// Where the Init came from: the Resp goes there (an accepted Init does not move the
    /// peer's endpoint; see docs/PROTOCOL.md, "Roaming").
    src: SocketAddr,
    init_hash: [u8; 32],
    chain: Secret32,
    auth: AuthKeys,
    bootstrap: bool,
    psk: PskChoice,
}

pub(super) struct ResponderWaiting {
    request: KmeRequestId,
    pub(super) deadline: Instant,
    accepted: Accepted,
}

pub(super) struct SentResp {
    epoch: u64,
    /// The source of the Init we answered: a copy of that Init gets the cached Resp there.
    src: SocketAddr,
    /// The chain key that authenticated the Init (None: a bootstrap).
    keyed_with: Option<Secret32>,
    /// The bootstrap PSK the Init was keyed with.
    psk: PskChoice,
    resp_index: u32,
    init_hash: [u8; 32],
    bytes: Vec<u8>,
    secrets: EpochSecrets,
    transcript: [u8; 32],
    sources: SourceMask,
    key_ids: Vec<String>,
    keylog: Option<Box<KeyLogEntry>>,
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
        init: Init,
        bytes: &[u8],
    ) -> Result<(), DropReason> {
        let auth_off = Init::auth_offset(bytes);
        let authenticated = bytes.get(..auth_off + 16).ok_or(DropReason::Malformed)?;
        let init_hash = sha256(authenticated);
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
        if init.timestamp <= self.state.highest_init_ts {
            return Err(DropReason::Replay);
        }
        let m = self.authenticate_init(sh, now, &init, bytes.get(..auth_off))?;
        // Authenticated from here on; nothing has changed yet, and every check that can
        // still refuse the Init comes before the first change (an `Err` changes nothing).
        let bootstrap = m.is_bootstrap(self.state.has_chain());
        let keyed_for_good = matches!(m.choice, ChainChoice::Current | ChainChoice::Bootstrap);
        if !keyed_for_good && init.timestamp <= self.state.tie_floor {
            // An Init of the peer's that lost a tie here, seen again keyed with a chain
            // that exists only around a commit: only keyed as it was then (its
            // retransmission) could it still be genuine.
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
            init,
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

    fn respond(
        &mut self,
        sh: &mut Shared,
        now: Instant,
        a: &Accepted,
        k_q: Option<Zeroizing<Vec<u8>>>,
    ) -> Result<(), DropReason> {
        let init = &a.init;
        let ek_array = Array::from(*init.ek);
        let ek = EncapsulationKey::<MlKem768>::new(&ek_array).map_err(|_| DropReason::BadKey)?;
        let mut e_bytes = Zeroizing::new([0u8; 32]);
        sh.rng.fill(e_bytes.as_mut());
        let e_secret = StaticSecret::from(*e_bytes);
        let e_resp = *PublicKey::from(&e_secret).as_bytes();
        let ss_x = e_secret.diffie_hellman(&PublicKey::from(init.e_init));
        if !ss_x.was_contributory() {
            return Err(DropReason::BadKey);
        }
        let mut m = Zeroizing::new(Array::from([0u8; 32]));
        sh.rng.fill(m.as_mut_slice());
        let (ct, ss_k) = ek.encapsulate_deterministic(&m);
        let ss_k = Zeroizing::new(ss_k);
        let mut ct_bytes = Box::new([0u8; MLKEM_CT_LEN]);
        ct_bytes.copy_from_slice(&ct);
        let (sources, key_ids) = if k_q.is_some() {
            (SourceMask::ALL, init.key_ids.clone())
        } else {
            (SourceMask::BASE, Vec::new())
        };
        let secrets = SourceSecrets {
            ss_x: ss_x.as_bytes().to_vec(),
            ss_k: ss_k.to_vec(),
            k_q: k_q.map(|k| k.to_vec()).unwrap_or_default(),
        };
        let resp_index = sh.next_index();
        let t = Transcript {
            s_init: &self.peer_public,
            s_resp: &sh.static_public,
            epoch: init.epoch,
            timestamp: init.timestamp,
            init_index: init.sender_index,
            resp_index,
            proposed: init.proposed,
            e_init: &init.e_init,
            ek: &init.ek[..],
            key_ids: &init.key_ids,
            e_resp: &e_resp,
            ct: &ct_bytes[..],
            sources,
        }
        .hash();
        let derived = schedule::combine(&a.chain, &secrets, &t);
        let resp = Resp {
            sources,
            sender_index: resp_index,
            receiver_index: init.sender_index,
            epoch: init.epoch,
            e_resp,
            ct: ct_bytes,
            confirm: schedule::confirm_tag(&derived.confirm_r2i, &t),
            auth: [0; 16],
            mac1: [0; 16],
        };
        let mut bytes = resp.to_bytes();
        let tag = mac::tag(&a.auth.r2i, &bytes[..Resp::AUTH_OFFSET]);
        bytes[Resp::AUTH_OFFSET..Resp::MAC1_OFFSET].copy_from_slice(&tag);
        let mac1 = mac::tag(&self.mac1_key_peer, &bytes[..Resp::MAC1_OFFSET]);
        bytes[Resp::MAC1_OFFSET..].copy_from_slice(&mac1);
        let keylog = sh.keylog.then(|| {
            let ids = (self.peer_public, sh.static_public, init.sender_index);
            keylog_entry(init.epoch, ids, &secrets, &derived)
        });
        // Persisted before the Resp leaves: after a restart the peer's next Init, keyed
        // with this exchange's chain, still confirms it.
        self.record_tentative(sh, init.epoch, &derived.chain);
        tracing::debug!(peer = %self.short, epoch = init.epoch, %sources, "sending keymix response");
        sh.send(Destination::Addr(a.src), bytes.clone());
        self.responding = Some(Responding::Sent(Box::new(SentResp {
            epoch: init.epoch,
            src: a.src,
            keyed_with: (!a.bootstrap).then(|| a.chain.clone()),
            psk: a.psk,
            resp_index,
            init_hash: a.init_hash,
            bytes,
            secrets: derived,
            transcript: t,
            sources,
            key_ids,
            keylog,
            retransmit: Retransmit::new(now),
        })));
        Ok(())
    }

    pub(crate) fn owns_resp_index(&self, index: u32) -> bool {
        matches!(&self.responding, Some(Responding::Sent(s)) if s.resp_index == index)
    }

    pub(crate) fn handle_confirm(
        &mut self,
        sh: &mut Shared,
        now: Instant,
        confirm: &Confirm,
    ) -> Result<(), DropReason> {
        let Some(Responding::Sent(s)) = &self.responding else {
            return Err(DropReason::UnknownIndex);
        };
        if s.resp_index != confirm.receiver_index {
            return Err(DropReason::UnknownIndex);
        }
        if s.epoch != confirm.epoch || s.sources != confirm.sources {
            return Err(DropReason::BadConfirm);
        }
        if !mac::verify(&s.secrets.confirm_i2r, &s.transcript, &confirm.confirm) {
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
