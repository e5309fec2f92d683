//! Issue 19, findings 1 and 2: a WireGuard initiation needs only the initiator's static
//! private key, so a thief (or a quantum attacker) holding it can make as many as it likes.
//! None of them may move an endpoint, advance the replay record or cost traffic; only the
//! peer's data under an answered session (which needs the epoch's PSK) makes an initiation
//! count. Real boringtun Tunns on both sides.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use boringtun::noise::{Tunn, TunnResult};
use keymix::StaticSecret;

use super::tests::{
    addr, data_in, initiation as initiation_of, keys, our_tunn, peer, run, their_confirmation,
    their_tunn, Ours, INITIATOR,
};
use super::*;
use crate::initiation_slots::MAX_SLOTS;

/// A minimal IPv4 packet (ICMP echo from 10.99.0.1 to 10.99.0.2), as a Tunn accepts it.
fn ipv4_packet() -> Vec<u8> {
    let mut p = vec![0u8; 28];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&28u16.to_be_bytes());
    p[8] = 64;
    p[9] = 1;
    p[12..16].copy_from_slice(&[10, 99, 0, 1]);
    p[16..20].copy_from_slice(&[10, 99, 0, 2]);
    p[20] = 8;
    p
}

/// A thief's Tunn: the peer's static private key, but not the epoch's PSK.
fn thief() -> Tunn {
    Tunn::new(
        StaticSecret::from(INITIATOR),
        keys().1,
        Some([0xee; 32]),
        None,
        (0x777 << 4) | 1,
        None,
    )
}

/// Their data (a packet) reaches us, and ours reaches them: the session works both ways.
fn traffic_flows(peers: &mut [Peer], ours: &mut Ours, theirs: &mut Tunn, from: SocketAddr) {
    let mut out = vec![0u8; 2048];
    let packet = ipv4_packet();
    let TunnResult::WriteToNetwork(data) = theirs.encapsulate(&packet, &mut out) else {
        panic!("their Tunn has no session");
    };
    let data = data.to_vec();
    assert!(
        data_in(&mut peers[0], ours, from, &data),
        "their data does not decrypt"
    );
    let tunn = peers[0]
        .sending_tunn()
        .unwrap_or_else(|| panic!("no sending Tunn"));
    let TunnResult::WriteToNetwork(back) = tunn.tunn.encapsulate(&packet, &mut out) else {
        panic!("our Tunn has no session");
    };
    let back = back.to_vec();
    let mut plain = vec![0u8; 2048];
    assert!(
        matches!(
            theirs.decapsulate(None, &back, &mut plain),
            TunnResult::WriteToTunnelV4(..)
        ),
        "our data does not decrypt there"
    );
}

/// The peer sends an initiation from `from`; we answer; it confirms.
fn genuine_handshake(peers: &mut [Peer], ours: &mut Ours, theirs: &mut Tunn, from: SocketAddr) {
    let mut sent = Vec::new();
    let init = initiation_of(theirs);
    assert_eq!(
        run(peers, ours, from, &init, &mut sent),
        InitOutcome::Answered(0)
    );
    let (response, to) = sent.pop().unwrap_or_else(|| panic!("no answer"));
    assert_eq!(to, from, "answered where it came from");
    let keepalive = their_confirmation(theirs, &response);
    assert!(data_in(&mut peers[0], ours, from, &keepalive));
}

#[test]
fn an_initiation_alone_moves_nothing_until_the_peer_confirms_it() {
    let mut ours = Ours::new();
    let mut peers = vec![peer()];
    let configured = addr("198.51.100.2:51820");
    peers[0].endpoint = Some(configured);
    peers[0].install(our_tunn(1, ours.limiter.clone()));
    let roamed = addr("198.51.100.9:40000");
    let mut theirs = their_tunn(1);
    let init = initiation_of(&mut theirs);
    let mut sent = Vec::new();
    assert_eq!(
        run(&mut peers, &mut ours, roamed, &init, &mut sent),
        InitOutcome::Answered(0)
    );
    assert_eq!(
        peers[0].endpoint,
        Some(configured),
        "not moved by the initiation"
    );
    assert_eq!(peers[0].last_initiation, None, "no record yet");
    assert!(!peers[0].current.as_ref().is_some_and(|g| g.has_session()));
    let keepalive = their_confirmation(&mut theirs, &sent[0].0);
    assert!(data_in(&mut peers[0], &mut ours, roamed, &keepalive));
    assert_eq!(peers[0].endpoint, Some(roamed), "moved by the confirmation");
    assert!(
        peers[0].last_initiation.is_some(),
        "recorded once confirmed"
    );
    assert!(peers[0].current.as_ref().is_some_and(|g| g.has_session()));
    traffic_flows(&mut peers, &mut ours, &mut theirs, roamed);
}

/// Finding 1: 50 initiations forged with the peer's real static key from a third address.
/// Before: the endpoint moved to the attacker and, eight initiations later, the live
/// session was evicted from the Tunn's ring. Now neither.
#[test]
fn forged_initiations_from_a_third_address_never_touch_traffic() {
    let mut ours = Ours::new();
    let mut peers = vec![peer()];
    peers[0].install(our_tunn(1, ours.limiter.clone()));
    let genuine = addr("198.51.100.2:51820");
    let attacker = addr("203.0.113.66:5000");
    let mut theirs = their_tunn(1);
    genuine_handshake(&mut peers, &mut ours, &mut theirs, genuine);
    let record = peers[0].last_initiation;
    let mut sent = Vec::new();
    for _ in 0..50 {
        let forged = initiation_of(&mut thief());
        let outcome = run(&mut peers, &mut ours, attacker, &forged, &mut sent);
        assert_eq!(outcome, InitOutcome::Answered(0));
        assert_eq!(peers[0].endpoint, Some(genuine), "the endpoint moved");
        assert_eq!(peers[0].last_initiation, record, "the record moved");
        assert!(peers[0].slots.len() <= MAX_SLOTS);
        traffic_flows(&mut peers, &mut ours, &mut theirs, genuine);
    }
    // The answers went to the attacker, who cannot confirm them without the PSK.
    let (response, to) = sent.pop().unwrap_or_else(|| panic!("no answer"));
    assert_eq!(to, attacker);
    let mut out = vec![0u8; 2048];
    assert!(matches!(
        thief().decapsulate(None, &response, &mut out),
        TunnResult::Err(_)
    ));
}

/// The peer's own initiation waits in the slot of its endpoint; initiations forged from
/// any number of other addresses never push it out.
#[test]
fn a_flood_from_other_addresses_never_pushes_out_the_peers_initiation() {
    let mut ours = Ours::new();
    let mut peers = vec![peer()];
    let genuine = addr("198.51.100.2:51820");
    peers[0].endpoint = Some(genuine);
    peers[0].install(our_tunn(1, ours.limiter.clone()));
    let mut theirs = their_tunn(1);
    let init = initiation_of(&mut theirs);
    let mut sent = Vec::new();
    assert_eq!(
        run(&mut peers, &mut ours, genuine, &init, &mut sent),
        InitOutcome::Answered(0)
    );
    let response = sent[0].0.clone();
    for port in 0..40u16 {
        let from = SocketAddr::from(([203, 0, 113, 66], 6000 + port));
        let forged = initiation_of(&mut thief());
        run(&mut peers, &mut ours, from, &forged, &mut sent);
    }
    let keepalive = their_confirmation(&mut theirs, &response);
    assert!(
        data_in(&mut peers[0], &mut ours, genuine, &keepalive),
        "the genuine answer was pushed out"
    );
    traffic_flows(&mut peers, &mut ours, &mut theirs, genuine);
}

/// A WireGuard initiation from the holder of the peer's static key with a chosen TAI64N
/// timestamp: what a thief can make.
fn forge_initiation(sender_index: u32, timestamp: Tai64n) -> Vec<u8> {
    initiation::seal(
        &StaticSecret::from(INITIATOR),
        &keys().1,
        sender_index,
        &StaticSecret::from([0x42u8; 32]),
        timestamp,
    )
    .unwrap_or_else(|| panic!("sealing failed"))
}

/// Finding 1: an initiation stamped 50 years ahead is refused (it would otherwise become
/// the record and make every genuine initiation a "replay" until a restart).
#[test]
fn an_initiation_far_in_the_future_is_refused_and_blocks_nothing() {
    let mut ours = Ours::new();
    let mut peers = vec![peer()];
    peers[0].install(our_tunn(1, ours.limiter.clone()));
    let attacker = addr("203.0.113.66:5000");
    let fifty_years = Duration::from_secs(50 * 365 * 86_400);
    let far = forge_initiation(
        (0x999 << 12) | (1 << 8),
        tai64n(SystemTime::now() + fifty_years),
    );
    let opened = initiation::open(&keys().0, &keys().1, &far);
    assert!(
        opened.is_some(),
        "the forged initiation opens like a real one"
    );
    let mut sent = Vec::new();
    assert_eq!(
        run(&mut peers, &mut ours, attacker, &far, &mut sent),
        InitOutcome::Dropped(0, TunnelDrop::FutureInitiation)
    );
    // One just inside the bound is answered but, unconfirmed, sets no record either.
    let soon = forge_initiation(
        (0x998 << 12) | (1 << 8),
        tai64n(SystemTime::now() + MAX_FUTURE - Duration::from_secs(5)),
    );
    assert_eq!(
        run(&mut peers, &mut ours, attacker, &soon, &mut sent),
        InitOutcome::Answered(0)
    );
    assert_eq!(peers[0].last_initiation, None);
    let genuine = addr("198.51.100.2:51820");
    genuine_handshake(&mut peers, &mut ours, &mut their_tunn(1), genuine);
}

/// Finding 2: the record survives a restart (it is persisted with the keymix chain and
/// restored into the peer): an initiation recorded before the restart, re-tagged for the
/// new epoch, changes nothing.
#[test]
fn the_record_restored_after_a_restart_refuses_old_initiations() {
    let mut ours = Ours::new();
    let mut peers = vec![peer()];
    peers[0].install(our_tunn(1, ours.limiter.clone()));
    let genuine = addr("198.51.100.2:51820");
    let mut theirs = their_tunn(1);
    let init = initiation_of(&mut theirs);
    let mut sent = Vec::new();
    run(&mut peers, &mut ours, genuine, &init, &mut sent);
    let keepalive = their_confirmation(&mut theirs, &sent[0].0);
    assert!(data_in(&mut peers[0], &mut ours, genuine, &keepalive));
    let record = peers[0].last_initiation;
    // A restart: a new Peer with the persisted record, a new epoch.
    let mut ours = Ours::new();
    let mut restarted = vec![peer()];
    restarted[0].last_initiation = record;
    restarted[0].install(our_tunn(2, ours.limiter.clone()));
    let attacker = addr("203.0.113.66:5000");
    sent.clear();
    assert_eq!(
        run(
            &mut restarted,
            &mut ours,
            attacker,
            &super::tests::retag(&init, 2),
            &mut sent
        ),
        InitOutcome::Dropped(0, TunnelDrop::ReplayedInitiation)
    );
    assert!(sent.is_empty() && restarted[0].slots.is_empty());
}

/// Both sides initiate at once: our primary Tunn completes our handshake, a Tunn made for
/// the peer's initiation answers theirs; both sessions decrypt, traffic flows both ways.
#[test]
fn crossing_handshakes_keep_both_sessions() {
    let mut ours = Ours::new();
    let mut peers = vec![peer()];
    let genuine = addr("198.51.100.2:51820");
    peers[0].endpoint = Some(genuine);
    peers[0].install(our_tunn(1, ours.limiter.clone()));
    let mut theirs = their_tunn(1);
    let mut out = vec![0u8; 2048];
    let their_init = initiation_of(&mut theirs);
    let our_init = match peers[0]
        .current
        .as_mut()
        .map(|g| g.primary.tunn.format_handshake_initiation(&mut out, true))
    {
        Some(TunnResult::WriteToNetwork(d)) => d.to_vec(),
        other => panic!("no initiation of ours: {other:?}"),
    };
    let mut sent = Vec::new();
    assert_eq!(
        run(&mut peers, &mut ours, genuine, &their_init, &mut sent),
        InitOutcome::Answered(0)
    );
    let our_response = sent[0].0.clone();
    let their_response = match theirs.decapsulate(None, &our_init, &mut out) {
        TunnResult::WriteToNetwork(d) => d.to_vec(),
        other => panic!("they did not answer ours: {other:?}"),
    };
    let their_keepalive = their_confirmation(&mut theirs, &our_response);
    let mut to_them = Vec::new();
    let primary = &mut peers[0]
        .current
        .as_mut()
        .unwrap_or_else(|| panic!("no epoch"))
        .primary;
    assert_eq!(
        feed_handshake(
            &mut primary.tunn,
            genuine.ip(),
            &their_response,
            &mut out,
            &mut |d| { to_them.push(d.to_vec()) }
        ),
        Fed::Proven
    );
    let mut plain = vec![0u8; 2048];
    assert!(!matches!(
        theirs.decapsulate(None, &to_them[0], &mut plain),
        TunnResult::Err(_)
    ));
    assert!(data_in(&mut peers[0], &mut ours, genuine, &their_keepalive));
    let tunns = peers[0].current.as_ref().map(|g| g.tunns().count());
    assert_eq!(tunns, Some(2), "both sessions are kept");
    for _ in 0..3 {
        traffic_flows(&mut peers, &mut ours, &mut theirs, genuine);
    }
}

/// A hub's epoch: the peer's handshake is answered and confirmed before this side's own
/// Tunn had a session, so the answering Tunn takes the primary's place (one Tunn per epoch,
/// not two), and traffic flows on it both ways.
#[test]
fn a_confirmed_answer_replaces_a_primary_without_session() {
    let mut ours = Ours::new();
    let mut peers = vec![peer()];
    let genuine = addr("198.51.100.2:51820");
    peers[0].install(our_tunn(1, ours.limiter.clone()));
    let primary_index = peers[0].current.as_ref().map(|g| g.primary.index);
    let mut theirs = their_tunn(1);
    genuine_handshake(&mut peers, &mut ours, &mut theirs, genuine);
    let group = peers[0]
        .current
        .as_ref()
        .unwrap_or_else(|| panic!("no epoch"));
    assert_eq!(group.tunns().count(), 1);
    assert_ne!(Some(group.primary.index), primary_index);
    assert!(group.primary.has_session());
    for _ in 0..3 {
        traffic_flows(&mut peers, &mut ours, &mut theirs, genuine);
    }
    // The peer's next handshake in the same epoch is answered beside it, as before.
    let mut again = their_tunn(1);
    genuine_handshake(&mut peers, &mut ours, &mut again, genuine);
    assert_eq!(
        peers[0].current.as_ref().map(|g| g.tunns().count()),
        Some(2)
    );
    traffic_flows(&mut peers, &mut ours, &mut again, genuine);
}
