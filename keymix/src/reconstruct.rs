//! Rebuilding an epoch from the outside: given the public Init and Resp of an exchange (as
//! captured on the wire; version 2's opened with the key log's K_init), the responder's
//! static public key, a previous chain key and per-source secrets, compute what the
//! combiner would have produced. This is the attacker's (and the RNDL audit's) view of the
//! key schedule; it shares every formula with the state machine through
//! [`crate::schedule`].

use crate::hide::{self, ExchangeKeys};
use crate::message::{Init, Resp};
use crate::message_v2::{self, InitPlain, InitV2, RespV2};
use crate::schedule::{self, EpochSecrets, SourceSecrets, Transcript};
use crate::sources::SourceMask;
use crate::Version;

/// T of the exchange made of `init` and `resp` in `version`.
pub fn transcript_hash(version: Version, init: &Init, resp: &Resp, s_resp: &[u8; 32]) -> [u8; 32] {
    Transcript {
        s_init: &init.s_init,
        s_resp,
        epoch: init.epoch,
        timestamp: init.timestamp,
        init_index: init.sender_index,
        resp_index: resp.sender_index,
        proposed: init.proposed,
        e_init: &init.e_init,
        ek: &init.ek[..],
        key_ids: &init.key_ids,
        e_resp: &resp.e_resp,
        ct: &resp.ct[..],
        sources: resp.sources,
    }
    .hash_with(version.labels())
}

/// The outputs of the combiner for this exchange, from `prev_chain` and `secrets`. Sources
/// the Resp says did not take part are forced empty, as the endpoints do.
pub fn rebuild(
    version: Version,
    prev_chain: &[u8; 32],
    init: &Init,
    resp: &Resp,
    s_resp: &[u8; 32],
    secrets: &SourceSecrets,
) -> EpochSecrets {
    let t = transcript_hash(version, init, resp, s_resp);
    let used = SourceSecrets {
        ss_x: secrets.ss_x.clone(),
        ss_k: secrets.ss_k.clone(),
        k_q: if resp.sources.has_qkd() {
            secrets.k_q.clone()
        } else {
            Vec::new()
        },
    };
    schedule::combine_with(version.labels(), prev_chain, &used, &t)
}

/// Whether `psk` is the epoch key of this exchange, by the Resp's confirmation tag: the
/// check an attacker (or the audit) can make without any key-log fingerprint.
pub fn confirms(
    version: Version,
    derived: &EpochSecrets,
    init: &Init,
    resp: &Resp,
    s_resp: &[u8; 32],
) -> bool {
    let t = transcript_hash(version, init, resp, s_resp);
    crate::mac::verify(&derived.confirm_r2i, &t, &resp.confirm)
}

/// A captured version-2 Init opened with its K_init (from the key log): its fields as the
/// state machine saw them. `None` when the bytes are not a version-2 Init or do not open.
pub fn open_init_v2(bytes: &[u8], k_init: &[u8; 32]) -> Option<Init> {
    let wire = InitV2::parse(bytes).ok()?;
    let plain = hide::open(k_init, &wire.sealed[..], InitV2::aad(bytes))?;
    Some(InitPlain::decode(&plain).ok()?.into_init(&wire))
}

/// A captured version-2 Resp to `init`, its used mask opened with K_resp (from `k_init`).
pub fn open_resp_v2(bytes: &[u8], init: &Init, k_init: &[u8; 32]) -> Option<Resp> {
    let wire = RespV2::parse(bytes).ok()?;
    let keys = ExchangeKeys::new(k_init);
    let aad = bytes.get(..message_v2::resp::SEALED)?;
    let nonce = hide::resp_nonce(wire.sender_index);
    let mask = hide::open_with(&keys.resp, &nonce, &wire.sealed, aad)?;
    let sources = SourceMask::from_wire(*mask.first()?)?;
    Some(Resp {
        sources,
        sender_index: wire.sender_index,
        receiver_index: wire.receiver_index,
        epoch: init.epoch,
        e_resp: wire.e_resp,
        ct: wire.ct,
        confirm: wire.confirm,
        auth: wire.auth,
        mac1: wire.mac1,
    })
}
