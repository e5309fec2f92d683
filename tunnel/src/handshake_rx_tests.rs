//! Roaming, replay and rate-limit tests of [`super`] with real boringtun Tunns on both
//! sides; the attacker knows only public keys and what crossed the wire.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use blake2::digest::consts::U16;
use blake2::digest::{KeyInit, Mac};
use blake2::{Blake2s256, Blake2sMac, Digest};
use keymix::{EpochKey, QkdPolicy, Role, SourceMask};
use zeroize::Zeroizing;

use super::*;
use crate::epoch_tunn::EpochTunn;
use crate::tunn_index::TunnIndexTable;

pub(super) const RESPONDER: [u8; 32] = [7; 32];
pub(super) const INITIATOR: [u8; 32] = [9; 32];

pub(super) fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap_or_else(|e| panic!("{e}"))
}

pub(super) fn keys() -> (StaticSecret, PublicKey) {
    let private = StaticSecret::from(RESPONDER);
    let public = PublicKey::from(&private);
    (private, public)
}

/// Our Tunn for `epoch`, keyed like the peer's Tunn of the same epoch.
pub(super) fn our_tunn(epoch: u64, limiter: Arc<RateLimiter>) -> EpochTunn {
    let key = EpochKey {
        epoch,
        psk: Zeroizing::new([epoch as u8; 32]),
        sources: SourceMask::BASE,
        qkd_key_ids: Vec::new(),
        established: Instant::now(),
        role: Role::Responder,
        keylog: None,
    };
    let initiator = PublicKey::from(&StaticSecret::from(INITIATOR));
    let index = (0x5a5 << 4) | (epoch as u32 & 0xf);
    EpochTunn::new(&key, index, &keys().0, initiator, None, limiter)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The genuine peer's Tunn for `epoch` (its index carries the epoch tag, as ours do).
pub(super) fn their_tunn(epoch: u64) -> Tunn {
    let index = (0x333 << 4) | (epoch as u32 & 0xf);
    Tunn::new(
        StaticSecret::from(INITIATOR),
        keys().1,
        Some([epoch as u8; 32]),
        None,
        index,
        None,
    )
}

pub(super) fn initiation(tunn: &mut Tunn) -> Vec<u8> {
    let mut out = vec![0u8; 256];
    match tunn.format_handshake_initiation(&mut out, true) {
        TunnResult::WriteToNetwork(init) => init.to_vec(),
        other => panic!("no initiation: {other:?}"),
    }
}

pub(super) fn peer() -> Peer {
    Peer::new(
        PublicKey::from(&StaticSecret::from(INITIATOR)),
        None,
        Vec::new(),
        None,
        Duration::from_secs(180),
        QkdPolicy::Off,
    )
}

/// What an attacker can do with our public key alone: rewrite unauthenticated fields of a
/// handshake message and recompute mac1.
pub(super) fn remac(message: &mut [u8]) {
    let key = Blake2s256::new()
        .chain_update(b"mac1----")
        .chain_update(keys().1.as_bytes())
        .finalize();
    let mac1_at = message.len() - 32;
    let mut mac =
        <Blake2sMac<U16> as KeyInit>::new_from_slice(&key).unwrap_or_else(|e| panic!("{e}"));
    Mac::update(&mut mac, &message[..mac1_at]);
    let tag = mac.finalize().into_bytes();
    message[mac1_at..mac1_at + 16].copy_from_slice(&tag);
    message[mac1_at + 16..].fill(0);
}

pub(super) fn retag(init: &[u8], epoch: u64) -> Vec<u8> {
    let mut forged = init.to_vec();
    forged[5] = (forged[5] & 0xf0) | (epoch as u8 & 0xf);
    remac(&mut forged);
    forged
}

/// The driver's side of answering: an index table and the limiter every Tunn gets.
pub(super) struct Ours {
    pub indices: TunnIndexTable,
    pub limiter: Arc<RateLimiter>,
}

impl Ours {
    pub fn new() -> Self {
        Self {
            indices: TunnIndexTable::new(),
            limiter: HandshakeLimits::new(&keys().1, 1000).for_tunns(),
        }
    }
}

pub(super) fn run(
    peers: &mut [Peer],
    ours: &mut Ours,
    src: SocketAddr,
    datagram: &[u8],
    sent: &mut Vec<(Vec<u8>, SocketAddr)>,
) -> InitOutcome {
    let (private, public) = keys();
    let mut r = Responder {
        private: &private,
        public: &public,
        indices: &mut ours.indices,
        rate_limiter: ours.limiter.clone(),
    };
    let mut out = vec![0u8; 2048];
    let keys = PeerKeys::of(peers);
    on_initiation(
        peers,
        &keys,
        &mut r,
        src,
        datagram,
        &mut out,
        &mut |d, to| sent.push((d.to_vec(), to)),
    )
}

/// What the driver's data path does with a data message (wireguard_rx::on_data): find the
/// Tunn by index, decrypt, move the endpoint, confirm an answered initiation. Returns
/// whether it decrypted.
pub(super) fn data_in(peer: &mut Peer, ours: &mut Ours, src: SocketAddr, datagram: &[u8]) -> bool {
    let receiver = u32::from_le_bytes(datagram[4..8].try_into().unwrap_or_default());
    let index = crate::tunn_index::tunn_index_of(receiver);
    let answering = peer.slots.by_index(index).is_some();
    let Some(tunn) = peer.tunn_by_index(index) else {
        return false;
    };
    let mut out = vec![0u8; 2048];
    match tunn.tunn.decapsulate(Some(src.ip()), datagram, &mut out) {
        TunnResult::WriteToTunnelV4(..) | TunnResult::WriteToTunnelV6(..) | TunnResult::Done => {}
        _ => return false,
    }
    peer.endpoint = Some(src);
    if answering {
        if let Some((_, dropped)) = peer.confirm(index) {
            for t in dropped {
                ours.indices.release(t.index);
            }
        }
    }
    true
}

/// Their Tunn takes our handshake response and answers with its keepalive (the
/// confirmation), which it returns.
pub(super) fn their_confirmation(theirs: &mut Tunn, response: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; 2048];
    match theirs.decapsulate(None, response, &mut out) {
        TunnResult::WriteToNetwork(k) => k.to_vec(),
        other => panic!("their Tunn refused our response: {other:?}"),
    }
}

#[test]
fn forged_response_answered_by_a_cookie_proves_nothing() {
    // The old wiring: the Tunn's own limiter is past its limit, as 150 forged messages a
    // second make it. A response with a valid mac1 and a receiver index read off the wire
    // is answered with a cookie reply, which the driver took as authentication.
    let overloaded = Arc::new(RateLimiter::new(&keys().1, 0));
    let mut ours = our_tunn(1, overloaded.clone());
    let mut forged = vec![0u8; 92];
    forged[0] = 2;
    forged[4..8].copy_from_slice(&0x1234u32.to_le_bytes());
    forged[8..12].copy_from_slice(&((ours.index << 8) | 1).to_le_bytes());
    remac(&mut forged);
    let mut sent = Vec::new();
    let mut out = vec![0u8; 2048];
    let fed = feed_handshake(
        &mut ours.tunn,
        addr("203.0.113.66:5000").ip(),
        &forged,
        &mut out,
        &mut |d| sent.push(d.to_vec()),
    );
    assert_eq!(fed, Fed::Unauthenticated);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0][0], 3, "the answer is a cookie reply");

    // The new wiring screens it once, before any Tunn: a cookie, nothing more.
    let limits = HandshakeLimits::new(&keys().1, 0);
    let mut out = vec![0u8; 2048];
    assert!(matches!(
        limits.screen(addr("203.0.113.66:5000").ip(), &forged, &mut out),
        Screen::Cookie(c) if c.first() == Some(&3)
    ));
}

#[test]
fn each_initiation_counts_once_against_the_limit() {
    let limits = HandshakeLimits::new(&keys().1, 1);
    let mut peers = vec![peer()];
    let mut ours = Ours::new();
    peers[0].install(our_tunn(1, limits.for_tunns()));
    let init = initiation(&mut their_tunn(1));
    let src = addr("198.51.100.2:51820");
    let mut out = vec![0u8; 2048];
    assert!(matches!(
        limits.screen(src.ip(), &init, &mut out),
        Screen::Pass
    ));
    let mut sent = Vec::new();
    assert_eq!(
        run(&mut peers, &mut ours, src, &init, &mut sent),
        InitOutcome::Answered(0)
    );
    assert_eq!(sent[0].0[0], 2, "a handshake response");

    // Sharing the counting limiter with the Tunn (the old wiring) counts it twice: the
    // first initiation of a second already gets a cookie instead of a response.
    let shared = Arc::new(RateLimiter::new(&keys().1, 1));
    let mut tunn = our_tunn(1, shared.clone());
    let init = initiation(&mut their_tunn(1));
    assert!(shared
        .verify_packet(Some(src.ip()), &init, &mut out)
        .is_ok());
    let mut answers = Vec::new();
    let fed = feed_handshake(&mut tunn.tunn, src.ip(), &init, &mut out, &mut |d| {
        answers.push(d.to_vec())
    });
    assert_eq!((fed, answers[0][0]), (Fed::Unauthenticated, 3));
}

#[test]
fn replayed_initiation_into_a_fresh_epoch_changes_nothing() {
    let limits = HandshakeLimits::new(&keys().1, 100);
    let mut peers = vec![peer()];
    let mut ours = Ours::new();
    peers[0].install(our_tunn(1, limits.for_tunns()));
    let genuine = addr("198.51.100.2:51820");
    let attacker = addr("203.0.113.66:5000");
    let mut theirs = their_tunn(1);
    let recorded = initiation(&mut theirs);
    let mut sent = Vec::new();
    assert_eq!(
        run(&mut peers, &mut ours, genuine, &recorded, &mut sent),
        InitOutcome::Answered(0)
    );
    let keepalive = their_confirmation(&mut theirs, &sent[0].0);
    assert!(data_in(&mut peers[0], &mut ours, genuine, &keepalive));
    assert_eq!(peers[0].endpoint, Some(genuine));
    assert!(peers[0].last_initiation.is_some(), "confirmed: recorded");

    // Next epoch: a fresh Tunn, whose own replay check starts from zero.
    peers[0].install(our_tunn(2, limits.for_tunns()));
    sent.clear();
    let replays = [recorded.clone(), retag(&recorded, 2), retag(&recorded, 3)];
    for replay in &replays {
        assert_eq!(
            run(&mut peers, &mut ours, attacker, replay, &mut sent),
            InitOutcome::Dropped(0, TunnelDrop::ReplayedInitiation)
        );
    }
    assert!(sent.is_empty(), "nothing answered");
    assert_eq!(peers[0].endpoint, Some(genuine), "endpoint unchanged");
    assert!(peers[0].slots.is_empty(), "nothing waiting");

    // The peer's next genuine initiation still works.
    let fresh = initiation(&mut their_tunn(2));
    assert_eq!(
        run(&mut peers, &mut ours, genuine, &fresh, &mut sent),
        InitOutcome::Answered(0)
    );

    // Without the per-peer check a fresh Tunn alone answers the re-tagged replay.
    let mut unguarded = our_tunn(2, limits.for_tunns());
    let mut out = vec![0u8; 2048];
    let fed = feed_handshake(
        &mut unguarded.tunn,
        attacker.ip(),
        &replays[1],
        &mut out,
        &mut |_| {},
    );
    assert_eq!(fed, Fed::Answered);
}

#[test]
fn parked_initiation_is_answered_where_it_came_from() {
    let limits = HandshakeLimits::new(&keys().1, 100);
    let mut peers = vec![peer()];
    let mut ours = Ours::new();
    peers[0].install(our_tunn(1, limits.for_tunns()));
    let genuine = addr("198.51.100.2:51820");
    let attacker = addr("203.0.113.66:5000");
    // The peer is a keymix round trip ahead: epoch 2 is not here yet.
    let mut theirs = their_tunn(2);
    let early = initiation(&mut theirs);
    let mut sent = Vec::new();
    assert_eq!(
        run(&mut peers, &mut ours, genuine, &early, &mut sent),
        InitOutcome::Parked(0)
    );
    // The same from the same source again: a duplicate; from elsewhere: parked apart.
    assert_eq!(
        run(&mut peers, &mut ours, genuine, &early, &mut sent),
        InitOutcome::Dropped(0, TunnelDrop::ReplayedInitiation)
    );
    assert_eq!(
        run(&mut peers, &mut ours, attacker, &early, &mut sent),
        InitOutcome::Parked(0)
    );
    assert!(sent.is_empty());

    peers[0].install(our_tunn(2, limits.for_tunns()));
    let (private, public) = keys();
    let mut r = Responder {
        private: &private,
        public: &public,
        indices: &mut ours.indices,
        rate_limiter: ours.limiter.clone(),
    };
    let mut out = vec![0u8; 2048];
    let outcomes = on_key_landed(&mut peers[0], 0, &mut r, 2, &mut out, &mut |d, to| {
        sent.push((d.to_vec(), to))
    });
    assert_eq!(outcomes, vec![InitOutcome::Answered(0); 2]);
    // Each is answered where it came from; only the genuine peer can confirm its answer.
    let to_genuine = sent
        .iter()
        .find(|(_, to)| *to == genuine)
        .map(|(d, _)| d.clone())
        .unwrap_or_else(|| panic!("no answer to the genuine peer"));
    assert_eq!(to_genuine[0], 2);
    let keepalive = their_confirmation(&mut theirs, &to_genuine);
    assert!(data_in(&mut peers[0], &mut ours, genuine, &keepalive));
    assert_eq!(peers[0].endpoint, Some(genuine));
    assert!(
        peers[0].slots.is_empty(),
        "the other answer is below the record now"
    );
}
