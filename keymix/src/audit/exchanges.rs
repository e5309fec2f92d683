//! The keymix exchanges of a capture: every distinct Init, and the distinct Resps that
//! answer it. Retransmissions are kept once; nothing is trusted (a forged message that
//! parses is just one more candidate, which cannot make a wrong PSK match). Version-2
//! messages are kept as bytes: their fields open only with a key-log line's K_init.

use std::collections::{HashMap, HashSet};

use crate::keylog::KeyLogEntry;
use crate::message::{self, Init, Resp};
use crate::message_v2;
use crate::reconstruct;
use crate::sources::SourceMask;
use crate::Version;

use super::Datagram;

/// Most candidate (Init, Resp) pairs tried for one key-log line: bounds the work a capture
/// full of parseable junk can cause.
pub(super) const MAX_CANDIDATES: usize = 64;

/// A captured Init: version 1's fields, or version 2's bytes (sealed until a key-log line
/// opens them).
pub(super) enum Captured {
    V1(Init),
    V2(Vec<u8>),
}

#[derive(Default)]
pub(super) struct Exchanges {
    inits: Vec<Captured>,
    /// sender_index -> positions in `inits`.
    by_index: HashMap<u32, Vec<usize>>,
    /// receiver_index -> distinct version-1 Resps.
    resps: HashMap<u32, Vec<Resp>>,
    /// receiver_index -> distinct version-2 Resps (bytes).
    resps_v2: HashMap<u32, Vec<Vec<u8>>>,
}

/// What the capture holds of one key-log line's exchange.
pub(super) enum Found {
    /// Candidate pairs in capture order (position of the Init, Init, Resp, all in the
    /// line's version); `truncated`: there were more than [`MAX_CANDIDATES`], the rest are
    /// not tried.
    Pairs {
        pairs: Vec<(usize, Init, Resp)>,
        truncated: bool,
    },
    NoInit,
    NoResp,
}

impl Exchanges {
    pub fn from_capture(datagrams: &[Datagram]) -> Self {
        let mut ex = Exchanges::default();
        let mut seen: HashSet<&[u8]> = HashSet::new();
        for d in datagrams {
            if !seen.insert(&d.payload) {
                continue; // a retransmission, or a replay: same bytes, same exchange
            }
            let v2 = d.payload.get(1) == Some(&message_v2::VERSION);
            match d.payload.first() {
                Some(&message::TYPE_INIT) if v2 => {
                    if let Ok(i) = message_v2::InitV2::parse(&d.payload) {
                        ex.add_init(i.sender_index, Captured::V2(d.payload.clone()));
                    }
                }
                Some(&message::TYPE_INIT) => {
                    if let Ok(i) = Init::parse(&d.payload) {
                        ex.add_init(i.sender_index, Captured::V1(i));
                    }
                }
                Some(&message::TYPE_RESP) if v2 => {
                    if let Ok(r) = message_v2::RespV2::parse(&d.payload) {
                        let list = ex.resps_v2.entry(r.receiver_index).or_default();
                        list.push(d.payload.clone());
                    }
                }
                Some(&message::TYPE_RESP) => {
                    if let Ok(r) = Resp::parse(&d.payload) {
                        ex.resps.entry(r.receiver_index).or_default().push(r);
                    }
                }
                _ => {}
            }
        }
        ex
    }

    fn add_init(&mut self, index: u32, init: Captured) {
        self.by_index
            .entry(index)
            .or_default()
            .push(self.inits.len());
        self.inits.push(init);
    }

    /// The version-1 Resps in the capture that answer `init`.
    fn answers<'a>(&'a self, init: &'a Init) -> impl Iterator<Item = &'a Resp> + 'a {
        self.resps
            .get(&init.sender_index)
            .into_iter()
            .flatten()
            .filter(move |r| r.epoch == init.epoch)
    }

    /// The complete exchanges: each Init that has an answer, with its position, and for
    /// version 1 its fields and the sources its (first) answer accepted (a version-2
    /// exchange shows neither without its key-log line).
    pub fn complete(&self) -> impl Iterator<Item = (usize, Option<(&Init, SourceMask)>)> + '_ {
        self.inits.iter().enumerate().filter_map(|(n, c)| match c {
            Captured::V1(i) => self.answers(i).next().map(|r| (n, Some((i, r.sources)))),
            Captured::V2(b) => {
                let index = message_v2::InitV2::parse(b).ok()?.sender_index;
                self.resps_v2.contains_key(&index).then_some((n, None))
            }
        })
    }

    /// The captured (Init, Resp) pairs the key-log line `entry` may describe.
    pub fn find(&self, entry: &KeyLogEntry) -> Found {
        let mut inits: Vec<(usize, Init)> = Vec::new();
        for &n in self.by_index.get(&entry.init_index).into_iter().flatten() {
            let init = match (self.inits.get(n), &entry.k_init) {
                (Some(Captured::V1(i)), None) => Some(i.clone()),
                (Some(Captured::V2(b)), Some(k)) => reconstruct::open_init_v2(b, k),
                _ => None,
            };
            if let Some(i) = init.filter(|i| i.epoch == entry.epoch && i.s_init == entry.s_init) {
                inits.push((n, i));
            }
        }
        if inits.is_empty() {
            return Found::NoInit;
        }
        let mut pairs = Vec::new();
        let mut truncated = false;
        for (n, init) in inits {
            let resps: Vec<Resp> = match &entry.k_init {
                None => self.answers(&init).cloned().collect(),
                Some(k) => self
                    .resps_v2
                    .get(&init.sender_index)
                    .into_iter()
                    .flatten()
                    .filter_map(|b| reconstruct::open_resp_v2(b, &init, k))
                    .collect(),
            };
            for resp in resps {
                if pairs.len() == MAX_CANDIDATES {
                    truncated = true;
                    break;
                }
                pairs.push((n, init.clone(), resp));
            }
        }
        if pairs.is_empty() {
            Found::NoResp
        } else {
            Found::Pairs { pairs, truncated }
        }
    }
}

/// The protocol version of a key-log line.
pub(super) fn version_of(entry: &KeyLogEntry) -> Version {
    Version::from_byte(entry.version).unwrap_or(Version::V1)
}
