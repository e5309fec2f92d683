//! docs/PROTOCOL.md read independently: the labels spelled out as the document does, and
//! its formulas (auth PRK, T, combiner, MAC, cookie, state-file layout) over the raw
//! primitives, using none of keymix's schedule, message, cookie or chain-state code.
//! vectors/verify.rs checks every vector file with these; vectors/gen.rs uses them only
//! for intermediate values the library does not expose.

use boringtun::x25519::{PublicKey, StaticSecret};
use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

pub const CHAIN0: &[u8] = b"trident keymix v1 chain0";
pub const MAC1: &[u8] = b"trident keymix v1 mac1";
pub const COOKIE: &[u8] = b"trident keymix v1 cookie";
pub const AUTH: &[u8] = b"trident keymix v1 auth";
pub const AUTH_I2R: &[u8] = b"trident keymix v1 auth i2r";
pub const AUTH_R2I: &[u8] = b"trident keymix v1 auth r2i";
pub const TRANSCRIPT: &[u8] = b"trident keymix v1 transcript";
pub const CHAIN: &[u8] = b"trident keymix v1 chain";
pub const PSK: &[u8] = b"trident keymix v1 psk";
pub const CONFIRM_R2I: &[u8] = b"trident keymix v1 confirm r2i";
pub const CONFIRM_I2R: &[u8] = b"trident keymix v1 confirm i2r";
pub const PSK_FINGERPRINT: &[u8] = b"trident keymix v1 psk fingerprint";
pub const STATE_MAGIC: &[u8] = b"trident-chain-v2";

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `u16 big-endian length || bytes`.
pub fn lp(out: &mut Vec<u8>, b: &[u8]) {
    out.extend(u16::try_from(b.len()).unwrap().to_be_bytes());
    out.extend_from_slice(b);
}

pub fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

pub fn extract(salt: &[u8], ikm: &[u8]) -> [u8; 32] {
    Hkdf::<Sha256>::extract(Some(salt), ikm).0.into()
}

pub fn expand(prk: &[u8; 32], info: &[&[u8]]) -> [u8; 32] {
    let mut out = [0u8; 32];
    Hkdf::<Sha256>::from_prk(prk)
        .unwrap()
        .expand_multi_info(info, &mut out)
        .unwrap();
    out
}

/// MAC(key, data): the Poly1305 tag of XChaCha20-Poly1305 with nonce SHA-256(data)[0..24],
/// empty plaintext and data as associated data.
pub fn mac(key: &[u8; 32], data: &[u8]) -> [u8; 16] {
    let nonce = XNonce::try_from(&sha256(&[data])[..24]).unwrap();
    let mut empty: [u8; 0] = [];
    let tag = XChaCha20Poly1305::new(key.into())
        .encrypt_inout_detached(&nonce, data, (&mut empty[..]).into())
        .unwrap();
    tag.into()
}

pub fn x25519_public(private: &[u8]) -> [u8; 32] {
    *PublicKey::from(&StaticSecret::from(arr32(private))).as_bytes()
}

pub fn x25519(private: &[u8], public: &[u8]) -> [u8; 32] {
    StaticSecret::from(arr32(private))
        .diffie_hellman(&PublicKey::from(arr32(public)))
        .to_bytes()
}

pub fn arr32(b: &[u8]) -> [u8; 32] {
    b.try_into().expect("32 bytes")
}

pub fn le64(b: &[u8]) -> u64 {
    u64::from_le_bytes(b.try_into().unwrap())
}

/// The inputs of the authentication PRK: AUTH || lp(ss_static) || lp(psk_b).
pub fn auth_ikm(ss_static: &[u8], psk_b: &[u8]) -> Vec<u8> {
    let mut ikm = AUTH.to_vec();
    lp(&mut ikm, ss_static);
    lp(&mut ikm, psk_b);
    ikm
}

/// The combiner's input keying material: lp(ss_x) || lp(ss_k) || lp(k_q).
pub fn combiner_ikm(ss_x: &[u8], ss_k: &[u8], k_q: &[u8]) -> Vec<u8> {
    let mut ikm = Vec::new();
    lp(&mut ikm, ss_x);
    lp(&mut ikm, ss_k);
    lp(&mut ikm, k_q);
    ikm
}

/// The SHA-256 input of T, from the captured Init, the Resp (its first 1140 bytes suffice:
/// no tag is part of T) and the responder's static key.
pub fn transcript_input(init: &[u8], resp: &[u8], s_resp: &[u8]) -> Vec<u8> {
    let ids = Init::new(init).key_id_list();
    let mut t = TRANSCRIPT.to_vec();
    for field in [
        &init[24..56],   // S_i
        s_resp,          // S_r
        &init[8..16],    // epoch, u64 little-endian as on the wire
        &init[16..24],   // timestamp
        &init[4..8],     // Init sender_index
        &resp[4..8],     // Resp sender_index
        &init[2..3],     // proposed mask
        &init[56..88],   // E_i
        &init[88..1272], // ek
        &ids[..],        // lp(key_ID_1) || lp(key_ID_2)
        &resp[20..52],   // E_r
        &resp[52..1140], // ct
        &resp[2..3],     // used mask
    ] {
        lp(&mut t, field);
    }
    t
}

/// An Init read by the offsets of the document.
pub struct Init<'a>(&'a [u8]);

impl<'a> Init<'a> {
    pub fn new(b: &'a [u8]) -> Self {
        assert_eq!(&b[..2], &[0x81, 1]);
        assert_eq!(b[3], 0);
        Init(b)
    }
    pub fn ids_end(&self) -> usize {
        let mut pos = 1273;
        for _ in 0..self.0[1272] {
            pos += 1 + usize::from(self.0[pos]);
        }
        pos
    }
    pub fn key_ids(&self) -> Vec<&'a [u8]> {
        let (mut pos, mut out) = (1273, Vec::new());
        for _ in 0..self.0[1272] {
            let len = usize::from(self.0[pos]);
            out.push(&self.0[pos + 1..pos + 1 + len]);
            pos += 1 + len;
        }
        out
    }
    pub fn key_id_list(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for id in self.key_ids() {
            lp(&mut out, id);
        }
        out
    }
}

/// cookie = HMAC-SHA256(secret, source address bytes).
pub fn cookie(secret: &[u8], source: &[u8]) -> [u8; 32] {
    let mut h = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(secret).unwrap();
    h.update(source);
    h.finalize().into_bytes().into()
}

/// A state file read (and written) by the layout of "Persisted state", format 2.
#[derive(Debug, PartialEq, Eq)]
pub struct State {
    pub keys: ([u8; 32], [u8; 32]),
    pub epoch: u64,
    pub chain: [u8; 32],
    pub prev: Option<[u8; 32]>,
    pub tentative: Option<(u64, [u8; 32])>,
    pub highest_init_ts: u64,
    pub last_init_sent_ts: u64,
    pub static_only_reset: bool,
    pub wireguard_initiation: [u8; 12],
    pub pinned_version: u8,
    pub tie_floor: u64,
}

impl State {
    pub fn parse(b: &[u8], name: &str) -> Self {
        assert_eq!(b.len(), 262, "{name}: state file length");
        assert_eq!(&b[..16], STATE_MAGIC);
        assert_eq!(&b[230..], &sha256(&[&b[..230]]), "{name}: state checksum");
        let be = |o: usize| u64::from_be_bytes(b[o..o + 8].try_into().unwrap());
        let flags = b[120];
        let zero = |r: std::ops::Range<usize>| b[r].iter().all(|&x| x == 0);
        assert_eq!(flags & !7, 0, "{name}: other flag bits are written 0");
        assert!(be(80) != 0 || zero(88..120), "{name}: C_m zero when m = 0");
        assert!(
            flags & 1 != 0 || zero(121..153),
            "{name}: C_(m-1) zero when absent"
        );
        assert!(
            flags & 2 != 0 || zero(153..193),
            "{name}: tentative zero when absent"
        );
        Self {
            keys: (arr32(&b[16..48]), arr32(&b[48..80])),
            epoch: be(80),
            chain: arr32(&b[88..120]),
            prev: (flags & 1 != 0).then(|| arr32(&b[121..153])),
            tentative: (flags & 2 != 0).then(|| (be(153), arr32(&b[161..193]))),
            highest_init_ts: be(193),
            last_init_sent_ts: be(201),
            static_only_reset: flags & 4 != 0,
            wireguard_initiation: b[209..221].try_into().unwrap(),
            pinned_version: b[221],
            tie_floor: be(222),
        }
    }
}

impl State {
    /// The 262 bytes of format 2: magic, own key, peer key, epoch, C_m, flags, C_{m-1},
    /// tentative epoch and chain, the two Init timestamps, the WireGuard record, the
    /// pinned version, the tie floor, then SHA-256 of all of that; integers big-endian,
    /// absent fields 0.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = STATE_MAGIC.to_vec();
        b.extend_from_slice(&self.keys.0);
        b.extend_from_slice(&self.keys.1);
        b.extend_from_slice(&self.epoch.to_be_bytes());
        b.extend_from_slice(&self.chain);
        let flags = u8::from(self.prev.is_some())
            | u8::from(self.tentative.is_some()) << 1
            | u8::from(self.static_only_reset) << 2;
        b.push(flags);
        b.extend_from_slice(&self.prev.unwrap_or([0; 32]));
        let (t_epoch, t_chain) = self.tentative.unwrap_or((0, [0; 32]));
        b.extend_from_slice(&t_epoch.to_be_bytes());
        b.extend_from_slice(&t_chain);
        b.extend_from_slice(&self.highest_init_ts.to_be_bytes());
        b.extend_from_slice(&self.last_init_sent_ts.to_be_bytes());
        b.extend_from_slice(&self.wireguard_initiation);
        b.push(self.pinned_version);
        b.extend_from_slice(&self.tie_floor.to_be_bytes());
        let sum = sha256(&[&b]);
        b.extend_from_slice(&sum);
        b
    }
}
