//! The status reports how long the last exchange this side initiated took (for the
//! metrics' histogram): the initiator has it, the responder does not.

mod common;

use std::time::Duration;

use common::{Net, Options};
use keymix::QkdPolicy;

#[test]
fn initiator_reports_its_exchange_duration() {
    let mut net = Net::new(Options {
        qkd_a: QkdPolicy::Off,
        qkd_b: QkdPolicy::Off,
        ..Options::default()
    });
    let a0 = net.status(true, net.now).last_exchange;
    assert!(a0.is_none(), "nothing before the first exchange");
    net.run_for(Duration::from_secs(5), |_| 1);
    assert_eq!(net.assert_keys_agree(), 1);
    let a = net.status(true, net.now).last_exchange;
    let b = net.status(false, net.now).last_exchange;
    assert!(
        a.is_some() != b.is_some(),
        "exactly one side initiated: {a:?} {b:?}"
    );
    let took = a.or(b).unwrap_or_default();
    assert!(took <= Duration::from_secs(5), "{took:?}");
}
