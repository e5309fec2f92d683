//! The per-peer keymix state machine (docs/PROTOCOL.md, "State machine"). It owns the chain
//! key, at most one exchange as initiator and one as responder, and the replay state. It
//! never does I/O: it queues datagrams, events and KME requests in [`Shared`].

use std::time::{Duration, Instant};

use boringtun::x25519::{PublicKey, StaticSecret};
use ml_kem::array::Array;
use ml_kem::{Decapsulate, DecapsulationKey, EncapsulationKey, KeyExport, MlKem768};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::config::{PeerConfig, QkdPolicy};
use crate::cookie;
use crate::counters::DropReason;
use crate::event::{
    Destination, EpochKey, Event, KmeRequest, KmeRequestId, KmeRequestKind, PeerId, Role,
};
use crate::keylog::KeyLogEntry;
use crate::mac;
use crate::message::{Confirm, CookieReply, Init, Resp, COOKIE_LEN, MLKEM_CT_LEN, MLKEM_EK_LEN};
use crate::qkd::{QkdError, QkdKey};
use crate::schedule::{self, AuthKeys, EpochSecrets, Secret32, SourceSecrets, Transcript};
use crate::shared::Shared;
use crate::sources::SourceMask;
use crate::status::{PeerState, PeerStatus};

/// QKD key length requested from the KME, in bits (one 256-bit key per epoch).
pub const QKD_KEY_BITS: u32 = 256;
/// Shortest QKD key material accepted from a KME.
const QKD_MIN_BYTES: usize = 16;
/// Retransmission: first after 1 s, doubling, at most 4 s apart, with +-10% jitter.
const RETRANSMIT_FIRST: Duration = Duration::from_secs(1);
const RETRANSMIT_MAX: Duration = Duration::from_secs(4);
/// An unanswered exchange is abandoned after this long; a fresh one starts.
const EXCHANGE_LIFETIME: Duration = Duration::from_secs(30);
/// Pause before a new initiation after a failed one (KME error, abandoned exchange).
const RETRY_PAUSE: Duration = Duration::from_secs(2);
/// Without an epoch, the side that is not the preferred initiator waits this long first,
/// so that both sides rarely initiate at once.
const SECONDARY_START_DELAY: Duration = Duration::from_secs(1);

/// The committed epoch.
struct Committed {
    epoch: u64,
    chain: Secret32,
    sources: SourceMask,
    key_ids: Vec<String>,
    established: Instant,
    expired: bool,
}

/// Our exchange as initiator.
enum Initiation {
    AwaitingKme {
        request: KmeRequestId,
        deadline: Instant,
    },
    Sent(Box<SentInit>),
}

struct SentInit {
    chain: Secret32,
    auth: AuthKeys,
    init: Init,
    bytes: Vec<u8>,
    e_secret: StaticSecret,
    dk: DecapsulationKey<MlKem768>,
    k_q: Zeroizing<Vec<u8>>,
    cookie: Option<Zeroizing<[u8; COOKIE_LEN]>>,
    retransmit: Retransmit,
}

/// Our exchange as responder.
enum Responding {
    AwaitingKme(Box<ResponderWaiting>),
    Sent(Box<SentResp>),
}

struct ResponderWaiting {
    request: KmeRequestId,
    deadline: Instant,
    init: Init,
    init_hash: [u8; 32],
    chain: Secret32,
    auth: AuthKeys,
}

struct SentResp {
    epoch: u64,
    resp_index: u32,
    init_hash: [u8; 32],
    bytes: Vec<u8>,
    secrets: EpochSecrets,
    transcript: [u8; 32],
    sources: SourceMask,
    key_ids: Vec<String>,
    keylog: Option<Box<KeyLogEntry>>,
    retransmit: Retransmit,
}

/// What the initiator keeps after completing, to answer a retransmitted Resp.
struct LastConfirm {
    resp_hash: [u8; 32],
    bytes: Vec<u8>,
}

struct Retransmit {
    next: Instant,
    interval: Duration,
    give_up: Instant,
}

impl Retransmit {
    fn new(now: Instant) -> Self {
        Self {
            next: now + RETRANSMIT_FIRST,
            interval: RETRANSMIT_FIRST,
            give_up: now + EXCHANGE_LIFETIME,
        }
    }

    fn schedule_next(&mut self, now: Instant, rng_word: u32) {
        self.interval = (self.interval * 2).min(RETRANSMIT_MAX);
        self.next = now + jitter(self.interval, rng_word);
    }
}

/// `d` scaled by a factor in [0.9, 1.1) chosen by `rng_word`.
fn jitter(d: Duration, rng_word: u32) -> Duration {
    let permille = 900 + u64::from(rng_word % 200);
    Duration::from_millis(d.as_millis() as u64 * permille / 1000)
}

fn sha256(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

/// Which chain key authenticated an Init.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ChainChoice {
    Committed,
    PendingResponder,
    Restart,
}

pub(crate) struct Session {
    id: PeerId,
    cfg: PeerConfig,
    peer_public: [u8; 32],
    ss_static: Secret32,
    mac1_key_peer: [u8; 32],
    cookie_key_peer: [u8; 32],
    /// The side with the smaller static public key initiates on schedule; the other side
    /// only when the epoch is overdue, and yields when both initiate the same epoch.
    preferred_initiator: bool,
    chain0: Secret32,
    committed: Option<Committed>,
    initiating: Option<Initiation>,
    responding: Option<Responding>,
    last_confirm: Option<LastConfirm>,
    last_init_timestamp: u64,
    next_initiation_at: Instant,
    kme_error: Option<String>,
    exchanges: u64,
}

impl Session {
    pub(crate) fn new(id: PeerId, cfg: PeerConfig, sh: &mut Shared, now: Instant) -> Self {
        let peer_public = *cfg.public_key.as_bytes();
        let ss_static = Zeroizing::new(sh.static_secret.diffie_hellman(&cfg.public_key).to_bytes());
        let preferred_initiator = sh.static_public < peer_public;
        let chain0 = schedule::chain0(cfg.bootstrap_psk.as_deref());
        Session {
            id,
            peer_public,
            ss_static,
            mac1_key_peer: schedule::mac1_key(&peer_public),
            cookie_key_peer: schedule::cookie_key(&peer_public),
            preferred_initiator,
            chain0,
            committed: None,
            initiating: None,
            responding: None,
            last_confirm: None,
            last_init_timestamp: 0,
            next_initiation_at: if preferred_initiator {
                now
            } else {
                now + SECONDARY_START_DELAY
            },
            kme_error: None,
            exchanges: 0,
            cfg,
        }
    }

    pub(crate) fn public_key(&self) -> &[u8; 32] {
        &self.peer_public
    }

    fn bootstrap_psk(&self) -> Option<&[u8; 32]> {
        self.cfg.bootstrap_psk.as_deref()
    }

    fn current_epoch(&self) -> u64 {
        self.committed.as_ref().map_or(0, |c| c.epoch)
    }

    fn current_chain(&self) -> &Secret32 {
        self.committed.as_ref().map_or(&self.chain0, |c| &c.chain)
    }

    // ---- timers -------------------------------------------------------------------------

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        let mut consider = |x: Instant| t = Some(t.map_or(x, |t| t.min(x)));
        match &self.initiating {
            // While we answer the peer's exchange we do not start our own.
            None if self.responding.is_some() => {}
            None => consider(self.next_initiation_at),
            Some(Initiation::AwaitingKme { deadline, .. }) => consider(*deadline),
            Some(Initiation::Sent(s)) => {
                consider(s.retransmit.next);
                consider(s.retransmit.give_up);
            }
        }
        match &self.responding {
            None => {}
            Some(Responding::AwaitingKme(w)) => consider(w.deadline),
            Some(Responding::Sent(s)) => {
                consider(s.retransmit.next);
                consider(s.retransmit.give_up);
            }
        }
        if let Some(c) = &self.committed {
            if !c.expired {
                consider(c.established + self.cfg.reject_after);
            }
        }
        t
    }

    pub(crate) fn handle_timeout(&mut self, sh: &mut Shared, now: Instant) {
        if let Some(c) = &mut self.committed {
            if !c.expired && now >= c.established + self.cfg.reject_after {
                c.expired = true;
                tracing::warn!(
                    peer = self.id,
                    epoch = c.epoch,
                    "epoch key past its reject age"
                );
                sh.events.push_back(Event::Expired {
                    peer: self.id,
                    epoch: c.epoch,
                });
            }
        }

        match &mut self.initiating {
            None if now >= self.next_initiation_at && self.responding.is_none() => {
                self.start_initiation(sh, now)
            }
            None => {}
            Some(Initiation::AwaitingKme { request, deadline }) if now >= *deadline => {
                let request = *request;
                self.initiator_kme_answer(sh, now, request, Err(QkdError::Timeout));
            }
            Some(Initiation::AwaitingKme { .. }) => {}
            Some(Initiation::Sent(s)) => {
                if now >= s.retransmit.give_up {
                    tracing::debug!(
                        peer = self.id,
                        "keymix initiation unanswered; starting over"
                    );
                    self.initiating = None;
                    self.next_initiation_at = now + RETRY_PAUSE;
                } else if now >= s.retransmit.next {
                    let word = sh.rng_word();
                    s.retransmit.schedule_next(now, word);
                    let payload = s.bytes.clone();
                    sh.send(Destination::Peer(self.id), payload);
                }
            }
        }

        match &mut self.responding {
            None => {}
            Some(Responding::AwaitingKme(w)) if now >= w.deadline => {
                let request = w.request;
                self.responder_kme_answer(sh, now, request, Err(QkdError::Timeout));
            }
            Some(Responding::AwaitingKme(_)) => {}
            Some(Responding::Sent(s)) => {
                if now >= s.retransmit.give_up {
                    self.responding = None;
                } else if now >= s.retransmit.next {
                    let word = sh.rng_word();
                    s.retransmit.schedule_next(now, word);
                    let payload = s.bytes.clone();
                    sh.send(Destination::Peer(self.id), payload);
                }
            }
        }
    }

    // ---- initiator ----------------------------------------------------------------------

    fn start_initiation(&mut self, sh: &mut Shared, now: Instant) {
        if self.cfg.qkd == QkdPolicy::Off {
            self.send_init(sh, now, None);
            return;
        }
        let Some(slave) = self.cfg.peer_sae_id.clone() else {
            self.initiator_kme_failed(sh, now, "no SAE ID configured for this peer".into());
            return;
        };
        let request = sh.next_request_id();
        sh.events.push_back(Event::KmeRequest(KmeRequest {
            id: request,
            peer: self.id,
            kind: KmeRequestKind::EncKeys {
                slave_sae_id: slave,
                number: 1,
                size_bits: QKD_KEY_BITS,
            },
        }));
        self.initiating = Some(Initiation::AwaitingKme {
            request,
            deadline: now + self.cfg.kme_timeout,
        });
    }

    fn initiator_kme_failed(&mut self, sh: &mut Shared, now: Instant, error: String) {
        tracing::warn!(peer = self.id, %error, "KME did not deliver a key (as master)");
        self.kme_error = Some(error);
        if self.cfg.qkd == QkdPolicy::Required {
            // Fail closed: no epoch without QKD; try again shortly (nothing was consumed).
            self.initiating = None;
            self.next_initiation_at = now + RETRY_PAUSE;
        } else {
            self.send_init(sh, now, None);
        }
    }

    fn initiator_kme_answer(
        &mut self,
        sh: &mut Shared,
        now: Instant,
        request: KmeRequestId,
        result: Result<Vec<QkdKey>, QkdError>,
    ) {
        self.initiating = None;
        match result.and_then(|keys| check_keys(keys, None)) {
            Ok((ids, key)) => self.send_init(sh, now, Some((ids, key))),
            Err(e) => {
                let _ = request;
                self.initiator_kme_failed(sh, now, e.to_string());
            }
        }
    }

    fn send_init(
        &mut self,
        sh: &mut Shared,
        now: Instant,
        qkd: Option<(Vec<String>, Zeroizing<Vec<u8>>)>,
    ) {
        let epoch = self.current_epoch() + 1;
        let chain = self.current_chain().clone();
        let s_init = sh.static_public;
        let auth = schedule::auth_keys(
            &chain,
            &self.ss_static,
            self.bootstrap_psk(),
            &s_init,
            &self.peer_public,
        );
        let mut e_bytes = Zeroizing::new([0u8; 32]);
        sh.rng.fill(e_bytes.as_mut());
        let e_secret = StaticSecret::from(*e_bytes);
        let e_init = *PublicKey::from(&e_secret).as_bytes();
        let mut seed = Zeroizing::new([0u8; 64]);
        sh.rng.fill(seed.as_mut());
        let dk = DecapsulationKey::<MlKem768>::from_seed(Array::from(*seed));
        let mut ek = Box::new([0u8; MLKEM_EK_LEN]);
        ek.copy_from_slice(&dk.encapsulation_key().to_bytes());
        let (key_ids, k_q, proposed) = match qkd {
            Some((ids, key)) => (ids, key, SourceMask::ALL),
            None => (Vec::new(), Zeroizing::new(Vec::new()), SourceMask::BASE),
        };
        let mut init = Init {
            proposed,
            sender_index: sh.next_index(),
            epoch,
            timestamp: sh.timestamp(now),
            s_init,
            e_init,
            ek,
            key_ids,
            auth: [0; 16],
            mac1: [0; 16],
            mac2: [0; 16],
        };
        let mut bytes = init.to_bytes();
        let off = Init::auth_offset(&bytes);
        init.auth = mac::tag(&auth.i2r, &bytes[..off]);
        bytes[off..off + 16].copy_from_slice(&init.auth);
        let off = Init::mac1_offset(&bytes);
        init.mac1 = mac::tag(&self.mac1_key_peer, &bytes[..off]);
        bytes[off..off + 16].copy_from_slice(&init.mac1);
        tracing::debug!(peer = self.id, epoch, sources = %proposed, "sending keymix init");
        sh.send(Destination::Peer(self.id), bytes.clone());
        self.initiating = Some(Initiation::Sent(Box::new(SentInit {
            chain,
            auth,
            init,
            bytes,
            e_secret,
            dk,
            k_q,
            cookie: None,
            retransmit: Retransmit::new(now),
        })));
    }

    pub(crate) fn owns_init_index(&self, index: u32) -> bool {
        matches!(&self.initiating, Some(Initiation::Sent(s)) if s.init.sender_index == index)
    }

    pub(crate) fn answers_resp(&self, index: u32, resp_hash: &[u8; 32]) -> bool {
        self.owns_init_index(index)
            || self
                .last_confirm
                .as_ref()
                .is_some_and(|c| &c.resp_hash == resp_hash)
    }

    pub(crate) fn handle_resp(
        &mut self,
        sh: &mut Shared,
        now: Instant,
        resp: &Resp,
        bytes: &[u8],
        resp_hash: &[u8; 32],
    ) -> Result<(), DropReason> {
        let Some(Initiation::Sent(sent)) = &self.initiating else {
            return self.resend_confirm(sh, resp_hash);
        };
        if sent.init.sender_index != resp.receiver_index {
            return self.resend_confirm(sh, resp_hash);
        }
        if resp.epoch != sent.init.epoch {
            return Err(DropReason::StaleEpoch);
        }
        let auth_part = bytes
            .get(..Resp::AUTH_OFFSET)
            .ok_or(DropReason::Malformed)?;
        if !mac::verify(&sent.auth.r2i, auth_part, &resp.auth) {
            return Err(DropReason::BadAuth);
        }
        // Authenticated from here on.
        let proposed = sent.init.proposed;
        if !proposed.contains(resp.sources) {
            return Err(DropReason::Policy);
        }
        if proposed.has_qkd() && !resp.sources.has_qkd() {
            let msg = "peer's KME did not deliver the QKD key".to_string();
            self.kme_error = Some(msg);
            if self.cfg.qkd == QkdPolicy::Required {
                self.initiating = None;
                self.next_initiation_at = now + RETRY_PAUSE;
                return Err(DropReason::Policy);
            }
        }
        let e_resp = PublicKey::from(resp.e_resp);
        let ss_x = sent.e_secret.diffie_hellman(&e_resp);
        if !ss_x.was_contributory() {
            return Err(DropReason::BadKey);
        }
        let ct = Array::from(*resp.ct);
        let ss_k = sent.dk.decapsulate(&ct);
        let secrets = SourceSecrets {
            ss_x: ss_x.as_bytes().to_vec(),
            ss_k: ss_k.to_vec(),
            k_q: if resp.sources.has_qkd() {
                sent.k_q.to_vec()
            } else {
                Vec::new()
            },
        };
        let t = Transcript {
            s_init: &sent.init.s_init,
            s_resp: &self.peer_public,
            epoch: sent.init.epoch,
            timestamp: sent.init.timestamp,
            init_index: sent.init.sender_index,
            resp_index: resp.sender_index,
            proposed,
            e_init: &sent.init.e_init,
            ek: &sent.init.ek[..],
            key_ids: &sent.init.key_ids,
            e_resp: &resp.e_resp,
            ct: &resp.ct[..],
            sources: resp.sources,
        }
        .hash();
        let derived = schedule::combine(&sent.chain, &secrets, &t);
        if !mac::verify(&derived.confirm_r2i, &t, &resp.confirm) {
            // Authentic but the keys differ (e.g. the KMEs handed out different keys).
            self.kme_error = Some("key confirmation failed: peer derived another key".into());
            self.initiating = None;
            self.next_initiation_at = now + RETRY_PAUSE;
            return Err(DropReason::BadConfirm);
        }
        let epoch = sent.init.epoch;
        let key_ids = if resp.sources.has_qkd() {
            sent.init.key_ids.clone()
        } else {
            Vec::new()
        };
        let mut confirm = Confirm {
            sources: resp.sources,
            receiver_index: resp.sender_index,
            epoch,
            confirm: schedule::confirm_tag(&derived.confirm_i2r, &t),
            mac1: [0; 16],
        };
        let mut cbytes = confirm.to_bytes();
        confirm.mac1 = mac::tag(&self.mac1_key_peer, &cbytes[..Confirm::MAC1_OFFSET]);
        cbytes[Confirm::MAC1_OFFSET..].copy_from_slice(&confirm.mac1);
        let keylog = sh.keylog.then(|| {
            let ids = (sent.init.s_init, self.peer_public, sent.init.sender_index);
            keylog_entry(epoch, ids, &secrets, &derived)
        });
        self.initiating = None;
        self.last_confirm = Some(LastConfirm {
            resp_hash: *resp_hash,
            bytes: cbytes.clone(),
        });
        sh.send(Destination::Peer(self.id), cbytes);
        self.commit(
            sh,
            now,
            epoch,
            &derived,
            resp.sources,
            key_ids,
            Role::Initiator,
            keylog,
        );
        Ok(())
    }

    fn resend_confirm(&self, sh: &mut Shared, resp_hash: &[u8; 32]) -> Result<(), DropReason> {
        match &self.last_confirm {
            Some(c) if &c.resp_hash == resp_hash => {
                sh.send(Destination::Peer(self.id), c.bytes.clone());
                Err(DropReason::Duplicate)
            }
            _ => Err(DropReason::UnknownIndex),
        }
    }

    pub(crate) fn handle_cookie(&mut self, sh: &mut Shared, reply: &CookieReply) -> bool {
        let Some(Initiation::Sent(sent)) = &mut self.initiating else {
            return false;
        };
        if sent.init.sender_index != reply.receiver_index {
            return false;
        }
        let Some(cookie) = cookie::open(&self.cookie_key_peer, reply, &sent.init.mac1) else {
            return false;
        };
        let off = Init::mac2_offset(&sent.bytes);
        let mac2 = mac::tag(&cookie, &sent.bytes[..off]);
        sent.bytes[off..].copy_from_slice(&mac2);
        sent.init.mac2 = mac2;
        sent.cookie = Some(cookie);
        sh.send(Destination::Peer(self.id), sent.bytes.clone());
        true
    }

    // ---- responder ----------------------------------------------------------------------

    pub(crate) fn handle_init(
        &mut self,
        sh: &mut Shared,
        now: Instant,
        init: Init,
        bytes: &[u8],
    ) -> Result<(), DropReason> {
        let auth_off = Init::auth_offset(bytes);
        let authenticated = bytes.get(..auth_off + 16).ok_or(DropReason::Malformed)?;
        let init_hash = sha256(authenticated);
        match &self.responding {
            Some(Responding::Sent(s)) if s.init_hash == init_hash => {
                sh.send(Destination::Peer(self.id), s.bytes.clone());
                return Err(DropReason::Duplicate);
            }
            Some(Responding::AwaitingKme(w)) if w.init_hash == init_hash => {
                return Err(DropReason::Duplicate);
            }
            _ => {}
        }
        if init.timestamp <= self.last_init_timestamp {
            return Err(DropReason::Replay);
        }

        // Which chain key may have keyed this Init's tag.
        let mut candidates: Vec<(ChainChoice, Secret32)> = Vec::with_capacity(3);
        let cur = self.current_epoch();
        if init.epoch == cur + 1 {
            candidates.push((ChainChoice::Committed, self.current_chain().clone()));
        }
        if let Some(Responding::Sent(s)) = &self.responding {
            if init.epoch == s.epoch + 1 {
                candidates.push((
                    ChainChoice::PendingResponder,
                    Zeroizing::new(s.secrets.chain),
                ));
            }
        }
        if init.epoch == 1 && cur != 0 {
            candidates.push((ChainChoice::Restart, self.chain0.clone()));
        }
        if candidates.is_empty() {
            return Err(DropReason::StaleEpoch);
        }
        let data = &bytes[..auth_off];
        let mut found = None;
        for (choice, chain) in candidates {
            let keys = schedule::auth_keys(
                &chain,
                &self.ss_static,
                self.bootstrap_psk(),
                &self.peer_public,
                &sh.static_public,
            );
            if mac::verify(&keys.i2r, data, &init.auth) {
                found = Some((choice, chain, keys));
                break;
            }
        }
        let Some((choice, chain, auth)) = found else {
            return Err(DropReason::BadAuth);
        };
        // Authenticated from here on.

        if let Some(ours) = &self.initiating {
            let our_epoch = match ours {
                Initiation::Sent(s) => Some(s.init.epoch),
                Initiation::AwaitingKme { .. } => Some(cur + 1),
            };
            if our_epoch == Some(init.epoch) && self.preferred_initiator {
                // Both initiated this epoch; ours wins, the peer will answer it.
                return Err(DropReason::SimultaneousInitiation);
            }
            tracing::debug!(
                peer = self.id,
                "yielding our keymix initiation to the peer's"
            );
            self.initiating = None;
        }

        if choice == ChainChoice::PendingResponder {
            // The peer keyed this Init with the chain of our pending exchange: it holds
            // C_n, so it completed that exchange (its Confirm was lost). Commit it.
            self.commit_pending_responder(sh, now);
        }
        self.last_init_timestamp = init.timestamp;

        if !init.proposed.has_qkd() && self.cfg.qkd == QkdPolicy::Required {
            self.kme_error = Some("peer offered no QKD key and policy is required".into());
            self.responding = None;
            return Err(DropReason::Policy);
        }
        if init.proposed.has_qkd() && self.cfg.qkd != QkdPolicy::Off {
            let master = self.cfg.peer_sae_id.clone();
            let Some(master) = master else {
                self.responder_kme_failed(
                    sh,
                    now,
                    init,
                    init_hash,
                    chain,
                    auth,
                    "no SAE ID configured for this peer".into(),
                );
                return Ok(());
            };
            let request = sh.next_request_id();
            sh.events.push_back(Event::KmeRequest(KmeRequest {
                id: request,
                peer: self.id,
                kind: KmeRequestKind::DecKeys {
                    master_sae_id: master,
                    key_ids: init.key_ids.clone(),
                },
            }));
            self.responding = Some(Responding::AwaitingKme(Box::new(ResponderWaiting {
                request,
                deadline: now + self.cfg.kme_timeout,
                init,
                init_hash,
                chain,
                auth,
            })));
            return Ok(());
        }
        self.respond(sh, now, &init, init_hash, &chain, &auth, None)
    }

    #[allow(clippy::too_many_arguments)]
    fn responder_kme_failed(
        &mut self,
        sh: &mut Shared,
        now: Instant,
        init: Init,
        init_hash: [u8; 32],
        chain: Secret32,
        auth: AuthKeys,
        error: String,
    ) {
        tracing::warn!(peer = self.id, %error, "KME did not deliver the key (as slave)");
        self.kme_error = Some(error);
        if self.cfg.qkd == QkdPolicy::Required {
            self.responding = None;
            return;
        }
        let _ = self.respond(sh, now, &init, init_hash, &chain, &auth, None);
    }

    fn responder_kme_answer(
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
        match result.and_then(|keys| check_keys(keys, Some(&w.init.key_ids))) {
            Ok((_, key)) => {
                let _ = self.respond(sh, now, &w.init, w.init_hash, &w.chain, &w.auth, Some(key));
            }
            Err(e) => self.responder_kme_failed(
                sh,
                now,
                w.init,
                w.init_hash,
                w.chain,
                w.auth,
                e.to_string(),
            ),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn respond(
        &mut self,
        sh: &mut Shared,
        now: Instant,
        init: &Init,
        init_hash: [u8; 32],
        chain: &Secret32,
        auth: &AuthKeys,
        k_q: Option<Zeroizing<Vec<u8>>>,
    ) -> Result<(), DropReason> {
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
        let mut m = Zeroizing::new([0u8; 32]);
        sh.rng.fill(m.as_mut());
        let (ct, ss_k) = ek.encapsulate_deterministic(&Array::from(*m));
        let mut ct_bytes = Box::new([0u8; MLKEM_CT_LEN]);
        ct_bytes.copy_from_slice(&ct);
        let sources = if k_q.is_some() {
            SourceMask::ALL
        } else {
            SourceMask::BASE
        };
        let key_ids = if k_q.is_some() {
            init.key_ids.clone()
        } else {
            Vec::new()
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
        let derived = schedule::combine(chain, &secrets, &t);
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
        let tag = mac::tag(&auth.r2i, &bytes[..Resp::AUTH_OFFSET]);
        bytes[Resp::AUTH_OFFSET..Resp::MAC1_OFFSET].copy_from_slice(&tag);
        let mac1 = mac::tag(&self.mac1_key_peer, &bytes[..Resp::MAC1_OFFSET]);
        bytes[Resp::MAC1_OFFSET..].copy_from_slice(&mac1);
        tracing::debug!(peer = self.id, epoch = init.epoch, %sources, "sending keymix response");
        sh.send(Destination::Peer(self.id), bytes.clone());
        let keylog = sh.keylog.then(|| {
            let ids = (self.peer_public, sh.static_public, init.sender_index);
            keylog_entry(init.epoch, ids, &secrets, &derived)
        });
        self.responding = Some(Responding::Sent(Box::new(SentResp {
            epoch: init.epoch,
            resp_index,
            init_hash,
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
        self.commit_pending_responder(sh, now);
        Ok(())
    }

    fn commit_pending_responder(&mut self, sh: &mut Shared, now: Instant) {
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
                s.keylog.clone(),
            );
        }
    }

    pub(crate) fn handle_kme_result(
        &mut self,
        sh: &mut Shared,
        now: Instant,
        request: KmeRequestId,
        result: Result<Vec<QkdKey>, QkdError>,
    ) -> bool {
        match (&self.initiating, &self.responding) {
            (Some(Initiation::AwaitingKme { request: r, .. }), _) if *r == request => {
                self.initiator_kme_answer(sh, now, request, result);
                true
            }
            (_, Some(Responding::AwaitingKme(w))) if w.request == request => {
                self.responder_kme_answer(sh, now, request, result);
                true
            }
            _ => false,
        }
    }

    // ---- commit and status --------------------------------------------------------------

    #[allow(clippy::too_many_arguments)]
    fn commit(
        &mut self,
        sh: &mut Shared,
        now: Instant,
        epoch: u64,
        derived: &EpochSecrets,
        sources: SourceMask,
        key_ids: Vec<String>,
        role: Role,
        keylog: Option<Box<KeyLogEntry>>,
    ) {
        self.committed = Some(Committed {
            epoch,
            chain: Zeroizing::new(derived.chain),
            sources,
            key_ids: key_ids.clone(),
            established: now,
            expired: false,
        });
        self.exchanges += 1;
        if sources.has_qkd() {
            self.kme_error = None;
        }
        // The preferred initiator rekeys on time; the other side only if it is overdue.
        let base = if self.preferred_initiator {
            self.cfg.epoch
        } else {
            self.cfg.epoch + self.cfg.epoch / 8
        };
        self.next_initiation_at = now + jitter(base, sh.rng_word()).min(base);
        tracing::info!(peer = self.id, epoch, %sources, ?role, "new epoch key");
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

    pub(crate) fn status(&self, now: Instant) -> PeerStatus {
        let (state, epoch, age, sources, ids, expired) = match &self.committed {
            None => {
                let blocked = self.cfg.qkd == QkdPolicy::Required && self.kme_error.is_some();
                let state = if blocked {
                    PeerState::Blocked
                } else {
                    PeerState::Connecting
                };
                (state, None, None, SourceMask::default(), Vec::new(), false)
            }
            Some(c) => {
                let expired = c.expired || now >= c.established + self.cfg.reject_after;
                let state = if expired {
                    PeerState::Blocked
                } else if self.cfg.qkd != QkdPolicy::Off && !c.sources.has_qkd() {
                    if self.cfg.qkd == QkdPolicy::Required {
                        PeerState::Blocked
                    } else {
                        PeerState::Degraded
                    }
                } else {
                    PeerState::Up
                };
                (
                    state,
                    Some(c.epoch),
                    Some(now.saturating_duration_since(c.established)),
                    c.sources,
                    c.key_ids.clone(),
                    expired,
                )
            }
        };
        PeerStatus {
            state,
            epoch,
            epoch_age: age,
            sources,
            qkd_key_ids: ids,
            last_kme_error: self.kme_error.clone(),
            expired,
            exchanges: self.exchanges,
        }
    }
}

/// Checks a KME answer: the right IDs (when we asked for given IDs), enough key material.
/// Returns the IDs and the concatenated key.
fn check_keys(
    keys: Vec<QkdKey>,
    expected_ids: Option<&[String]>,
) -> Result<(Vec<String>, Zeroizing<Vec<u8>>), QkdError> {
    let ids: Vec<String> = keys.iter().map(|k| k.key_id.clone()).collect();
    if let Some(expected) = expected_ids {
        if ids != expected {
            return Err(QkdError::Malformed(
                "KME returned other keys than the IDs asked for".into(),
            ));
        }
    }
    if !Init::key_ids_fit(&ids) || ids.is_empty() {
        return Err(QkdError::Malformed(
            "KME key IDs do not fit a keymix message (at most 2, 64 bytes each)".into(),
        ));
    }
    let mut key = Zeroizing::new(Vec::new());
    for k in &keys {
        key.extend_from_slice(&k.key);
    }
    if key.len() < QKD_MIN_BYTES {
        return Err(QkdError::Malformed(format!(
            "KME delivered {} bytes of key, need at least {QKD_MIN_BYTES}",
            key.len()
        )));
    }
    Ok((ids, key))
}

/// `ids` = (S_i, S_r, the Init's sender_index): what ties the entry to a captured exchange.
fn keylog_entry(
    epoch: u64,
    ids: ([u8; 32], [u8; 32], u32),
    secrets: &SourceSecrets,
    derived: &EpochSecrets,
) -> Box<KeyLogEntry> {
    let mut ss_x = [0u8; 32];
    let mut ss_k = [0u8; 32];
    if let (Some(x), Some(k)) = (secrets.ss_x.get(..32), secrets.ss_k.get(..32)) {
        ss_x.copy_from_slice(x);
        ss_k.copy_from_slice(k);
    }
    Box::new(KeyLogEntry {
        epoch,
        s_init: ids.0,
        s_resp: ids.1,
        init_index: ids.2,
        ss_x,
        ss_k,
        k_q: secrets.k_q.clone(),
        psk_fingerprint: schedule::psk_fingerprint(&derived.psk),
    })
}
