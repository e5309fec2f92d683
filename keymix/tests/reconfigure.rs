//! Live reconfiguration: a removed peer's id is never reused and its datagrams are dropped
//! as unknown; an updated peer keeps its chain and key; other peers keep their ids.

mod common;

use std::time::Duration;

use common::{Net, Options};
use keymix::{DropReason, PeerConfig, PeerState, PublicKey, QkdPolicy, StaticSecret};

#[test]
fn update_keeps_the_chain_and_changes_the_policy() {
    let mut net = Net::new(Options::default());
    net.run_for(Duration::from_secs(5), |_| 1);
    assert_eq!(net.assert_keys_agree(), 1);
    let epoch = net.status(true, net.now).epoch;
    // QKD required -> off on both sides: no new bootstrap, the chain goes on.
    for a in [true, false] {
        let other = if a { net.b.public } else { net.a.public };
        let mut cfg = PeerConfig::new(PublicKey::from(other));
        cfg.qkd = QkdPolicy::Off;
        cfg.epoch = Duration::from_secs(20);
        let now = net.now;
        let side = net.side(a);
        let peer = side.peer;
        side.ep.update_peer(peer, cfg, now);
    }
    assert_eq!(net.status(true, net.now).epoch, epoch, "key kept");
    let requests = net.a.kme_requests + net.b.kme_requests;
    // The next exchange is due at the old schedule; later ones follow the new one.
    net.run_for(Duration::from_secs(160), |_| 1);
    assert!(net.a.keys.len() >= 3, "exchanges ran: {}", net.a.keys.len());
    assert_eq!(net.a.kme_requests + net.b.kme_requests, requests, "no KME");
    assert_eq!(net.status(true, net.now).state, PeerState::Up);
}

#[test]
fn removed_peer_is_unknown_and_ids_stay_stable() {
    let mut net = Net::new(Options {
        qkd_a: QkdPolicy::Off,
        qkd_b: QkdPolicy::Off,
        ..Options::default()
    });
    net.run_for(Duration::from_secs(5), |_| 1);
    let keys = net.a.keys.len();
    let first = net.a.peer;
    let third = PublicKey::from(&StaticSecret::from([42u8; 32]));
    let added = net
        .a
        .ep
        .add_peer(PeerConfig::new(third), net.now)
        .expect("new peer");
    assert_ne!(added, first);
    net.a.ep.remove_peer(first);
    // B's next Init reaches an endpoint that no longer knows B.
    let _ = net.b.ep.reset_peer(net.b.peer, net.now, true);
    net.run_for(Duration::from_secs(10), |_| 1);
    assert!(net.a.ep.counters().get(DropReason::UnknownPeer) >= 1);
    assert_eq!(net.a.keys.len(), keys, "no key for a removed peer");
    assert_eq!(net.a.ep.peer_status(first, net.now).epoch, None);
    // A new peer after a removal gets a fresh id, not the removed one.
    let fourth = PublicKey::from(&StaticSecret::from([43u8; 32]));
    let id = net.a.ep.add_peer(PeerConfig::new(fourth), net.now).unwrap();
    assert!(id > added);
}

/// Issue 21, finding 1: reloading 120/180 s timings to 10/20 s mid-epoch. Before, the new
/// 20 s reject age applied to the live key at once while the next exchange stayed on the
/// old schedule: both sides expired and blocked for a minute. Now the live key keeps its
/// reject age, the next exchange is due by the new epoch, and later keys follow the new
/// timings; the key never expires.
#[test]
fn shorter_timings_by_reload_never_expire_the_key_before_its_replacement() {
    let mut net = Net::new(Options {
        qkd_a: QkdPolicy::Off,
        qkd_b: QkdPolicy::Off,
        ..Options::default()
    });
    net.run_for(Duration::from_secs(60), |_| 1);
    assert_eq!(net.assert_keys_agree(), 1);
    for a in [true, false] {
        let other = if a { net.b.public } else { net.a.public };
        let mut cfg = PeerConfig::new(PublicKey::from(other));
        cfg.epoch = Duration::from_secs(10);
        cfg.reject_after = Duration::from_secs(20);
        let now = net.now;
        let side = net.side(a);
        let peer = side.peer;
        let changed = side.ep.update_peer(peer, cfg, now);
        assert_eq!(changed, vec!["epoch timings"]);
    }
    for _ in 0..60 {
        net.run_for(Duration::from_secs(1), |_| 1);
        for a in [true, false] {
            let st = net.status(a, net.now);
            assert!(!st.expired, "{st:?}");
            assert_eq!(st.state, PeerState::Up);
        }
    }
    let epochs = net.a.keys.len();
    assert!(epochs >= 6, "exchanges follow the 10 s epoch: {epochs}");
    // Keys committed after the reload carry the new 20 s reject age.
    net.run_for(Duration::from_secs(25), |_| 0);
    assert!(net.status(true, net.now).expired);
}
