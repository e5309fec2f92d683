//! A site with two gateways (HA, issue 21): both hold the site's static key, each its own
//! state file. With a bootstrap PSK the pair heals by itself after a failover (the standby
//! has no chain, or an old one) and after a failback (the repaired gateway comes back with
//! its old, now stale, chain): a chain-keyed Init that goes unanswered falls back to a
//! bootstrap by the PSK. Without one, nothing lowers the bar.

mod common;

use std::time::Duration;

use common::{Net, Options};
use keymix::{AuthBasis, PeerState};

fn opts(psk: bool) -> Options {
    Options {
        epoch: Duration::from_secs(20),
        reject_after: Duration::from_secs(40),
        bootstrap_psk: psk.then_some([9; 32]),
        ..Options::default()
    }
}

/// Runs until both sides committed the same key after `t0` (at most `limit`); returns how
/// long that took.
fn agreed_within(net: &mut Net, limit: Duration) -> Option<Duration> {
    let t0 = net.now;
    while net.now < t0 + limit {
        net.run_for(Duration::from_millis(250), |_| 1);
        let (a, b) = (net.a.keys.last(), net.b.keys.last());
        if let (Some(a), Some(b)) = (a, b) {
            if a.established >= t0 && b.established >= t0 && *a.psk == *b.psk {
                return Some(net.now - t0);
            }
        }
    }
    None
}

#[test]
fn failover_and_failback_heal_by_themselves_with_a_bootstrap_psk() {
    let opt = opts(true);
    let mut net = Net::new(opt.clone());
    net.run_for(Duration::from_secs(70), |_| 1);
    // Gateway A1 has been active: its state file is at epoch >= 3.
    let a1_state = net.a.saved.clone().expect("A1's state file");
    assert!(a1_state.epoch >= 3);
    // Failover: A1 dies, A2 (same key, no state file) takes the virtual address.
    net.restart(true, false, &opt);
    let took = agreed_within(&mut net, Duration::from_secs(30)).expect("failover heals");
    assert!(took <= Duration::from_secs(15), "failover took {took:?}");
    net.run_for(Duration::from_secs(50), |_| 1);
    let b_epoch = net.b.keys.last().map(|k| k.epoch).unwrap_or(0);
    assert!(b_epoch >= 2, "the new chain grew: {b_epoch}");
    // Failback: A1 is repaired and takes the address back with its old chain.
    net.a.saved = Some(a1_state);
    net.restart(true, true, &opt);
    let took = agreed_within(&mut net, Duration::from_secs(30)).expect("failback heals");
    assert!(took <= Duration::from_secs(20), "failback took {took:?}");
    let st = net.status(true, net.now);
    assert_eq!(st.state, PeerState::Up);
    assert_eq!(st.auth, Some(AuthBasis::BootstrapPsk));
    assert!(
        net.status(false, net.now).warning.is_some(),
        "B warns of the re-bootstrap"
    );
    // And the chain grows on from there.
    net.run_for(Duration::from_secs(30), |_| 1);
    assert_eq!(net.status(true, net.now).auth, Some(AuthBasis::Chain));
}

#[test]
fn without_a_bootstrap_psk_a_stale_chain_does_not_fall_back() {
    let opt = opts(false);
    let mut net = Net::new(opt.clone());
    net.run_for(Duration::from_secs(70), |_| 1);
    let stale = net.a.saved.clone().expect("state");
    net.run_for(Duration::from_secs(50), |_| 1);
    net.a.saved = Some(stale);
    net.restart(true, true, &opt);
    assert!(agreed_within(&mut net, Duration::from_secs(40)).is_none());
    // No bootstrap was offered: B counted nothing static-key-only, A's hint stays silent
    // (it holds a chain); only the operator can settle it.
    assert_eq!(
        net.b.ep.counters().get(keymix::DropReason::ChainMismatch),
        0
    );
}

/// An HA standby binds the site's virtual address before it holds it: every Init it makes
/// fails to send. Each failure makes the next try a fresh Init; otherwise, once the address
/// arrives, the peer would first see a copy with the timestamp of the first try, older than
/// what it has accepted from the active gateway since: a replay.
#[test]
fn an_init_that_never_left_is_sent_fresh() {
    let opt = opts(true);
    let mut net = Net::new(opt.clone());
    net.run_for(Duration::from_secs(30), |_| 1);
    // A (the standby, no state of its own) cannot send; B hears nothing from it.
    net.restart(true, false, &opt);
    let mut stamps = Vec::new();
    for _ in 0..40 {
        net.run_for(Duration::from_millis(500), |p| usize::from(!p.from_a));
        let peer = net.a.peer;
        let sent: Vec<Vec<u8>> = net
            .recorded
            .iter()
            .filter(|p| p.from_a && p.payload[0] == keymix::message::TYPE_INIT)
            .map(|p| p.payload.clone())
            .collect();
        net.recorded.clear();
        for init in sent {
            net.a.ep.transmit_failed(peer, &init);
            let ts = keymix::message::Init::parse(&init)
                .map(|i| i.timestamp)
                .unwrap_or(0);
            if stamps.last() != Some(&ts) {
                stamps.push(ts);
            }
        }
    }
    assert!(
        stamps.len() >= 5,
        "every try is fresh: {} distinct Inits",
        stamps.len()
    );
    assert!(stamps.windows(2).all(|w| w[0] < w[1]));
    // The address arrives: the next try is fresh and accepted at once.
    let took = agreed_within(&mut net, Duration::from_secs(10)).expect("agreed");
    assert!(took <= Duration::from_secs(6), "{took:?}");
}
