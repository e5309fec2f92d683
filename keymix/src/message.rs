//! keymix wire messages (docs/PROTOCOL.md, "Messages"). Each has a typed struct, a bounded
//! `parse` that never panics, and `to_bytes`. The first byte never collides with
//! WireGuard's message types 1-4, so both share the tunnel's UDP port.
//!
//! Tags (auth, mac1, mac2, confirm) are carried as fields; computing and checking them is
//! the state machine's job, which knows the keys. `authenticated_len()` etc. give the byte
//! ranges each tag covers.

use crate::mac::TAG_LEN;
use crate::sources::SourceMask;

pub const VERSION: u8 = 1;
pub const TYPE_INIT: u8 = 0x81;
pub const TYPE_RESP: u8 = 0x82;
pub const TYPE_CONFIRM: u8 = 0x83;
pub const TYPE_COOKIE: u8 = 0x84;

pub const MLKEM_EK_LEN: usize = 1184;
pub const MLKEM_CT_LEN: usize = 1088;
pub const MAX_KEY_IDS: usize = 2;
pub const MAX_KEY_ID_LEN: usize = 64;
pub const MAX_KEY_ID_TOTAL: usize = 72;

pub const INIT_FIXED_LEN: usize = 4 + 4 + 8 + 8 + 32 + 32 + MLKEM_EK_LEN + 1;
pub const INIT_MAX_LEN: usize = INIT_FIXED_LEN + MAX_KEY_IDS + MAX_KEY_ID_TOTAL + 3 * TAG_LEN;
pub const RESP_LEN: usize = 4 + 4 + 4 + 8 + 32 + MLKEM_CT_LEN + 3 * TAG_LEN;
pub const CONFIRM_LEN: usize = 4 + 4 + 8 + 2 * TAG_LEN;
pub const COOKIE_NONCE_LEN: usize = 24;
pub const COOKIE_LEN: usize = 32;
pub const COOKIE_REPLY_LEN: usize = 4 + 4 + COOKIE_NONCE_LEN + COOKIE_LEN + TAG_LEN;

// Every message fits one 1400-byte UDP payload (1500-byte MTU, IPv6, with room to spare).
const _: () = assert!(INIT_MAX_LEN <= 1400 && RESP_LEN <= 1400);

/// Why a datagram is not a well-formed keymix message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("not a keymix message type")]
    UnknownType,
    #[error("unsupported keymix version")]
    Version,
    #[error("wrong length")]
    Length,
    #[error("reserved bits set")]
    Reserved,
    #[error("invalid source mask")]
    SourceMask,
    #[error("invalid QKD key ID list")]
    KeyIds,
}

/// True when the first byte marks a keymix message (as opposed to WireGuard's 1-4).
pub fn is_keymix(datagram: &[u8]) -> bool {
    matches!(
        datagram.first(),
        Some(&(TYPE_INIT | TYPE_RESP | TYPE_CONFIRM | TYPE_COOKIE))
    )
}

/// A bounds-checked reader: every read either returns the bytes or `ParseError::Length`.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ParseError> {
        if self.buf.len() < n {
            return Err(ParseError::Length);
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], ParseError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, ParseError> {
        Ok(self.array::<1>()?[0])
    }
    fn u32(&mut self) -> Result<u32, ParseError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, ParseError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn finish(self) -> Result<(), ParseError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(ParseError::Length)
        }
    }
}

/// The 4-byte header: type, version, source mask (0 where unused), reserved zero.
fn header(r: &mut Reader<'_>, ty: u8) -> Result<u8, ParseError> {
    let [t, v, mask, reserved] = r.array::<4>()?;
    if t != ty {
        return Err(ParseError::UnknownType);
    }
    if v != VERSION {
        return Err(ParseError::Version);
    }
    if reserved != 0 {
        return Err(ParseError::Reserved);
    }
    Ok(mask)
}

fn wire_mask(bits: u8) -> Result<SourceMask, ParseError> {
    SourceMask::from_wire(bits).ok_or(ParseError::SourceMask)
}

/// Initiator -> responder: ephemeral X25519 key, ML-KEM-768 encapsulation key, and the QKD
/// key IDs the initiator (master SAE) obtained from its KME.
#[derive(Clone, PartialEq, Eq)]
pub struct Init {
    pub proposed: SourceMask,
    pub sender_index: u32,
    pub epoch: u64,
    pub timestamp: u64,
    pub s_init: [u8; 32],
    pub e_init: [u8; 32],
    pub ek: Box<[u8; MLKEM_EK_LEN]>,
    pub key_ids: Vec<String>,
    pub auth: [u8; TAG_LEN],
    pub mac1: [u8; TAG_LEN],
    pub mac2: [u8; TAG_LEN],
}

impl std::fmt::Debug for Init {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Init")
            .field("epoch", &self.epoch)
            .field("sender_index", &self.sender_index)
            .field("proposed", &self.proposed)
            .field("key_ids", &self.key_ids)
            .finish_non_exhaustive()
    }
}

fn key_id_valid(id: &[u8]) -> bool {
    !id.is_empty() && id.len() <= MAX_KEY_ID_LEN && id.iter().all(|b| b.is_ascii_graphic())
}

impl Init {
    pub fn parse(buf: &[u8]) -> Result<Self, ParseError> {
        if buf.len() > INIT_MAX_LEN {
            return Err(ParseError::Length);
        }
        let mut r = Reader { buf };
        let proposed = wire_mask(header(&mut r, TYPE_INIT)?)?;
        let sender_index = r.u32()?;
        let epoch = r.u64()?;
        let timestamp = r.u64()?;
        let s_init = r.array()?;
        let e_init = r.array()?;
        let ek = Box::new(r.array::<MLKEM_EK_LEN>()?);
        let count = usize::from(r.u8()?);
        if count > MAX_KEY_IDS || (count > 0) != proposed.has_qkd() {
            return Err(ParseError::KeyIds);
        }
        let mut key_ids = Vec::with_capacity(count);
        let mut total = 0;
        for _ in 0..count {
            let len = usize::from(r.u8()?);
            let id = r.take(len)?;
            total += len;
            if !key_id_valid(id) || total > MAX_KEY_ID_TOTAL {
                return Err(ParseError::KeyIds);
            }
            // key_id_valid admits ASCII only, so this is valid UTF-8.
            key_ids.push(String::from_utf8_lossy(id).into_owned());
        }
        let auth = r.array()?;
        let mac1 = r.array()?;
        let mac2 = r.array()?;
        r.finish()?;
        Ok(Init {
            proposed,
            sender_index,
            epoch,
            timestamp,
            s_init,
            e_init,
            ek,
            key_ids,
            auth,
            mac1,
            mac2,
        })
    }

    /// Whether the key IDs fit the wire format; checked before building an Init.
    pub fn key_ids_fit(key_ids: &[String]) -> bool {
        key_ids.len() <= MAX_KEY_IDS
            && key_ids.iter().all(|k| key_id_valid(k.as_bytes()))
            && key_ids.iter().map(String::len).sum::<usize>() <= MAX_KEY_ID_TOTAL
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(INIT_MAX_LEN);
        b.extend([TYPE_INIT, VERSION, self.proposed.bits(), 0]);
        b.extend(self.sender_index.to_le_bytes());
        b.extend(self.epoch.to_le_bytes());
        b.extend(self.timestamp.to_le_bytes());
        b.extend(self.s_init);
        b.extend(self.e_init);
        b.extend(self.ek.iter());
        // The constructor checks key_ids_fit; the casts cannot truncate.
        b.push(self.key_ids.len() as u8);
        for id in &self.key_ids {
            b.push(id.len() as u8);
            b.extend(id.as_bytes());
        }
        b.extend(self.auth);
        b.extend(self.mac1);
        b.extend(self.mac2);
        b
    }

    /// Bytes covered by the auth tag: everything before it.
    pub fn auth_offset(bytes: &[u8]) -> usize {
        bytes.len().saturating_sub(3 * TAG_LEN)
    }
    /// Bytes covered by mac1: everything before it.
    pub fn mac1_offset(bytes: &[u8]) -> usize {
        bytes.len().saturating_sub(2 * TAG_LEN)
    }
    /// Bytes covered by mac2: everything before it.
    pub fn mac2_offset(bytes: &[u8]) -> usize {
        bytes.len().saturating_sub(TAG_LEN)
    }
}

/// Responder -> initiator: ephemeral X25519 key, ML-KEM ciphertext, the accepted source
/// mask and the responder's key-confirmation tag.
#[derive(Clone, PartialEq, Eq)]
pub struct Resp {
    pub sources: SourceMask,
    pub sender_index: u32,
    pub receiver_index: u32,
    pub epoch: u64,
    pub e_resp: [u8; 32],
    pub ct: Box<[u8; MLKEM_CT_LEN]>,
    pub confirm: [u8; TAG_LEN],
    pub auth: [u8; TAG_LEN],
    pub mac1: [u8; TAG_LEN],
}

impl std::fmt::Debug for Resp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resp")
            .field("epoch", &self.epoch)
            .field("sender_index", &self.sender_index)
            .field("receiver_index", &self.receiver_index)
            .field("sources", &self.sources)
            .finish_non_exhaustive()
    }
}

impl Resp {
    pub fn parse(buf: &[u8]) -> Result<Self, ParseError> {
        if buf.len() != RESP_LEN {
            return Err(ParseError::Length);
        }
        let mut r = Reader { buf };
        let sources = wire_mask(header(&mut r, TYPE_RESP)?)?;
        let m = Resp {
            sources,
            sender_index: r.u32()?,
            receiver_index: r.u32()?,
            epoch: r.u64()?,
            e_resp: r.array()?,
            ct: Box::new(r.array()?),
            confirm: r.array()?,
            auth: r.array()?,
            mac1: r.array()?,
        };
        r.finish()?;
        Ok(m)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(RESP_LEN);
        b.extend([TYPE_RESP, VERSION, self.sources.bits(), 0]);
        b.extend(self.sender_index.to_le_bytes());
        b.extend(self.receiver_index.to_le_bytes());
        b.extend(self.epoch.to_le_bytes());
        b.extend(self.e_resp);
        b.extend(self.ct.iter());
        b.extend(self.confirm);
        b.extend(self.auth);
        b.extend(self.mac1);
        b
    }

    pub const AUTH_OFFSET: usize = RESP_LEN - 2 * TAG_LEN;
    pub const MAC1_OFFSET: usize = RESP_LEN - TAG_LEN;
}

/// Initiator -> responder: the initiator's key-confirmation tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirm {
    pub sources: SourceMask,
    pub receiver_index: u32,
    pub epoch: u64,
    pub confirm: [u8; TAG_LEN],
    pub mac1: [u8; TAG_LEN],
}

impl Confirm {
    pub fn parse(buf: &[u8]) -> Result<Self, ParseError> {
        if buf.len() != CONFIRM_LEN {
            return Err(ParseError::Length);
        }
        let mut r = Reader { buf };
        let sources = wire_mask(header(&mut r, TYPE_CONFIRM)?)?;
        let m = Confirm {
            sources,
            receiver_index: r.u32()?,
            epoch: r.u64()?,
            confirm: r.array()?,
            mac1: r.array()?,
        };
        r.finish()?;
        Ok(m)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(CONFIRM_LEN);
        b.extend([TYPE_CONFIRM, VERSION, self.sources.bits(), 0]);
        b.extend(self.receiver_index.to_le_bytes());
        b.extend(self.epoch.to_le_bytes());
        b.extend(self.confirm);
        b.extend(self.mac1);
        b
    }

    pub const MAC1_OFFSET: usize = CONFIRM_LEN - TAG_LEN;
}

/// Responder under load -> initiator: an encrypted cookie to put into mac2 (as WireGuard).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieReply {
    pub receiver_index: u32,
    pub nonce: [u8; COOKIE_NONCE_LEN],
    pub sealed_cookie: [u8; COOKIE_LEN + TAG_LEN],
}

impl CookieReply {
    pub fn parse(buf: &[u8]) -> Result<Self, ParseError> {
        if buf.len() != COOKIE_REPLY_LEN {
            return Err(ParseError::Length);
        }
        let mut r = Reader { buf };
        if header(&mut r, TYPE_COOKIE)? != 0 {
            return Err(ParseError::Reserved);
        }
        let m = CookieReply {
            receiver_index: r.u32()?,
            nonce: r.array()?,
            sealed_cookie: r.array()?,
        };
        r.finish()?;
        Ok(m)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(COOKIE_REPLY_LEN);
        b.extend([TYPE_COOKIE, VERSION, 0, 0]);
        b.extend(self.receiver_index.to_le_bytes());
        b.extend(self.nonce);
        b.extend(self.sealed_cookie);
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_init(ids: Vec<String>) -> Init {
        Init {
            proposed: if ids.is_empty() {
                SourceMask::BASE
            } else {
                SourceMask::ALL
            },
            sender_index: 7,
            epoch: 3,
            timestamp: 99,
            s_init: [1; 32],
            e_init: [2; 32],
            ek: Box::new([3; MLKEM_EK_LEN]),
            key_ids: ids,
            auth: [4; 16],
            mac1: [5; 16],
            mac2: [6; 16],
        }
    }

    #[test]
    fn sizes_fit_one_packet_and_types_avoid_wireguard() {
        for t in [TYPE_INIT, TYPE_RESP, TYPE_CONFIRM, TYPE_COOKIE] {
            assert!(!(1..=4).contains(&t));
        }
        assert!(!is_keymix(&[1, 0, 0, 0]));
        assert!(!is_keymix(&[]));
    }

    #[test]
    fn init_roundtrips_at_the_size_limit() {
        let ids = vec!["a".repeat(36), "b".repeat(36)];
        assert!(Init::key_ids_fit(&ids));
        let m = sample_init(ids);
        let b = m.to_bytes();
        assert_eq!(b.len(), INIT_MAX_LEN);
        assert_eq!(Init::parse(&b).unwrap(), m);
        let m = sample_init(vec![]);
        assert_eq!(Init::parse(&m.to_bytes()).unwrap(), m);
    }

    #[test]
    fn init_key_ids_must_match_the_mask() {
        let mut m = sample_init(vec!["id".into()]);
        m.proposed = SourceMask::BASE;
        assert_eq!(Init::parse(&m.to_bytes()), Err(ParseError::KeyIds));
        let mut m = sample_init(vec![]);
        m.proposed = SourceMask::ALL;
        assert_eq!(Init::parse(&m.to_bytes()), Err(ParseError::KeyIds));
    }

    #[test]
    fn every_truncation_and_extension_is_rejected() {
        let r = Resp {
            sources: SourceMask::ALL,
            sender_index: 1,
            receiver_index: 2,
            epoch: 3,
            e_resp: [4; 32],
            ct: Box::new([5; MLKEM_CT_LEN]),
            confirm: [6; 16],
            auth: [7; 16],
            mac1: [8; 16],
        };
        let c = Confirm {
            sources: SourceMask::ALL,
            receiver_index: 1,
            epoch: 2,
            confirm: [3; 16],
            mac1: [4; 16],
        };
        let k = CookieReply {
            receiver_index: 1,
            nonce: [2; 24],
            sealed_cookie: [3; 48],
        };
        let i = sample_init(vec!["x".into()]).to_bytes();
        for bytes in [i, r.to_bytes(), c.to_bytes(), k.to_bytes()] {
            for len in 0..bytes.len() {
                assert!(parse_any(&bytes[..len]).is_err());
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(parse_any(&longer).is_err());
            assert!(parse_any(&bytes).is_ok());
        }
    }

    fn parse_any(b: &[u8]) -> Result<(), ParseError> {
        match b.first() {
            Some(&TYPE_INIT) => Init::parse(b).map(drop),
            Some(&TYPE_RESP) => Resp::parse(b).map(drop),
            Some(&TYPE_CONFIRM) => Confirm::parse(b).map(drop),
            Some(&TYPE_COOKIE) => CookieReply::parse(b).map(drop),
            _ => Err(ParseError::UnknownType),
        }
    }
}
