//! Our side of an exchange as initiator: ask the KME (master SAE), send Init, check the
//! Resp, commit and send Confirm (docs/PROTOCOL.md, "State machine").

use std::net::SocketAddr;
use std::time::Instant;

use boringtun::x25519::{PublicKey, StaticSecret};
use ml_kem::array::Array;
use ml_kem::{Decapsulate, DecapsulationKey, MlKem768};
use zeroize::Zeroizing;

use super::bootstrap_psk::PskChoice;
use super::init_send::OwnExchangeKeys;
use super::material::{check_keys, keylog_entry};
use super::retransmit::Retransmit;
use super::{retry_pause, LastConfirm, Session};
use crate::config::QkdPolicy;
use crate::cookie;
use crate::counters::DropReason;
use crate::event::{Destination, KmeRequestId, KmeRequestKind, Role};
use crate::hide;
use crate::mac;
use crate::message::{Confirm, CookieReply, Init, Resp, COOKIE_LEN};
use crate::message_v2::{self, ConfirmV2, RespV2};
use crate::qkd::{QkdError, QkdKey};
use crate::schedule::{self, AuthKeys, Secret32, SourceSecrets, Transcript};
use crate::shared::Shared;
use crate::sources::SourceMask;
use crate::Version;

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

    pub(super) fn init_index(&self) -> Option<u32> {
        match self {
            Self::AwaitingKme { .. } => None,
            Self::Sent(s) => Some(s.init.sender_index),
        }
    }
}

pub(super) struct SentInit {
    pub(super) version: Version,
    /// Version 2: the Init's hiding key and the exchange keys derived from it.
    pub(super) hidden: Option<Box<OwnExchangeKeys>>,
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
    /// A version-1 Init sent in place of an unanswered version-2 one (one per attempt).
    pub(super) version_switched: bool,
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

impl SentInit {
    /// Its QKD key IDs and key, for an Init sent in its place: the peer did not answer, so
    /// it consumed none of them.
    pub(super) fn qkd_for_replacement(&self) -> Option<(Vec<String>, Zeroizing<Vec<u8>>)> {
        (!self.init.key_ids.is_empty()).then(|| (self.init.key_ids.clone(), self.k_q.clone()))
    }
}

impl Session {
    pub(super) fn initiator_timeout(&mut self, sh: &mut Shared, now: Instant) {
        let may_start = now >= self.next_initiation_at
            && self.reachable
            && !self.responding_blocks_initiation(now);
        let due = match &self.initiating {
            Some(Initiation::Sent(s)) => Some(self.replacements_due(s)),
            _ => None,
        };
        let is_due = |at: Option<Instant>| at.is_some_and(|at| now >= at);
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
                let due = due.as_ref();
                if now >= s.retransmit.give_up {
                    tracing::debug!(
                        peer = %self.short,
                        "keymix initiation unanswered; starting over"
                    );
                    self.initiating = None;
                    self.next_initiation_at = now + retry_pause(sh.rng_word());
                } else if is_due(due.and_then(|d| d.psk)) {
                    // Before the version: a peer that holds the other PSK speaks our
                    // version, and one pinned to version 2 refuses version 1 whatever it is
                    // keyed with (campaign seed 1000533).
                    self.switch_psk(sh, now);
                } else if is_due(due.and_then(|d| d.version)) {
                    self.switch_version(sh, now);
                } else if is_due(due.and_then(|d| d.bootstrap)) {
                    self.fall_back_to_bootstrap(sh, now);
                } else if now >= s.retransmit.next && s.unsent {
                    self.refresh_init(sh, now);
                } else if now >= s.retransmit.next {
                    let word = sh.rng_word();
                    s.retransmit.schedule_next(now, word);
                    // The retransmission carries mac2 once a cookie arrived: a cookie
                    // reply never makes us send at once (no amplification by forgeries).
                    if let Some(c) = &s.cookie {
                        let off = match s.version {
                            Version::V1 => Init::mac2_offset(&s.bytes),
                            Version::V2 => message_v2::init::MAC2,
                        };
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
        self.psks.new_attempt();
        let epoch = self.state.epoch + 1;
        if self.cfg.qkd == QkdPolicy::Off {
            self.send_first_init(sh, now, None);
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
            self.send_first_init(sh, now, None);
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
            Ok((ids, key)) => self.send_first_init(sh, now, Some((ids, key))),
            Err(e) => self.initiator_kme_failed(sh, now, e.to_string()),
        }
    }

    /// A Resp for our live Init (or a copy of the one we confirmed: the Confirm again).
    /// Version 1's mac1 was checked by the endpoint; version 2's is under the exchange's
    /// K_mac1x, which only this session holds, and its mask is sealed under K_resp.
    pub(crate) fn handle_resp(
        &mut self,
        sh: &mut Shared,
        now: Instant,
        version: Version,
        bytes: &[u8],
        resp_hash: &[u8; 32],
    ) -> Result<(), DropReason> {
        self.check_version(now, version)?;
        let receiver_index = match version {
            Version::V1 => Resp::parse(bytes).map(|r| r.receiver_index),
            Version::V2 => RespV2::parse(bytes).map(|r| r.receiver_index),
        }
        .map_err(|_| DropReason::Malformed)?;
        let Some(Initiation::Sent(sent)) = &self.initiating else {
            return self.resend_confirm(sh, resp_hash);
        };
        if sent.init.sender_index != receiver_index {
            return self.resend_confirm(sh, resp_hash);
        }
        if sent.version != version {
            return Err(DropReason::UnknownIndex);
        }
        let (resp, auth_covered) = match &sent.hidden {
            None => {
                let resp = Resp::parse(bytes).map_err(|_| DropReason::Malformed)?;
                (resp, bytes.get(..Resp::AUTH_OFFSET))
            }
            Some(h) => {
                let wire = RespV2::parse(bytes).map_err(|_| DropReason::Malformed)?;
                let covered = bytes.get(..message_v2::resp::MAC1).unwrap_or(&[]);
                if !mac::verify(&h.keys.mac1, covered, &wire.mac1) {
                    return Err(DropReason::BadMac1);
                }
                let aad = bytes.get(..message_v2::resp::SEALED).unwrap_or(&[]);
                let nonce = hide::resp_nonce(wire.sender_index);
                let mask = hide::open_with(&h.keys.resp, &nonce, &wire.sealed, aad)
                    .ok_or(DropReason::BadAuth)?;
                let sources = mask
                    .first()
                    .and_then(|b| SourceMask::from_wire(*b))
                    .ok_or(DropReason::Malformed)?;
                let resp = Resp {
                    sources,
                    sender_index: wire.sender_index,
                    receiver_index: wire.receiver_index,
                    epoch: sent.init.epoch,
                    e_resp: wire.e_resp,
                    ct: wire.ct,
                    confirm: wire.confirm,
                    auth: wire.auth,
                    mac1: wire.mac1,
                };
                (resp, bytes.get(..message_v2::resp::AUTH))
            }
        };
        if resp.epoch != sent.init.epoch {
            return Err(DropReason::StaleEpoch);
        }
        let auth_part = auth_covered.ok_or(DropReason::Malformed)?;
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
        .hash_with(version.labels());
        let derived = schedule::combine_with(version.labels(), &sent.chain, &secrets, &t);
        if !mac::verify(&derived.confirm_r2i, &t, &resp.confirm) {
            // Authentic but the keys differ (e.g. the KMEs handed out different keys).
            self.kme_error = Some("key confirmation failed: peer derived another key".into());
            self.resume = Some(super::resume::Resume::of(sent));
            self.initiating = None;
            self.next_initiation_at = now + retry_pause(sh.rng_word());
            return Err(DropReason::BadConfirm);
        }
        let epoch = sent.init.epoch;
        let init_index = sent.init.sender_index;
        let psk = sent.psk;
        let keyed_with = (!sent.bootstrap).then(|| sent.chain.clone());
        let key_ids = if resp.sources.has_qkd() {
            sent.init.key_ids.clone()
        } else {
            Vec::new()
        };
        let confirm_i = schedule::confirm_tag(&derived.confirm_i2r, &t);
        let cbytes = match &sent.hidden {
            None => {
                let mut confirm = Confirm {
                    sources: resp.sources,
                    receiver_index: resp.sender_index,
                    epoch,
                    confirm: confirm_i,
                    mac1: [0; 16],
                };
                let mut cbytes = confirm.to_bytes();
                let mac1_key = self.mac1_key_peer(Version::V1);
                confirm.mac1 = mac::tag(&mac1_key, &cbytes[..Confirm::MAC1_OFFSET]);
                cbytes[Confirm::MAC1_OFFSET..].copy_from_slice(&confirm.mac1);
                cbytes
            }
            Some(h) => {
                let mut cbytes = ConfirmV2::head(resp.sender_index, &confirm_i);
                cbytes.extend_from_slice(&mac::tag(&h.keys.mac1, &cbytes));
                cbytes
            }
        };
        let keylog = sh.keylog.then(|| {
            let ids = (sent.init.s_init, self.peer_public, sent.init.sender_index);
            let k_init = sent.hidden.as_ref().map(|h| *h.k_init);
            keylog_entry(version, epoch, ids, &secrets, &derived, k_init)
        });
        // Init sent to Resp accepted (the KME wait before the Init is not in it).
        self.last_exchange = Some(now.saturating_duration_since(sent.started));
        self.initiating = None;
        self.last_confirm = Some(LastConfirm {
            epoch,
            init_index,
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
            version,
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
    pub(crate) fn handle_cookie(&mut self, version: Version, reply: &CookieReply) -> bool {
        let key = self.cookie_key_peer(version);
        let Some(Initiation::Sent(sent)) = &mut self.initiating else {
            return false;
        };
        if sent.init.sender_index != reply.receiver_index || sent.version != version {
            return false;
        }
        let Some(cookie) = cookie::open(&key, reply, &sent.init.mac1) else {
            return false;
        };
        sent.cookie = Some(cookie);
        true
    }
}
