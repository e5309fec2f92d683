//! The simulated world: two honest keymix endpoints A and B with their drivers (the state
//! file, the learned peer endpoint, a KME), the wire, virtual monotonic time and per-side
//! wall clocks. Everything is driven by the run's [`Prng`]: no real time, no threads, no
//! hash-map iteration.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use keymix::qkd::InMemoryKme;
use keymix::{
    ChainState, DropReason, PeerConfig, PeerId, PublicKey, QkdPolicy, StaticSecret, Version,
};
use sha2::{Digest, Sha256};

use super::adversary::Rogue;
use super::kme::PendingKme;
use super::prng::Prng;
pub use super::side::{NoChain, Side};

pub const A: usize = 0;
pub const B: usize = 1;
pub const SAE: [&str; 2] = ["SAE_A", "SAE_B"];
/// Where the adversary's own machine sits (rogue endpoints may also spoof A's or B's).
pub const ROGUE_ADDR: &str = "203.0.113.66:51820";
/// The in-flight queue is bounded: the oldest datagram is lost beyond this.
const MAX_IN_FLIGHT: usize = 64;
/// How many sent datagrams the adversary remembers for replays.
const MAX_HISTORY: usize = 256;

pub fn name(x: usize) -> &'static str {
    ["A", "B"][x]
}

pub fn addr(x: usize) -> SocketAddr {
    let s = ["192.0.2.1:51820", "198.51.100.2:51820"][x];
    s.parse().unwrap_or_else(|_| unreachable!())
}

pub fn sha(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

#[derive(Clone)]
pub struct SimConfig {
    pub epoch: Duration,
    pub reject_after: Duration,
    pub qkd: QkdPolicy,
    pub bootstrap_psk: Option<[u8; 32]>,
    /// Whether each side's config names the other's endpoint.
    pub endpoint_known: [bool; 2],
    pub kme_timeout: Duration,
    pub secrets: [[u8; 32]; 2],
    /// The keymix versions each side speaks: (min_version, max_version).
    pub versions: [(Version, Version); 2],
}

/// Who made a datagram: what invariant (3) judges a KME request by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Honest(usize),
    /// A rogue endpoint holding the static key of `impersonates`.
    Rogue {
        impersonates: usize,
    },
    /// Random or mutated bytes with a valid mac1.
    Forged,
}

#[derive(Clone)]
pub struct Packet {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub payload: Vec<u8>,
    pub origin: Origin,
    /// The adversary may hold a datagram back until then.
    pub not_before: Instant,
}

/// The last commit of a side, for the liveness check.
#[derive(Clone, Copy)]
pub struct LastCommit {
    pub epoch: u64,
    pub psk: [u8; 32],
    pub at: Instant,
}

pub struct World {
    pub seed: u64,
    pub rng: Prng,
    pub cfg: SimConfig,
    pub start: Instant,
    pub now: Instant,
    pub wall0: SystemTime,
    pub sides: Vec<Side>,
    pub kmes: Vec<InMemoryKme>,
    pub pending_kme: Vec<PendingKme>,
    pub rogues: Vec<Rogue>,
    pub in_flight: VecDeque<Packet>,
    pub history: VecDeque<Packet>,
    pub log: VecDeque<String>,
    pub log_cap: usize,
    pub monitor: super::invariants::Monitor,
    pub step: u64,
    /// Completed exchanges (commits by the initiating honest side).
    pub exchanges: u64,
    /// Bytes each honest side sent, for the amplification scenario.
    pub bytes_sent: [u64; 2],
    /// The adversary stopped: rogues are silent.
    pub quiet: bool,
    /// Commits judged at the end of the drain (driver.rs).
    pub pending_commits: Vec<PendingCommit>,
    /// Inits each honest side sent (hash, epoch): an Init is *superseded* once its sender
    /// committed its epoch, sent another Init or restarted; a copy of a superseded Init
    /// delivered again is a replay, whatever the receiver made of the first copy.
    pub sent_inits: [Vec<([u8; 32], u64)>; 2],
    pub superseded: BTreeSet<[u8; 32]>,
    /// The epoch of every Init an honest side sent (kept across restarts).
    pub init_epochs: BTreeMap<[u8; 32], u64>,
    /// The operator installs new bootstrap PSKs (a careful one) or acknowledges a
    /// static-key-only re-bootstrap when status advises a reset: drawn per seed.
    pub operator_prefers_psk: bool,
}

pub type PendingCommit = (
    usize,
    u64,
    [u8; 32],
    Option<[u8; 32]>,
    Option<keymix::AuthBasis>,
    Option<(u64, [u8; 32], u32)>,
);

impl World {
    pub fn new(seed: u64, cfg: SimConfig) -> Self {
        let start = Instant::now();
        let mut rng = Prng::new(seed);
        let kme_seed = rng.bytes32();
        let (ka, kb) = InMemoryKme::pair_seeded(SAE[A], SAE[B], kme_seed);
        let mut w = World {
            seed,
            rng,
            cfg,
            start,
            now: start,
            wall0: UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            sides: Vec::new(),
            kmes: vec![ka, kb],
            pending_kme: Vec::new(),
            rogues: Vec::new(),
            in_flight: VecDeque::new(),
            history: VecDeque::new(),
            log: VecDeque::new(),
            // TRIDENT_SIM_LOG=<lines>: a longer step log for diagnosis.
            log_cap: std::env::var("TRIDENT_SIM_LOG")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(80),
            monitor: Default::default(),
            step: 0,
            exchanges: 0,
            bytes_sent: [0; 2],
            quiet: false,
            pending_commits: Vec::new(),
            sent_inits: [Vec::new(), Vec::new()],
            superseded: BTreeSet::new(),
            init_epochs: BTreeMap::new(),
            operator_prefers_psk: true,
        };
        for x in [A, B] {
            let side = w.make_side(x, None, 0, 0);
            w.sides.push(side);
        }
        w
    }

    pub fn note(&mut self, line: impl FnOnce() -> String) {
        if self.log_cap == 0 {
            return;
        }
        if self.log.len() >= self.log_cap {
            self.log.pop_front();
        }
        let t = self.now.saturating_duration_since(self.start).as_secs_f64();
        let l = line();
        self.log.push_back(format!("#{} t={t:.3} {l}", self.step));
    }

    /// The wall clock side `x` would read now.
    pub fn wall(&self, x: usize, offset: i64) -> SystemTime {
        let t = self.wall0 + self.now.saturating_duration_since(self.start);
        if offset >= 0 {
            t + Duration::from_secs(offset.unsigned_abs())
        } else {
            t - Duration::from_secs(offset.unsigned_abs())
        }
        .max(UNIX_EPOCH + Duration::from_secs(x as u64))
    }

    pub fn peer_config(&self, x: usize, state: Option<ChainState>) -> PeerConfig {
        let other = StaticSecret::from(self.cfg.secrets[1 - x]);
        let mut pc = PeerConfig::new(PublicKey::from(&other));
        pc.epoch = self.cfg.epoch;
        pc.reject_after = self.cfg.reject_after;
        pc.qkd = self.cfg.qkd;
        pc.peer_sae_id = Some(SAE[1 - x].to_owned());
        pc.kme_timeout = self.cfg.kme_timeout;
        pc.bootstrap_psk = self.cfg.bootstrap_psk.map(zeroize::Zeroizing::new);
        pc.endpoint_known = self.cfg.endpoint_known[x];
        pc.state = state;
        (pc.min_version, pc.max_version) = self.cfg.versions[x];
        pc
    }

    /// The epoch of an Init side `x` just sent. A version-2 Init hides it: the world opens
    /// it as only the two sides could, with `x`'s chain (or C_0 and the DH with the
    /// receiver's static key), as persisted before the Init left.
    fn epoch_of_own_init(&self, x: usize, payload: &[u8]) -> u64 {
        if payload.get(1) == Some(&1) {
            return keymix::message::Init::parse(payload).map_or(0, |i| i.epoch);
        }
        let Ok(wire) = keymix::message_v2::InitV2::parse(payload) else {
            return 0;
        };
        let side = &self.sides[x];
        let receiver = StaticSecret::from(self.cfg.secrets[1 - x]);
        let receiver_public = *PublicKey::from(&receiver).as_bytes();
        let dh = receiver.diffie_hellman(&PublicKey::from(wire.e_init));
        let mut keys = Vec::new();
        for psk in [Some(side.psk), side.prev_psk].into_iter().flatten() {
            let c0 = keymix::schedule::chain0_with(Version::V2.labels(), psk.as_ref());
            keys.push(keymix::hide::boot_init_key(
                &c0,
                dh.as_bytes(),
                &wire.e_init,
                &receiver_public,
            ));
            if let Some(st) = side.saved.as_ref().filter(|s| s.epoch > 0) {
                let prk = keymix::hide::HidePrk::new(&st.chain, psk.as_ref());
                keys.push(prk.init_key(&wire.e_init));
            }
        }
        keys.iter()
            .find_map(|k| keymix::reconstruct::open_init_v2(payload, k))
            .map_or(0, |i| i.epoch)
    }

    /// Queues a datagram sent by honest side `x`; the adversary sees a copy.
    pub fn send_from(&mut self, x: usize, dst: Option<SocketAddr>, payload: Vec<u8>) {
        let Some(dst) = dst else {
            self.sides[x].no_endpoint_drops += 1;
            return;
        };
        self.bytes_sent[x] += payload.len() as u64;
        if payload.first() == Some(&keymix::message::TYPE_INIT) {
            let h = sha(&payload);
            if !self.sent_inits[x].iter().any(|(s, _)| *s == h) {
                for (old, _) in &self.sent_inits[x] {
                    self.superseded.insert(*old);
                }
                let epoch = self.epoch_of_own_init(x, &payload);
                self.sent_inits[x].push((h, epoch));
                self.init_epochs.insert(h, epoch);
            }
        }
        let p = Packet {
            src: addr(x),
            dst,
            payload,
            origin: Origin::Honest(x),
            not_before: self.now,
        };
        if dst == addr(1 - x) {
            // The rogue that impersonates the receiver gets a copy: it is on the path.
            self.feed_rogue(1 - x, &p);
        }
        if self.history.len() >= MAX_HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(p.clone());
        if self.in_flight.len() >= MAX_IN_FLIGHT {
            self.in_flight.pop_front();
        }
        self.in_flight.push_back(p);
    }

    /// Delivers everything in flight, in order; stops at the first invariant violation.
    pub fn deliver_all(&mut self) -> Result<(), String> {
        while let Some(p) = self.in_flight.pop_front() {
            self.deliver(&p);
            if let Some(f) = self.monitor.failure.take() {
                return Err(f);
            }
        }
        Ok(())
    }

    /// Which honest side an address belongs to.
    pub fn side_at(&self, a: SocketAddr) -> Option<usize> {
        [A, B].into_iter().find(|&x| addr(x) == a)
    }

    /// Delivers one datagram to the honest side at its destination, drives that side's
    /// outputs and checks the invariants. Returns the endpoint's verdict.
    pub fn deliver(&mut self, p: &Packet) -> Option<Result<Option<PeerId>, DropReason>> {
        let y = self.side_at(p.dst)?;
        let hash = sha(&p.payload);
        // A replay: a copy of a datagram this side accepted, or of an Init it was handed
        // before whose sender has moved past it (committed its epoch, sent another Init or
        // restarted) while this side's chain already reached that epoch.
        let sent_epoch = self.init_epochs.get(&hash).copied();
        let stale_init = self.superseded.contains(&hash)
            && self.sides[y].delivered.contains(&hash)
            && sent_epoch.is_some_and(|e| e <= self.sides[y].saved.as_ref().map_or(0, |s| s.epoch));
        let replay = self.sides[y].accepted.contains(&hash) || stale_init;
        self.sides[y].delivered.insert(hash);
        self.set_clock(y);
        let legit = !replay
            && match p.origin {
                Origin::Honest(o) => o != y,
                Origin::Rogue { impersonates } => {
                    impersonates != y && self.rogue_entitled(impersonates)
                }
                Origin::Forged => false,
            };
        let r = self.sides[y]
            .ep
            .handle_datagram(self.now, p.src, &p.payload);
        let kind = p.payload.first().copied().unwrap_or(0);
        self.note(|| {
            format!(
                "deliver {:?} type={kind:#x} len={} -> {} replay={replay}: {r:?}",
                p.origin,
                p.payload.len(),
                name(y)
            )
        });
        let side = &mut self.sides[y];
        match r {
            Ok(peer) => {
                side.accepted_count += 1;
                side.accepted.insert(hash);
                if peer.is_some() {
                    side.peer_addr = Some(p.src);
                }
                if let Origin::Rogue { .. } = p.origin {
                    // Accepted (an Init is answered at its source without moving the
                    // endpoint): what the victim holds may now descend from the rogue (an
                    // answered exchange survives a restart as its tentative chain).
                    side.rogue_entered = true;
                    side.tainted = true;
                }
            }
            Err(reason) => *side.drops.entry(reason.as_str()).or_default() += 1,
        }
        let cause = super::driver::Cause::Datagram { legit, replay };
        if let (true, Ok(Some(_))) = (replay, r) {
            self.fail(format!(
                "invariant 3: a replayed datagram was accepted by {} as authenticated",
                name(y)
            ));
        }
        if let (Origin::Forged, Ok(Some(_))) = (p.origin, r) {
            self.fail(format!(
                "invariant 3: a forged datagram authenticated at {}",
                name(y)
            ));
        }
        self.drain(y, cause);
        self.check_counters(y);
        Some(r)
    }

    /// Whether the policy lets the rogue holding `impersonates`' static key in at the
    /// other side right now: only when the adversary holds every secret the policy relies
    /// on there (the victim's chain descends from the rogue; or a bootstrap PSK the victim
    /// accepts; or, with no chain, a static-key-only bootstrap the policy allows: first
    /// contact, a lost state file, or an operator's acknowledged static-only reset).
    pub fn rogue_entitled(&self, impersonates: usize) -> bool {
        let victim = &self.sides[1 - impersonates];
        let accepted = victim.accepted_psks();
        let holds_psk = self.rogues.iter().any(|r| {
            r.impersonates == impersonates && r.psk.is_some() && accepted.contains(&r.psk)
        });
        victim.tainted || holds_psk || victim.static_only_allowed()
    }

    /// Hands side `x`'s endpoint its wall clock, as a driver does with every input.
    pub fn set_clock(&mut self, x: usize) {
        let wall = self.wall(x, self.sides[x].wall_offset);
        let now = self.now;
        self.sides[x].ep.set_wall_clock(now, wall);
    }

    /// Invariant 5: every drop was counted under its reason.
    pub fn check_counters(&mut self, y: usize) {
        let side = &self.sides[y];
        let c = side.ep.counters();
        let mut bad = None;
        for (reason, n) in c.iter() {
            let ours = side.drops.get(reason.as_str()).copied().unwrap_or(0);
            if ours != n {
                bad = Some(format!("{reason}: endpoint {n}, driver saw {ours}"));
            }
        }
        if c.accepted != side.accepted_count {
            bad = Some(format!(
                "accepted: endpoint {}, driver saw {}",
                c.accepted, side.accepted_count
            ));
        }
        if let Some(b) = bad {
            self.fail(format!("invariant 5: drop counters of {}: {b}", name(y)));
        }
    }

    /// The earliest time anything in the world wants to act.
    pub fn next_deadline(&self) -> Option<Instant> {
        let eps = self.sides.iter().filter_map(|s| s.ep.poll_timeout());
        let rogues = self
            .rogues
            .iter()
            .filter(|_| !self.quiet)
            .filter_map(|r| r.ep.poll_timeout());
        let kme = self.pending_kme.iter().filter_map(|p| p.due);
        eps.chain(rogues).chain(kme).min()
    }

    /// Moves virtual time to `t` (never back) and fires every timer and KME answer due.
    pub fn advance_to(&mut self, t: Instant) {
        self.now = self.now.max(t);
        self.answer_due_kme();
        for x in [A, B] {
            // A timer may fall due again while another is handled (a failed KME request
            // frees the way for an initiation); a driver calls again. More than a few
            // rounds at one instant is a busy loop.
            let now = self.now;
            self.set_clock(x);
            for round in 0.. {
                self.sides[x].ep.handle_timeout(now);
                self.drain(x, super::driver::Cause::Timer);
                if self.sides[x].ep.poll_timeout().is_none_or(|d| d > now) {
                    break;
                }
                if round == 4 {
                    self.fail(format!("timer of {} stays due: busy loop", name(x)));
                    break;
                }
            }
        }
        for i in 0..self.rogues.len() {
            if self.quiet {
                break;
            }
            let now = self.now;
            self.rogues[i].ep.handle_timeout(now);
            self.drain_rogue(i);
        }
    }

    pub fn fail(&mut self, what: String) {
        self.note(|| format!("VIOLATION: {what}"));
        if self.monitor.failure.is_none() {
            self.monitor.failure = Some(what);
        }
    }
}
