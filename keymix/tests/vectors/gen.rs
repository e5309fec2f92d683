//! The generator of the newer known-answer vectors: two keymix endpoints driven over
//! virtual time with seeded randomness that is recorded (so the vector can name the
//! ephemeral secrets: the recorded draws whose public keys appear on the wire), a fixed
//! wall clock, and a scripted KME (one or two keys per request, or a failing slave).
//! vectors/render.rs writes the result out.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use keymix::qkd::{QkdError, QkdKey};
use keymix::rng::{SecureRng, SeededRng};
use keymix::{
    ChainState, Endpoint, EndpointConfig, EpochKey, Event, KmeRequestKind, PeerConfig, PublicKey,
    QkdPolicy, StaticSecret,
};

use super::spec;

/// The wall clock at the start of every scenario (2027-01-15T08:00:00Z).
pub const WALL_CLOCK_SECS: u64 = 1_800_000_000;

#[derive(Clone)]
pub struct Scenario {
    pub title: &'static str,
    /// Header lines after the standard ones saying what the file pins (without `# `).
    pub pins: &'static [&'static str],
    pub seed: u8,
    pub qkd_a: QkdPolicy,
    pub qkd_b: QkdPolicy,
    pub bootstrap_psk: Option<[u8; 32]>,
    /// Keys the KME hands the master per request: 1, or 2 (two key IDs of 128 bits each).
    pub kme_parts: usize,
    /// The slave's KME fails every dec_keys.
    pub dec_fails: bool,
    /// The responder is under load: every Init must carry a valid mac2.
    pub under_load: bool,
    /// Reach epoch 2, restart the preferred initiator from its state file, pin epoch 3.
    pub restart_with_state: bool,
    /// The preferred initiator (the smaller static key) has no endpoint for its peer
    /// (`endpoint_known = false`), so only the side with the larger key initiates.
    pub preferred_unreachable: bool,
    /// The keymix protocol version both sides speak (and only that one).
    pub version: keymix::Version,
}

impl Scenario {
    pub fn new(title: &'static str, seed: u8) -> Self {
        Self {
            title,
            pins: &[],
            seed,
            qkd_a: QkdPolicy::Off,
            qkd_b: QkdPolicy::Off,
            bootstrap_psk: None,
            kme_parts: 1,
            dec_fails: false,
            under_load: false,
            restart_with_state: false,
            preferred_unreachable: false,
            version: keymix::Version::V1,
        }
    }
}

/// Seeded randomness that remembers every draw.
struct RecordingRng {
    inner: SeededRng,
    draws: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl SecureRng for RecordingRng {
    fn fill(&mut self, buf: &mut [u8]) {
        self.inner.fill(buf);
        self.draws.lock().unwrap().push(buf.to_vec());
    }
}

pub struct Side {
    pub ep: Endpoint,
    pub secret: [u8; 32],
    pub public: [u8; 32],
    pub addr: SocketAddr,
    pub draws: Arc<Mutex<Vec<Vec<u8>>>>,
    pub saved: Option<ChainState>,
    pub keys: Vec<EpochKey>,
}

/// A scripted KME pair: deterministic keys, recorded so the vector can pin them.
#[derive(Default)]
pub struct Kme {
    pub store: HashMap<String, Vec<u8>>,
    /// Every key the KME issued, by key ID (the vector names the keys of each Init).
    pub issued: HashMap<String, Vec<u8>>,
    pub next: u64,
    pub parts: usize,
    pub dec_fails: bool,
    pub seed: u8,
}

impl Kme {
    fn answer(&mut self, kind: &KmeRequestKind) -> Result<Vec<QkdKey>, QkdError> {
        match kind {
            KmeRequestKind::EncKeys { size_bits, .. } => {
                let len = (*size_bits / 8) as usize / self.parts;
                let mut keys = Vec::new();
                for _ in 0..self.parts {
                    self.next += 1;
                    let key = spec::sha256(&[&[self.seed; 32][..], &self.next.to_le_bytes()[..]])
                        [..len]
                        .to_vec();
                    let key_id = format!("00000000-0000-4000-8000-{:012x}", self.next);
                    self.store.insert(key_id.clone(), key.clone());
                    self.issued.insert(key_id.clone(), key.clone());
                    keys.push(QkdKey {
                        key_id,
                        key: key.into(),
                    });
                }
                Ok(keys)
            }
            KmeRequestKind::DecKeys { .. } if self.dec_fails => Err(QkdError::Unavailable(
                "vector: the slave KME has no key".into(),
            )),
            KmeRequestKind::DecKeys { key_ids, .. } => Ok(key_ids
                .iter()
                .filter_map(|id| {
                    let key = self.store.remove(id)?;
                    Some(QkdKey {
                        key_id: id.clone(),
                        key: key.into(),
                    })
                })
                .collect()),
        }
    }
}

/// What happened, in order: a datagram sent, or a state file written (`true`: by a).
pub enum Logged {
    Sent(bool, Vec<u8>),
    Persisted(bool, Vec<u8>),
}

pub struct Pair {
    pub sc: Scenario,
    pub a: Side,
    pub b: Side,
    /// Sides replaced by a restart, with their draws and epoch keys.
    pub retired: Vec<Side>,
    /// Every datagram sent and state file written, in order.
    pub log: Vec<Logged>,
    pub kme: Kme,
    pub start: Instant,
    pub now: Instant,
    pub wire: Vec<(bool, Vec<u8>)>,
    pub recorded: Vec<(bool, Vec<u8>)>,
}

#[allow(clippy::too_many_arguments)]
fn make_side(
    sc: &Scenario,
    secret: [u8; 32],
    peer_public: [u8; 32],
    qkd: QkdPolicy,
    rng_seed: u8,
    addr: &str,
    at: (Instant, SystemTime),
    state: Option<ChainState>,
    endpoint_known: bool,
) -> Side {
    let draws = Arc::new(Mutex::new(Vec::new()));
    let rng = RecordingRng {
        inner: SeededRng::new([rng_seed; 32]),
        draws: draws.clone(),
    };
    let mut cfg = EndpointConfig::new(StaticSecret::from(secret));
    cfg.keylog = true;
    let mut ep = Endpoint::new(cfg, at.0, at.1, Box::new(rng));
    let mut pc = PeerConfig::new(PublicKey::from(peer_public));
    pc.qkd = qkd;
    pc.peer_sae_id = Some("SAE_PEER".into());
    pc.bootstrap_psk = sc.bootstrap_psk.map(zeroize::Zeroizing::new);
    pc.state = state;
    pc.endpoint_known = endpoint_known;
    pc.min_version = sc.version;
    pc.max_version = sc.version;
    ep.add_peer(pc, at.0).expect("valid vector peer");
    Side {
        secret,
        public: *PublicKey::from(&StaticSecret::from(secret)).as_bytes(),
        addr: addr.parse().unwrap(),
        ep,
        draws,
        saved: None,
        keys: Vec::new(),
    }
}

impl Pair {
    pub fn new(sc: Scenario) -> Self {
        let start = Instant::now();
        let wall = UNIX_EPOCH + Duration::from_secs(WALL_CLOCK_SECS);
        let (sa, sb) = (
            [sc.seed.wrapping_mul(3).wrapping_add(1); 32],
            [sc.seed.wrapping_mul(5).wrapping_add(2); 32],
        );
        let pa = *PublicKey::from(&StaticSecret::from(sa)).as_bytes();
        let pb = *PublicKey::from(&StaticSecret::from(sb)).as_bytes();
        let at = (start, wall);
        // Which side (true: a) has no endpoint for its peer, if any.
        let unreachable_a = sc.preferred_unreachable.then_some(pa < pb);
        let a = make_side(
            &sc,
            sa,
            pb,
            sc.qkd_a,
            sc.seed.wrapping_add(16),
            "192.0.2.1:51820",
            at,
            None,
            unreachable_a != Some(true),
        );
        let b = make_side(
            &sc,
            sb,
            pa,
            sc.qkd_b,
            sc.seed.wrapping_add(32),
            "[2001:db8::2]:51821",
            at,
            None,
            unreachable_a != Some(false),
        );
        let kme = Kme {
            parts: sc.kme_parts,
            dec_fails: sc.dec_fails,
            seed: sc.seed,
            ..Kme::default()
        };
        let mut pair = Pair {
            sc,
            a,
            b,
            retired: Vec::new(),
            log: Vec::new(),
            kme,
            start,
            now: start,
            wire: Vec::new(),
            recorded: Vec::new(),
        };
        if pair.sc.under_load {
            // Only the responder (not the preferred initiator) answers with cookies first.
            let responder = if pair.preferred_is_a() {
                &mut pair.b
            } else {
                &mut pair.a
            };
            responder.ep.set_under_load(Some(true));
        }
        pair
    }

    /// Drains events before datagrams, as the driver must (state is persisted first).
    fn pump(&mut self) -> bool {
        let mut progressed = false;
        let Pair {
            a,
            b,
            kme,
            now,
            wire,
            log,
            ..
        } = self;
        for (from_a, side) in [(true, a), (false, b)] {
            while let Some(ev) = side.ep.poll_event() {
                progressed = true;
                match ev {
                    Event::PersistState { state, .. } => {
                        log.push(Logged::Persisted(from_a, state.to_bytes().to_vec()));
                        side.saved = Some(*state);
                    }
                    Event::EpochKey { key, .. } => side.keys.push(key),
                    Event::Expired { .. } => {}
                    Event::KmeRequest(req) => {
                        let r = kme.answer(&req.kind);
                        side.ep.handle_kme_result(*now, req.id, r);
                    }
                }
            }
            while let Some(t) = side.ep.poll_transmit() {
                progressed = true;
                log.push(Logged::Sent(from_a, t.payload.clone()));
                wire.push((from_a, t.payload));
            }
        }
        progressed
    }

    fn flush(&mut self) {
        loop {
            while self.pump() {}
            if self.wire.is_empty() {
                return;
            }
            for (from_a, p) in std::mem::take(&mut self.wire) {
                self.recorded.push((from_a, p.clone()));
                let (src, to) = if from_a {
                    (self.a.addr, &mut self.b)
                } else {
                    (self.b.addr, &mut self.a)
                };
                let _ = to.ep.handle_datagram(self.now, src, &p);
            }
        }
    }

    pub fn run_until(&mut self, until: Instant) {
        loop {
            self.flush();
            let next = [self.a.ep.poll_timeout(), self.b.ep.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= until => {
                    self.now = t.max(self.now);
                    self.a.ep.handle_timeout(self.now);
                    self.b.ep.handle_timeout(self.now);
                }
                _ => break,
            }
        }
        self.now = until;
    }

    pub fn preferred_is_a(&self) -> bool {
        self.a.public < self.b.public
    }

    /// Restarts the preferred initiator from the state file it last wrote, with fresh
    /// randomness; returns that file.
    pub fn restart_preferred(&mut self) -> Vec<u8> {
        self.restart_preferred_as(true)
    }

    /// Restarts the preferred initiator with fresh randomness, from the state file it last
    /// wrote (`keep_state`) or without one; returns that file (even when not kept).
    pub fn restart_preferred_as(&mut self, keep_state: bool) -> Vec<u8> {
        let wall = UNIX_EPOCH + Duration::from_secs(WALL_CLOCK_SECS) + (self.now - self.start);
        let is_a = self.preferred_is_a();
        let (old, peer_public, qkd) = if is_a {
            (&self.a, self.b.public, self.sc.qkd_a)
        } else {
            (&self.b, self.a.public, self.sc.qkd_b)
        };
        let state = old.saved.clone().expect("a state file");
        let file = state.to_bytes().to_vec();
        let state = keep_state.then_some(state);
        let addr = old.addr.to_string();
        let fresh = make_side(
            &self.sc,
            old.secret,
            peer_public,
            qkd,
            self.sc.seed.wrapping_add(64),
            &addr,
            (self.now, wall),
            state,
            true,
        );
        let old = std::mem::replace(if is_a { &mut self.a } else { &mut self.b }, fresh);
        self.retired.push(old);
        file
    }
}

impl Pair {
    /// Both live sides, then the retired ones.
    pub fn sides(&self) -> impl Iterator<Item = &Side> {
        [&self.a, &self.b].into_iter().chain(self.retired.iter())
    }

    /// (initiator, responder) for an exchange whose Init names `s_init`: the live sides.
    pub fn roles(&self, s_init: &[u8; 32]) -> (&Side, &Side) {
        if *s_init == self.a.public {
            (&self.a, &self.b)
        } else {
            (&self.b, &self.a)
        }
    }

    /// Runs until side a has emitted `a_keys` epoch keys and side b `b_keys` (a restarted
    /// side counts those since its restart).
    pub fn run_until_keys(&mut self, a_keys: usize, b_keys: usize) {
        let deadline = self.now + Duration::from_secs(400);
        while self.a.keys.len() < a_keys || self.b.keys.len() < b_keys {
            assert!(self.now < deadline, "the exchange did not complete");
            self.run_until(self.now + Duration::from_secs(1));
        }
    }
}
