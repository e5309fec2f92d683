//! The hybrid key schedule (docs/PROTOCOL.md, "Key schedule"): the chain key, the
//! authentication keys, the transcript hash T and the combiner that turns
//! (ss_x, ss_k, k_q) into C_n, PSK_n and the two confirmation keys.
//!
//! Everything here is a pure function of its inputs, so the attacker-side tests and the
//! audit tool can rebuild any epoch from public values plus whichever secrets they hold.

use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::labels::{self, Labels};
use crate::mac;
use crate::sources::SourceMask;

/// A 32-byte secret that is wiped on drop and never printed.
pub type Secret32 = Zeroizing<[u8; 32]>;

/// Appends `u16 big-endian length || bytes`. Length prefixes make the concatenation of
/// secrets and transcript fields injective, so no two different inputs collide.
pub(crate) fn put_lp(out: &mut impl Extend<u8>, bytes: &[u8]) {
    // Every field is bounded far below 65535 by the message parsers.
    let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
    out.extend(len.to_be_bytes());
    out.extend(bytes.iter().copied());
}

pub(crate) fn extract(salt: &[u8], ikm: &[u8]) -> Hkdf<Sha256> {
    Hkdf::<Sha256>::new(Some(salt), ikm)
}

pub(crate) fn expand(prk: &Hkdf<Sha256>, label: &[u8], context: &[u8]) -> Secret32 {
    let mut out = Zeroizing::new([0u8; 32]);
    // 32 bytes is always a valid HKDF-SHA256 output length.
    let _ = prk.expand_multi_info(&[label, context], out.as_mut());
    out
}

/// C_0 (version 1): from the bootstrap PSK when one is configured, else from the fixed label.
pub fn chain0(bootstrap_psk: Option<&[u8; 32]>) -> Secret32 {
    chain0_with(&labels::V1, bootstrap_psk)
}

/// C_0 of a protocol version.
pub fn chain0_with(l: &Labels, bootstrap_psk: Option<&[u8; 32]>) -> Secret32 {
    let mut ikm = Zeroizing::new(Vec::with_capacity(34));
    put_lp(&mut *ikm, bootstrap_psk.map(|p| &p[..]).unwrap_or(&[]));
    let (prk, _) = Hkdf::<Sha256>::extract(Some(l.chain0), &ikm);
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(&prk);
    out
}

/// The two tag keys that authenticate keymix messages of one exchange. They rest on the
/// static-static DH, the previous chain key and the bootstrap PSK: after the first epoch an
/// attacker must know C_{n-1} to forge a message, even with a quantum computer.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct AuthKeys {
    pub i2r: [u8; 32],
    pub r2i: [u8; 32],
}

pub fn auth_keys(
    chain: &[u8; 32],
    ss_static: &[u8; 32],
    bootstrap_psk: Option<&[u8; 32]>,
    s_init: &[u8; 32],
    s_resp: &[u8; 32],
) -> AuthKeys {
    auth_keys_with(&labels::V1, chain, ss_static, bootstrap_psk, s_init, s_resp)
}

/// The auth keys of a protocol version.
pub fn auth_keys_with(
    l: &Labels,
    chain: &[u8; 32],
    ss_static: &[u8; 32],
    bootstrap_psk: Option<&[u8; 32]>,
    s_init: &[u8; 32],
    s_resp: &[u8; 32],
) -> AuthKeys {
    let mut ikm = Zeroizing::new(Vec::with_capacity(100));
    ikm.extend_from_slice(l.auth);
    put_lp(&mut *ikm, ss_static);
    put_lp(&mut *ikm, bootstrap_psk.map(|p| &p[..]).unwrap_or(&[]));
    let prk = extract(chain, &ikm);
    let mut ctx = [0u8; 64];
    ctx[..32].copy_from_slice(s_init);
    ctx[32..].copy_from_slice(s_resp);
    AuthKeys {
        i2r: *expand(&prk, l.auth_i2r, &ctx),
        r2i: *expand(&prk, l.auth_r2i, &ctx),
    }
}

/// Every public value of one exchange, in the order the transcript hashes them.
pub struct Transcript<'a> {
    pub s_init: &'a [u8; 32],
    pub s_resp: &'a [u8; 32],
    pub epoch: u64,
    pub timestamp: u64,
    pub init_index: u32,
    pub resp_index: u32,
    pub proposed: SourceMask,
    pub e_init: &'a [u8; 32],
    pub ek: &'a [u8],
    pub key_ids: &'a [String],
    pub e_resp: &'a [u8; 32],
    pub ct: &'a [u8],
    pub sources: SourceMask,
}

impl Transcript<'_> {
    /// T = SHA-256(label || lp(field) || ...), fields as in docs/PROTOCOL.md (version 1).
    pub fn hash(&self) -> [u8; 32] {
        self.hash_with(&labels::V1)
    }

    /// T of a protocol version.
    pub fn hash_with(&self, l: &Labels) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(l.transcript);
        let mut field = |b: &[u8]| {
            let mut buf = Vec::with_capacity(2 + b.len());
            put_lp(&mut buf, b);
            h.update(&buf);
        };
        field(self.s_init);
        field(self.s_resp);
        field(&self.epoch.to_le_bytes());
        field(&self.timestamp.to_le_bytes());
        field(&self.init_index.to_le_bytes());
        field(&self.resp_index.to_le_bytes());
        field(&[self.proposed.bits()]);
        field(self.e_init);
        field(self.ek);
        let mut ids = Vec::new();
        for id in self.key_ids {
            put_lp(&mut ids, id.as_bytes());
        }
        field(&ids);
        field(self.e_resp);
        field(self.ct);
        field(&[self.sources.bits()]);
        h.finalize().into()
    }
}

/// The per-source shared secrets of one exchange. A source that did not take part is empty.
#[derive(Default, Zeroize, ZeroizeOnDrop)]
pub struct SourceSecrets {
    pub ss_x: Vec<u8>,
    pub ss_k: Vec<u8>,
    pub k_q: Vec<u8>,
}

/// Everything the combiner derives for epoch n.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct EpochSecrets {
    pub chain: [u8; 32],
    pub psk: [u8; 32],
    pub confirm_r2i: [u8; 32],
    pub confirm_i2r: [u8; 32],
}

/// The combiner: PRK = HKDF-Extract(C_{n-1}, lp(ss_x) || lp(ss_k) || lp(k_q)), then each
/// output = HKDF-Expand(PRK, label || T).
pub fn combine(prev_chain: &[u8; 32], secrets: &SourceSecrets, t: &[u8; 32]) -> EpochSecrets {
    combine_with(&labels::V1, prev_chain, secrets, t)
}

/// The combiner of a protocol version.
pub fn combine_with(
    l: &Labels,
    prev_chain: &[u8; 32],
    secrets: &SourceSecrets,
    t: &[u8; 32],
) -> EpochSecrets {
    let mut ikm = Zeroizing::new(Vec::with_capacity(6 + 64 + secrets.k_q.len()));
    put_lp(&mut *ikm, &secrets.ss_x);
    put_lp(&mut *ikm, &secrets.ss_k);
    put_lp(&mut *ikm, &secrets.k_q);
    let prk = extract(prev_chain, &ikm);
    EpochSecrets {
        chain: *expand(&prk, l.chain, t),
        psk: *expand(&prk, l.psk, t),
        confirm_r2i: *expand(&prk, l.confirm_r2i, t),
        confirm_i2r: *expand(&prk, l.confirm_i2r, t),
    }
}

/// The responder's and the initiator's key-confirmation tags over T.
pub fn confirm_tag(key: &[u8; 32], t: &[u8; 32]) -> [u8; mac::TAG_LEN] {
    mac::tag(key, t)
}

/// A public fingerprint of PSK_n for the key log and the audit: 16 bytes of
/// SHA-256(label || PSK_n). It identifies the key without revealing it.
pub fn psk_fingerprint(psk: &[u8; 32]) -> [u8; 16] {
    psk_fingerprint_with(&labels::V1, psk)
}

/// The PSK fingerprint of a protocol version.
pub fn psk_fingerprint_with(l: &Labels, psk: &[u8; 32]) -> [u8; 16] {
    let d = Sha256::new()
        .chain_update(l.psk_fingerprint)
        .chain_update(psk)
        .finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&d[..16]);
    out
}

/// The mac1 key of a receiver: anyone who knows its public key can compute it, which is
/// the point: mac1 is a cheap filter, not authentication.
pub fn mac1_key(receiver_public: &[u8; 32]) -> [u8; 32] {
    mac1_key_with(&labels::V1, receiver_public)
}

/// The mac1 key of a receiver in a protocol version.
pub fn mac1_key_with(l: &Labels, receiver_public: &[u8; 32]) -> [u8; 32] {
    Sha256::new()
        .chain_update(l.mac1)
        .chain_update(receiver_public)
        .finalize()
        .into()
}

/// The key that encrypts cookies sent by `receiver_public`'s owner.
pub fn cookie_key(receiver_public: &[u8; 32]) -> [u8; 32] {
    cookie_key_with(&labels::V1, receiver_public)
}

/// The cookie key in a protocol version.
pub fn cookie_key_with(l: &Labels, receiver_public: &[u8; 32]) -> [u8; 32] {
    Sha256::new()
        .chain_update(l.cookie)
        .chain_update(receiver_public)
        .finalize()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain0_depends_on_the_bootstrap_psk() {
        assert_ne!(*chain0(None), *chain0(Some(&[0u8; 32])));
        assert_ne!(*chain0(Some(&[1u8; 32])), *chain0(Some(&[2u8; 32])));
    }

    #[test]
    fn every_output_is_distinct_and_each_source_matters() {
        let t = [9u8; 32];
        let c = [1u8; 32];
        let base = SourceSecrets {
            ss_x: vec![1; 32],
            ss_k: vec![2; 32],
            k_q: vec![3; 32],
        };
        let out = combine(&c, &base, &t);
        let all = [out.chain, out.psk, out.confirm_r2i, out.confirm_i2r];
        for i in 0..4 {
            for j in 0..4 {
                if i != j {
                    assert_ne!(all[i], all[j]);
                }
            }
        }
        for which in 0..3 {
            let mut s = SourceSecrets {
                ss_x: base.ss_x.clone(),
                ss_k: base.ss_k.clone(),
                k_q: base.k_q.clone(),
            };
            [&mut s.ss_x, &mut s.ss_k, &mut s.k_q][which][0] ^= 1;
            assert_ne!(combine(&c, &s, &t).psk, out.psk);
        }
        assert_ne!(combine(&[2u8; 32], &base, &t).psk, out.psk);
        assert_ne!(combine(&c, &base, &[8u8; 32]).psk, out.psk);
    }

    #[test]
    fn moving_bytes_between_sources_changes_the_key() {
        // Length prefixes: (ss_x = a||b, ss_k = c) must not equal (ss_x = a, ss_k = b||c).
        let t = [0u8; 32];
        let c = [0u8; 32];
        let a = SourceSecrets {
            ss_x: vec![1, 2],
            ss_k: vec![3],
            k_q: vec![],
        };
        let b = SourceSecrets {
            ss_x: vec![1],
            ss_k: vec![2, 3],
            k_q: vec![],
        };
        assert_ne!(combine(&c, &a, &t).psk, combine(&c, &b, &t).psk);
    }
}
