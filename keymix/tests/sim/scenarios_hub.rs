//! A hub with many spokes (findings 5 and 7 of issue 9): one hub endpoint with a peer per
//! spoke, the hub knowing no spoke's address, every spoke knowing the hub's. An in-order
//! wire, virtual time, QKD off.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant, UNIX_EPOCH};

use keymix::rng::SeededRng;
use keymix::{
    AuthBasis, Destination, DropReason, Endpoint, EndpointConfig, Event, PeerConfig, PeerId,
    PeerState, PublicKey, StaticSecret,
};

use super::prng::Prng;

struct Node {
    ep: Endpoint,
    addr: SocketAddr,
    /// Per peer: where Destination::Peer goes (None: unknown yet).
    peer_addrs: Vec<Option<SocketAddr>>,
    /// Per peer: the last committed (epoch, psk).
    last: Vec<Option<(u64, [u8; 32])>>,
}

struct Star {
    nodes: Vec<Node>, // 0 is the hub; spoke i is node i + 1 and hub peer i
    wire: VecDeque<(SocketAddr, SocketAddr, Vec<u8>)>,
    start: Instant,
    now: Instant,
}

/// An endpoint started at `now`, `since_start` after the star's start (its wall clock).
fn endpoint(secret: [u8; 32], now: Instant, since_start: Duration, tag: u8) -> Endpoint {
    let wall = UNIX_EPOCH + Duration::from_secs(1_800_000_000) + since_start;
    let ec = EndpointConfig::new(StaticSecret::from(secret));
    Endpoint::new(ec, now, wall, Box::new(SeededRng::new([tag; 32])))
}

fn peer(public: [u8; 32], epoch_s: u64, psk: Option<[u8; 32]>, known: bool) -> PeerConfig {
    let mut pc = PeerConfig::new(PublicKey::from(public));
    pc.epoch = Duration::from_secs(epoch_s);
    pc.reject_after = Duration::from_secs(epoch_s * 3 / 2);
    pc.bootstrap_psk = psk.map(zeroize::Zeroizing::new);
    pc.endpoint_known = known;
    pc
}

fn public(secret: &[u8; 32]) -> [u8; 32] {
    *PublicKey::from(&StaticSecret::from(*secret)).as_bytes()
}

impl Star {
    /// `spokes` secrets with a bootstrap PSK each (or none).
    fn new(hub: [u8; 32], spokes: &[([u8; 32], Option<[u8; 32]>)], epoch_s: u64) -> Self {
        let now = Instant::now();
        let hub_addr: SocketAddr = "10.0.0.1:51820".parse().unwrap();
        let mut hub_ep = endpoint(hub, now, Duration::ZERO, 0);
        let mut nodes = Vec::new();
        for (i, (s, psk)) in spokes.iter().enumerate() {
            let id = hub_ep
                .add_peer(peer(public(s), epoch_s, *psk, false), now)
                .unwrap();
            assert_eq!(id, i);
        }
        nodes.push(Node {
            ep: hub_ep,
            addr: hub_addr,
            peer_addrs: vec![None; spokes.len()],
            last: vec![None; spokes.len()],
        });
        for (i, (s, psk)) in spokes.iter().enumerate() {
            let mut ep = endpoint(*s, now, Duration::ZERO, i as u8 + 1);
            ep.add_peer(peer(public(&hub), epoch_s, *psk, true), now)
                .unwrap();
            nodes.push(Node {
                ep,
                addr: SocketAddr::from(([10, 0, 1, i as u8 + 1], 51820)),
                peer_addrs: vec![Some(hub_addr)],
                last: vec![None],
            });
        }
        Star {
            nodes,
            wire: VecDeque::new(),
            start: now,
            now,
        }
    }

    fn drain(&mut self, n: usize) {
        let node = &mut self.nodes[n];
        while let Some(ev) = node.ep.poll_event() {
            if let Event::EpochKey { peer, key } = ev {
                node.last[peer] = Some((key.epoch, *key.psk));
            }
        }
        while let Some(t) = node.ep.poll_transmit() {
            let dst = match t.destination {
                Destination::Peer(p) => node.peer_addrs[p],
                Destination::Addr(a) => Some(a),
            };
            if let Some(dst) = dst {
                self.wire.push_back((node.addr, dst, t.payload));
            }
        }
    }

    fn deliver(
        &mut self,
        src: SocketAddr,
        dst: SocketAddr,
        payload: &[u8],
    ) -> Option<Result<Option<PeerId>, DropReason>> {
        let n = self.nodes.iter().position(|x| x.addr == dst)?;
        let r = self.nodes[n].ep.handle_datagram(self.now, src, payload);
        if let Ok(Some(p)) = r {
            self.nodes[n].peer_addrs[p] = Some(src);
        }
        self.drain(n);
        Some(r)
    }

    fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            while let Some((src, dst, p)) = self.wire.pop_front() {
                self.deliver(src, dst, &p);
            }
            if self.now >= end {
                return;
            }
            let next = self.nodes.iter().filter_map(|n| n.ep.poll_timeout()).min();
            self.now = next.map_or(end, |t| t.min(end)).max(self.now);
            for n in 0..self.nodes.len() {
                let now = self.now;
                self.nodes[n].ep.handle_timeout(now);
                self.drain(n);
            }
        }
    }

    /// Spokes whose last epoch the hub shares (same epoch and PSK).
    fn agreeing(&self) -> usize {
        (0..self.nodes.len() - 1)
            .filter(|&i| {
                let hub = self.nodes[0].last[i];
                hub.is_some() && hub == self.nodes[i + 1].last[0]
            })
            .count()
    }
}

/// Finding 7: 20 spokes, the hub knows none of their endpoints, 10 s epochs, spokes with
/// smaller and larger static keys than the hub: all 20 agree within 30 s, and stay.
#[test]
fn finding7_hub_reaches_every_spoke() {
    let hub = [0x80u8; 32];
    let mut r = Prng::new(7);
    let spokes: Vec<([u8; 32], Option<[u8; 32]>)> = (0..20).map(|_| (r.bytes32(), None)).collect();
    let hub_pub = public(&hub);
    let smaller = spokes.iter().filter(|(s, _)| public(s) < hub_pub).count();
    assert!(
        smaller > 0 && smaller < 20,
        "{smaller} of 20 spokes sort below the hub"
    );
    let mut star = Star::new(hub, &spokes, 10);
    star.run_for(Duration::from_secs(30));
    assert_eq!(
        star.agreeing(),
        20,
        "spokes agreeing with the hub after 30 s"
    );
    for _ in 0..6 {
        star.run_for(Duration::from_secs(10));
        for i in 0..20 {
            let st = star.nodes[0].ep.peer_status(i, star.now);
            assert_eq!(
                st.state,
                PeerState::Up,
                "hub's peer {i} after {:?}",
                st.epoch
            );
        }
    }
    let c = star.nodes[0].ep.counters();
    assert_eq!(c.get(DropReason::SimultaneousInitiation), 0);
}

/// Finding 5 (keymix level): each peer of a hub has its own bootstrap PSK. A spoke site
/// that knows its own PSK and stole another spoke's static key cannot re-bootstrap that
/// other spoke's chain at the hub; the other spoke's own PSK could (policy).
#[test]
fn finding5_bootstrap_psk_is_per_peer() {
    let hub = [0x80u8; 32];
    let (psk1, psk2) = ([0x01u8; 32], [0x02u8; 32]);
    let spokes = [([0x11u8; 32], Some(psk1)), ([0x22u8; 32], Some(psk2))];
    let mut star = Star::new(hub, &spokes, 10);
    star.run_for(Duration::from_secs(25));
    assert_eq!(star.agreeing(), 2);
    for i in 0..2 {
        let st = star.nodes[0].ep.peer_status(i, star.now);
        assert_eq!(st.auth, Some(AuthBasis::Chain), "peer {i}");
        assert!(st.chain_epoch >= 2);
    }
    let hub_addr = star.nodes[0].addr;
    let rogue_addr: SocketAddr = "203.0.113.66:51820".parse().unwrap();
    for (psk, accepted) in [(psk1, false), (psk2, true)] {
        // A rogue with spoke 2's static key, bootstrapping with `psk`.
        let mut rogue = endpoint(spokes[1].0, star.now, star.now - star.start, 99);
        rogue
            .add_peer(peer(public(&hub), 10, Some(psk), true), star.now)
            .unwrap();
        rogue.handle_timeout(star.now + Duration::from_secs(2));
        let init = rogue.poll_transmit().expect("the rogue's Init").payload;
        let r = star.deliver(rogue_addr, hub_addr, &init).unwrap();
        assert_eq!(r.is_ok(), accepted, "psk {:?}: {r:?}", psk[0]);
        if !accepted {
            // Version 2: the pseudonym made with the wrong PSK names no peer, and the
            // Init then fails mac1 on the DH path; version 1: the auth tag.
            assert!(
                matches!(r, Err(DropReason::BadAuth | DropReason::BadMac1)),
                "{r:?}"
            );
            assert_ne!(star.nodes[0].peer_addrs[1], Some(rogue_addr));
        }
        star.wire.clear();
    }
}
