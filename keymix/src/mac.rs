//! keymix's one MAC: XChaCha20-Poly1305 over an empty plaintext with the message as
//! associated data, and the nonce taken from SHA-256 of that message (a deterministic,
//! SIV-like use). Distinct messages get distinct nonces, so no Poly1305 one-time key is ever
//! reused under one key, and a retransmitted message carries the very same tag.

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

pub const TAG_LEN: usize = 16;

fn nonce_for(data: &[u8]) -> XNonce {
    let digest = Sha256::digest(data);
    let mut nonce = XNonce::default();
    nonce.copy_from_slice(&digest[..24]);
    nonce
}

/// The 16-byte tag of `data` under `key`.
pub fn tag(key: &[u8; 32], data: &[u8]) -> [u8; TAG_LEN] {
    let cipher = XChaCha20Poly1305::new(key.into());
    let mut empty: [u8; 0] = [];
    let mut out = [0u8; TAG_LEN];
    // Encrypting an empty buffer cannot fail: the only error is a buffer over the AEAD limit.
    if let Ok(t) = cipher.encrypt_inout_detached(&nonce_for(data), data, (&mut empty[..]).into()) {
        out.copy_from_slice(&t);
    }
    out
}

/// Constant-time check of `tag` over `data` (the AEAD's own verification, which uses `subtle`).
pub fn verify(key: &[u8; 32], data: &[u8], tag: &[u8]) -> bool {
    let Ok(tag) = <&[u8; TAG_LEN]>::try_from(tag) else {
        return false;
    };
    let cipher = XChaCha20Poly1305::new(key.into());
    let mut empty: [u8; 0] = [];
    cipher
        .decrypt_inout_detached(&nonce_for(data), data, (&mut empty[..]).into(), tag.into())
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_verifies_and_rejects_changes() {
        let k = [7u8; 32];
        let t = tag(&k, b"hello");
        assert!(verify(&k, b"hello", &t));
        assert!(!verify(&k, b"hellp", &t));
        assert!(!verify(&[8u8; 32], b"hello", &t));
        let mut bad = t;
        bad[0] ^= 1;
        assert!(!verify(&k, b"hello", &bad));
        assert!(!verify(&k, b"hello", &t[..15]));
    }
}
