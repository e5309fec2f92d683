//! Version 2's messages (docs/PROTOCOL.md, "Messages (version 2)"): fixed sizes, nothing
//! that names a site, an epoch, a clock or a QKD key in clear. Parsers check exact lengths
//! and the header; the sealed parts are opened by the session that holds their keys.

use crate::mac::TAG_LEN;
use crate::message::{
    CookieReply, Init, ParseError, MAX_KEY_IDS, MAX_KEY_ID_LEN, MAX_KEY_ID_TOTAL, MLKEM_CT_LEN,
    MLKEM_EK_LEN, TYPE_CONFIRM, TYPE_INIT, TYPE_RESP,
};
use crate::sources::SourceMask;

pub const VERSION: u8 = 2;
/// The sealed Init plaintext: S_i, epoch, timestamp, proposed mask, key-ID block.
pub const INIT_PLAIN_LEN: usize = 32 + 8 + 8 + 1 + KEY_ID_BLOCK_LEN;
/// count (1) and up to two length-prefixed IDs of at most 72 bytes together, zero padded.
pub const KEY_ID_BLOCK_LEN: usize = 1 + MAX_KEY_IDS + MAX_KEY_ID_TOTAL;
pub const INIT_SEALED_LEN: usize = INIT_PLAIN_LEN + TAG_LEN;
pub const INIT_LEN: usize = 4 + 16 + 4 + 32 + MLKEM_EK_LEN + INIT_SEALED_LEN + 3 * TAG_LEN;
pub const RESP_SEALED_LEN: usize = 1 + TAG_LEN;
pub const RESP_LEN: usize = 4 + 4 + 4 + 32 + MLKEM_CT_LEN + RESP_SEALED_LEN + 3 * TAG_LEN;
pub const CONFIRM_LEN: usize = 4 + 4 + 2 * TAG_LEN;

const _: () = assert!(INIT_PLAIN_LEN == 124 && INIT_LEN == 1428);
const _: () = assert!(RESP_LEN == 1197 && CONFIRM_LEN == 40);

/// Offsets in a version-2 Init.
pub mod init {
    pub const PSEUDONYM: usize = 4;
    pub const SENDER_INDEX: usize = 20;
    pub const E_INIT: usize = 24;
    pub const EK: usize = 56;
    pub const SEALED: usize = 1240;
    pub const AUTH: usize = 1380;
    pub const MAC1: usize = 1396;
    pub const MAC2: usize = 1412;
}

/// Offsets in a version-2 Resp.
pub mod resp {
    pub const SEALED: usize = 1132;
    pub const CONFIRM: usize = 1149;
    pub const AUTH: usize = 1165;
    pub const MAC1: usize = 1181;
}

/// Offset of the Confirm's mac1.
pub const CONFIRM_MAC1: usize = 24;

fn header(buf: &[u8], ty: u8, len: usize) -> Result<(), ParseError> {
    match buf.get(..4) {
        _ if buf.len() != len => Err(ParseError::Length),
        Some([t, ..]) if *t != ty => Err(ParseError::UnknownType),
        Some([_, v, ..]) if *v != VERSION => Err(ParseError::Version),
        Some([_, _, 0, 0]) => Ok(()),
        Some(_) => Err(ParseError::Reserved),
        None => Err(ParseError::Length),
    }
}

fn array<const N: usize>(buf: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(s) = buf.get(at..at + N) {
        out.copy_from_slice(s);
    }
    out
}

/// The wire fields of a version-2 Init (the sealed part still sealed).
pub struct InitV2 {
    pub pseudonym: [u8; 16],
    pub sender_index: u32,
    pub e_init: [u8; 32],
    pub ek: Box<[u8; MLKEM_EK_LEN]>,
    pub sealed: Box<[u8; INIT_SEALED_LEN]>,
    pub auth: [u8; TAG_LEN],
    pub mac1: [u8; TAG_LEN],
    pub mac2: [u8; TAG_LEN],
}

impl InitV2 {
    pub fn parse(buf: &[u8]) -> Result<Self, ParseError> {
        header(buf, TYPE_INIT, INIT_LEN)?;
        Ok(Self {
            pseudonym: array(buf, init::PSEUDONYM),
            sender_index: u32::from_le_bytes(array(buf, init::SENDER_INDEX)),
            e_init: array(buf, init::E_INIT),
            ek: Box::new(array(buf, init::EK)),
            sealed: Box::new(array(buf, init::SEALED)),
            auth: array(buf, init::AUTH),
            mac1: array(buf, init::MAC1),
            mac2: array(buf, init::MAC2),
        })
    }

    /// The bytes before the sealed part: its associated data.
    pub fn aad(buf: &[u8]) -> &[u8] {
        buf.get(..init::SEALED).unwrap_or(&[])
    }
}

/// What an Init seals.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct InitPlain {
    pub s_init: [u8; 32],
    pub epoch: u64,
    pub timestamp: u64,
    pub proposed: SourceMask,
    pub key_ids: Vec<String>,
}

impl InitPlain {
    pub fn encode(&self) -> zeroize::Zeroizing<Vec<u8>> {
        let mut out = zeroize::Zeroizing::new(Vec::with_capacity(INIT_PLAIN_LEN));
        out.extend_from_slice(&self.s_init);
        out.extend_from_slice(&self.epoch.to_le_bytes());
        out.extend_from_slice(&self.timestamp.to_le_bytes());
        out.push(self.proposed.bits());
        let block_start = out.len();
        out.push(u8::try_from(self.key_ids.len()).unwrap_or(0));
        for id in &self.key_ids {
            out.push(u8::try_from(id.len()).unwrap_or(0));
            out.extend_from_slice(id.as_bytes());
        }
        out.resize(block_start + KEY_ID_BLOCK_LEN, 0);
        out
    }

    /// Parses an opened plaintext: exact length, a valid mask, the key IDs within version
    /// 1's bounds and agreeing with the QKD bit, zero padding.
    pub fn decode(plain: &[u8]) -> Result<Self, ParseError> {
        if plain.len() != INIT_PLAIN_LEN {
            return Err(ParseError::Length);
        }
        let proposed = SourceMask::from_wire(plain.get(48).copied().unwrap_or(0))
            .ok_or(ParseError::SourceMask)?;
        let block = plain.get(49..).ok_or(ParseError::Length)?;
        let count = usize::from(block.first().copied().unwrap_or(0));
        if count > MAX_KEY_IDS || (count > 0) != proposed.has_qkd() {
            return Err(ParseError::KeyIds);
        }
        let mut at = 1;
        let mut key_ids = Vec::with_capacity(count);
        let mut total = 0;
        for _ in 0..count {
            let len = usize::from(block.get(at).copied().unwrap_or(0));
            let id = block.get(at + 1..at + 1 + len).ok_or(ParseError::KeyIds)?;
            total += len;
            let valid =
                !id.is_empty() && len <= MAX_KEY_ID_LEN && id.iter().all(|b| b.is_ascii_graphic());
            if !valid || total > MAX_KEY_ID_TOTAL {
                return Err(ParseError::KeyIds);
            }
            key_ids.push(String::from_utf8_lossy(id).into_owned());
            at += 1 + len;
        }
        if block
            .get(at..)
            .is_some_and(|pad| pad.iter().any(|b| *b != 0))
        {
            return Err(ParseError::KeyIds);
        }
        Ok(Self {
            s_init: array(plain, 0),
            epoch: u64::from_le_bytes(array(plain, 32)),
            timestamp: u64::from_le_bytes(array(plain, 40)),
            proposed,
            key_ids,
        })
    }

    /// The version-1 shaped Init the state machine works on: these fields and the wire's.
    pub fn into_init(self, wire: &InitV2) -> Init {
        Init {
            proposed: self.proposed,
            sender_index: wire.sender_index,
            epoch: self.epoch,
            timestamp: self.timestamp,
            s_init: self.s_init,
            e_init: wire.e_init,
            ek: wire.ek.clone(),
            key_ids: self.key_ids,
            auth: wire.auth,
            mac1: wire.mac1,
            mac2: wire.mac2,
        }
    }
}

/// The wire fields of a version-2 Resp.
pub struct RespV2 {
    pub sender_index: u32,
    pub receiver_index: u32,
    pub e_resp: [u8; 32],
    pub ct: Box<[u8; MLKEM_CT_LEN]>,
    pub sealed: [u8; RESP_SEALED_LEN],
    pub confirm: [u8; TAG_LEN],
    pub auth: [u8; TAG_LEN],
    pub mac1: [u8; TAG_LEN],
}

impl RespV2 {
    pub fn parse(buf: &[u8]) -> Result<Self, ParseError> {
        header(buf, TYPE_RESP, RESP_LEN)?;
        Ok(Self {
            sender_index: u32::from_le_bytes(array(buf, 4)),
            receiver_index: u32::from_le_bytes(array(buf, 8)),
            e_resp: array(buf, 12),
            ct: Box::new(array(buf, 44)),
            sealed: array(buf, resp::SEALED),
            confirm: array(buf, resp::CONFIRM),
            auth: array(buf, resp::AUTH),
            mac1: array(buf, resp::MAC1),
        })
    }

    /// Header, indices, E_r and ct (the sealed mask and the tags follow).
    pub fn head(sender_index: u32, receiver_index: u32, e_resp: &[u8; 32], ct: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(RESP_LEN);
        out.extend_from_slice(&[TYPE_RESP, VERSION, 0, 0]);
        out.extend_from_slice(&sender_index.to_le_bytes());
        out.extend_from_slice(&receiver_index.to_le_bytes());
        out.extend_from_slice(e_resp);
        out.extend_from_slice(ct);
        out
    }
}

/// The wire fields of a version-2 Confirm.
pub struct ConfirmV2 {
    pub receiver_index: u32,
    pub confirm: [u8; TAG_LEN],
    pub mac1: [u8; TAG_LEN],
}

impl ConfirmV2 {
    pub fn parse(buf: &[u8]) -> Result<Self, ParseError> {
        header(buf, TYPE_CONFIRM, CONFIRM_LEN)?;
        Ok(Self {
            receiver_index: u32::from_le_bytes(array(buf, 4)),
            confirm: array(buf, 8),
            mac1: array(buf, CONFIRM_MAC1),
        })
    }

    /// Header, receiver index and confirm_i (mac1 follows).
    pub fn head(receiver_index: u32, confirm: &[u8; TAG_LEN]) -> Vec<u8> {
        let mut out = Vec::with_capacity(CONFIRM_LEN);
        out.extend_from_slice(&[TYPE_CONFIRM, VERSION, 0, 0]);
        out.extend_from_slice(&receiver_index.to_le_bytes());
        out.extend_from_slice(confirm);
        out
    }
}

/// Version 2's cookie reply: version 1's with version 2 in its header.
pub fn cookie_reply_bytes(reply: &CookieReply) -> Vec<u8> {
    let mut b = reply.to_bytes();
    if let Some(v) = b.get_mut(1) {
        *v = VERSION;
    }
    b
}

/// Parses a version-2 cookie reply.
pub fn parse_cookie_reply(buf: &[u8]) -> Result<CookieReply, ParseError> {
    if buf.get(1) != Some(&VERSION) {
        return Err(ParseError::Version);
    }
    let mut v1 = buf.to_vec();
    if let Some(v) = v1.get_mut(1) {
        *v = crate::message::VERSION;
    }
    CookieReply::parse(&v1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plaintext_round_trip_and_fixed_size() {
        for ids in [
            vec![],
            vec!["a".to_string()],
            vec!["x".repeat(36), "y".repeat(36)],
        ] {
            let plain = InitPlain {
                s_init: [7; 32],
                epoch: 9,
                timestamp: 1 << 60,
                proposed: if ids.is_empty() {
                    SourceMask::BASE
                } else {
                    SourceMask::ALL
                },
                key_ids: ids,
            };
            let b = plain.encode();
            assert_eq!(b.len(), INIT_PLAIN_LEN);
            assert_eq!(InitPlain::decode(&b), Ok(plain));
        }
    }

    #[test]
    fn decode_refuses_bad_blocks() {
        let plain = InitPlain {
            s_init: [7; 32],
            epoch: 1,
            timestamp: 2,
            proposed: SourceMask::ALL,
            key_ids: vec!["k".into()],
        };
        let good = plain.encode().to_vec();
        let mut padding = good.clone();
        padding[INIT_PLAIN_LEN - 1] = 1;
        let mut count = good.clone();
        count[49] = 3;
        let mut mask = good.clone();
        mask[48] = SourceMask::BASE.bits();
        let mut unprintable = good.clone();
        unprintable[51] = b' ';
        for bad in [padding, count, mask, unprintable, good[..100].to_vec()] {
            assert!(InitPlain::decode(&bad).is_err());
        }
    }
}
