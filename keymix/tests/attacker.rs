//! "Any one source survives", from the attacker's side: the attacker records every
//! datagram, knows every public key and C_0, and holds the secrets of some sources (from
//! the key log, standing in for a broken primitive). For each of the 7 proper subsets of
//! {x25519, mlkem, qkd} it must compute wrong PSKs; with all three it must compute every
//! PSK of the chain.

mod common;

use std::time::Duration;

use common::{Net, Options};
use keymix::message::{Init, Resp, TYPE_INIT, TYPE_RESP};
use keymix::reconstruct;
use keymix::schedule::{self, SourceSecrets};
use keymix::Version;

const X: u8 = 1;
const K: u8 = 2;
const Q: u8 = 4;

/// The exchanges that completed, as (Init, Resp) pairs taken from the recording, in the
/// order of A's epoch keys. A version-2 exchange is opened with its key-log line's K_init,
/// as the audit does: its fields are not on the wire in clear.
fn completed_exchanges(net: &Net) -> Vec<(Version, Init, Resp, [u8; 32])> {
    let mut out = Vec::new();
    for key in &net.a.keys {
        let log = key.keylog.as_ref().expect("keylog on");
        let version = Version::from_byte(log.version).expect("a known version");
        let init = net
            .recorded
            .iter()
            .find_map(|p| match (p.payload.first(), &log.k_init) {
                (Some(&TYPE_INIT), None) => Init::parse(&p.payload)
                    .ok()
                    .filter(|i| i.sender_index == log.init_index),
                (Some(&TYPE_INIT), Some(k)) => reconstruct::open_init_v2(&p.payload, k)
                    .filter(|i| i.sender_index == log.init_index),
                _ => None,
            });
        let init = init.expect("the Init of every epoch was recorded");
        let resp = net
            .recorded
            .iter()
            .find_map(|p| match (p.payload.first(), &log.k_init) {
                (Some(&TYPE_RESP), None) => Resp::parse(&p.payload)
                    .ok()
                    .filter(|r| r.receiver_index == init.sender_index),
                (Some(&TYPE_RESP), Some(k)) => reconstruct::open_resp_v2(&p.payload, &init, k)
                    .filter(|r| r.receiver_index == init.sender_index),
                _ => None,
            });
        let resp = resp.expect("the Resp of every epoch was recorded");
        // The responder is whichever side did not send the Init.
        let s_resp = if init.s_init == net.a.public {
            net.b.public
        } else {
            net.a.public
        };
        out.push((version, init, resp, s_resp));
    }
    out
}

fn attack(net: &Net, known: u8) -> Vec<bool> {
    let mut chain = None;
    let mut recovered = Vec::new();
    for (version, init, resp, s_resp) in completed_exchanges(net) {
        let prev = chain.unwrap_or(*schedule::chain0_with(version.labels(), None));
        let real = net
            .a
            .keys
            .iter()
            .find(|k| k.epoch == init.epoch)
            .expect("a key for every exchange");
        let log = real.keylog.as_ref().expect("keylog on");
        // What the attacker holds: the true secret of a broken source, else its best guess.
        let guess = vec![0x5a; 32];
        let secrets = SourceSecrets {
            ss_x: if known & X != 0 {
                log.ss_x.to_vec()
            } else {
                guess.clone()
            },
            ss_k: if known & K != 0 {
                log.ss_k.to_vec()
            } else {
                guess.clone()
            },
            k_q: if known & Q != 0 {
                log.k_q.clone()
            } else {
                guess.clone()
            },
        };
        let derived = reconstruct::rebuild(version, &prev, &init, &resp, &s_resp, &secrets);
        let hit = derived.psk == *real.psk;
        assert_eq!(
            hit,
            reconstruct::confirms(version, &derived, &init, &resp, &s_resp)
        );
        recovered.push(hit);
        chain = Some(derived.chain);
    }
    recovered
}

#[test]
fn every_proper_subset_of_sources_fails_and_all_three_succeed() {
    for v in [Version::V1, Version::V2] {
        every_proper_subset_fails(v);
    }
}

fn every_proper_subset_fails(version: Version) {
    let mut net = Net::new(
        Options {
            epoch: Duration::from_secs(5),
            reject_after: Duration::from_secs(8),
            ..Options::default()
        }
        .only(version),
    );
    net.run_for(Duration::from_secs(16), |_| 1);
    assert!(net.a.keys.len() >= 3);
    assert!(net.a.keys.iter().all(|k| k.sources.has_qkd()));

    let all = attack(&net, X | K | Q);
    assert_eq!(all.len(), net.a.keys.len());
    assert!(
        all.iter().all(|&r| r),
        "all three secrets must recover every epoch"
    );

    for known in [0, X, K, Q, X | K, X | Q, K | Q] {
        let r = attack(&net, known);
        assert!(
            r.iter().all(|&hit| !hit),
            "subset {known:03b} recovered an epoch: {r:?}"
        );
    }
}

#[test]
fn without_qkd_x25519_and_mlkem_suffice() {
    for v in [Version::V1, Version::V2] {
        let mut net = Net::new(
            Options {
                qkd_a: keymix::QkdPolicy::Off,
                qkd_b: keymix::QkdPolicy::Off,
                epoch: Duration::from_secs(5),
                reject_after: Duration::from_secs(8),
                ..Options::default()
            }
            .only(v),
        );
        net.run_for(Duration::from_secs(12), |_| 1);
        assert!(attack(&net, X | K).iter().all(|&r| r));
        assert!(attack(&net, X).iter().all(|&r| !r));
        assert!(attack(&net, K).iter().all(|&r| !r));
    }
}

#[test]
fn a_bootstrap_psk_keeps_even_a_full_break_out_of_the_first_epochs() {
    for v in [Version::V1, Version::V2] {
        let mut net = Net::new(
            Options {
                bootstrap_psk: Some([9; 32]),
                ..Options::default()
            }
            .only(v),
        );
        net.run_for(Duration::from_secs(3), |_| 1);
        // The attacker assumes C_0 without the PSK: even all three sources do not help.
        assert!(attack(&net, X | K | Q).iter().all(|&r| !r));
    }
}
