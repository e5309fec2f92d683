//! Opens the encrypted static key and TAI64N timestamp of a WireGuard handshake initiation,
//! as the responder of Noise_IKpsk2 does (WireGuard paper §5.4.2), without a `Tunn`.
//!
//! Why: boringtun keeps the anti-replay timestamp inside each `Tunn`, and we create a fresh
//! `Tunn` for every PSK epoch, so a recorded initiation would be accepted again after every
//! epoch change. The driver keeps one timestamp per peer instead and needs the initiation's
//! timestamp before any `Tunn` sees the message. boringtun's `parse_handshake_anon` stops at
//! the static key, so the second half of the responder's computation is done here. The PSK
//! is mixed in only later (into the response), so nothing here depends on the epoch.

use blake2::digest::consts::U16;
use blake2::digest::FixedOutput;
use blake2::{Blake2s256, Blake2sMac, Digest};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::ChaCha20Poly1305;
use hmac::{Mac, SimpleHmac};
use keymix::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

const CONSTRUCTION: &[u8] = b"Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
const IDENTIFIER: &[u8] = b"WireGuard v1 zx2c4 Jason@zx2c4.com";
const INITIATION_LEN: usize = 148;
const EPHEMERAL: std::ops::Range<usize> = 8..40;
const ENCRYPTED_STATIC: std::ops::Range<usize> = 40..88;
const ENCRYPTED_TIMESTAMP: std::ops::Range<usize> = 88..116;

/// A TAI64N label: 8 bytes of seconds and 4 of nanoseconds, both big-endian, so the byte
/// order is the time order (what WireGuard compares; it is not checked to be a real time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Tai64n(pub [u8; 12]);

/// What the responder learns from an initiation before it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenedInitiation {
    /// The initiator's static public key.
    pub initiator: [u8; 32],
    pub timestamp: Tai64n,
}

type Key = Zeroizing<[u8; 32]>;

fn hash(a: &[u8], b: &[u8]) -> [u8; 32] {
    let mut h = Blake2s256::new();
    h.update(a);
    h.update(b);
    h.finalize().into()
}

/// HMAC-BLAKE2s (RFC 2104), the `HMAC` of the WireGuard paper.
fn hmac(key: &[u8], parts: &[&[u8]]) -> Key {
    let mut mac = match <SimpleHmac<Blake2s256> as Mac>::new_from_slice(key) {
        Ok(mac) => mac,
        // HMAC takes keys of any length; unreachable, and a zero key fails the AEAD later.
        Err(_) => return Zeroizing::new([0; 32]),
    };
    for p in parts {
        mac.update(p);
    }
    Zeroizing::new(mac.finalize().into_bytes().into())
}

/// KDF2 of the paper: the next chaining key and an AEAD key from `input`.
fn kdf2(chaining_key: &[u8; 32], input: &[u8]) -> (Key, Key) {
    let temp = hmac(chaining_key, &[input]);
    let next = hmac(temp.as_ref(), &[&[0x01]]);
    let key = hmac(temp.as_ref(), &[next.as_ref(), &[0x02]]);
    (next, key)
}

/// ChaCha20-Poly1305 with a zero nonce (each handshake key encrypts one message).
fn open_field(key: &[u8; 32], ciphertext: &[u8], aad: &[u8], plain: &mut [u8]) -> Option<()> {
    let cipher = ChaCha20Poly1305::new(key.into());
    let nonce = [0u8; 12];
    let out = Zeroizing::new(
        cipher
            .decrypt(
                (&nonce).into(),
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .ok()?,
    );
    plain.copy_from_slice(out.get(..plain.len())?);
    (out.len() == plain.len()).then_some(())
}

/// Decrypts the initiator's static key and timestamp of a 148-byte initiation sent to
/// `own_public`; `None` when it is not one or does not decrypt. Costs two X25519 (the
/// second only once the first field authenticated), like the responder's own work; call
/// it only after mac1 (and, under load, the cookie) passed.
pub fn open(
    own_private: &StaticSecret,
    own_public: &PublicKey,
    datagram: &[u8],
) -> Option<OpenedInitiation> {
    if datagram.len() != INITIATION_LEN || datagram.first() != Some(&1) {
        return None;
    }
    let ephemeral: [u8; 32] = datagram.get(EPHEMERAL)?.try_into().ok()?;
    let encrypted_static = datagram.get(ENCRYPTED_STATIC)?;
    let encrypted_timestamp = datagram.get(ENCRYPTED_TIMESTAMP)?;

    let chaining_key = hash(CONSTRUCTION, &[]);
    let mut h = hash(&hash(&chaining_key, IDENTIFIER), own_public.as_bytes());
    h = hash(&h, &ephemeral);
    let temp = hmac(&chaining_key, &[&ephemeral]);
    let chaining_key = hmac(temp.as_ref(), &[&[0x01]]);
    let es = Zeroizing::new(
        own_private
            .diffie_hellman(&PublicKey::from(ephemeral))
            .to_bytes(),
    );
    let (chaining_key, key) = kdf2(&chaining_key, es.as_ref());
    let mut initiator = [0u8; 32];
    open_field(&key, encrypted_static, &h, &mut initiator)?;
    h = hash(&h, encrypted_static);

    let ss = Zeroizing::new(
        own_private
            .diffie_hellman(&PublicKey::from(initiator))
            .to_bytes(),
    );
    let (_, key) = kdf2(&chaining_key, ss.as_ref());
    let mut timestamp = [0u8; 12];
    open_field(&key, encrypted_timestamp, &h, &mut timestamp)?;
    Some(OpenedInitiation {
        initiator,
        timestamp: Tai64n(timestamp),
    })
}

/// ChaCha20-Poly1305 with a zero nonce, sealing one handshake field.
fn seal_field(key: &[u8; 32], plain: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
    ChaCha20Poly1305::new(key.into())
        .encrypt((&[0u8; 12]).into(), Payload { msg: plain, aad })
        .ok()
}

/// The initiator's side of [`open`]: a 148-byte WireGuard handshake initiation from the
/// holder of `initiator` to `responder`, with the given sender index, ephemeral key and
/// TAI64N timestamp, mac1 set and mac2 zero. It needs no PSK (Noise_IKpsk2 mixes it in at
/// the response), which is why an initiation proves only the static key: the e2e tests
/// and the load generator use this to be a thief who holds one (`tunnel/examples`).
pub fn seal(
    initiator: &StaticSecret,
    responder: &PublicKey,
    sender_index: u32,
    ephemeral: &StaticSecret,
    timestamp: Tai64n,
) -> Option<Vec<u8>> {
    let e_pub = PublicKey::from(ephemeral);
    let s_pub = PublicKey::from(initiator);
    let chaining_key = hash(CONSTRUCTION, &[]);
    let mut h = hash(&hash(&chaining_key, IDENTIFIER), responder.as_bytes());
    h = hash(&h, e_pub.as_bytes());
    let temp = hmac(&chaining_key, &[e_pub.as_bytes()]);
    let chaining_key = hmac(temp.as_ref(), &[&[0x01]]);
    let es = Zeroizing::new(ephemeral.diffie_hellman(responder).to_bytes());
    let (chaining_key, key) = kdf2(&chaining_key, es.as_ref());
    let encrypted_static = seal_field(&key, s_pub.as_bytes(), &h)?;
    h = hash(&h, &encrypted_static);
    let ss = Zeroizing::new(initiator.diffie_hellman(responder).to_bytes());
    let (_, key) = kdf2(&chaining_key, ss.as_ref());
    let encrypted_timestamp = seal_field(&key, &timestamp.0, &h)?;
    let mut msg = Vec::with_capacity(INITIATION_LEN);
    msg.extend_from_slice(&[1, 0, 0, 0]);
    msg.extend_from_slice(&sender_index.to_le_bytes());
    msg.extend_from_slice(e_pub.as_bytes());
    msg.extend_from_slice(&encrypted_static);
    msg.extend_from_slice(&encrypted_timestamp);
    let mac1_key = hash(b"mac1----", responder.as_bytes());
    let mut mac = <Blake2sMac<U16> as KeyInit>::new_from_slice(&mac1_key).ok()?;
    blake2::digest::Update::update(&mut mac, &msg);
    msg.extend_from_slice(&mac.finalize_fixed());
    msg.extend_from_slice(&[0u8; 16]);
    (msg.len() == INITIATION_LEN).then_some(msg)
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use boringtun::noise::{Tunn, TunnResult};

    use super::*;

    fn initiation(from: &StaticSecret, to: &PublicKey) -> Vec<u8> {
        let mut tunn = Tunn::new(from.clone(), *to, Some([3; 32]), None, 0x100, None);
        let mut out = vec![0u8; 256];
        match tunn.format_handshake_initiation(&mut out, false) {
            TunnResult::WriteToNetwork(init) => init.to_vec(),
            other => panic!("no initiation: {other:?}"),
        }
    }

    #[test]
    fn opens_boringtun_initiations() {
        let responder = StaticSecret::from([7u8; 32]);
        let responder_pub = PublicKey::from(&responder);
        let initiator = StaticSecret::from([9u8; 32]);
        let first = initiation(&initiator, &responder_pub);
        let opened = open(&responder, &responder_pub, &first)
            .unwrap_or_else(|| panic!("initiation did not open"));
        assert_eq!(&opened.initiator, PublicKey::from(&initiator).as_bytes());
        // TAI64N of now: 2^62 + 10 leap-ish seconds + Unix time.
        let secs = u64::from_be_bytes(opened.timestamp.0[..8].try_into().unwrap_or_default());
        let unix = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        assert!(secs.abs_diff((1u64 << 62) + 37 + unix) <= 2, "{secs}");

        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = initiation(&initiator, &responder_pub);
        let later = open(&responder, &responder_pub, &second)
            .unwrap_or_else(|| panic!("initiation did not open"));
        assert!(later.timestamp > opened.timestamp);
    }

    #[test]
    fn sealed_initiations_open_with_their_timestamp() {
        let responder = StaticSecret::from([7u8; 32]);
        let responder_pub = PublicKey::from(&responder);
        let thief = StaticSecret::from([9u8; 32]);
        let ts = Tai64n([0x40, 0, 0, 0, 0x70, 0, 0, 0, 0, 0, 0, 1]);
        let init = seal(
            &thief,
            &responder_pub,
            0x1234_5678,
            &StaticSecret::from([3u8; 32]),
            ts,
        )
        .unwrap_or_else(|| panic!("sealing failed"));
        let opened =
            open(&responder, &responder_pub, &init).unwrap_or_else(|| panic!("did not open"));
        assert_eq!(opened.initiator, *PublicKey::from(&thief).as_bytes());
        assert_eq!(opened.timestamp, ts);
        // boringtun agrees: its Tunn answers it (a valid initiation, any PSK).
        let mut tunn = Tunn::new(
            responder,
            PublicKey::from(&thief),
            Some([5; 32]),
            None,
            1,
            None,
        );
        let mut out = vec![0u8; 256];
        assert!(matches!(
            tunn.decapsulate(None, &init, &mut out),
            TunnResult::WriteToNetwork(r) if r[0] == 2
        ));
    }

    #[test]
    fn refuses_what_does_not_decrypt() {
        let responder = StaticSecret::from([7u8; 32]);
        let responder_pub = PublicKey::from(&responder);
        let other = PublicKey::from(&StaticSecret::from([8u8; 32]));
        let init = initiation(&StaticSecret::from([9u8; 32]), &other);
        assert_eq!(open(&responder, &responder_pub, &init), None);
        let mut good = initiation(&StaticSecret::from([9u8; 32]), &responder_pub);
        if let Some(b) = good.get_mut(100) {
            *b ^= 1; // inside the encrypted timestamp
        }
        assert_eq!(open(&responder, &responder_pub, &good), None);
        assert_eq!(open(&responder, &responder_pub, &good[..100]), None);
    }
}
