//! Named regression scenarios for the keymix-level findings of issue 9 (1, 2, 3, 4, 6;
//! 5 and 7 need a hub: scenarios_hub.rs). Each drives the simulated world by script and
//! keeps every invariant of the random simulation checked while it runs.

use std::time::Duration;

use keymix::message::{Init, TYPE_CONFIRM, TYPE_INIT};
use keymix::{DropReason, PeerState, PublicKey, QkdPolicy};

use super::script::config;
use super::world::{addr, Origin, Packet, World, A, B, ROGUE_ADDR};

/// The rogue's next datagram, sent from `src`.
pub(super) fn rogue_packet(w: &World, rogue: usize, src: std::net::SocketAddr) -> Option<Packet> {
    let r = &w.rogues[rogue];
    Some(Packet {
        src,
        dst: addr(1 - r.impersonates),
        payload: r.outbox.front()?.clone(),
        origin: Origin::Rogue {
            impersonates: r.impersonates,
        },
        not_before: w.now,
    })
}

/// Finding 1: B at epoch >= 6 refuses an epoch-1 (C_0) Init made with A's stolen static
/// key (no bootstrap PSK): no KME call, no endpoint move, no commit, and A-B keep rekeying.
#[test]
fn finding1_stolen_static_key_cannot_restart_the_chain() {
    let mut w = World::new(1, config(10, 15, QkdPolicy::Required, true));
    w.run_for(Duration::from_secs(62), |_| true);
    let epoch = w.agreed().expect("the pair agrees");
    assert!(epoch >= 6, "epoch {epoch}");
    let rogue = w.add_rogue(A, false);
    let dec_calls = w.kmes[B].calls().1;
    for src in [addr(A), ROGUE_ADDR.parse().unwrap()] {
        let p = rogue_packet(&w, rogue, src).expect("the rogue sent an Init");
        assert_eq!(Init::parse(&p.payload).map(|i| i.epoch).ok(), Some(1));
        let r = w.deliver(&p).expect("delivered to B");
        assert!(r.is_err(), "B accepted the forged bootstrap: {r:?}");
        assert_eq!(w.sides[B].peer_addr, Some(addr(A)), "B's endpoint moved");
    }
    assert_eq!(w.kmes[B].calls().1, dec_calls, "B asked its KME");
    assert!(w.sides[B].ep.counters().get(DropReason::ChainMismatch) >= 1);
    // The rogue keeps trying for a minute (its retransmissions and fresh Inits); the
    // real pair keeps its chain and never blocks.
    for _ in 0..60 {
        w.run_for(Duration::from_secs(1), |_| true);
        let now = w.now + Duration::from_secs(3);
        w.rogues[rogue].ep.handle_timeout(now);
        w.drain_rogue(rogue);
        while let Some(p) = rogue_packet(&w, rogue, addr(A)) {
            w.rogues[rogue].outbox.pop_front();
            assert!(matches!(w.deliver(&p), Some(Err(_))));
        }
        assert_ne!(w.status(B).state, PeerState::Blocked);
        assert_ne!(w.status(A).state, PeerState::Blocked);
    }
    assert!(w.agreed().expect("still agreeing") >= epoch + 5);
    assert_eq!(w.monitor.hijacks, 0);
    assert!(w.rogues[rogue].outbox.is_empty() || w.monitor.rogue_psks.is_empty());
}

/// Finding 2: every Confirm lost for 75 s with 40 s epochs; once they pass again both
/// sides agree on a fresh epoch within 75 s (the responder keeps its answered exchange).
#[test]
fn finding2_dropped_confirms_do_not_split_the_pair() {
    for a_prefers in [true, false] {
        let mut w = World::new(2, config(40, 60, QkdPolicy::Off, a_prefers));
        w.run_for(Duration::from_secs(3), |_| true);
        assert_eq!(w.agreed(), Some(1));
        w.run_for(Duration::from_secs(75), |p| p.payload[0] != TYPE_CONFIRM);
        let took = w.time_to_fresh_agreement(Duration::from_secs(75));
        assert!(
            took.is_some(),
            "no fresh common epoch 75 s after the outage"
        );
        assert!(w.agreed().unwrap() >= 2);
        let (a, b) = (w.status(A), w.status(B));
        assert_eq!((a.state, b.state), (PeerState::Up, PeerState::Up));
    }
}

/// A cookie reply that opens: the cookie key derives from B's public key and the AAD is
/// the mac1 of A's Init, both known to anyone who sees A's Init.
fn forged_cookie_reply(b_public: &[u8; 32], init: &Init, nonce: [u8; 24]) -> Vec<u8> {
    use chacha20poly1305::aead::{AeadInOut, KeyInit};
    use chacha20poly1305::{XChaCha20Poly1305, XNonce};
    let key = keymix::schedule::cookie_key(b_public);
    let cipher = XChaCha20Poly1305::new((&key).into());
    let mut body = [0x5au8; 32];
    let tag = cipher
        .encrypt_inout_detached(&XNonce::from(nonce), &init.mac1, (&mut body[..]).into())
        .expect("seal");
    let mut out = vec![keymix::message::TYPE_COOKIE, 1, 0, 0];
    out.extend(init.sender_index.to_le_bytes());
    out.extend(nonce);
    out.extend(body);
    out.extend(tag.as_slice());
    out
}

/// Finding 3: forged cookie replies (valid ones and garbage) make A send nothing at once;
/// bytes A sends towards B per byte received from the forger stay <= 1.
#[test]
fn finding3_forged_cookie_replies_do_not_amplify() {
    let mut w = World::new(3, config(40, 60, QkdPolicy::Off, true));
    // A's Init never reaches B: A retransmits on its timer only.
    w.run_for(Duration::from_millis(1500), |_| false);
    let init = w
        .history
        .iter()
        .rev()
        .find(|p| p.payload[0] == TYPE_INIT && p.origin == Origin::Honest(A))
        .and_then(|p| Init::parse(&p.payload).ok())
        .expect("A sent an Init");
    let b_public = w.sides[B].public;
    let (mut forged, sent_before) = (0u64, w.bytes_sent[A]);
    for i in 0..500u32 {
        let mut nonce = [0u8; 24];
        nonce[..4].copy_from_slice(&i.to_le_bytes());
        let mut payload = forged_cookie_reply(&b_public, &init, nonce);
        if i % 2 == 1 {
            payload[40] ^= 1; // does not open
        }
        forged += payload.len() as u64;
        let p = Packet {
            src: ROGUE_ADDR.parse().unwrap(),
            dst: addr(A),
            payload,
            origin: Origin::Forged,
            not_before: w.now,
        };
        let before = w.bytes_sent[A];
        let r = w.deliver(&p).expect("delivered to A");
        assert!(
            !matches!(r, Ok(Some(_))),
            "a cookie reply authenticated: {r:?}"
        );
        assert_eq!(w.bytes_sent[A], before, "A answered a cookie reply at once");
        w.run_for(Duration::from_millis(20), |_| false);
    }
    let sent = w.bytes_sent[A] - sent_before;
    assert!(
        sent <= forged,
        "A sent {sent} bytes towards B for {forged} forged bytes"
    );
}

/// Finding 4: a recorded epoch-1 Init replayed at its responder after that responder
/// restarted with its state: no KME call, no endpoint move (Err), no state change.
#[test]
fn finding4_replay_after_restart_with_state_changes_nothing() {
    let mut w = World::new(4, config(10, 15, QkdPolicy::Required, true));
    w.run_for(Duration::from_secs(25), |_| true);
    assert!(w.agreed().expect("agreed") >= 2);
    let mut first = w
        .history
        .iter()
        .find(|p| p.payload[0] == TYPE_INIT)
        .cloned()
        .expect("an Init was recorded");
    assert_eq!(Init::parse(&first.payload).map(|i| i.epoch).ok(), Some(1));
    let y = w.side_at(first.dst).expect("to an honest side");
    w.restart(y, true);
    w.run_for(Duration::from_millis(10), |_| true);
    let saved = w.sides[y].saved.as_ref().map(|s| s.to_bytes().to_vec());
    let (dec_calls, sent, peer_addr) = (w.kmes[y].calls().1, w.bytes_sent[y], w.sides[y].peer_addr);
    first.src = ROGUE_ADDR.parse().unwrap();
    first.origin = Origin::Forged; // no KME request may follow it
    let r = w.deliver(&first).expect("delivered");
    assert!(r.is_err(), "the replay was accepted: {r:?}");
    assert_eq!(w.kmes[y].calls().1, dec_calls, "KME asked for a used key");
    assert_eq!(w.sides[y].peer_addr, peer_addr, "endpoint moved");
    assert_eq!(
        w.sides[y].saved.as_ref().map(|s| s.to_bytes().to_vec()),
        saved
    );
    assert_eq!(w.bytes_sent[y], sent, "the replay was answered");
    assert_eq!(w.status(y).reason, None);
}

/// Finding 6: reject_after = u64::MAX seconds never panics; a low-order peer key is
/// refused by add_peer.
#[test]
fn finding6_huge_reject_after_and_low_order_keys() {
    let mut cfg = config(10, 15, QkdPolicy::Off, true);
    cfg.reject_after = Duration::from_secs(u64::MAX);
    let mut w = World::new(6, cfg);
    w.run_for(Duration::from_secs(35), |_| true);
    assert!(w.agreed().expect("agreed") >= 3);
    assert!(!w.status(A).expired);

    let mut ep = keymix::Endpoint::new(
        keymix::EndpointConfig::new(keymix::StaticSecret::from([7u8; 32])),
        w.now,
        std::time::SystemTime::UNIX_EPOCH,
        Box::new(keymix::rng::SeededRng::new([1; 32])),
    );
    let mut one = [0u8; 32];
    one[0] = 1;
    for low in [[0u8; 32], one] {
        let pc = keymix::PeerConfig::new(PublicKey::from(low));
        assert_eq!(
            ep.add_peer(pc, w.now).err(),
            Some(keymix::PeerError::LowOrderKey)
        );
    }
}
