//! The attacker's reconstruction, epoch by epoch, along the chain. Driven by the key log
//! (the epochs a gateway committed, in order); the capture supplies each epoch's public
//! messages. An epoch the audit cannot rebuild is `Unknown` with the reason: calling it
//! "not recovered" would claim the attacker fails where the audit merely lacks data.

use std::collections::{HashMap, HashSet};
use std::fmt;

use zeroize::Zeroizing;

use crate::keylog::KeyLogEntry;
use crate::reconstruct;
use crate::schedule::{self, SourceSecrets};
use crate::sources::SourceMask;
use crate::Version;

use super::exchanges::{version_of, Exchanges, Found, MAX_CANDIDATES};
use super::{AuditError, Broken, Datagram};

/// The two static public keys of a peer pair, smaller first.
type PeerPair = ([u8; 32], [u8; 32]);

/// Why an epoch could not be rebuilt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unknown {
    /// The capture holds the epoch's exchange but the key log has no line for it.
    NoKeyLogLine,
    /// The key log has the epoch but the capture lacks its Init.
    MissingInit,
    /// The key log has the epoch but the capture lacks its Resp.
    MissingResp,
    /// None of the candidate messages the audit tries gives the PSK, and the capture holds
    /// more than it tries.
    TooManyCandidates,
    /// Epoch `epoch` (the previous one) could not be rebuilt, so neither can the chain
    /// key this epoch is derived from.
    PreviousUnknown { epoch: u64 },
    /// Epoch `epoch` (the previous one) is in neither the key log nor the capture.
    PreviousMissing { epoch: u64 },
}

impl fmt::Display for Unknown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unknown::NoKeyLogLine => write!(f, "the key log has no line for it"),
            Unknown::MissingInit => write!(f, "the capture lacks its Init"),
            Unknown::MissingResp => write!(f, "the capture lacks its Resp"),
            Unknown::TooManyCandidates => write!(
                f,
                "the capture holds more than {MAX_CANDIDATES} candidate messages for it"
            ),
            Unknown::PreviousUnknown { epoch } => {
                write!(f, "needs the chain key of epoch {epoch}, which is unknown")
            }
            Unknown::PreviousMissing { epoch } => write!(
                f,
                "needs the chain key of epoch {epoch}, which is in neither the key log nor the capture"
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The attacker's PSK matches the gateway's fingerprint.
    Recovered,
    /// The audit rebuilt the epoch as the attacker would, and the PSK does not match.
    NotRecovered,
    /// The audit could not rebuild the epoch: no verdict.
    Unknown(Unknown),
}

impl Outcome {
    /// `recovered`, `not recovered` or `unknown`: the word the CLI prints.
    pub fn word(&self) -> &'static str {
        match self {
            Outcome::Recovered => "recovered",
            Outcome::NotRecovered => "not recovered",
            Outcome::Unknown(_) => "unknown",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochResult {
    pub epoch: u64,
    pub sources: SourceMask,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Default)]
pub struct AuditReport {
    pub epochs: Vec<EpochResult>,
    /// Complete exchanges (an Init and its Resp) in the capture.
    pub exchanges: usize,
    /// Complete exchanges that belong to no reported epoch: not committed (a retry, or cut
    /// off by the end of the capture) or between peers the key log does not cover.
    pub unmatched_exchanges: usize,
    pub datagrams: usize,
}

/// The attacker's chain key after an epoch, per pair.
struct Chain {
    epoch: u64,
    /// `None`: the audit could not rebuild that epoch.
    key: Option<Zeroizing<[u8; 32]>>,
}

fn pair_of(e: &KeyLogEntry) -> PeerPair {
    if e.s_init < e.s_resp {
        (e.s_init, e.s_resp)
    } else {
        (e.s_resp, e.s_init)
    }
}

/// Rebuilds every epoch of the key log as an attacker holding the secrets of the `broken`
/// sources would from the capture, carrying its chain key from epoch to epoch per peer
/// pair. `bootstrap_psk`: the attacker also knows the bootstrap PSK (a leaked PSK), else
/// it uses C_0 without one. A capture without keymix exchanges, or a key log none of whose
/// lines is in the capture, is an error: there would be nothing to check.
pub fn analyse(
    datagrams: &[Datagram],
    keylog: &[KeyLogEntry],
    broken: Broken,
    bootstrap_psk: Option<&[u8; 32]>,
) -> Result<AuditReport, AuditError> {
    let ex = Exchanges::from_capture(datagrams);
    let exchanges = ex.complete().count();
    if exchanges == 0 {
        return Err(AuditError::NoExchanges {
            datagrams: datagrams.len(),
        });
    }
    let found: Vec<Found> = keylog.iter().map(|e| ex.find(e)).collect();
    if !found.iter().any(|f| matches!(f, Found::Pairs { .. })) {
        return Err(AuditError::KeyLogMatchesNothing {
            entries: keylog.len(),
            exchanges,
        });
    }
    // Which pairs each static key is part of: a captured Init whose key is in exactly one
    // pair is attributed to that pair.
    let mut pairs_of_key: HashMap<[u8; 32], HashSet<PeerPair>> = HashMap::new();
    for e in keylog {
        let p = pair_of(e);
        pairs_of_key.entry(p.0).or_default().insert(p);
        pairs_of_key.entry(p.1).or_default().insert(p);
    }
    let mut used: HashSet<usize> = HashSet::new();
    for f in &found {
        if let Found::Pairs { pairs, .. } = f {
            used.extend(pairs.iter().map(|(n, _, _)| *n));
        }
    }

    let c0_of = |v: Version| schedule::chain0_with(v.labels(), bootstrap_psk);
    let mut report = AuditReport {
        datagrams: datagrams.len(),
        exchanges,
        ..AuditReport::default()
    };
    let mut chains: HashMap<PeerPair, Chain> = HashMap::new();
    let mut done: HashSet<(PeerPair, u64, u32)> = HashSet::new();
    let mut gap_ids: HashSet<usize> = HashSet::new();
    for (entry, found) in keylog.iter().zip(&found) {
        let pair = pair_of(entry);
        if !done.insert((pair, entry.epoch, entry.init_index)) {
            continue; // the same line twice
        }
        let n = entry.epoch;
        // Epochs between the pair's last logged one and this one that the capture holds:
        // committed (a later epoch chains from them) but not in the key log.
        let after = chains.get(&pair).map_or(0, |c| c.epoch);
        let mut gap: Vec<(u64, SourceMask)> = Vec::new();
        for (id, i, sources) in ex
            .complete()
            .filter_map(|(id, c)| c.map(|(i, s)| (id, i, s)))
        {
            let attributed = pairs_of_key
                .get(&i.s_init)
                .is_some_and(|p| p.len() == 1 && p.contains(&pair));
            if !used.contains(&id) && i.epoch > after && i.epoch < n && attributed {
                gap_ids.insert(id);
                gap.push((i.epoch, sources));
            }
        }
        gap.sort_by_key(|g| g.0);
        gap.dedup_by_key(|g| g.0);
        for (epoch, sources) in &gap {
            report.epochs.push(EpochResult {
                epoch: *epoch,
                sources: *sources,
                outcome: Outcome::Unknown(Unknown::NoKeyLogLine),
            });
        }
        let version = version_of(entry);
        let c0 = c0_of(version);
        let prev: Result<Zeroizing<[u8; 32]>, Unknown> = match chains.get(&pair) {
            _ if n == 1 => Ok(c0.clone()),
            Some(Chain {
                epoch,
                key: Some(k),
            }) if *epoch + 1 == n => Ok(k.clone()),
            Some(Chain { epoch, key: None }) if *epoch + 1 == n => {
                Err(Unknown::PreviousUnknown { epoch: *epoch })
            }
            _ if gap.last().is_some_and(|g| g.0 + 1 == n) => {
                Err(Unknown::PreviousUnknown { epoch: n - 1 })
            }
            _ => Err(Unknown::PreviousMissing { epoch: n - 1 }),
        };
        let logged_sources = if entry.k_q.is_empty() {
            SourceMask::BASE
        } else {
            SourceMask::ALL
        };
        let (sources, outcome, key) = match found {
            Found::Pairs { pairs, truncated } => {
                let sources = pairs.first().map_or(logged_sources, |(_, _, r)| r.sources);
                let (outcome, key) = rebuild(entry, pairs, broken, prev, &c0);
                match outcome {
                    // The right messages may be among those not tried.
                    Outcome::NotRecovered if *truncated => {
                        (sources, Outcome::Unknown(Unknown::TooManyCandidates), None)
                    }
                    _ => (sources, outcome, key),
                }
            }
            Found::NoInit => (logged_sources, Outcome::Unknown(Unknown::MissingInit), None),
            Found::NoResp => (logged_sources, Outcome::Unknown(Unknown::MissingResp), None),
        };
        report.epochs.push(EpochResult {
            epoch: n,
            sources,
            outcome,
        });
        chains.insert(pair, Chain { epoch: n, key });
    }
    report.unmatched_exchanges = ex
        .complete()
        .filter(|(id, _)| !used.contains(id) && !gap_ids.contains(id))
        .count();
    Ok(report)
}

/// Tries the candidate messages of one epoch with the attacker's chain key (and with C_0:
/// a re-bootstrapped exchange, which the attacker can try too). Returns the outcome and
/// the attacker's chain key after this epoch (`None` when it is unknown).
fn rebuild(
    entry: &KeyLogEntry,
    pairs: &[(usize, crate::message::Init, crate::message::Resp)],
    broken: Broken,
    prev: Result<Zeroizing<[u8; 32]>, Unknown>,
    c0: &Zeroizing<[u8; 32]>,
) -> (Outcome, Option<Zeroizing<[u8; 32]>>) {
    // What an attacker uses for a secret it does not hold.
    let guess = vec![0u8; 32];
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
        k_q: if broken.qkd { entry.k_q.clone() } else { guess },
    };
    let mut candidates: Vec<&Zeroizing<[u8; 32]>> = Vec::new();
    if let Ok(k) = &prev {
        candidates.push(k);
    }
    if prev.as_ref().map_or(true, |k| k[..] != c0[..]) {
        candidates.push(c0);
    }
    let mut own_guess = None;
    for chain in candidates {
        for (_, init, resp) in pairs {
            let version = version_of(entry);
            let derived = reconstruct::rebuild(version, chain, init, resp, &entry.s_resp, &secrets);
            if schedule::psk_fingerprint_with(version.labels(), &derived.psk)
                == entry.psk_fingerprint
            {
                return (Outcome::Recovered, Some(Zeroizing::new(derived.chain)));
            }
            if own_guess.is_none() && prev.as_ref().is_ok_and(|k| k[..] == chain[..]) {
                own_guess = Some(Zeroizing::new(derived.chain));
            }
        }
    }
    match prev {
        // The attacker rebuilt the epoch and got a wrong PSK; it carries on with the chain
        // key it computed (wrong too), as a real attacker would.
        Ok(_) => (Outcome::NotRecovered, own_guess),
        Err(why) => (Outcome::Unknown(why), None),
    }
}
