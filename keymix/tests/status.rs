//! What status says (issue 21): a peer whose rekey is overdue is `stale` before its key
//! expires, with how long is left; a peer that re-bootstrapped over this side's chain
//! (it lost its state) is a warning here.

mod common;

use std::time::Duration;

use common::{Net, Options};
use keymix::PeerState;

fn opts() -> Options {
    Options {
        epoch: Duration::from_secs(20),
        reject_after: Duration::from_secs(30),
        ..Options::default()
    }
}

#[test]
fn an_overdue_rekey_is_stale_before_the_key_expires() {
    let mut net = Net::new(opts());
    net.run_for(Duration::from_secs(3), |_| 1);
    assert_eq!(net.assert_keys_agree(), 1);
    let established = net.a.keys[0].established;
    // The peer is gone: nothing gets through any more.
    let mut saw = Vec::new();
    while net.now < established + Duration::from_secs(31) {
        net.run_for(Duration::from_millis(500), |_| 0);
        let st = net.status(true, net.now);
        let age = net.now - established;
        saw.push((age.as_secs(), st.state));
        match st.state {
            PeerState::Stale => {
                let reason = st.reason.unwrap_or_default();
                assert!(reason.contains("rekey overdue"), "{reason}");
                assert!(reason.contains("expires in"), "{reason}");
                assert!(age >= Duration::from_secs(25), "{age:?}");
            }
            PeerState::Up => assert!(age < Duration::from_secs(25), "{age:?}"),
            PeerState::Blocked => assert!(age >= Duration::from_secs(30), "{age:?}"),
            other => panic!("{other:?} at {age:?}"),
        }
    }
    assert!(saw.iter().any(|(_, s)| *s == PeerState::Stale), "{saw:?}");
    assert_eq!(saw.last().map(|(_, s)| *s), Some(PeerState::Blocked));
}

#[test]
fn a_peer_that_rebootstrapped_is_a_warning() {
    let opt = Options {
        bootstrap_psk: Some([7; 32]),
        ..opts()
    };
    let mut net = Net::new(opt.clone());
    net.run_for(Duration::from_secs(45), |_| 1);
    assert!(net.status(false, net.now).warning.is_none());
    net.restart(true, false, &opt);
    net.run_for(Duration::from_secs(10), |_| 1);
    let st = net.status(false, net.now);
    let warning = st.warning.unwrap_or_default();
    assert!(warning.contains("re-bootstrapped"), "{warning}");
    assert_eq!(st.state, PeerState::Up);
}
