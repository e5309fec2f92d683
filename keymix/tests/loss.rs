//! Dropped, duplicated and reordered keymix messages still bring both sides to the same
//! epoch keys.

mod common;

use std::time::Duration;

use common::{Net, Options, Packet};

/// A tiny deterministic PRNG (xorshift) so failures reproduce.
struct Chaos(u64);
impl Chaos {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn percent(&mut self) -> u64 {
        self.next() % 100
    }
}

#[test]
fn lossy_duplicating_reordering_wire_still_converges() {
    for seed in 1..=8u64 {
        let mut net = Net::new(Options {
            epoch: Duration::from_secs(10),
            reject_after: Duration::from_secs(30),
            seed: seed as u8,
            ..Options::default()
        });
        let mut chaos = Chaos(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut held: Vec<Packet> = Vec::new();
        let end = net.now + Duration::from_secs(120);
        while net.now < end {
            net.pump_outputs();
            let mut batch = std::mem::take(&mut net.wire);
            // Reorder: release held packets late, in reverse.
            batch.extend(held.drain(..).rev());
            for p in batch {
                match chaos.percent() {
                    0..=29 => {} // 30% lost
                    30..=39 => {
                        let _ = net.deliver(&p); // 10% duplicated
                        let _ = net.deliver(&p);
                    }
                    40..=54 => held.push(p), // 15% delayed past later ones
                    _ => {
                        let _ = net.deliver(&p);
                    }
                }
            }
            net.now += Duration::from_millis(250);
            net.a.ep.handle_timeout(net.now);
            net.b.ep.handle_timeout(net.now);
        }
        // Let the last exchange finish on a clean wire.
        net.run_for(Duration::from_secs(15), |_| 1);
        let agreed = net.assert_keys_agree();
        assert!(agreed >= 5, "seed {seed}: only {agreed} epochs agreed");
        let (la, lb) = (net.a.keys.last().unwrap(), net.b.keys.last().unwrap());
        assert_eq!(la.epoch, lb.epoch, "seed {seed}");
        assert_eq!(*la.psk, *lb.psk, "seed {seed}");
    }
}

#[test]
fn a_lost_confirm_is_recovered_by_retransmission() {
    let mut net = Net::new(Options::default());
    let mut dropped = false;
    net.run_for(Duration::from_secs(10), |p| {
        if p.payload[0] == keymix::message::TYPE_CONFIRM && !dropped {
            dropped = true;
            0
        } else {
            1
        }
    });
    assert!(dropped);
    assert_eq!(net.a.keys.len(), 1);
    assert_eq!(net.b.keys.len(), 1);
    assert_eq!(net.assert_keys_agree(), 1);
}
