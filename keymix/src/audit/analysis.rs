//! The attacker's reconstruction, epoch by epoch, along the chain.

use std::collections::{HashMap, HashSet};

use crate::keylog::KeyLogEntry;
use crate::message::{self, Init, Resp};
use crate::reconstruct;
use crate::schedule::{self, SourceSecrets};
use crate::sources::SourceMask;

use super::{AuditError, Datagram};

/// The two static public keys of a peer pair, smaller first.
type PeerPair = ([u8; 32], [u8; 32]);

/// The sources whose secrets the modelled attacker holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Broken {
    pub x25519: bool,
    pub mlkem: bool,
    pub qkd: bool,
}

impl Broken {
    /// Parses `x25519,mlkem`, `qkd`, `all`, ... (comma-separated).
    pub fn parse(list: &str) -> Result<Self, AuditError> {
        let mut b = Broken::default();
        for word in list.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            match word {
                "x25519" => b.x25519 = true,
                "mlkem" => b.mlkem = true,
                "qkd" => b.qkd = true,
                "all" => {
                    b = Broken {
                        x25519: true,
                        mlkem: true,
                        qkd: true,
                    }
                }
                other => return Err(AuditError::UnknownSource(other.to_owned())),
            }
        }
        Ok(b)
    }

    pub fn names(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.x25519 {
            v.push("x25519");
        }
        if self.mlkem {
            v.push("mlkem");
        }
        if self.qkd {
            v.push("qkd");
        }
        v
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochResult {
    pub epoch: u64,
    pub sources: SourceMask,
    pub recovered: bool,
}

#[derive(Debug, Clone, Default)]
pub struct AuditReport {
    pub epochs: Vec<EpochResult>,
    /// Keymix exchanges in the capture with no key-log entry (not completed, or logged by
    /// a gateway whose key log was not given): they cannot be checked.
    pub unmatched_exchanges: usize,
    pub datagrams: usize,
}

/// Rebuilds every completed exchange of the capture as an attacker holding the secrets of
/// the `broken` sources would, carrying its chain key from epoch to epoch per peer pair.
/// `bootstrap_psk`: the attacker also knows the bootstrap PSK (a leaked PSK), else it uses
/// C_0 without one.
pub fn analyse(
    datagrams: &[Datagram],
    keylog: &[KeyLogEntry],
    broken: Broken,
    bootstrap_psk: Option<&[u8; 32]>,
) -> AuditReport {
    let mut report = AuditReport {
        datagrams: datagrams.len(),
        ..AuditReport::default()
    };
    let mut inits: HashMap<u32, Init> = HashMap::new();
    let mut seen_resps: HashSet<Vec<u8>> = HashSet::new();
    // Per unordered pair of static keys: (last epoch rebuilt, attacker's chain key).
    let mut chains: HashMap<PeerPair, (u64, [u8; 32])> = HashMap::new();
    let c0 = schedule::chain0(bootstrap_psk);
    // What an attacker uses for a secret it does not hold.
    let guess = vec![0u8; 32];

    for d in datagrams {
        match d.payload.first() {
            Some(&message::TYPE_INIT) => {
                if let Ok(i) = Init::parse(&d.payload) {
                    inits.insert(i.sender_index, i);
                }
            }
            Some(&message::TYPE_RESP) => {
                let Ok(resp) = Resp::parse(&d.payload) else {
                    continue;
                };
                if !seen_resps.insert(d.payload.clone()) {
                    continue; // a retransmission
                }
                let Some(init) = inits.get(&resp.receiver_index) else {
                    continue;
                };
                if init.epoch != resp.epoch {
                    continue;
                }
                let Some(entry) = keylog.iter().find(|e| {
                    e.epoch == init.epoch
                        && e.init_index == init.sender_index
                        && e.s_init == init.s_init
                }) else {
                    report.unmatched_exchanges += 1;
                    continue;
                };
                let pair = if entry.s_init < entry.s_resp {
                    (entry.s_init, entry.s_resp)
                } else {
                    (entry.s_resp, entry.s_init)
                };
                let prev: [u8; 32] = match (init.epoch, chains.get(&pair)) {
                    (1, _) => *c0,
                    (n, Some((e, chain))) if *e + 1 == n => *chain,
                    // The capture lacks the previous epoch: the attacker lacks its chain.
                    _ => [0u8; 32],
                };
                let secrets = SourceSecrets {
                    ss_x: if broken.x25519 {
                        entry.ss_x.to_vec()
                    } else {
                        guess.clone()
                    },
                    ss_k: if broken.mlkem {
                        entry.ss_k.to_vec()
                    } else {
                        guess.clone()
                    },
                    k_q: if broken.qkd {
                        entry.k_q.clone()
                    } else {
                        guess.clone()
                    },
                };
                let derived = reconstruct::rebuild(&prev, init, &resp, &entry.s_resp, &secrets);
                let recovered = schedule::psk_fingerprint(&derived.psk) == entry.psk_fingerprint;
                chains.insert(pair, (init.epoch, derived.chain));
                report.epochs.push(EpochResult {
                    epoch: init.epoch,
                    sources: resp.sources,
                    recovered,
                });
            }
            _ => {}
        }
    }
    report
}
