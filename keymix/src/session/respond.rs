//! The responder's answer to an accepted Init, in the Init's version: draw E_r, encapsulate
//! to the initiator's ML-KEM key, mix the sources, persist the tentative exchange and send
//! the Resp (docs/PROTOCOL.md, "State machine", Responder steps 8-9; "Messages").

use std::time::Instant;

use boringtun::x25519::{PublicKey, StaticSecret};
use ml_kem::array::Array;
use ml_kem::{EncapsulationKey, MlKem768};
use zeroize::Zeroizing;

use super::material::keylog_entry;
use super::responder::{Accepted, Responding, SentResp};
use super::retransmit::Retransmit;
use super::Session;
use crate::counters::DropReason;
use crate::event::Destination;
use crate::hide;
use crate::mac;
use crate::message::{Resp, MLKEM_CT_LEN};
use crate::message_v2::{self, RespV2};
use crate::schedule::{self, SourceSecrets, Transcript};
use crate::shared::Shared;
use crate::sources::SourceMask;
use crate::Version;

impl Session {
    pub(super) fn respond(
        &mut self,
        sh: &mut Shared,
        now: Instant,
        a: &Accepted,
        k_q: Option<Zeroizing<Vec<u8>>>,
    ) -> Result<(), DropReason> {
        let init = &a.init;
        let labels = a.version.labels();
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
        .hash_with(labels);
        let derived = schedule::combine_with(labels, &a.chain, &secrets, &t);
        let confirm = schedule::confirm_tag(&derived.confirm_r2i, &t);
        let bytes = match &a.hidden {
            None => self.resp_v1(a, resp_index, sources, e_resp, ct_bytes, confirm),
            Some(h) => {
                let mut b = RespV2::head(resp_index, init.sender_index, &e_resp, &ct_bytes[..]);
                let nonce = hide::resp_nonce(resp_index);
                let sealed = hide::seal_with(&h.keys.resp, &nonce, &[sources.bits()], &b);
                b.extend_from_slice(&sealed);
                b.extend_from_slice(&confirm);
                b.extend_from_slice(&mac::tag(&a.auth.r2i, &b));
                b.extend_from_slice(&mac::tag(&h.keys.mac1, &b));
                debug_assert_eq!(b.len(), message_v2::RESP_LEN);
                b
            }
        };
        let keylog = sh.keylog.then(|| {
            let ids = (self.peer_public, sh.static_public, init.sender_index);
            let k_init = a.hidden.as_ref().map(|h| *h.k_init);
            keylog_entry(a.version, init.epoch, ids, &secrets, &derived, k_init)
        });
        // Persisted before the Resp leaves: after a restart the peer's next Init, keyed
        // with this exchange's chain, still confirms it.
        self.record_tentative(sh, init.epoch, &derived.chain);
        tracing::debug!(peer = %self.short, epoch = init.epoch, %sources, version = %a.version, "sending keymix response");
        sh.send(Destination::Addr(a.src), bytes.clone());
        self.responding = Some(Responding::Sent(Box::new(SentResp {
            version: a.version,
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
            confirm_mac1: a.hidden.as_ref().map(|h| h.keys.mac1.clone()),
            retransmit: Retransmit::new(now),
        })));
        Ok(())
    }

    fn resp_v1(
        &self,
        a: &Accepted,
        resp_index: u32,
        sources: SourceMask,
        e_resp: [u8; 32],
        ct: Box<[u8; MLKEM_CT_LEN]>,
        confirm: [u8; 16],
    ) -> Vec<u8> {
        let resp = Resp {
            sources,
            sender_index: resp_index,
            receiver_index: a.init.sender_index,
            epoch: a.init.epoch,
            e_resp,
            ct,
            confirm,
            auth: [0; 16],
            mac1: [0; 16],
        };
        let mut bytes = resp.to_bytes();
        let tag = mac::tag(&a.auth.r2i, &bytes[..Resp::AUTH_OFFSET]);
        bytes[Resp::AUTH_OFFSET..Resp::MAC1_OFFSET].copy_from_slice(&tag);
        let mac1 = mac::tag(
            &self.mac1_key_peer(Version::V1),
            &bytes[..Resp::MAC1_OFFSET],
        );
        bytes[Resp::MAC1_OFFSET..].copy_from_slice(&mac1);
        bytes
    }
}
