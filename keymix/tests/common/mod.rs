//! A two-peer network simulation for the sans-IO state machine: both endpoints, an
//! in-memory KME pair, a virtual clock and a wire the tests can drop, duplicate, reorder
//! or tamper with. Everything is deterministic (seeded randomness, fixed start time).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use keymix::qkd::InMemoryKme;
use keymix::rng::SeededRng;
use keymix::{
    Destination, Endpoint, EndpointConfig, EpochKey, Event, KmeRequestKind, PeerConfig, PeerId,
    PeerStatus, PublicKey, QkdPolicy, StaticSecret,
};

pub const SAE_A: &str = "SAE_A";
pub const SAE_B: &str = "SAE_B";

pub struct Side {
    pub ep: Endpoint,
    pub peer: PeerId,
    pub kme: InMemoryKme,
    pub addr: SocketAddr,
    pub keys: Vec<EpochKey>,
    pub expired: Vec<u64>,
    /// KME requests answered so far.
    pub kme_requests: usize,
    pub public: [u8; 32],
    pub secret_bytes: [u8; 32],
    /// The last chain state the endpoint asked to persist.
    pub saved: Option<keymix::ChainState>,
}

/// A datagram on the wire.
#[derive(Clone, Debug)]
pub struct Packet {
    pub from_a: bool,
    pub payload: Vec<u8>,
}

pub struct Net {
    pub a: Side,
    pub b: Side,
    pub now: Instant,
    pub start: Instant,
    pub wire: Vec<Packet>,
    /// Every datagram ever sent, in order (what a passive attacker records).
    pub recorded: Vec<Packet>,
    pub wall: SystemTime,
}

#[derive(Clone)]
pub struct Options {
    pub qkd_a: QkdPolicy,
    pub qkd_b: QkdPolicy,
    pub epoch: Duration,
    pub reject_after: Duration,
    pub bootstrap_psk: Option<[u8; 32]>,
    pub seed: u8,
    pub keylog: bool,
    /// The keymix versions each side speaks, (A, B): (min, max).
    pub versions: [(keymix::Version, keymix::Version); 2],
}

impl Options {
    /// Both sides speak only `v`.
    pub fn only(mut self, v: keymix::Version) -> Self {
        self.versions = [(v, v); 2];
        self
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            qkd_a: QkdPolicy::Required,
            qkd_b: QkdPolicy::Required,
            epoch: Duration::from_secs(120),
            reject_after: Duration::from_secs(180),
            bootstrap_psk: None,
            seed: 1,
            keylog: true,
            versions: [(keymix::Version::V1, keymix::Version::LATEST); 2],
        }
    }
}

pub fn static_pair(seed: u8) -> (StaticSecret, [u8; 32], StaticSecret, [u8; 32]) {
    let a = StaticSecret::from([seed.wrapping_mul(3).wrapping_add(1); 32]);
    let b = StaticSecret::from([seed.wrapping_mul(5).wrapping_add(2); 32]);
    let pa = *PublicKey::from(&a).as_bytes();
    let pb = *PublicKey::from(&b).as_bytes();
    (a, pa, b, pb)
}

impl Net {
    pub fn new(opt: Options) -> Self {
        let start = Instant::now();
        let wall = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let (kme_a, kme_b) = InMemoryKme::pair_seeded(SAE_A, SAE_B, [opt.seed; 32]);
        let (sa, pa, sb, pb) = static_pair(opt.seed);
        let (sa_bytes, sb_bytes) = (sa.to_bytes(), sb.to_bytes());
        let a = Self::make_side(
            opt.clone(),
            sa,
            pb,
            SAE_B,
            opt.qkd_a,
            kme_a,
            1,
            start,
            wall,
            "192.0.2.1:51820",
            None,
        );
        let b = Self::make_side(
            opt.clone(),
            sb,
            pa,
            SAE_A,
            opt.qkd_b,
            kme_b,
            2,
            start,
            wall,
            "198.51.100.2:51820",
            None,
        );
        let mut a = a;
        let mut b = b;
        a.public = pa;
        b.public = pb;
        a.secret_bytes = sa_bytes;
        b.secret_bytes = sb_bytes;
        Net {
            a,
            b,
            now: start,
            start,
            wire: Vec::new(),
            recorded: Vec::new(),
            wall,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn make_side(
        opt: Options,
        secret: StaticSecret,
        peer_public: [u8; 32],
        peer_sae: &str,
        qkd: QkdPolicy,
        kme: InMemoryKme,
        rng_tag: u8,
        now: Instant,
        wall: SystemTime,
        addr: &str,
        state: Option<keymix::ChainState>,
    ) -> Side {
        let mut cfg = EndpointConfig::new(secret);
        cfg.keylog = opt.keylog;
        let mut ep = Endpoint::new(
            cfg,
            now,
            wall,
            Box::new(SeededRng::new(
                [opt.seed.wrapping_add(rng_tag.wrapping_mul(16)); 32],
            )),
        );
        let mut pc = PeerConfig::new(PublicKey::from(peer_public));
        pc.epoch = opt.epoch;
        pc.reject_after = opt.reject_after;
        pc.qkd = qkd;
        pc.peer_sae_id = Some(peer_sae.to_owned());
        pc.bootstrap_psk = opt.bootstrap_psk.map(zeroize::Zeroizing::new);
        pc.state = state;
        // A is made with tag 1 (4 after a restart), B with 2 (5).
        let (min, max) = opt.versions[usize::from(rng_tag % 3 != 1)];
        pc.min_version = min;
        pc.max_version = max;
        let peer = ep.add_peer(pc, now).expect("valid test peer");
        Side {
            ep,
            peer,
            kme,
            addr: addr.parse().unwrap(),
            keys: Vec::new(),
            expired: Vec::new(),
            kme_requests: 0,
            public: [0; 32],
            secret_bytes: [0; 32],
            saved: None,
        }
    }

    /// Restarts one side at the current virtual time with the same keys and KME, with the
    /// chain state it last persisted (`keep_state`) or none (state file lost).
    pub fn restart(&mut self, a: bool, keep_state: bool, opt: &Options) {
        let wall = self.wall + self.now.saturating_duration_since(self.start);
        let now = self.now;
        let old = self.side(a);
        let secret = StaticSecret::from(old.secret_bytes);
        let kme = old.kme.clone();
        let state = if keep_state { old.saved.clone() } else { None };
        let (public, secret_bytes, addr) = (old.public, old.secret_bytes, old.addr.to_string());
        let (peer_public, peer_sae, qkd, tag) = if a {
            (self.b.public, SAE_B, opt.qkd_a, 1)
        } else {
            (self.a.public, SAE_A, opt.qkd_b, 2)
        };
        let mut fresh = Self::make_side(
            opt.clone(),
            secret,
            peer_public,
            peer_sae,
            qkd,
            kme,
            tag + 3, // a fresh RNG stream: (tag + 16) * 16 would wrap to the old one
            now,
            wall,
            &addr,
            state.clone(),
        );
        fresh.public = public;
        fresh.secret_bytes = secret_bytes;
        fresh.saved = state;
        let side = self.side(a);
        fresh.keys = std::mem::take(&mut side.keys);
        *side = fresh;
    }

    pub fn side(&mut self, a: bool) -> &mut Side {
        if a {
            &mut self.a
        } else {
            &mut self.b
        }
    }

    /// Drain both endpoints' outputs: datagrams onto the wire, KME requests answered
    /// synchronously by the in-memory KMEs, events collected.
    pub fn pump_outputs(&mut self) {
        loop {
            let mut progressed = false;
            for from_a in [true, false] {
                let now = self.now;
                let side = self.side(from_a);
                let mut out = Vec::new();
                while let Some(t) = side.ep.poll_transmit() {
                    // Both Destination::Peer and cookie replies (Addr) go to the other side.
                    let _ = matches!(t.destination, Destination::Peer(_) | Destination::Addr(_));
                    out.push(Packet {
                        from_a,
                        payload: t.payload,
                    });
                }
                while let Some(ev) = side.ep.poll_event() {
                    progressed = true;
                    match ev {
                        Event::EpochKey { key, .. } => side.keys.push(key),
                        Event::Expired { epoch, .. } => side.expired.push(epoch),
                        Event::PersistState { state, .. } => side.saved = Some(*state),
                        Event::KmeRequest(req) => {
                            side.kme_requests += 1;
                            let result = match &req.kind {
                                KmeRequestKind::EncKeys {
                                    slave_sae_id,
                                    number,
                                    size_bits,
                                } => side.kme.enc_keys_now(slave_sae_id, *number, *size_bits),
                                KmeRequestKind::DecKeys {
                                    master_sae_id,
                                    key_ids,
                                } => side.kme.dec_keys_now(master_sae_id, key_ids),
                            };
                            side.ep.handle_kme_result(now, req.id, result);
                        }
                    }
                }
                if !out.is_empty() {
                    progressed = true;
                }
                self.recorded.extend(out.iter().cloned());
                self.wire.extend(out);
            }
            if !progressed {
                break;
            }
        }
    }

    /// Deliver one datagram to its receiver.
    pub fn deliver(&mut self, p: &Packet) -> Result<Option<PeerId>, keymix::DropReason> {
        let now = self.now;
        let (src, side) = if p.from_a {
            (self.a.addr, &mut self.b)
        } else {
            (self.b.addr, &mut self.a)
        };
        side.ep.handle_datagram(now, src, &p.payload)
    }

    /// Deliver everything on the wire through `filter`, which returns how many copies of
    /// each packet arrive (0 = lost, 2 = duplicated).
    pub fn flush_with(&mut self, mut filter: impl FnMut(&Packet) -> usize) {
        for _ in 0..64 {
            self.pump_outputs();
            if self.wire.is_empty() {
                return;
            }
            let batch = std::mem::take(&mut self.wire);
            for p in batch {
                for _ in 0..filter(&p) {
                    let _ = self.deliver(&p);
                }
            }
        }
    }

    pub fn flush(&mut self) {
        self.flush_with(|_| 1);
    }

    /// Advance the clock to the next deadline (at most `max`), fire timers, and flush.
    pub fn advance(&mut self, max: Duration, filter: &mut impl FnMut(&Packet) -> usize) {
        let limit = self.now + max;
        let next = [self.a.ep.poll_timeout(), self.b.ep.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(limit)
            .min(limit)
            .max(self.now);
        self.now = next;
        self.a.ep.handle_timeout(self.now);
        self.b.ep.handle_timeout(self.now);
        self.flush_with(&mut *filter);
    }

    /// Run the simulation for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration, mut filter: impl FnMut(&Packet) -> usize) {
        let end = self.now + d;
        self.flush_with(&mut filter);
        while self.now < end {
            self.advance(end - self.now, &mut filter);
        }
    }

    pub fn status(&self, a: bool, now: Instant) -> PeerStatus {
        let s = if a { &self.a } else { &self.b };
        s.ep.peer_status(s.peer, now)
    }

    /// Asserts both sides derived the same PSK for every epoch both have, and returns the
    /// number of such epochs.
    pub fn assert_keys_agree(&self) -> usize {
        let mut matched = 0;
        for ka in &self.a.keys {
            for kb in &self.b.keys {
                if ka.epoch == kb.epoch
                    && ka.established.max(kb.established) - ka.established.min(kb.established)
                        < Duration::from_secs(60)
                {
                    assert_eq!(*ka.psk, *kb.psk, "epoch {} keys differ", ka.epoch);
                    assert_eq!(ka.sources, kb.sources);
                    matched += 1;
                }
            }
        }
        matched
    }
}
