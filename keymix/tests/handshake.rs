//! The keymix exchange end to end between two sans-IO endpoints.

mod common;

use std::time::Duration;

use common::{Net, Options};
use keymix::Version;
use keymix::{PeerState, QkdPolicy, Role, SourceMask};

#[test]
fn first_epoch_uses_all_three_sources_and_both_sides_agree() {
    let mut net = Net::new(Options::default());
    net.run_for(Duration::from_secs(3), |_| 1);
    assert_eq!(net.a.keys.len(), 1);
    assert_eq!(net.b.keys.len(), 1);
    let (ka, kb) = (&net.a.keys[0], &net.b.keys[0]);
    assert_eq!(ka.epoch, 1);
    assert_eq!(*ka.psk, *kb.psk);
    assert_ne!(*ka.psk, [0u8; 32]);
    assert_eq!(ka.sources, SourceMask::ALL);
    assert_eq!(ka.qkd_key_ids.len(), 1);
    assert_eq!(ka.qkd_key_ids, kb.qkd_key_ids);
    assert_ne!(ka.role, kb.role);
    assert_eq!(net.status(true, net.now).state, PeerState::Up);
    assert_eq!(net.status(false, net.now).state, PeerState::Up);
    // The QKD key was delivered to both SAEs and is gone from the KME.
    assert_eq!(net.a.kme.stored_key_count(), 0);
}

#[test]
fn epochs_advance_and_the_chain_makes_every_psk_new() {
    let opt = Options {
        epoch: Duration::from_secs(5),
        reject_after: Duration::from_secs(8),
        ..Options::default()
    };
    let mut net = Net::new(opt);
    net.run_for(Duration::from_secs(60), |_| 1);
    assert!(net.a.keys.len() >= 10, "only {} epochs", net.a.keys.len());
    assert_eq!(net.assert_keys_agree(), net.a.keys.len());
    for w in net.a.keys.windows(2) {
        assert_eq!(w[1].epoch, w[0].epoch + 1);
        assert_ne!(*w[1].psk, *w[0].psk);
    }
    assert!(net.a.expired.is_empty() && net.b.expired.is_empty());
    // Only the preferred initiator (smaller static key) rekeys on schedule.
    let roles: Vec<Role> = net.a.keys.iter().map(|k| k.role).collect();
    assert!(roles.windows(2).all(|w| w[0] == w[1]), "{roles:?}");
}

#[test]
fn qkd_off_uses_x25519_and_mlkem_without_asking_the_kme() {
    let opt = Options {
        qkd_a: QkdPolicy::Off,
        qkd_b: QkdPolicy::Off,
        ..Options::default()
    };
    let mut net = Net::new(opt);
    net.run_for(Duration::from_secs(3), |_| 1);
    assert_eq!(net.a.keys[0].sources, SourceMask::BASE);
    assert_eq!(net.assert_keys_agree(), 1);
    assert_eq!(net.a.kme.calls(), (0, 0));
    assert_eq!(net.status(true, net.now).state, PeerState::Up);
}

#[test]
fn bootstrap_psk_must_match() {
    let mut a = Net::new(Options {
        bootstrap_psk: Some([7; 32]),
        ..Options::default()
    });
    a.run_for(Duration::from_secs(3), |_| 1);
    assert_eq!(a.assert_keys_agree(), 1);

    // B configured with another bootstrap PSK: A's Init fails authentication at B, and B
    // never asks its KME.
    let mut net = Net::new(Options {
        bootstrap_psk: Some([7; 32]),
        ..Options::default()
    });
    let mut wrong = Net::new(Options {
        bootstrap_psk: Some([8; 32]),
        ..Options::default()
    });
    std::mem::swap(&mut net.b, &mut wrong.b);
    net.run_for(Duration::from_secs(20), |_| 1);
    assert!(net.a.keys.is_empty() && net.b.keys.is_empty());
    assert_eq!(
        net.b.kme.calls().1,
        0,
        "an unauthenticated Init consumed QKD key"
    );
    assert!(net.b.ep.counters().get(keymix::DropReason::BadAuth) > 0);
}

#[test]
fn simultaneous_initiation_resolves_to_one_epoch() {
    let mut net = Net::new(Options::default());
    // Make both sides initiate at once: let both time out before anything is delivered.
    net.run_for(Duration::from_millis(1500), |_| 0);
    net.wire.clear();
    net.run_for(Duration::from_secs(10), |_| 1);
    assert_eq!(net.a.keys.len(), 1, "{:?}", net.a.keys);
    assert_eq!(net.b.keys.len(), 1);
    assert_eq!(net.assert_keys_agree(), 1);
}

#[test]
fn a_restarted_peer_with_state_continues_the_chain() {
    let opt = short_epochs();
    let mut net = Net::new(opt.clone());
    net.run_for(Duration::from_secs(45), |_| 1);
    for restart_a in [false, true] {
        let before = net.a.keys.last().unwrap().epoch;
        assert!(before >= 2);
        net.restart(restart_a, true, &opt);
        let epoch = agree_within_10s(&mut net);
        assert_eq!(epoch, before + 1, "the epoch keeps rising across a restart");
        assert_eq!(
            net.status(true, net.now).auth,
            Some(keymix::AuthBasis::Chain)
        );
    }
}

#[test]
fn a_peer_that_lost_its_state_needs_the_operator_without_bootstrap_psk() {
    let opt = short_epochs();
    let mut net = Net::new(opt.clone());
    net.run_for(Duration::from_secs(45), |_| 1);
    let before = net.b.keys.len();
    net.restart(true, false, &opt);
    net.run_for(Duration::from_secs(60), |_| 1);
    assert_eq!(
        net.b.keys.len(),
        before,
        "B must not accept a C_0 exchange over its chain"
    );
    // B counts A's bootstraps as unverified (a static key alone proves nothing) and gives
    // no advice; A, which knows it holds no chain, says what the operator can do.
    let st = net.status(false, net.now);
    assert!(st.unverified > 0, "{st:?}");
    assert!(
        !format!("{:?} {:?}", st.reason, st.hint).contains("reset"),
        "{st:?}"
    );
    assert!(net.b.ep.counters().get(keymix::DropReason::ChainMismatch) > 0);
    net.run_for(Duration::from_secs(15), |_| 1);
    let hint = net.status(true, net.now).hint.unwrap_or_default();
    assert!(hint.contains("--static-only"), "{hint}");
    // A plain reset of B would let the static keys alone re-bootstrap: refused.
    let now = net.now;
    assert_eq!(
        net.b.ep.reset_peer(net.b.peer, now, false),
        Err(keymix::ResetRefused::NeedsPskOrAcknowledgement)
    );
    // The operator acknowledges it: a fresh bootstrap follows, and status says so until the
    // chain has grown again.
    assert_eq!(
        net.b.ep.reset_peer(net.b.peer, now, true),
        Ok(keymix::ResetBasis::StaticOnlyAcknowledged)
    );
    assert_eq!(agree_within_10s(&mut net), 1);
    let st = net.status(false, net.now);
    assert_eq!(st.auth, Some(keymix::AuthBasis::StaticOnly));
    assert!(st.static_only_reset);
    net.run_for(Duration::from_secs(25), |_| 1);
    let st = net.status(false, net.now);
    assert_eq!(st.auth, Some(keymix::AuthBasis::Chain));
    assert!(!st.static_only_reset, "cleared once the chain grew");
}

#[test]
fn a_peer_that_lost_its_state_rebootstraps_with_a_bootstrap_psk() {
    let opt = Options {
        bootstrap_psk: Some([7; 32]),
        ..short_epochs()
    };
    let mut net = Net::new(opt.clone());
    net.run_for(Duration::from_secs(45), |_| 1);
    for restart_a in [false, true] {
        net.restart(restart_a, false, &opt);
        agree_within_10s(&mut net);
        assert_eq!(
            net.status(!restart_a, net.now).auth,
            Some(keymix::AuthBasis::BootstrapPsk)
        );
    }
}

#[test]
fn a_peer_restarted_with_a_stale_state_is_named_and_reset_heals_it() {
    for v in [Version::V1, Version::V2] {
        stale_state_then_reset(v);
    }
}

fn stale_state_then_reset(version: Version) {
    // B's last state write failed (or an old backup was restored): it restarts behind A
    // with no exchange to confirm. One PSK per epoch number means the pair cannot re-run
    // an epoch, so status must name the problem and its fix, and the fix must work.
    let opt = short_epochs().only(version);
    let mut net = Net::new(opt.clone());
    net.run_for(Duration::from_secs(25), |_| 1);
    let stale = net.b.saved.clone().expect("B persisted its chain");
    net.run_for(Duration::from_secs(20), |_| 1);
    assert!(net.a.keys.last().unwrap().epoch > stale.epoch);
    net.b.saved = Some(stale);
    net.restart(false, true, &opt);
    net.run_for(Duration::from_secs(40), |_| 1);
    let st = net.status(false, net.now);
    assert_eq!(st.state, keymix::PeerState::Connecting);
    if version == Version::V1 {
        // Neither side can verify the other's Inits: status counts them and states the
        // epochs as facts (the operator compares `chain epoch` on both sides); it advises
        // nothing.
        assert!(st.unverified > 0, "{st:?}");
        let seen = st.last_unverified.as_deref().unwrap_or_default();
        assert!(seen.contains("epoch"), "{st:?}");
        assert!(!seen.contains("reset"), "{st:?}");
    } else {
        // Version 2: an Init keyed with a chain this side does not hold names no peer (its
        // pseudonym is unknown here, its mac1 key derives from that chain): that is the
        // privacy. It is only counted for the interface, as bad_mac1.
        assert_eq!(st.unverified, 0, "{st:?}");
        assert!(net.b.ep.counters().get(keymix::DropReason::BadMac1) > 0);
        assert!(st.reason.is_none() && st.hint.is_none(), "{st:?}");
        // After a minute of silence status says what to check (a local fact), and advises
        // no reset: dropping packets must not make an operator reset a chain.
        net.run_for(Duration::from_secs(30), |_| 1);
        let st = net.status(false, net.now);
        let hint = st.hint.clone().unwrap_or_default();
        assert!(hint.contains("compare `chain epoch`"), "{st:?}");
        assert!(!hint.contains("trident reset"), "{st:?}");
    }
    let now = net.now;
    for (ep, peer) in [(&mut net.a.ep, net.a.peer), (&mut net.b.ep, net.b.peer)] {
        assert!(ep.reset_peer(peer, now, true).is_ok());
    }
    agree_within_10s(&mut net);
}

/// 20 s epochs and a 30 s reject age: restarts, resets and expiry show in a short run.
fn short_epochs() -> Options {
    Options {
        epoch: Duration::from_secs(20),
        reject_after: Duration::from_secs(30),
        ..Options::default()
    }
}

/// Runs 10 s and asserts both sides committed the same fresh key in that time; returns
/// its epoch.
fn agree_within_10s(net: &mut Net) -> u64 {
    let t0 = net.now;
    net.run_for(Duration::from_secs(10), |_| 1);
    let (last_a, last_b) = (net.a.keys.last().unwrap(), net.b.keys.last().unwrap());
    assert_eq!(*last_a.psk, *last_b.psk);
    assert_eq!(last_a.epoch, last_b.epoch);
    assert!(last_a.established >= t0 && last_b.established >= t0);
    last_a.epoch
}
