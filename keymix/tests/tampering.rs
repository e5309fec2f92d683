//! Tampering, replay and downgrade: a flipped byte anywhere, a replayed message, or QKD
//! key IDs stripped in transit change nothing and never reach the KME.

mod common;

use std::time::Duration;

use common::{Net, Options, Packet};
use keymix::message::{Init, Resp, TYPE_CONFIRM, TYPE_INIT, TYPE_RESP};
use keymix::{DropReason, SourceMask, Version};

fn first_of_type(net: &Net, ty: u8) -> Packet {
    net.recorded
        .iter()
        .find(|p| p.payload.first() == Some(&ty))
        .cloned()
        .unwrap_or_else(|| panic!("no message of type {ty:#x} recorded"))
}

/// Deliver every single-byte corruption of `p` (each bit pattern 0x01 and 0x80 at every
/// offset) and check that none is accepted, none produces an event or a datagram to the
/// peer, and the receiver's KME is never asked.
fn assert_every_flip_rejected(net: &mut Net, p: &Packet) {
    let receiver_is_a = !p.from_a;
    let kme_before = net.side(receiver_is_a).kme.calls();
    let keys_before = net.side(receiver_is_a).keys.len();
    for i in 0..p.payload.len() {
        for bit in [0x01u8, 0x80] {
            let mut bad = p.clone();
            bad.payload[i] ^= bit;
            let r = net.deliver(&bad);
            assert!(
                r.is_err(),
                "flip {bit:#x} at byte {i} of type {:#x} accepted",
                p.payload[0]
            );
            let side = net.side(receiver_is_a);
            assert!(
                side.ep.poll_event().is_none(),
                "flip at {i} produced an event"
            );
            while let Some(t) = side.ep.poll_transmit() {
                // Only a cookie reply (to the source address) may answer a bad mac2.
                assert!(
                    matches!(t.destination, keymix::Destination::Addr(_)),
                    "flip at {i} produced a datagram to the peer"
                );
            }
        }
    }
    assert_eq!(net.side(receiver_is_a).kme.calls(), kme_before);
    assert_eq!(net.side(receiver_is_a).keys.len(), keys_before);
}

#[test]
fn a_flipped_byte_anywhere_in_any_message_is_rejected_without_state_change() {
    for v in [Version::V1, Version::V2] {
        every_flip_rejected(v);
    }
}

fn every_flip_rejected(version: Version) {
    let mut net = Net::new(Options::default().only(version));
    // Init: A (or B) initiates; hold everything.
    net.run_for(Duration::from_millis(10), |_| 0);
    net.pump_outputs();
    let init = first_of_type(&net, TYPE_INIT);
    net.wire.clear();
    assert_every_flip_rejected(&mut net, &init);
    // The genuine Init still works afterwards: nothing changed.
    net.deliver(&init).expect("genuine init accepted");
    net.pump_outputs();
    let resp = first_of_type(&net, TYPE_RESP);
    net.wire.clear();
    assert_every_flip_rejected(&mut net, &resp);
    net.deliver(&resp).expect("genuine resp accepted");
    net.pump_outputs();
    let confirm = first_of_type(&net, TYPE_CONFIRM);
    net.wire.clear();
    assert_every_flip_rejected(&mut net, &confirm);
    net.deliver(&confirm).expect("genuine confirm accepted");
    net.pump_outputs();
    assert_eq!(net.a.keys.len(), 1);
    assert_eq!(net.b.keys.len(), 1);
    assert_eq!(net.assert_keys_agree(), 1);
}

#[test]
fn replaying_any_earlier_message_changes_nothing() {
    let mut net = Net::new(Options {
        epoch: Duration::from_secs(5),
        reject_after: Duration::from_secs(8),
        ..Options::default()
    });
    net.run_for(Duration::from_secs(12), |_| 1);
    let (ka, kb) = (net.a.keys.len(), net.b.keys.len());
    assert!(ka >= 2);
    let kme = (net.a.kme.calls(), net.b.kme.calls());
    let old: Vec<Packet> = net.recorded.clone();
    for p in &old {
        let _ = net.deliver(p);
        net.wire.clear();
        net.pump_outputs();
        net.wire.clear();
    }
    assert_eq!((net.a.keys.len(), net.b.keys.len()), (ka, kb));
    assert_eq!((net.a.kme.calls(), net.b.kme.calls()), kme);
    let drops = |n: &Net, r| n.a.ep.counters().get(r) + n.b.ep.counters().get(r);
    assert!(drops(&net, DropReason::Replay) + drops(&net, DropReason::StaleEpoch) > 0);
    // And the pair keeps working.
    net.run_for(Duration::from_secs(10), |_| 1);
    assert!(net.a.keys.len() > ka);
    net.assert_keys_agree();
}

/// Version 1 carries the key IDs and masks in clear (version 2 seals them: a change breaks
/// the AEAD, which the flip test covers).
#[test]
fn stripping_qkd_key_ids_in_transit_is_detected() {
    let mut net = Net::new(
        Options {
            qkd_b: keymix::QkdPolicy::Preferred,
            qkd_a: keymix::QkdPolicy::Preferred,
            ..Options::default()
        }
        .only(Version::V1),
    );
    // A man in the middle re-encodes every Init without key IDs and with the base mask,
    // and every Resp with the base mask, and recomputes mac1 (it knows the public keys):
    // only the auth tag can catch it.
    let (pa, pb) = (net.a.public, net.b.public);
    let strip = |p: &Packet| -> Packet {
        let mut p = p.clone();
        let receiver = if p.from_a { pb } else { pa };
        let mac1_key = keymix::schedule::mac1_key(&receiver);
        match p.payload.first() {
            Some(&TYPE_INIT) => {
                let mut m = Init::parse(&p.payload).unwrap();
                m.key_ids.clear();
                m.proposed = SourceMask::BASE;
                let b = m.to_bytes();
                m.mac1 = keymix::mac::tag(&mac1_key, &b[..Init::mac1_offset(&b)]);
                p.payload = m.to_bytes();
            }
            Some(&TYPE_RESP) => {
                let mut m = Resp::parse(&p.payload).unwrap();
                m.sources = SourceMask::BASE;
                let b = m.to_bytes();
                m.mac1 = keymix::mac::tag(&mac1_key, &b[..Resp::MAC1_OFFSET]);
                p.payload = m.to_bytes();
            }
            _ => {}
        }
        p
    };
    for _ in 0..20 {
        net.pump_outputs();
        let batch = std::mem::take(&mut net.wire);
        for p in batch {
            let _ = net.deliver(&strip(&p));
        }
        net.now += Duration::from_secs(1);
        net.a.ep.handle_timeout(net.now);
        net.b.ep.handle_timeout(net.now);
    }
    assert!(net.a.keys.is_empty() && net.b.keys.is_empty());
    let drops = |n: &Net, r| n.a.ep.counters().get(r) + n.b.ep.counters().get(r);
    assert!(
        drops(&net, DropReason::BadAuth) > 0,
        "stripped messages must fail their auth tags"
    );
    assert_eq!(drops(&net, DropReason::BadMac1), 0);
    // No KME was asked for a stripped (unauthenticated) Init.
    assert_eq!(net.a.kme.calls().1 + net.b.kme.calls().1, 0);
}
