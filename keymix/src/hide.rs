//! Version 2's hiding keys (docs/PROTOCOL.md, "Hiding keys"): what seals an Init's S_i,
//! epoch, timestamp, mask and key IDs, the Resp's used mask, the per-epoch pseudonyms that
//! let a responder find the peer without trying every peer's keys, and the mac1 keys of
//! chain-keyed messages. After bootstrap all of it derives from the chain key, which a
//! quantum computer cannot compute; at first contact from an ephemeral-static X25519 and,
//! with a bootstrap PSK, from the PSK too.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::ChaCha20Poly1305;
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::labels::v2;
use crate::schedule::{expand, extract, put_lp, Secret32};

/// Bytes of a pseudonym.
pub const PSEUDONYM_LEN: usize = 16;
/// Initiations per epoch with distinct pseudonyms (then they repeat).
pub const ATTEMPTS: u8 = 8;
/// Minutes either side of our clock for which bootstrap pseudonyms are recognised (the
/// 600 s bootstrap clock window).
pub const BOOT_MINUTES: u64 = 10;

/// PRK_hide(c) = HKDF-Extract(salt = c, ikm = HIDE || lp(psk_b)).
pub struct HidePrk(Hkdf<Sha256>);

impl HidePrk {
    pub fn new(chain: &[u8; 32], bootstrap_psk: Option<&[u8; 32]>) -> Self {
        let mut ikm = Zeroizing::new(Vec::with_capacity(v2::HIDE.len() + 34));
        ikm.extend_from_slice(v2::HIDE);
        put_lp(&mut *ikm, bootstrap_psk.map_or(&[][..], |p| &p[..]));
        Self(extract(chain, &ikm))
    }

    /// pseudonym(c, S_i, j) = HKDF-Expand(PRK_hide(c), PSEUDONYM || S_i || u8(j), 16):
    /// the initiator's static key keeps the two directions apart.
    pub fn pseudonym(&self, s_init: &[u8; 32], j: u8) -> [u8; PSEUDONYM_LEN] {
        let mut context = [0u8; 33];
        context[..32].copy_from_slice(s_init);
        context[32] = j;
        truncate(&expand(&self.0, v2::PSEUDONYM, &context))
    }

    /// boot_pseudonym(S_i, minute, j) = HKDF-Expand(PRK_hide(C_0), BOOT_PSEUDONYM || S_i ||
    /// u64be(minute) || u8(j), 16).
    pub fn boot_pseudonym(&self, s_init: &[u8; 32], minute: u64, j: u8) -> [u8; PSEUDONYM_LEN] {
        let mut context = [0u8; 41];
        context[..32].copy_from_slice(s_init);
        context[32..40].copy_from_slice(&minute.to_be_bytes());
        context[40] = j;
        truncate(&expand(&self.0, v2::BOOT_PSEUDONYM, &context))
    }

    /// K_mac1(c) = HKDF-Expand(PRK_hide(c), MAC1_CHAIN, 32).
    pub fn mac1_key(&self) -> Secret32 {
        expand(&self.0, v2::MAC1_CHAIN, &[])
    }

    /// K_init of a chain-keyed (or PSK bootstrap) Init = HKDF-Expand(PRK_hide(c),
    /// INIT_HIDE || E_i, 32).
    pub fn init_key(&self, e_init: &[u8; 32]) -> Secret32 {
        expand(&self.0, v2::INIT_HIDE, e_init)
    }
}

fn truncate(full: &[u8; 32]) -> [u8; PSEUDONYM_LEN] {
    let mut out = [0u8; PSEUDONYM_LEN];
    out.copy_from_slice(&full[..PSEUDONYM_LEN]);
    out
}

/// The minute a bootstrap pseudonym is made for: the Init's timestamp (nanoseconds since
/// 1970) in whole minutes.
pub fn minute_of(timestamp_ns: u64) -> u64 {
    timestamp_ns / 60_000_000_000
}

/// K_init of a bootstrap Init on the DH path: HKDF-Expand(PRK_boot, INIT_HIDE || E_i, 32)
/// with PRK_boot = HKDF-Extract(salt = C_0, BOOT_HIDE || lp(dh) || lp(E_i) || lp(S_r)).
pub fn boot_init_key(
    chain0: &[u8; 32],
    dh: &[u8; 32],
    e_init: &[u8; 32],
    s_resp: &[u8; 32],
) -> Secret32 {
    let mut ikm = Zeroizing::new(Vec::with_capacity(v2::BOOT_HIDE.len() + 102));
    ikm.extend_from_slice(v2::BOOT_HIDE);
    put_lp(&mut *ikm, dh);
    put_lp(&mut *ikm, e_init);
    put_lp(&mut *ikm, s_resp);
    expand(&extract(chain0, &ikm), v2::INIT_HIDE, e_init)
}

/// The keys both sides derive from an exchange's K_init.
pub struct ExchangeKeys {
    /// Seals the Resp's used mask.
    pub resp: Secret32,
    /// mac1 of Resp and Confirm.
    pub mac1: Secret32,
}

impl ExchangeKeys {
    pub fn new(k_init: &[u8; 32]) -> Self {
        let prk = Hkdf::<Sha256>::from_prk(k_init);
        // A 32-byte PRK is always long enough for SHA-256; a failure (impossible) leaves
        // zero keys, which open nothing.
        let (resp, mac1) = match prk {
            Ok(prk) => (
                expand(&prk, v2::RESP_HIDE, &[]),
                expand(&prk, v2::MAC1_EXCHANGE, &[]),
            ),
            Err(_) => (Zeroizing::new([0; 32]), Zeroizing::new([0; 32])),
        };
        Self { resp, mac1 }
    }
}

/// ChaCha20-Poly1305 under `key` with a zero nonce: an Init's K_init seals one plaintext
/// (it depends on the Init's fresh E_i). Returns ciphertext || tag.
pub fn seal(key: &[u8; 32], plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
    seal_with(key, &[0; 12], plaintext, aad)
}

/// Opens what [`seal`] made; `None` when it does not authenticate.
pub fn open(key: &[u8; 32], sealed: &[u8], aad: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    open_with(key, &[0; 12], sealed, aad)
}

/// The nonce of a Resp's sealed mask: its sender index (u32 little-endian), then zeros. A
/// responder that lost its state may answer one Init (one K_resp) twice; its indices differ.
pub fn resp_nonce(resp_sender_index: u32) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..4].copy_from_slice(&resp_sender_index.to_le_bytes());
    n
}

/// ChaCha20-Poly1305 under `key` and `nonce`; ciphertext || tag.
pub fn seal_with(key: &[u8; 32], nonce: &[u8; 12], plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
    ChaCha20Poly1305::new(key.into())
        .encrypt(
            nonce.into(),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        // Encryption fails only for inputs longer than the AEAD's limit (2^38 bytes).
        .unwrap_or_default()
}

/// Opens what [`seal_with`] made; `None` when it does not authenticate.
pub fn open_with(
    key: &[u8; 32],
    nonce: &[u8; 12],
    sealed: &[u8],
    aad: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    ChaCha20Poly1305::new(key.into())
        .decrypt(nonce.into(), Payload { msg: sealed, aad })
        .ok()
        .map(Zeroizing::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_differ_by_chain_psk_attempt_and_minute() {
        let a = HidePrk::new(&[1; 32], None);
        let b = HidePrk::new(&[2; 32], None);
        let c = HidePrk::new(&[1; 32], Some(&[9; 32]));
        let (si, sj) = ([7; 32], [8; 32]);
        let all = [
            a.pseudonym(&si, 0),
            a.pseudonym(&si, 1),
            a.pseudonym(&sj, 0),
            b.pseudonym(&si, 0),
            c.pseudonym(&si, 0),
            a.boot_pseudonym(&si, 5, 0),
            a.boot_pseudonym(&si, 6, 0),
            a.boot_pseudonym(&si, 5, 1),
            a.boot_pseudonym(&sj, 5, 0),
        ];
        for (i, x) in all.iter().enumerate() {
            for (j, y) in all.iter().enumerate() {
                assert!(i == j || x != y);
            }
        }
        assert_eq!(minute_of(61_000_000_000), 1);
    }

    #[test]
    fn seal_opens_only_with_its_key_and_aad() {
        let sealed = seal(&[3; 32], b"hidden", b"aad");
        assert_eq!(sealed.len(), 6 + 16);
        assert_eq!(
            open(&[3; 32], &sealed, b"aad")
                .as_deref()
                .map(Vec::as_slice),
            Some(&b"hidden"[..])
        );
        assert!(open(&[4; 32], &sealed, b"aad").is_none());
        assert!(open(&[3; 32], &sealed, b"other").is_none());
    }
}
