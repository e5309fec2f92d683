//! The RNDL audit on a simulated capture: only breaking all three sources recovers an
//! epoch, and then every epoch; without QKD, X25519 + ML-KEM suffice.

mod common;

use std::time::Duration;

use common::{Net, Options};
use keymix::audit::{analyse, Broken, Datagram};
use keymix::keylog::KeyLogEntry;
use keymix::QkdPolicy;

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
        let r = analyse(&cap, &log, Broken::parse(list).unwrap(), None);
        assert!(r.epochs.len() >= 4, "{list}: {:?}", r.epochs);
        assert_eq!(r.epochs.len(), net.a.keys.len());
        let all_recovered = r.epochs.iter().all(|e| e.recovered);
        let none_recovered = r.epochs.iter().all(|e| !e.recovered);
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
    let r = analyse(&cap, &log, Broken::parse("x25519,mlkem").unwrap(), None);
    assert!(!r.epochs.is_empty() && r.epochs.iter().all(|e| e.recovered));
    let r = analyse(&cap, &log, Broken::parse("x25519").unwrap(), None);
    assert!(r.epochs.iter().all(|e| !e.recovered));
}

#[test]
fn bad_source_names_are_errors() {
    assert!(Broken::parse("x25519,rsa").is_err());
    assert_eq!(
        Broken::parse("all").unwrap().names(),
        ["x25519", "mlkem", "qkd"]
    );
}
