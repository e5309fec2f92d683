//! Named scenarios for protocol version 2 (issue 20): a stolen static key still changes
//! nothing after bootstrap, a version-1 message for a pair that has spoken version 2 is a
//! downgrade that is counted and never believed, and a rolling upgrade from version 1
//! loses nothing. Every invariant of the random simulation is checked while they run.

use std::time::Duration;

use keymix::message::TYPE_INIT;
use keymix::{DropReason, PeerState, QkdPolicy, Version};

use super::scenarios::rogue_packet;
use super::scenarios_static_key::footprint;
use super::script::{config, with_version};
use super::world::{addr, Origin, Packet, World, A, B, ROGUE_ADDR};

/// The rogue's next datagram, sent from the rogue's own address.
fn rogue_init(w: &World, rogue: usize) -> Option<Packet> {
    let r = &w.rogues[rogue];
    rogue_packet(w, rogue, ROGUE_ADDR.parse().unwrap_or(addr(r.impersonates)))
}

/// After bootstrap (version 2, pinned), a rogue holding A's static key and no bootstrap
/// PSK sends B bootstrap Inits in version 2 (the DH path) and in version 1: B refuses
/// both, writes nothing, sends nothing, keeps A's endpoint; the version-1 one counts as a
/// downgrade.
#[test]
fn v2_stolen_static_key_neither_version_gets_in() {
    for seed in [31u64, 131] {
        let mut w = World::new(
            seed,
            with_version(config(10, 20, QkdPolicy::Off, true), Version::V2),
        );
        w.run_for(Duration::from_secs(25), |_| true);
        assert!(w.agreed() >= Some(2));
        assert_eq!(w.status(B).pinned_version, Some(Version::V2));
        assert_eq!(w.status(B).version, Some(Version::V2));
        for rogue_version in [Version::V2, Version::V1] {
            w.cfg.versions[A] = (rogue_version, rogue_version);
            let rogue = w.add_rogue(A, false);
            let p = rogue_init(&w, rogue).expect("the rogue's Init");
            assert_eq!(p.payload[1], rogue_version.byte());
            let before = footprint(&w, B);
            let downgrades = w.sides[B].ep.counters().get(DropReason::Downgrade);
            let r = w.deliver(&p).expect("delivered");
            assert!(r.is_err(), "{rogue_version}: {r:?}");
            w.assert_clean();
            assert_eq!(footprint(&w, B), before, "{rogue_version}: B changed");
            assert_eq!(w.sides[B].peer_addr, Some(addr(A)));
            if rogue_version == Version::V1 {
                assert_eq!(r, Err(DropReason::Downgrade));
                let after = w.sides[B].ep.counters().get(DropReason::Downgrade);
                assert_eq!(after, downgrades + 1);
                let st = w.status(B);
                assert!(st.unverified > 0 && st.hint.is_none(), "{st:?}");
            }
        }
        w.cfg.versions[A] = (Version::V1, Version::V2);
        w.run_for(Duration::from_secs(20), |_| true);
        assert!(w.agreed() >= Some(3));
        assert_eq!(w.monitor.hijacks, 0);
    }
}

/// A speaks version 2, B only version 1 (not upgraded yet): they talk version 1 (A's
/// version-2 Init goes unanswered for 3 s, then a version-1 one). B is upgraded and
/// restarted with its state file: version 2 from the next exchange, pinned on both sides.
/// Then every version-1 Init recorded before the upgrade, replayed to either side, is a
/// downgrade that changes nothing.
#[test]
fn rolling_upgrade_then_no_way_back() {
    for seed in [41u64, 141] {
        let mut cfg = with_version(config(10, 20, QkdPolicy::Off, true), Version::V2);
        cfg.versions[B] = (Version::V1, Version::V1);
        let mut w = World::new(seed, cfg);
        w.run_for(Duration::from_secs(25), |_| true);
        let before = w.agreed().expect("A and B talk version 1");
        assert_eq!(w.status(A).version, Some(Version::V1));
        assert_eq!(w.status(A).pinned_version, None);
        let v1_inits: Vec<Packet> = w
            .history
            .iter()
            .filter(|p| p.payload[0] == TYPE_INIT && p.payload[1] == 1)
            .cloned()
            .collect();
        assert!(!v1_inits.is_empty());
        w.cfg.versions[B] = (Version::V1, Version::V2);
        w.restart(B, true);
        let took = w
            .time_to_fresh_agreement(Duration::from_secs(30))
            .expect("a fresh epoch after the upgrade");
        assert!(w.agreed() > Some(before));
        for x in [A, B] {
            let st = w.status(x);
            assert_eq!(st.version, Some(Version::V2), "{st:?} after {took:?}");
            assert_eq!(st.pinned_version, Some(Version::V2));
            assert_ne!(st.state, PeerState::Blocked);
        }
        for mut p in v1_inits {
            p.src = ROGUE_ADDR.parse().unwrap_or(p.src);
            p.origin = Origin::Forged;
            let to = if p.dst == addr(A) { A } else { B };
            let before = footprint(&w, to);
            let r = w.deliver(&p).expect("delivered");
            assert_eq!(r, Err(DropReason::Downgrade));
            w.assert_clean();
            assert_eq!(footprint(&w, to), before);
        }
    }
}

/// The campaign's crossing fallback bootstraps (C2) in version 2: the DH path on one side
/// and the pseudonyms on the other must not make both yield.
#[test]
fn v2_crossing_fallback_bootstraps_complete() {
    super::scenarios_campaign::crossing_fallback_bootstraps_in(Version::V2);
}

/// A version-2 Init to a peer that speaks only version 1 is replaced by a version-1 one
/// 3 s after it first went out, not at the retransmission after that (up to 4 s later).
/// Only A knows where B is, so only A's Inits can start the exchange.
#[test]
fn v2_init_to_a_v1_peer_falls_back_on_time() {
    for seed in 0..20 {
        let mut cfg = config(10, 20, QkdPolicy::Off, true);
        cfg.versions = [(Version::V1, Version::V2), (Version::V1, Version::V1)];
        cfg.endpoint_known = [true, false];
        let mut w = World::new(1980 + seed, cfg);
        let took = w.time_to_fresh_agreement(Duration::from_secs(20));
        assert!(
            took.is_some_and(|t| t < Duration::from_millis(3500)),
            "seed {seed}: first epoch after {took:?}"
        );
    }
}
