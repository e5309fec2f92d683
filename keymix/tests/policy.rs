//! QKD policy, expiry and load: required fails closed, preferred degrades visibly, keys
//! past the reject age are reported expired, and under load cookies come first.

mod common;

use std::time::Duration;

use common::{Net, Options};
use keymix::qkd::QkdError;
use keymix::{DropReason, PeerState, QkdPolicy, SourceMask};

#[test]
fn required_with_a_failing_kme_emits_no_epoch_key() {
    for failing_side_is_a in [true, false] {
        let mut net = Net::new(Options::default());
        let kme = if failing_side_is_a {
            &net.a.kme
        } else {
            &net.b.kme
        };
        kme.set_failing(Some(QkdError::Unavailable("key pool empty".into())));
        net.run_for(Duration::from_secs(60), |_| 1);
        assert!(net.a.keys.is_empty(), "{:?}", net.a.keys);
        assert!(net.b.keys.is_empty());
        let st = net.status(failing_side_is_a, net.now);
        assert_eq!(st.state, PeerState::Blocked);
        assert!(st.last_kme_error.unwrap().contains("key pool empty"));
        // The KME comes back: keys flow again with all three sources.
        let kme = if failing_side_is_a {
            &net.a.kme
        } else {
            &net.b.kme
        };
        kme.set_failing(None);
        net.run_for(Duration::from_secs(10), |_| 1);
        assert_eq!(net.a.keys.last().unwrap().sources, SourceMask::ALL);
        assert_eq!(net.assert_keys_agree(), 1);
        assert_eq!(net.status(true, net.now).state, PeerState::Up);
    }
}

#[test]
fn preferred_degrades_to_x25519_and_mlkem_visibly() {
    for failing_side_is_a in [true, false] {
        let mut net = Net::new(Options {
            qkd_a: QkdPolicy::Preferred,
            qkd_b: QkdPolicy::Preferred,
            ..Options::default()
        });
        let kme = if failing_side_is_a {
            &net.a.kme
        } else {
            &net.b.kme
        };
        kme.set_failing(Some(QkdError::Transport("connection refused".into())));
        net.run_for(Duration::from_secs(5), |_| 1);
        assert_eq!(net.assert_keys_agree(), 1);
        assert_eq!(net.a.keys[0].sources, SourceMask::BASE);
        assert_eq!(net.status(true, net.now).state, PeerState::Degraded);
        assert_eq!(net.status(false, net.now).state, PeerState::Degraded);
    }
}

#[test]
fn a_psk_past_the_reject_age_is_reported_expired() {
    let mut net = Net::new(Options {
        epoch: Duration::from_secs(5),
        reject_after: Duration::from_secs(8),
        ..Options::default()
    });
    net.run_for(Duration::from_secs(3), |_| 1);
    let epoch = net.a.keys.last().unwrap().epoch;
    // Now the wire eats every keymix message.
    net.run_for(Duration::from_secs(10), |_| 0);
    assert_eq!(net.a.expired, vec![epoch]);
    assert_eq!(net.b.expired, vec![epoch]);
    let st = net.status(true, net.now);
    assert!(st.expired);
    assert_eq!(st.state, PeerState::Blocked);
    // The wire heals: a fresh epoch, state up again.
    net.run_for(Duration::from_secs(10), |_| 1);
    assert!(net.a.keys.last().unwrap().epoch > epoch);
    assert_eq!(net.status(true, net.now).state, PeerState::Up);
    assert!(!net.status(false, net.now).expired);
}

#[test]
fn under_load_an_init_is_answered_with_a_cookie_first() {
    let mut net = Net::new(Options::default());
    net.a.ep.set_under_load(Some(true));
    net.b.ep.set_under_load(Some(true));
    net.run_for(Duration::from_secs(5), |_| 1);
    assert_eq!(net.assert_keys_agree(), 1);
    let cookies = net.a.ep.counters().get(DropReason::CookieSent)
        + net.b.ep.counters().get(DropReason::CookieSent);
    assert!(cookies >= 1);
    // No slave-side KME work happened for a cookie-less Init: exactly one dec_keys, for
    // the exchange that completed. (Each side may have asked for an enc key: the cookie
    // only arms the next retransmission, so the other side may start its own initiation.)
    let (ea, da) = net.a.kme.calls();
    assert_eq!(da, 1);
    assert!(ea <= 2);
}

#[test]
fn garbage_is_counted_and_harmless() {
    let mut net = Net::new(Options::default());
    let src = "203.0.113.9:4444".parse().unwrap();
    let mut x = 0x1234_5678u32;
    for len in 0..3000usize {
        let mut g = vec![0u8; len % 1500];
        for b in g.iter_mut() {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *b = x as u8;
        }
        if let Some(first) = g.first_mut() {
            *first = 0x81 + (len % 4) as u8;
        }
        assert!(net.b.ep.handle_datagram(net.now, src, &g).is_err());
    }
    assert_eq!(net.b.ep.counters().dropped_total(), 3000);
    assert!(net.b.ep.poll_event().is_none());
    net.run_for(Duration::from_secs(3), |_| 1);
    assert_eq!(net.assert_keys_agree(), 1);
}

#[test]
fn huge_configured_durations_do_not_panic() {
    let opt = Options {
        epoch: Duration::from_secs(u64::MAX),
        reject_after: Duration::from_secs(u64::MAX),
        ..Options::default()
    };
    let mut net = Net::new(opt);
    net.run_for(Duration::from_secs(5), |_| 1);
    assert_eq!(net.assert_keys_agree(), 1);
    let st = net.status(true, net.now);
    assert_eq!(st.state, PeerState::Up);
}
