//! Rebuilding an epoch from the outside: given the public Init and Resp of an exchange (as
//! captured on the wire), the responder's static public key, a previous chain key and
//! per-source secrets, compute what the combiner would have produced. This is the
//! attacker's (and the RNDL audit's) view of the key schedule; it shares every formula
//! with the state machine through [`crate::schedule`].

use crate::message::{Init, Resp};
use crate::schedule::{self, EpochSecrets, SourceSecrets, Transcript};

/// T of the exchange made of `init` and `resp`.
pub fn transcript_hash(init: &Init, resp: &Resp, s_resp: &[u8; 32]) -> [u8; 32] {
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
    .hash()
}

/// The outputs of the combiner for this exchange, from `prev_chain` and `secrets`. Sources
/// the Resp says did not take part are forced empty, as the endpoints do.
pub fn rebuild(
    prev_chain: &[u8; 32],
    init: &Init,
    resp: &Resp,
    s_resp: &[u8; 32],
    secrets: &SourceSecrets,
) -> EpochSecrets {
    let t = transcript_hash(init, resp, s_resp);
    let used = SourceSecrets {
        ss_x: secrets.ss_x.clone(),
        ss_k: secrets.ss_k.clone(),
        k_q: if resp.sources.has_qkd() {
            secrets.k_q.clone()
        } else {
            Vec::new()
        },
    };
    schedule::combine(prev_chain, &used, &t)
}

/// Whether `psk` is the epoch key of this exchange, by the Resp's confirmation tag: the
/// check an attacker (or the audit) can make without any key-log fingerprint.
pub fn confirms(derived: &EpochSecrets, init: &Init, resp: &Resp, s_resp: &[u8; 32]) -> bool {
    let t = transcript_hash(init, resp, s_resp);
    crate::mac::verify(&derived.confirm_r2i, &t, &resp.confirm)
}
