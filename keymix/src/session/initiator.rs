//! Our side of an exchange as initiator: ask the KME (master SAE), send Init, check the
//! Resp, commit and send Confirm (docs/PROTOCOL.md, "State machine").

use std::net::SocketAddr;
use std::time::Instant;

use boringtun::x25519::{PublicKey, StaticSecret};
use ml_kem::array::Array;
use ml_kem::{Decapsulate, DecapsulationKey, KeyExport, MlKem768};
use zeroize::Zeroizing;

use super::bootstrap_psk::PskChoice;
use super::initiator_retry::{BOOTSTRAP_FALLBACK_AFTER, PSK_SWITCH_AFTER};
use super::material::{check_keys, keylog_entry};
use super::retransmit::Retransmit;
use super::{retry_pause, LastConfirm, Session};
use crate::config::QkdPolicy;
use crate::cookie;
use crate::counters::DropReason;
use crate::event::{Destination, KmeRequestId, KmeRequestKind, Role};
use crate::mac;
use crate::message::{Confirm, CookieReply, Init, Resp, COOKIE_LEN, MLKEM_EK_LEN};
use crate::qkd::{QkdError, QkdKey};
use crate::schedule::{self, AuthKeys, Secret32, SourceSecrets, Transcript};
use crate::shared::Shared;
use crate::sources::SourceMask;

/// Our exchange as initiator.
pub(super) enum Initiation {
    AwaitingKme {
        request: KmeRequestId,
        deadline: Instant,
        epoch: u64,
        started: Instant,
    },
    Sent(Box<SentInit>),
}

impl Initiation {
    pub(super) fn epoch(&self) -> u64 {
        match self {
            Self::AwaitingKme { epoch, .. } => *epoch,
            Self::Sent(s) => s.init.epoch,
        }
    }

    /// Whether our initiation may still win a tie: its Init first went out (or its KME
    /// request, before it) less than the longest retransmission interval ago; after that,
    /// the peer evidently does not answer it.
    pub(super) fn is_young(&self, now: Instant) -> bool {
        let since = match self {
            Self::AwaitingKme { started, .. } => *started,
            Self::Sent(s) => s.keyed_at,
        };
        now.saturating_duration_since(since) < super::retransmit::RETRANSMIT_MAX
    }

    /// Keyed with C_0: a bootstrap (without a chain, or a fallback over it).
    pub(super) fn keyed_with_c0(&self, has_chain: bool) -> bool {
        match self {
            Self::AwaitingKme { .. } => !has_chain,
            Self::Sent(s) => s.bootstrap,
        }
    }

    pub(super) fn awaits(&self, id: KmeRequestId) -> bool {
        matches!(self, Self::AwaitingKme { request, .. } if *request == id)
    }
}

pub(super) struct SentInit {
    pub(super) chain: Secret32,
    /// Keyed with C_0: a bootstrap exchange.
    pub(super) bootstrap: bool,
    /// The bootstrap PSK its auth key includes.
    pub(super) psk: PskChoice,
    /// During a bootstrap PSK rotation: this Init already replaced one keyed with the
    /// other PSK that went unanswered (one switch per attempt).
    pub(super) psk_switched: bool,
    /// A bootstrap Init sent in place of an unanswered chain-keyed one (one per attempt).
    pub(super) fallback: bool,
    /// The driver could not send it: the next try is a fresh Init, not a copy.
    pub(super) unsent: bool,
    pub(super) auth: AuthKeys,
    pub(super) init: Init,
    pub(super) bytes: Vec<u8>,
    pub(super) e_secret: StaticSecret,
    pub(super) dk: DecapsulationKey<MlKem768>,
    pub(super) k_q: Zeroizing<Vec<u8>>,
    pub(super) cookie: Option<Zeroizing<[u8; COOKIE_LEN]>>,
    /// When this attempt began (its KME request or first Init): the exchange's duration,
    /// the PSK switch and the bootstrap fallback count from it.
    pub(super) started: Instant,
    /// When an Init keyed as this one (chain, PSK) first went out: its youth in a tie.
    pub(super) keyed_at: Instant,
    pub(super) retransmit: Retransmit,
}

impl Session {
    pub(super) fn initiator_timeout(&mut self, sh: &mut Shared, now: Instant) {
        let may_start = now >= self.next_initiation_at
            && self.reachable
            && !self.responding_blocks_initiation(now);
        match &mut self.initiating {
            None if may_start => self.start_initiation(sh, now),
            None => {}
            Some(Initiation::AwaitingKme {
                request, deadline, ..
            }) if now >= *deadline => {
                let request = *request;
                self.initiator_kme_answer(sh, now, request, Err(QkdError::Timeout));
            }
            Some(Initiation::AwaitingKme { .. }) => {}
            Some(Initiation::Sent(s)) => {
                if now >= s.retransmit.give_up {
                    tracing::debug!(
                        peer = %self.short,
                        "keymix initiation unanswered; starting over"
                    );
                    self.initiating = None;
                    self.next_initiation_at = now + retry_pause(sh.rng_word());
                } else if self.psks.rotating()
                    && !s.psk_switched
                    && now.saturating_duration_since(s.started) >= PSK_SWITCH_AFTER
                {
                    self.switch_psk(sh, now);
                } else if !s.bootstrap
                    && !s.fallback
                    && self.psks.configured()
                    && now.saturating_duration_since(s.started) >= BOOTSTRAP_FALLBACK_AFTER
                {
                    self.fall_back_to_bootstrap(sh, now);
                } else if now >= s.retransmit.next && s.unsent {
                    self.refresh_init(sh, now);
                } else if now >= s.retransmit.next {
                    let word = sh.rng_word();
                    s.retransmit.schedule_next(now, word);
                    // The retransmission carries mac2 once a cookie arrived: a cookie
                    // reply never makes us send at once (no amplification by forgeries).
                    if let Some(c) = &s.cookie {
                        let off = Init::mac2_offset(&s.bytes);
                        let mac2 = mac::tag(c, s.bytes.get(..off).unwrap_or(&[]));
                        if let Some(dst) = s.bytes.get_mut(off..) {
                            dst.copy_from_slice(&mac2);
                        }
                    }
                    let payload = s.bytes.clone();
                    sh.send(Destination::Peer(self.id), payload);
                }
            }
        }
    }

    fn start_initiation(&mut self, sh: &mut Shared, now: Instant) {
        let epoch = self.state.epoch + 1;
        if self.cfg.qkd == QkdPolicy::Off {
            self.send_init(sh, now, None, false);
            return;
        }
        let Some(slave) = self.cfg.peer_sae_id.clone() else {
            self.initiator_kme_failed(sh, now, "no SAE ID configured for this peer".into());
            return;
        };
        let request = self.request_kme(
            sh,
            KmeRequestKind::EncKeys {
                slave_sae_id: slave,
                number: 1,
                size_bits: super::QKD_KEY_BITS,
            },
        );
        self.initiating = Some(Initiation::AwaitingKme {
            request,
            deadline: super::later(now, self.cfg.kme_timeout),
            epoch,
            started: now,
        });
    }

    fn initiator_kme_failed(&mut self, sh: &mut Shared, now: Instant, error: String) {
        tracing::warn!(peer = %self.short, %error, "KME did not deliver a key (as master)");
        self.kme_error = Some(error);
        if self.cfg.qkd == QkdPolicy::Required {
            // Fail closed: no epoch without QKD; try again shortly (nothing was consumed).
            self.initiating = None;
            self.next_initiation_at = now + retry_pause(sh.rng_word());
        } else {
            self.send_init(sh, now, None, false);
        }
    }

    pub(super) fn initiator_kme_answer(
        &mut self,
        sh: &mut Shared,
        now: Instant,
        _request: KmeRequestId,
        result: Result<Vec<QkdKey>, QkdError>,
    ) {
        self.initiating = None;
        match result.and_then(|keys| check_keys(keys, None)) {
            Ok((ids, key)) => self.send_init(sh, now, Some((ids, key)), false),
            Err(e) => self.initiator_kme_failed(sh, now, e.to_string()),
        }
    }

    /// Sends an Init for the next epoch, keyed with our chain; a bootstrap (epoch 1, C_0)
    /// without one, or when `bootstrap` asks for it over the chain we hold.
    pub(super) fn send_init(
        &mut self,
        sh: &mut Shared,
        now: Instant,
        qkd: Option<(Vec<String>, Zeroizing<Vec<u8>>)>,
        bootstrap: bool,
    ) {
        let bootstrap = bootstrap || !self.state.has_chain();
        let epoch = if bootstrap { 1 } else { self.state.epoch + 1 };
        let psk = self.psks.for_init();
        let chain = if bootstrap {
            self.psks.get(psk).chain0.clone()
        } else {
            Zeroizing::new(*self.current_chain(psk))
        };
        let s_init = sh.static_public;
        let auth = schedule::auth_keys(
            &chain,
            &self.ss_static,
            self.bootstrap_psk(psk),
            &s_init,
            &self.peer_public,
        );
        let mut e_bytes = Zeroizing::new([0u8; 32]);
        sh.rng.fill(e_bytes.as_mut());
        let e_secret = StaticSecret::from(*e_bytes);
        let e_init = *PublicKey::from(&e_secret).as_bytes();
        let mut seed = Zeroizing::new(Array::from([0u8; 64]));
        sh.rng.fill(seed.as_mut_slice());
        let dk = DecapsulationKey::<MlKem768>::from_seed(*seed);
        let mut ek = Box::new([0u8; MLKEM_EK_LEN]);
        ek.copy_from_slice(&dk.encapsulation_key().to_bytes());
        let (key_ids, k_q, proposed) = match qkd {
            Some((ids, key)) => (ids, key, SourceMask::ALL),
            None => (Vec::new(), Zeroizing::new(Vec::new()), SourceMask::BASE),
        };
        // Strictly above the last Init we sent, even if the wall clock went back: the
        // peer's replay check must never reject our next Init. Persisted before sending.
        let timestamp = sh.timestamp(now).max(self.state.last_init_sent_ts + 1);
        self.state.last_init_sent_ts = timestamp;
        self.persist(sh);
        let mut init = Init {
            proposed,
            sender_index: sh.next_index(),
            epoch,
            timestamp,
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
        tracing::debug!(peer = %self.short, epoch, sources = %proposed, bootstrap, "sending keymix init");
        sh.send(Destination::Peer(self.id), bytes.clone());
        self.initiating = Some(Initiation::Sent(Box::new(SentInit {
            chain,
            bootstrap,
            psk,
            psk_switched: false,
            fallback: false,
            unsent: false,
            auth,
            init,
            bytes,
            e_secret,
            dk,
            k_q,
            cookie: None,
            started: now,
            keyed_at: now,
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
            self.kme_error = Some("peer's KME did not deliver the QKD key".to_string());
            if self.cfg.qkd == QkdPolicy::Required {
                self.initiating = None;
                self.next_initiation_at = now + retry_pause(sh.rng_word());
                return Err(DropReason::Policy);
            }
        }
        let ss_x = sent.e_secret.diffie_hellman(&PublicKey::from(resp.e_resp));
        if !ss_x.was_contributory() {
            return Err(DropReason::BadKey);
        }
        let ss_k = Zeroizing::new(sent.dk.decapsulate(&Array::from(*resp.ct)));
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
            self.next_initiation_at = now + retry_pause(sh.rng_word());
            return Err(DropReason::BadConfirm);
        }
        let epoch = sent.init.epoch;
        let psk = sent.psk;
        let keyed_with = (!sent.bootstrap).then(|| sent.chain.clone());
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
        // Init sent to Resp accepted (the KME wait before the Init is not in it).
        self.last_exchange = Some(now.saturating_duration_since(sent.started));
        self.initiating = None;
        self.last_confirm = Some(LastConfirm {
            epoch,
            resp_hash: *resp_hash,
            bytes: cbytes.clone(),
        });
        // Commit first: the driver persists the chain before it sends the Confirm.
        self.commit(
            sh,
            now,
            epoch,
            &derived,
            resp.sources,
            key_ids,
            Role::Initiator,
            keyed_with.as_deref(),
            psk,
            keylog,
        );
        sh.send(Destination::Peer(self.id), cbytes);
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

    /// The peer is one epoch behind us (it sent an Init for our current epoch, keyed with
    /// the chain that keyed our current epoch): it never got our Confirm. Send it again,
    /// and start the next exchange now: the peer accepts it through the exchange it still
    /// holds (persisted), which also heals a peer that restarted and can no longer match
    /// the Confirm. Only called for an authenticated, fresh Init.
    pub(super) fn help_peer_behind(&mut self, sh: &mut Shared, now: Instant, src: SocketAddr) {
        if let Some(c) = &self.last_confirm {
            if c.epoch == self.state.epoch {
                // To the Init's source: a Confirm is smaller than an Init.
                sh.send(Destination::Addr(src), c.bytes.clone());
            }
        }
        if self.initiating.is_none() {
            self.next_initiation_at = self.next_initiation_at.min(now);
        }
    }

    /// Stores a cookie for the next retransmission. Returns false for a reply that does
    /// not open (forged or not for our Init).
    pub(crate) fn handle_cookie(&mut self, reply: &CookieReply) -> bool {
        let Some(Initiation::Sent(sent)) = &mut self.initiating else {
            return false;
        };
        if sent.init.sender_index != reply.receiver_index {
            return false;
        }
        let Some(cookie) = cookie::open(&self.cookie_key_peer, reply, &sent.init.mac1) else {
            return false;
        };
        sent.cookie = Some(cookie);
        true
    }
}
