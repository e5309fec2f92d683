//! Named scenarios for the keymix findings of issue 19: after bootstrap, a static private key
//! (or a datagram that needs only a public key) steers nothing. Each drives the simulated
//! world by script with every invariant of the random simulation checked while it runs.

use std::time::Duration;

use keymix::message::{Init, TYPE_INIT};
use keymix::{DropReason, PeerState, QkdPolicy};

use super::adversary::fix_mac1;
use super::script::config;
use super::world::{addr, Origin, Packet, World, A, B, ROGUE_ADDR};

/// Runs for up to `d`, losing every Init A sends, until A drops one of B's Inits as a
/// simultaneous initiation (A is the preferred initiator and its own Init is young).
/// Returns that Init of B's.
pub(super) fn lose_a_inits_until_tie(w: &mut World, d: Duration) -> Option<Packet> {
    let end = w.now + d;
    while w.now < end {
        w.step += 1;
        while let Some(p) = w.in_flight.pop_front() {
            if p.src == addr(A) && p.payload[0] == TYPE_INIT {
                continue;
            }
            let r = w.deliver(&p);
            w.assert_clean();
            if r == Some(Err(DropReason::SimultaneousInitiation)) {
                return Some(p);
            }
        }
        let t = w.next_deadline().map_or(end, |t| t.min(end));
        w.advance_to(t.max(w.now + Duration::from_millis(1)).min(end));
        w.assert_clean();
    }
    None
}

/// What a side shows outside: its state file, where it sends, what it sent.
pub(super) fn footprint(
    w: &World,
    x: usize,
) -> (Option<Vec<u8>>, Option<std::net::SocketAddr>, u64) {
    (
        w.sides[x].saved.as_ref().map(|s| s.to_bytes().to_vec()),
        w.sides[x].peer_addr,
        w.bytes_sent[x],
    )
}

pub(super) fn from_rogue(mut p: Packet) -> Packet {
    p.src = ROGUE_ADDR.parse().unwrap_or(p.src);
    p.origin = Origin::Forged;
    p
}

fn says_reset(w: &World, x: usize) -> bool {
    let st = w.status(x);
    let texts = [st.reason.clone(), st.hint.clone()];
    texts.iter().flatten().any(|t| t.contains("reset"))
}

/// Finding 3: B's Init that lost a tie at A passed authentication but was not recorded.
/// Once the epoch completed through A's Init, the same bytes replayed from anywhere change
/// nothing at A: no endpoint move, no state written, nothing sent.
#[test]
fn issue19_finding3_tie_lost_init_replayed_later_changes_nothing() {
    for seed in [193u64, 1193, 2193] {
        let mut w = World::new(seed, config(10, 20, QkdPolicy::Off, true));
        w.run_for(Duration::from_secs(3), |_| true);
        assert_eq!(w.agreed(), Some(1));
        let tied = lose_a_inits_until_tie(&mut w, Duration::from_secs(20))
            .expect("B's overdue Init crossed A's young one");
        let epoch = Init::parse(&tied.payload).map(|i| i.epoch).ok();
        assert_eq!(epoch, Some(2));
        w.run_for(Duration::from_secs(5), |_| true);
        assert_eq!(w.agreed(), Some(2), "A's exchange for epoch 2 completed");
        let before = footprint(&w, A);
        let r = w.deliver(&from_rogue(tied.clone()));
        assert!(
            matches!(r, Some(Err(_))),
            "the tie-lost Init was accepted later: {r:?}"
        );
        w.assert_clean();
        assert_eq!(footprint(&w, A), before, "the replay changed A");
        // Also after A restarts with its state file.
        w.restart(A, true);
        let before = footprint(&w, A);
        let r = w.deliver(&from_rogue(tied));
        assert!(matches!(r, Some(Err(_))), "accepted after a restart: {r:?}");
        w.assert_clean();
        assert_eq!(
            footprint(&w, A),
            before,
            "the replay changed A after a restart"
        );
    }
}

/// An Init that claims to come from `from` (its static public key), with a fresh
/// timestamp, `epoch`, a valid mac1 for the receiver and a garbage auth tag: what anyone
/// who knows both public keys can send.
fn mac1_only_init(w: &World, from: usize, epoch: u64) -> Packet {
    let template = w
        .history
        .iter()
        .find(|p| p.payload[0] == TYPE_INIT)
        .expect("an Init was recorded");
    let mut bytes = template.payload.clone();
    bytes[8..16].copy_from_slice(&epoch.to_le_bytes());
    let ts = w.wall(from, 0).duration_since(std::time::UNIX_EPOCH);
    let ts = ts.map_or(0, |d| d.as_nanos() as u64) + w.step;
    bytes[16..24].copy_from_slice(&ts.to_le_bytes());
    bytes[24..56].copy_from_slice(&w.sides[from].public);
    let auth = Init::auth_offset(&bytes);
    bytes[auth] ^= 0x5a;
    let to = 1 - from;
    fix_mac1(&mut bytes, &w.sides[to].public);
    Packet {
        src: ROGUE_ADDR.parse().unwrap_or(addr(from)),
        dst: addr(to),
        payload: bytes,
        origin: Origin::Forged,
        not_before: w.now,
    }
}

/// Finding 4: datagrams with only a valid mac1 (any epoch, bad auth tag) reach A while it
/// is not up (just restarted with a good state file). Status never turns `blocked` on them
/// and never advises a reset; they are counted as unverified.
#[test]
fn issue19_finding4_mac1_only_datagrams_never_advise_a_reset() {
    let mut w = World::new(194, config(10, 20, QkdPolicy::Off, true));
    w.run_for(Duration::from_secs(25), |_| true);
    let chain = w.agreed().expect("agreed");
    assert!(chain >= 2);
    w.restart(A, true);
    assert_ne!(
        w.status(A).state,
        PeerState::Up,
        "A is not up right after a restart"
    );
    for epoch in [1, chain, chain + 1, chain + 2, chain + 7, 1 << 40] {
        let p = mac1_only_init(&w, B, epoch);
        let r = w.deliver(&p);
        assert!(matches!(r, Some(Err(_))), "forged Init accepted: {r:?}");
        w.assert_clean();
        let st = w.status(A);
        assert_ne!(st.state, PeerState::Blocked, "epoch {epoch}: {st:?}");
        assert!(
            !says_reset(&w, A),
            "epoch {epoch}: status advises a reset: {st:?}"
        );
    }
    let st = w.status(A);
    assert!(st.unverified >= 6, "forged Inits not counted: {st:?}");
    // The pair still agrees on a fresh epoch.
    assert!(w.time_to_fresh_agreement(Duration::from_secs(20)).is_some());
}

/// Finding 5 (a): a rogue holding A's static key (no chain, no bootstrap PSK) offers a
/// bootstrap to B, which holds a chain: refused, and B's status names no reset, whether or
/// not B is up.
#[test]
fn issue19_finding5_refused_bootstrap_names_no_reset() {
    let mut w = World::new(195, config(10, 20, QkdPolicy::Off, true));
    w.run_for(Duration::from_secs(25), |_| true);
    assert!(w.agreed().expect("agreed") >= 2);
    let rogue = w.add_rogue(A, false);
    let payload = w.rogues[rogue]
        .outbox
        .pop_front()
        .expect("the rogue's Init");
    let p = Packet {
        src: ROGUE_ADDR.parse().unwrap_or(addr(A)),
        dst: addr(B),
        payload,
        origin: Origin::Rogue { impersonates: A },
        not_before: w.now,
    };
    let r = w.deliver(&p);
    assert_eq!(r, Some(Err(DropReason::ChainMismatch)));
    w.assert_clean();
    assert!(!says_reset(&w, B), "{:?}", w.status(B));
    // Make B not up: everything lost until its key expires.
    w.run_for(Duration::from_secs(25), |_| false);
    let st = w.status(B);
    assert_eq!(st.state, PeerState::Blocked, "expired");
    assert!(!says_reset(&w, B), "status advises a reset: {st:?}");
    assert!(
        st.unverified >= 1,
        "the refused bootstrap is not counted: {st:?}"
    );
}

/// Finding 5 (b): B's genuine bootstrap Init loses the first-contact tie at A; replayed
/// within 600 s, after A committed epoch 1, it is refused without any note that advises a
/// reset, and it changes nothing.
#[test]
fn issue19_finding5_replayed_bootstrap_tie_loser_names_no_reset() {
    let mut w = World::new(1195, config(10, 20, QkdPolicy::Off, true));
    let tied = lose_a_inits_until_tie(&mut w, Duration::from_secs(5))
        .expect("B's bootstrap Init crossed A's young one");
    assert_eq!(Init::parse(&tied.payload).map(|i| i.epoch).ok(), Some(1));
    w.run_for(Duration::from_secs(3), |_| true);
    assert_eq!(w.agreed(), Some(1));
    let before = footprint(&w, A);
    let r = w.deliver(&from_rogue(tied));
    assert!(matches!(r, Some(Err(_))), "accepted: {r:?}");
    w.assert_clean();
    assert_eq!(footprint(&w, A), before, "the replay changed A");
    w.run_for(Duration::from_secs(25), |_| false);
    assert!(
        !says_reset(&w, A),
        "status advises a reset: {:?}",
        w.status(A)
    );
}

/// Finding 6: an Init refused by policy (B requires QKD, A's Init has none) changes
/// nothing at B: no state written, nothing sent, no endpoint move.
#[test]
fn issue19_finding6_policy_refusal_changes_nothing() {
    let mut w = World::new(196, config(10, 20, QkdPolicy::Required, true));
    w.run_for(Duration::from_secs(25), |_| true);
    assert!(w.agreed().expect("agreed") >= 2);
    // A's operator reloads QKD off; B still requires it.
    let mut pc = w.peer_config(A, None);
    pc.qkd = QkdPolicy::Off;
    let (peer, now) = (w.sides[A].peer, w.now);
    w.sides[A].ep.update_peer(peer, pc, now);
    let end = w.now + Duration::from_secs(30);
    let mut refused = 0;
    while w.now < end {
        w.step += 1;
        while let Some(p) = w.in_flight.pop_front() {
            let policy_init = p.src == addr(A) && p.payload[0] == TYPE_INIT;
            let before = footprint(&w, B);
            let r = w.deliver(&p);
            w.assert_clean();
            if policy_init && r == Some(Err(DropReason::Policy)) {
                refused += 1;
                assert_eq!(footprint(&w, B), before, "a refused Init changed B");
            }
        }
        let t = w.next_deadline().map_or(end, |t| t.min(end));
        w.advance_to(t.max(w.now + Duration::from_millis(1)).min(end));
        w.assert_clean();
    }
    assert!(refused > 0, "no Init was refused by policy");
}

/// Finding 6: a bootstrap PSK replaced by reload on both sides, in either order, never
/// splits the pair: both PSKs are accepted during the transition.
#[test]
fn issue19_finding6_bootstrap_psk_rotation_by_reload_in_either_order() {
    for first in [A, B] {
        let mut cfg = config(10, 20, QkdPolicy::Off, true);
        cfg.bootstrap_psk = Some([0x31; 32]);
        let mut w = World::new(1960 + first as u64, cfg);
        w.run_for(Duration::from_secs(25), |_| true);
        assert!(w.agreed().expect("agreed") >= 2);
        w.reload_psk(first, [0x32; 32]);
        for _ in 0..3 {
            let took = w.time_to_fresh_agreement(Duration::from_secs(20));
            assert!(took.is_some(), "split after {} reloaded", first);
            assert_eq!(w.status(A).state, PeerState::Up);
            assert_eq!(w.status(B).state, PeerState::Up);
        }
        w.reload_psk(1 - first, [0x32; 32]);
        w.cfg.bootstrap_psk = Some([0x32; 32]);
        for _ in 0..3 {
            assert!(w.time_to_fresh_agreement(Duration::from_secs(20)).is_some());
        }
        // The new PSK is the one that counts now: a side that lost its state
        // re-bootstraps with it.
        w.restart(1 - first, false);
        assert!(w.time_to_fresh_agreement(Duration::from_secs(30)).is_some());
        assert_eq!(
            w.status(1 - first).auth,
            Some(keymix::AuthBasis::BootstrapPsk)
        );
    }
}

/// Finding 6: the wall clock is an input, not read once: B starts 700 s behind (before NTP
/// sync), its clock is stepped right while it runs, and the first contact then succeeds
/// within the 600 s bootstrap window.
#[test]
fn issue19_finding6_wall_clock_step_after_start_is_honoured() {
    let mut w = World::new(1966, config(10, 20, QkdPolicy::Off, true));
    w.restart_with_clock(B, -700);
    w.run_for(Duration::from_secs(5), |_| true);
    assert_eq!(w.agreed(), None, "700 s apart: no bootstrap");
    w.step_clock(B, 0);
    assert!(
        w.time_to_fresh_agreement(Duration::from_secs(20)).is_some(),
        "the clock step was not honoured"
    );
}

/// Finding 6, on time: whenever in an epoch one side reloads a new PSK, the next epoch
/// commits within the epoch plus the 3 s switch to the other PSK, well before the key's
/// reject age. The switch falls due on its own timer, not at the next retransmission,
/// which comes up to 4 s later: the e2e t_static_key_psk_rotation lost its key that way.
#[test]
fn issue19_finding6_psk_reload_mid_epoch_rekeys_before_the_key_expires() {
    for a_prefers in [true, false] {
        for first in [A, B] {
            for offset_ms in (0..3600).step_by(300) {
                let cfg = config(4, 10, QkdPolicy::Off, a_prefers);
                let mut cfg = super::script::with_version(cfg, keymix::Version::V2);
                cfg.bootstrap_psk = Some([0x31; 32]);
                let mut w = World::new(1970 + offset_ms, cfg);
                w.run_for(Duration::from_secs(20), |_| true);
                let wait = w.last_agreed_at() + Duration::from_millis(offset_ms) - w.now;
                w.run_for(wait, |_| true);
                // The epoch timer has jitter: the next epoch may have come meanwhile.
                let last = w.last_agreed_at();
                w.reload_psk(first, [0x32; 32]);
                let took = w.time_to_fresh_agreement(Duration::from_secs(20));
                let after_last = took.map(|_| w.now - last);
                assert!(
                    after_last.is_some_and(|d| d < Duration::from_secs(8)),
                    "{} reloaded {offset_ms} ms into the epoch (preferred initiator: {}): \
                     the next epoch came {after_last:?} after the last one (key rejected at 10 s)",
                    super::world::name(first),
                    super::world::name(if a_prefers { A } else { B }),
                );
            }
        }
    }
}
