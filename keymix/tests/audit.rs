//! The RNDL audit on a simulated capture: only breaking all three sources recovers an
//! epoch, and then every epoch; without QKD, X25519 + ML-KEM suffice. An epoch the audit
//! cannot rebuild is `unknown`, never `not recovered`, and a capture or key log that gives
//! it nothing to check is an error, never an empty success.

mod common;

use std::time::Duration;

use common::{Net, Options};
use keymix::audit::{analyse, AuditError, Broken, Datagram, Outcome, Unknown};
use keymix::keylog::KeyLogEntry;
use keymix::message::{Init, Resp, TYPE_INIT, TYPE_RESP};
use keymix::message_v2::{InitV2, RespV2};
use keymix::{QkdPolicy, Version};

fn capture(net: &Net) -> Vec<Datagram> {
    net.recorded
        .iter()
        .map(|p| {
            let (src, dst) = if p.from_a {
                (net.a.addr, net.b.addr)
            } else {
                (net.b.addr, net.a.addr)
            };
            Datagram {
                src,
                dst,
                payload: p.payload.clone(),
            }
        })
        .collect()
}

/// The key log as gateway A would write it, through the text format.
fn keylog(net: &Net) -> Vec<KeyLogEntry> {
    let text: String = net
        .a
        .keys
        .iter()
        .map(|k| k.keylog.as_ref().unwrap().to_line().to_string())
        .collect();
    KeyLogEntry::parse_file(&text).unwrap()
}

const SUBSETS: [&str; 7] = [
    "x25519",
    "mlkem",
    "qkd",
    "x25519,mlkem",
    "x25519,qkd",
    "mlkem,qkd",
    "all",
];

#[test]
fn only_all_three_recover_and_they_recover_every_epoch() {
    let mut net = Net::new(Options {
        epoch: Duration::from_secs(5),
        reject_after: Duration::from_secs(8),
        ..Options::default()
    });
    // Some loss, so retransmissions are in the capture too.
    let mut n = 0;
    net.run_for(Duration::from_secs(22), |_| {
        n += 1;
        usize::from(n % 7 != 0)
    });
    let cap = capture(&net);
    let log = keylog(&net);
    for list in SUBSETS {
        let r = analyse(&cap, &log, Broken::parse(list).unwrap(), None).unwrap();
        assert!(r.epochs.len() >= 4, "{list}: {:?}", r.epochs);
        assert_eq!(r.epochs.len(), net.a.keys.len());
        let all_recovered = r.epochs.iter().all(|e| e.outcome == Outcome::Recovered);
        let none_recovered = r.epochs.iter().all(|e| e.outcome == Outcome::NotRecovered);
        if list == "all" {
            assert!(all_recovered, "{:?}", r.epochs);
        } else {
            assert!(none_recovered, "{list}: {:?}", r.epochs);
        }
        assert!(r.epochs.iter().all(|e| e.sources.has_qkd()));
    }
}

#[test]
fn without_qkd_x25519_and_mlkem_suffice() {
    let mut net = Net::new(Options {
        qkd_a: QkdPolicy::Off,
        qkd_b: QkdPolicy::Off,
        epoch: Duration::from_secs(5),
        reject_after: Duration::from_secs(8),
        ..Options::default()
    });
    net.run_for(Duration::from_secs(16), |_| 1);
    let (cap, log) = (capture(&net), keylog(&net));
    let r = analyse(
        &cap,
        &log,
        Broken::parse("x25519,ml-kem-768").unwrap(),
        None,
    )
    .unwrap();
    assert!(!r.epochs.is_empty());
    assert!(r.epochs.iter().all(|e| e.outcome == Outcome::Recovered));
    let r = analyse(&cap, &log, Broken::parse("x25519").unwrap(), None).unwrap();
    assert!(r.epochs.iter().all(|e| e.outcome == Outcome::NotRecovered));
}

#[test]
fn bad_source_names_are_errors() {
    for bad in [
        "x25519,rsa",
        "",
        " , ",
        "none,qkd",
        "all,none",
        "ml-kem-512",
    ] {
        assert!(Broken::parse(bad).is_err(), "{bad:?}");
    }
    assert_eq!(
        Broken::parse("all").unwrap().names(),
        ["x25519", "mlkem", "qkd"]
    );
}

/// `trident status` prints `x25519 + ml-kem-768 + qkd`: an operator copies those names.
#[test]
fn broken_accepts_the_names_status_prints() {
    let all = Broken::parse("all").unwrap();
    let mlkem = Broken {
        mlkem: true,
        ..Broken::default()
    };
    assert_eq!(Broken::parse("ml-kem-768").unwrap(), mlkem);
    assert_eq!(Broken::parse("mlkem").unwrap(), mlkem);
    assert_eq!(Broken::parse("ML-KEM-768").unwrap(), mlkem);
    assert_eq!(Broken::parse("x25519,ml-kem-768,qkd").unwrap(), all);
    assert_eq!(Broken::parse("x25519 + ml-kem-768 + qkd").unwrap(), all);
    assert_eq!(Broken::parse("none").unwrap(), Broken::default());
    assert!(Broken::parse("none").unwrap().names().is_empty());
}

/// A short run with no loss, 5 s epochs: epochs 1, 2, 3, ... in the key log.
fn clean_run() -> Net {
    clean_run_in(Version::V1)
}

fn clean_run_in(version: Version) -> Net {
    let mut net = Net::new(
        Options {
            epoch: Duration::from_secs(5),
            reject_after: Duration::from_secs(8),
            ..Options::default()
        }
        .only(version),
    );
    net.run_for(Duration::from_secs(22), |_| 1);
    assert!(net.a.keys.len() >= 4);
    net
}

fn outcomes(cap: &[Datagram], log: &[KeyLogEntry], broken: &str) -> Vec<(u64, Outcome)> {
    let r = analyse(cap, log, Broken::parse(broken).unwrap(), None).unwrap();
    r.epochs
        .iter()
        .map(|e| (e.epoch, e.outcome.clone()))
        .collect()
}

/// Finding 8: epoch 2's key-log line is missing. The audit cannot rebuild epoch 2, nor,
/// lacking its chain key, any later one: those are `unknown`, whatever the attacker holds,
/// and never `not recovered` (which would claim the attacker fails).
#[test]
fn an_epoch_without_its_keylog_line_is_unknown_not_not_recovered() {
    let net = clean_run();
    let cap = capture(&net);
    let mut log = keylog(&net);
    let epochs: Vec<u64> = log.iter().map(|e| e.epoch).collect();
    assert_eq!(epochs, (1..=epochs.len() as u64).collect::<Vec<_>>());
    let gone = log.remove(1);
    assert_eq!(gone.epoch, 2);
    for (broken, first) in [
        ("all", Outcome::Recovered),
        ("x25519", Outcome::NotRecovered),
    ] {
        let got = outcomes(&cap, &log, broken);
        assert_eq!(got.len(), epochs.len(), "{broken}: {got:?}");
        assert_eq!(got[0], (1, first.clone()), "{broken}");
        assert_eq!(
            got[1],
            (2, Outcome::Unknown(Unknown::NoKeyLogLine)),
            "{broken}"
        );
        for (epoch, outcome) in &got[2..] {
            assert_eq!(
                *outcome,
                Outcome::Unknown(Unknown::PreviousUnknown { epoch: epoch - 1 }),
                "{broken}: epoch {epoch}"
            );
        }
    }
}

/// Version 2 hides the epoch of every message, so the audit cannot see that the capture
/// holds epoch 2 when its line is missing: epoch 3 names epoch 2 as missing, and what
/// follows is `unknown` too, never `not recovered`.
#[test]
fn version_2_an_epoch_without_its_keylog_line_is_unknown() {
    let net = clean_run_in(Version::V2);
    let cap = capture(&net);
    let mut log = keylog(&net);
    assert!(log.iter().all(|e| e.version == 2 && e.k_init.is_some()));
    log.remove(1);
    let got = outcomes(&cap, &log, "all");
    assert_eq!(got[0], (1, Outcome::Recovered));
    assert_eq!(
        got[1],
        (3, Outcome::Unknown(Unknown::PreviousMissing { epoch: 2 }))
    );
    assert!(got[2..]
        .iter()
        .all(|(e, o)| *o == Outcome::Unknown(Unknown::PreviousUnknown { epoch: e - 1 })));
}

/// The capture lacks epoch 2's Resp and epoch 4's Init (a capture started late, or lossy):
/// those epochs, and the ones chained to them, are `unknown`.
#[test]
fn an_epoch_missing_from_the_capture_is_unknown() {
    for version in [Version::V1, Version::V2] {
        let net = clean_run_in(version);
        let log = keylog(&net);
        // Found by the key log's Init index: version 2 shows no epoch on the wire.
        let (index2, index4) = (log[1].init_index, log[3].init_index);
        let cap: Vec<Datagram> = capture(&net)
            .into_iter()
            .filter(|d| match (d.payload.first(), index_of(&d.payload)) {
                (Some(&TYPE_RESP), Some(i)) => i != index2,
                (Some(&TYPE_INIT), Some(i)) => i != index4,
                _ => true,
            })
            .collect();
        let got = outcomes(&cap, &log, "all");
        assert_eq!(got.len(), log.len(), "{got:?}");
        assert_eq!(got[0], (1, Outcome::Recovered));
        assert_eq!(got[1], (2, Outcome::Unknown(Unknown::MissingResp)));
        assert_eq!(
            got[2],
            (3, Outcome::Unknown(Unknown::PreviousUnknown { epoch: 2 }))
        );
        assert_eq!(got[3], (4, Outcome::Unknown(Unknown::MissingInit)));
        assert!(got.iter().all(|(_, o)| *o != Outcome::NotRecovered));
    }
}

/// An Init's sender index, or a Resp's receiver index, in either version.
fn index_of(payload: &[u8]) -> Option<u32> {
    match (payload.first(), payload.get(1)) {
        (Some(&TYPE_INIT), Some(1)) => Init::parse(payload).ok().map(|i| i.sender_index),
        (Some(&TYPE_INIT), Some(2)) => InitV2::parse(payload).ok().map(|i| i.sender_index),
        (Some(&TYPE_RESP), Some(1)) => Resp::parse(payload).ok().map(|r| r.receiver_index),
        (Some(&TYPE_RESP), Some(2)) => RespV2::parse(payload).ok().map(|r| r.receiver_index),
        _ => None,
    }
}

/// A check that cannot fail is no check: no exchanges in the capture is an error.
#[test]
fn a_capture_without_keymix_exchanges_is_an_error() {
    let net = clean_run();
    let log = keylog(&net);
    let all = Broken::parse("all").unwrap();
    let other = Datagram {
        src: net.a.addr,
        dst: net.b.addr,
        payload: b"not keymix".to_vec(),
    };
    let inits_only: Vec<Datagram> = capture(&net)
        .into_iter()
        .filter(|d| d.payload.first() == Some(&TYPE_INIT))
        .collect();
    assert!(!inits_only.is_empty());
    for cap in [vec![], vec![other], inits_only] {
        let r = analyse(&cap, &log, all, None);
        assert!(
            matches!(r, Err(AuditError::NoExchanges { .. })),
            "{:?}",
            r.map(|r| r.epochs)
        );
    }
}

/// A key log of another gateway pair (or an empty one) matches none of the capture's
/// exchanges: an error, not "0 of 0 epochs recovered".
#[test]
fn a_keylog_that_matches_no_exchange_is_an_error() {
    let net = clean_run();
    let cap = capture(&net);
    let mut other = Net::new(Options {
        epoch: Duration::from_secs(5),
        reject_after: Duration::from_secs(8),
        seed: 9,
        ..Options::default()
    });
    other.run_for(Duration::from_secs(12), |_| 1);
    let all = Broken::parse("all").unwrap();
    for log in [keylog(&other), vec![]] {
        let r = analyse(&cap, &log, all, None);
        assert!(
            matches!(r, Err(AuditError::KeyLogMatchesNothing { .. })),
            "{:?}",
            r.map(|r| r.epochs)
        );
    }
}

/// Parseable junk in the capture costs bounded work: the audit tries the first
/// candidates in capture order; if the real Resp is not among them the epoch is
/// `unknown`, never `not recovered`.
#[test]
fn a_flood_of_candidate_messages_is_bounded() {
    let net = clean_run();
    let log = keylog(&net);
    let cap = capture(&net);
    let resp2 = cap
        .iter()
        .position(|d| Resp::parse(&d.payload).is_ok_and(|r| r.epoch == 2))
        .unwrap();
    let forged: Vec<Datagram> = (0..100u8)
        .map(|n| {
            let mut f = cap[resp2].clone();
            // Inside e_resp: a transcript byte, so each forgery is a distinct candidate.
            f.payload[50] ^= n + 1;
            f
        })
        .collect();
    // After the real Resp: it is tried first and recovers.
    let mut after = cap.clone();
    after.extend(forged.iter().cloned());
    let got = outcomes(&after, &log, "all");
    assert!(got.iter().all(|(_, o)| *o == Outcome::Recovered), "{got:?}");
    // Before it: the limit is reached first.
    let mut before = cap.clone();
    before.splice(resp2..resp2, forged);
    let got = outcomes(&before, &log, "all");
    assert_eq!(got[0], (1, Outcome::Recovered));
    assert_eq!(got[1], (2, Outcome::Unknown(Unknown::TooManyCandidates)));
    assert_eq!(
        got[2],
        (3, Outcome::Unknown(Unknown::PreviousUnknown { epoch: 2 }))
    );
    let got = outcomes(&before, &log, "x25519");
    assert_eq!(got[1], (2, Outcome::Unknown(Unknown::TooManyCandidates)));
}

/// A gateway restarted with its chain state continues the chain at epoch n+1: the audit
/// carries the attacker's chain key across the restart, and every epoch is rebuilt.
#[test]
fn the_chain_is_followed_across_a_restart_with_state() {
    let opt = Options {
        epoch: Duration::from_secs(5),
        reject_after: Duration::from_secs(8),
        ..Options::default()
    };
    let mut net = Net::new(opt.clone());
    net.run_for(Duration::from_secs(12), |_| 1);
    let before = net.a.keys.len();
    net.restart(false, true, &opt);
    net.run_for(Duration::from_secs(15), |_| 1);
    let (cap, log) = (capture(&net), keylog(&net));
    assert!(log.len() > before + 1, "{} then {}", before, log.len());
    let epochs: Vec<u64> = log.iter().map(|e| e.epoch).collect();
    assert_eq!(epochs, (1..=log.len() as u64).collect::<Vec<_>>());
    let got = outcomes(&cap, &log, "all");
    assert!(got.iter().all(|(_, o)| *o == Outcome::Recovered), "{got:?}");
    let got = outcomes(&cap, &log, "x25519,ml-kem-768");
    assert!(
        got.iter().all(|(_, o)| *o == Outcome::NotRecovered),
        "{got:?}"
    );
}
