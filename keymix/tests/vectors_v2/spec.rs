//! docs/PROTOCOL.md, "Version 2: wire privacy", read independently: the version-2 labels
//! spelled out as the document states them, the hiding keys, the sealed plaintext and the
//! version-1 key schedule with version-2 labels, over the raw primitives (HKDF, SHA-256,
//! ChaCha20-Poly1305, X25519). Nothing of keymix's schedule, hiding or message code is
//! used; the generic helpers (hex, lp, SHA-256, HKDF, MAC, X25519) come from the
//! version-1 reading in vectors/spec.rs, whose labels are version 1's and are not used.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use hkdf::Hkdf;
use sha2::Sha256;

use super::spec::{expand, extract, lp, mac, sha256};

/// "Labels (version 2)": every version-1 label with `v1` replaced by `v2`.
pub const CHAIN0: &[u8] = b"trident keymix v2 chain0";
pub const MAC1: &[u8] = b"trident keymix v2 mac1";
#[allow(dead_code)] // no version-2 vector has a cookie reply
pub const COOKIE: &[u8] = b"trident keymix v2 cookie";
pub const AUTH: &[u8] = b"trident keymix v2 auth";
pub const AUTH_I2R: &[u8] = b"trident keymix v2 auth i2r";
pub const AUTH_R2I: &[u8] = b"trident keymix v2 auth r2i";
pub const TRANSCRIPT: &[u8] = b"trident keymix v2 transcript";
pub const CHAIN: &[u8] = b"trident keymix v2 chain";
pub const PSK: &[u8] = b"trident keymix v2 psk";
pub const CONFIRM_R2I: &[u8] = b"trident keymix v2 confirm r2i";
pub const CONFIRM_I2R: &[u8] = b"trident keymix v2 confirm i2r";
pub const PSK_FINGERPRINT: &[u8] = b"trident keymix v2 psk fingerprint";
/// The new labels of version 2.
pub const HIDE: &[u8] = b"trident keymix v2 hide";
pub const PSEUDONYM: &[u8] = b"trident keymix v2 pseudonym";
pub const BOOT_PSEUDONYM: &[u8] = b"trident keymix v2 boot pseudonym";
pub const MAC1_CHAIN: &[u8] = b"trident keymix v2 mac1 chain";
pub const INIT_HIDE: &[u8] = b"trident keymix v2 init hide";
pub const BOOT_HIDE: &[u8] = b"trident keymix v2 boot hide";
pub const RESP_HIDE: &[u8] = b"trident keymix v2 resp hide";
pub const MAC1_EXCHANGE: &[u8] = b"trident keymix v2 mac1 exchange";

/// Every version-2 label by its name in the document.
pub const ALL: [(&str, &[u8]); 20] = [
    ("CHAIN0", CHAIN0),
    ("MAC1", MAC1),
    ("COOKIE", COOKIE),
    ("AUTH", AUTH),
    ("AUTH_I2R", AUTH_I2R),
    ("AUTH_R2I", AUTH_R2I),
    ("TRANSCRIPT", TRANSCRIPT),
    ("CHAIN", CHAIN),
    ("PSK", PSK),
    ("CONFIRM_R2I", CONFIRM_R2I),
    ("CONFIRM_I2R", CONFIRM_I2R),
    ("PSK_FINGERPRINT", PSK_FINGERPRINT),
    ("HIDE", HIDE),
    ("PSEUDONYM", PSEUDONYM),
    ("BOOT_PSEUDONYM", BOOT_PSEUDONYM),
    ("MAC1_CHAIN", MAC1_CHAIN),
    ("INIT_HIDE", INIT_HIDE),
    ("BOOT_HIDE", BOOT_HIDE),
    ("RESP_HIDE", RESP_HIDE),
    ("MAC1_EXCHANGE", MAC1_EXCHANGE),
];

/// The version byte and the message types (header: type || 2 || 0 || 0).
pub const VERSION: u8 = 2;
pub const TYPE_INIT: u8 = 0x81;
pub const TYPE_RESP: u8 = 0x82;
pub const TYPE_CONFIRM: u8 = 0x83;
/// Sizes the document states: the messages, the Init plaintext and its key-ID block.
pub const INIT_LEN: usize = 1428;
pub const RESP_LEN: usize = 1197;
pub const CONFIRM_LEN: usize = 40;
pub const PLAIN_LEN: usize = 124;
pub const KEY_ID_BLOCK_LEN: usize = 75;
/// Pseudonym attempts j = 0..7.
pub const ATTEMPTS: u8 = 8;

fn cat_lp(prefix: &[u8], fields: &[&[u8]]) -> Vec<u8> {
    let mut out = prefix.to_vec();
    for f in fields {
        lp(&mut out, f);
    }
    out
}

/// `HKDF-Expand(PRK, info, 16)` by RFC 5869 with L = 16 (not by truncating a 32-byte
/// output, so the document's claim that both are the same is checked too).
pub fn expand16(prk: &[u8; 32], info: &[&[u8]]) -> [u8; 16] {
    let mut out = [0u8; 16];
    Hkdf::<Sha256>::from_prk(prk)
        .unwrap()
        .expand_multi_info(info, &mut out)
        .unwrap();
    out
}

/// C_0 = HKDF-Extract(salt = CHAIN0, ikm = lp(psk_b)), with the version-2 CHAIN0.
pub fn c0(psk_b: &[u8]) -> [u8; 32] {
    extract(CHAIN0, &cat_lp(b"", &[psk_b]))
}

/// mac1_key(S) = SHA-256(MAC1 || S).
pub fn mac1_key(s: &[u8; 32]) -> [u8; 32] {
    sha256(&[MAC1, s])
}

/// The auth keys (K_auth_i2r, K_auth_r2i) of an exchange keyed with `c`.
pub fn auth_keys(
    c: &[u8; 32],
    ss_static: &[u8],
    psk_b: &[u8],
    s_i: &[u8; 32],
    s_r: &[u8; 32],
) -> ([u8; 32], [u8; 32]) {
    let prk = extract(c, &cat_lp(AUTH, &[ss_static, psk_b]));
    (
        expand(&prk, &[AUTH_I2R, s_i, s_r]),
        expand(&prk, &[AUTH_R2I, s_i, s_r]),
    )
}

/// PRK_hide(c) = HKDF-Extract(salt = c, ikm = HIDE || lp(psk_b)).
pub fn prk_hide(c: &[u8; 32], psk_b: &[u8]) -> [u8; 32] {
    extract(c, &cat_lp(HIDE, &[psk_b]))
}

/// pseudonym(c, S_i, j) under PRK_hide(c).
pub fn pseudonym(prk_hide: &[u8; 32], s_i: &[u8; 32], j: u8) -> [u8; 16] {
    expand16(prk_hide, &[PSEUDONYM, s_i, &[j]])
}

/// boot_pseudonym(S_i, minute, j) under PRK_hide(C_0).
pub fn boot_pseudonym(prk_hide_c0: &[u8; 32], s_i: &[u8; 32], minute: u64, j: u8) -> [u8; 16] {
    expand16(
        prk_hide_c0,
        &[BOOT_PSEUDONYM, s_i, &minute.to_be_bytes(), &[j]],
    )
}

/// minute = floor(timestamp in nanoseconds / (60 * 10^9)).
pub fn minute_of(timestamp_ns: u64) -> u64 {
    timestamp_ns / 60_000_000_000
}

/// K_mac1(c) = HKDF-Expand(PRK_hide(c), MAC1_CHAIN, 32).
pub fn k_mac1(prk_hide: &[u8; 32]) -> [u8; 32] {
    expand(prk_hide, &[MAC1_CHAIN])
}

/// K_init of a chain-keyed Init: HKDF-Expand(PRK_hide(c), INIT_HIDE || E_i, 32).
pub fn k_init_chain(prk_hide: &[u8; 32], e_i: &[u8; 32]) -> [u8; 32] {
    expand(prk_hide, &[INIT_HIDE, e_i])
}

/// K_init of a bootstrap Init: PRK_boot = HKDF-Extract(salt = C_0, ikm = BOOT_HIDE ||
/// lp(dh) || lp(E_i) || lp(S_r)), K_init = HKDF-Expand(PRK_boot, INIT_HIDE || E_i, 32).
pub fn k_init_boot(c0: &[u8; 32], dh: &[u8; 32], e_i: &[u8; 32], s_r: &[u8; 32]) -> [u8; 32] {
    assert_ne!(dh, &[0; 32], "an all-zero dh is refused");
    let prk_boot = extract(c0, &cat_lp(BOOT_HIDE, &[dh, e_i, s_r]));
    expand(&prk_boot, &[INIT_HIDE, e_i])
}

/// (K_resp, K_mac1x) from K_init.
pub fn exchange_keys(k_init: &[u8; 32]) -> ([u8; 32], [u8; 32]) {
    (
        expand(k_init, &[RESP_HIDE]),
        expand(k_init, &[MAC1_EXCHANGE]),
    )
}

/// Seal(K, nonce, plaintext, aad): ChaCha20-Poly1305 (RFC 8439), ct || tag. The Init's
/// nonce is 12 zero bytes; the Resp's is its sender_index (u32 LE) then 8 zero bytes.
pub fn seal(k: &[u8; 32], nonce: &[u8; 12], plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
    let payload = Payload {
        msg: plaintext,
        aad,
    };
    ChaCha20Poly1305::new(k.into())
        .encrypt(&Nonce::from(*nonce), payload)
        .unwrap()
}

/// The inverse of `seal`; None when the tag does not verify.
pub fn open(k: &[u8; 32], nonce: &[u8; 12], sealed: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
    let payload = Payload { msg: sealed, aad };
    ChaCha20Poly1305::new(k.into())
        .decrypt(&Nonce::from(*nonce), payload)
        .ok()
}

/// The Resp's nonce: its sender_index (bytes 4..8, little-endian), then zeros.
pub fn resp_nonce(resp: &[u8]) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..4].copy_from_slice(&resp[4..8]);
    n
}

/// The 124-byte Init plaintext: S_i (32) || epoch (u64 LE) || timestamp (u64 LE) ||
/// proposed mask (u8) || key-ID block: k (u8) || k times (u8 length || key ID), zero
/// padded to 75 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plain {
    pub s_i: [u8; 32],
    pub epoch: u64,
    pub timestamp: u64,
    pub proposed: u8,
    pub key_ids: Vec<Vec<u8>>,
}

impl Plain {
    pub fn encode(&self) -> Vec<u8> {
        let mut b = self.s_i.to_vec();
        b.extend_from_slice(&self.epoch.to_le_bytes());
        b.extend_from_slice(&self.timestamp.to_le_bytes());
        b.push(self.proposed);
        b.push(u8::try_from(self.key_ids.len()).unwrap());
        for id in &self.key_ids {
            b.push(u8::try_from(id.len()).unwrap());
            b.extend_from_slice(id);
        }
        assert!(b.len() <= PLAIN_LEN, "key IDs beyond the block");
        b.resize(PLAIN_LEN, 0);
        b
    }

    /// Parses by the document's layout and checks its rules: k 0..2, each key ID 1-64
    /// printable ASCII bytes, at most 72 together, k non-zero iff the QKD bit is set, zero
    /// padding.
    pub fn decode(b: &[u8]) -> Self {
        assert_eq!(b.len(), PLAIN_LEN, "plaintext length");
        let le = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
        let block = &b[PLAIN_LEN - KEY_ID_BLOCK_LEN..];
        let k = usize::from(block[0]);
        assert!(k <= 2, "key-ID count {k}");
        let (mut pos, mut key_ids) = (1, Vec::new());
        for _ in 0..k {
            let len = usize::from(block[pos]);
            let id = &block[pos + 1..pos + 1 + len];
            assert!((1..=64).contains(&len), "key-ID length {len}");
            assert!(id.iter().all(|c| (0x20..0x7f).contains(c)), "printable");
            key_ids.push(id.to_vec());
            pos += 1 + len;
        }
        assert!(key_ids.iter().map(Vec::len).sum::<usize>() <= 72);
        assert!(block[pos..].iter().all(|&x| x == 0), "zero padding");
        let proposed = b[48];
        assert_eq!(k > 0, proposed & 4 != 0, "key IDs iff the QKD bit");
        Self {
            s_i: b[..32].try_into().unwrap(),
            epoch: le(32),
            timestamp: le(40),
            proposed,
            key_ids,
        }
    }
}

/// T's SHA-256 input, version 1's fields in version 1's order with the version-2
/// TRANSCRIPT: the epoch, timestamp and indices as u64 / u32 little-endian.
#[allow(clippy::too_many_arguments)]
pub fn transcript_input(
    s_i: &[u8; 32],
    s_r: &[u8; 32],
    plain: &Plain,
    init_index: &[u8],
    resp_index: &[u8],
    e_i: &[u8],
    ek: &[u8],
    e_r: &[u8],
    ct: &[u8],
    used: u8,
) -> Vec<u8> {
    let mut ids = Vec::new();
    for id in &plain.key_ids {
        lp(&mut ids, id);
    }
    cat_lp(
        TRANSCRIPT,
        &[
            s_i,
            s_r,
            &plain.epoch.to_le_bytes(),
            &plain.timestamp.to_le_bytes(),
            init_index,
            resp_index,
            &[plain.proposed],
            e_i,
            ek,
            &ids,
            e_r,
            ct,
            &[used],
        ],
    )
}

/// The combiner's outputs.
pub struct Combined {
    pub chain: [u8; 32],
    pub psk: [u8; 32],
    pub conf_r2i: [u8; 32],
    pub conf_i2r: [u8; 32],
}

/// PRK = HKDF-Extract(C_{n-1}, lp(ss_x) || lp(ss_k) || lp(k_q)), then the four Expands.
pub fn combine(c_prev: &[u8; 32], ss_x: &[u8], ss_k: &[u8], k_q: &[u8], t: &[u8]) -> Combined {
    let prk = extract(c_prev, &cat_lp(b"", &[ss_x, ss_k, k_q]));
    Combined {
        chain: expand(&prk, &[CHAIN, t]),
        psk: expand(&prk, &[PSK, t]),
        conf_r2i: expand(&prk, &[CONFIRM_R2I, t]),
        conf_i2r: expand(&prk, &[CONFIRM_I2R, t]),
    }
}

/// confirm tag: MAC(K_conf, T).
pub fn confirm_tag(k_conf: &[u8; 32], t: &[u8]) -> [u8; 16] {
    mac(k_conf, t)
}

/// fingerprint = SHA-256(PSK_FINGERPRINT || PSK_n)[0..16].
pub fn fingerprint(psk: &[u8]) -> [u8; 16] {
    sha256(&[PSK_FINGERPRINT, psk])[..16].try_into().unwrap()
}
