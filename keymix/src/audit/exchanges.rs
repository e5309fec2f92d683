//! The keymix exchanges of a capture: every distinct Init, and the distinct Resps that
//! answer it. Retransmissions are kept once; nothing is trusted (a forged message that
//! parses is just one more candidate, which cannot make a wrong PSK match).

use std::collections::{HashMap, HashSet};

use crate::keylog::KeyLogEntry;
use crate::message::{self, Init, Resp};
use crate::sources::SourceMask;

use super::Datagram;

/// Most candidate (Init, Resp) pairs tried for one key-log line: bounds the work a capture
/// full of parseable junk can cause.
pub(super) const MAX_CANDIDATES: usize = 64;

#[derive(Default)]
pub(super) struct Exchanges {
    inits: Vec<Init>,
    /// sender_index -> positions in `inits`.
    by_index: HashMap<u32, Vec<usize>>,
    /// receiver_index -> distinct Resps.
    resps: HashMap<u32, Vec<Resp>>,
}

/// What the capture holds of one key-log line's exchange.
pub(super) enum Found<'a> {
    /// Candidate pairs in capture order; `truncated`: there were more than
    /// [`MAX_CANDIDATES`], the rest are not tried.
    Pairs {
        pairs: Vec<(usize, &'a Init, &'a Resp)>,
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
            match d.payload.first() {
                Some(&message::TYPE_INIT) => {
                    if let Ok(i) = Init::parse(&d.payload) {
                        ex.by_index
                            .entry(i.sender_index)
                            .or_default()
                            .push(ex.inits.len());
                        ex.inits.push(i);
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

    /// The Resps in the capture that answer `init`.
    fn answers<'a>(&'a self, init: &'a Init) -> impl Iterator<Item = &'a Resp> + 'a {
        self.resps
            .get(&init.sender_index)
            .into_iter()
            .flatten()
            .filter(move |r| r.epoch == init.epoch)
    }

    /// The complete exchanges: each Init that has an answer, with its position and the
    /// sources its (first) answer accepted.
    pub fn complete(&self) -> impl Iterator<Item = (usize, &Init, SourceMask)> + '_ {
        self.inits
            .iter()
            .enumerate()
            .filter_map(|(n, i)| self.answers(i).next().map(|r| (n, i, r.sources)))
    }

    /// The captured (Init, Resp) pairs the key-log line `entry` may describe.
    pub fn find(&self, entry: &KeyLogEntry) -> Found<'_> {
        let inits: Vec<usize> = self
            .by_index
            .get(&entry.init_index)
            .into_iter()
            .flatten()
            .copied()
            .filter(|&n| {
                self.inits
                    .get(n)
                    .is_some_and(|i| i.epoch == entry.epoch && i.s_init == entry.s_init)
            })
            .collect();
        if inits.is_empty() {
            return Found::NoInit;
        }
        let mut pairs = Vec::new();
        let mut truncated = false;
        for n in inits {
            let Some(init) = self.inits.get(n) else {
                continue;
            };
            for resp in self.answers(init) {
                if pairs.len() == MAX_CANDIDATES {
                    truncated = true;
                    break;
                }
                pairs.push((n, init, resp));
            }
        }
        if pairs.is_empty() {
            Found::NoResp
        } else {
            Found::Pairs { pairs, truncated }
        }
    }
}
