//! What the audit keeps of a capture: the keymix Init and Resp messages, each distinct one
//! once, up to [`MAX_KEPT_BYTES`]. Everything else (WireGuard data, cookies, Confirms,
//! other UDP) is counted by the reader and dropped at once, so memory follows the number
//! of exchanges, not the size of the capture.
//!
//! Keeping only these loses nothing: `keymix::audit` reads Inits and Resps alone, and
//! keeps a retransmission (the same bytes again) once, as this does.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};

use keymix::audit::Datagram;
use keymix::message::{Init, Resp, TYPE_INIT, TYPE_RESP};
use keymix::message_v2;

use super::Udp;

/// Most bytes of keymix messages held (about 200,000 exchanges: a year of two-minute epochs
/// for one peer pair). Past it, messages are counted as not kept, and the epochs they
/// belong to come out `unknown`, never `not recovered`.
pub const MAX_KEPT_BYTES: usize = 512 << 20;

pub struct KeymixMessages {
    pub kept: Vec<Datagram>,
    /// Bytes of messages held at most ([`MAX_KEPT_BYTES`]; less in tests).
    limit: usize,
    /// Hash of a payload -> the kept datagrams with that hash (compared byte for byte: a
    /// collision, even a crafted one, only costs a comparison). The hasher's key is random.
    by_hash: HashMap<u64, Vec<usize>>,
    hasher: RandomState,
    bytes: usize,
    /// Messages dropped because the limit was reached.
    pub not_kept: u64,
}

impl Default for KeymixMessages {
    fn default() -> Self {
        Self::with_limit(MAX_KEPT_BYTES)
    }
}

impl KeymixMessages {
    pub fn with_limit(limit: usize) -> Self {
        Self {
            kept: Vec::new(),
            limit,
            by_hash: HashMap::new(),
            hasher: RandomState::new(),
            bytes: 0,
            not_kept: 0,
        }
    }

    /// Keeps `d` if it is a keymix Init or Resp not seen before and within the limit.
    pub fn offer(&mut self, d: Udp<'_>) {
        let v2 = d.payload.get(1) == Some(&message_v2::VERSION);
        let parses = match d.payload.first() {
            Some(&TYPE_INIT) if v2 => message_v2::InitV2::parse(d.payload).is_ok(),
            Some(&TYPE_RESP) if v2 => message_v2::RespV2::parse(d.payload).is_ok(),
            Some(&TYPE_INIT) => Init::parse(d.payload).is_ok(),
            Some(&TYPE_RESP) => Resp::parse(d.payload).is_ok(),
            _ => false,
        };
        if !parses {
            return;
        }
        let hash = self.hasher.hash_one(d.payload);
        let kept = &self.kept;
        let seen = self.by_hash.get(&hash).is_some_and(|ids| {
            ids.iter()
                .any(|&i| kept.get(i).is_some_and(|k| k.payload == d.payload))
        });
        if seen {
            return;
        }
        if self.bytes.saturating_add(d.payload.len()) > self.limit {
            self.not_kept += 1;
            return;
        }
        self.bytes += d.payload.len();
        self.by_hash.entry(hash).or_default().push(self.kept.len());
        self.kept.push(Datagram {
            src: d.src,
            dst: d.dst,
            payload: d.payload.to_vec(),
        });
    }
}
