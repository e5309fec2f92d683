//! One simulation run: a configuration and an adversary profile drawn from the seed,
//! `steps` adversarial steps, then the adversary stops and the pair must agree on a
//! fresh epoch in time (liveness), with the operator resetting what status asks for.

use std::time::{Duration, Instant};

use keymix::{PeerState, QkdPolicy};

use super::adversary::Profile;
use super::prng::Prng;
use super::world::{name, SimConfig, World, A, B};

/// The responder's and initiator's exchange lifetime in keymix (not exported).
pub const EXCHANGE_LIFETIME: Duration = Duration::from_secs(30);
/// The operator looks at status this long before acting while the attack goes on.
const OPERATOR_PATIENCE: Duration = Duration::from_secs(60);
const MAX_QUIET_RESETS: u32 = 4;

pub struct Outcome {
    pub steps: u64,
    pub exchanges: u64,
    pub simulated: Duration,
    pub hijacks: u64,
    pub resets: u32,
}

pub struct Failure {
    pub seed: u64,
    pub steps: u64,
    pub what: String,
    pub log: Vec<String>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "simulation seed {} failed: {}", self.seed, self.what)?;
        writeln!(f, "last steps:")?;
        for l in &self.log {
            writeln!(f, "  {l}")?;
        }
        write!(
            f,
            "replay: TRIDENT_SIM_SEED={} TRIDENT_SIM_STEPS={} cargo test -p keymix --test sim \
             -- --nocapture",
            self.seed, self.steps
        )
    }
}

/// The configuration a seed stands for.
pub fn draw_config(r: &mut Prng) -> SimConfig {
    let epoch = Duration::from_secs(r.range(10, 40));
    let reject_after = epoch + Duration::from_secs(r.range(5, 40));
    let qkd = [QkdPolicy::Off, QkdPolicy::Preferred, QkdPolicy::Required][r.index(3)];
    let endpoint_known = [[true, true], [true, false], [false, true]][r.index(3)];
    SimConfig {
        epoch,
        reject_after,
        qkd,
        bootstrap_psk: r.chance(400).then(|| r.bytes32()),
        endpoint_known,
        kme_timeout: Duration::from_secs(3),
        secrets: [r.bytes32(), r.bytes32()],
    }
}

pub fn run_seed(seed: u64, steps: u64) -> Result<Outcome, Failure> {
    let mut world_slot: Option<World> = None;
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut r = Prng::new(seed);
        let cfg = draw_config(&mut r);
        let profile = Profile::draw(&mut r);
        let world = world_slot.insert(World::new(r.next_u64(), cfg));
        world.seed = seed;
        let line = format!("config {} profile {profile:?}", summary(&world.cfg));
        world.note(|| line);
        run_world(world, &profile, steps)
    }));
    let fail = |w: Option<&World>, what: String| Failure {
        seed,
        steps,
        what,
        log: w
            .map(|w| w.log.iter().cloned().collect())
            .unwrap_or_default(),
    };
    match r {
        Ok(Ok(o)) => Ok(o),
        Ok(Err(what)) => Err(fail(world_slot.as_ref(), what)),
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(fail(
                world_slot.as_ref(),
                format!("invariant 5: panic: {msg}"),
            ))
        }
    }
}

fn summary(c: &SimConfig) -> String {
    format!(
        "epoch {:?} reject_after {:?} qkd {} psk {} endpoint_known {:?}",
        c.epoch,
        c.reject_after,
        c.qkd,
        c.bootstrap_psk.is_some(),
        c.endpoint_known
    )
}

fn run_world(w: &mut World, profile: &Profile, steps: u64) -> Result<Outcome, String> {
    let mut resets = 0;
    for _ in 0..steps {
        w.step += 1;
        w.adversary_step(profile);
        resets += w.operator(OPERATOR_PATIENCE, u32::MAX);
        if let Some(f) = w.monitor.failure.take() {
            return Err(f);
        }
    }
    resets += quiet_phase(w)?;
    Ok(Outcome {
        steps: w.step,
        exchanges: w.exchanges,
        simulated: w.now.saturating_duration_since(w.start),
        hijacks: w.monitor.hijacks,
        resets,
    })
}

/// How long the pair may take to agree once the attack stops: the overdue initiation of
/// the side that is not the preferred initiator (9/8 of an epoch, +10% jitter), one
/// exchange lifetime for an exchange already under way, a KME timeout and a pause.
pub fn liveness_bound(cfg: &SimConfig) -> Duration {
    cfg.epoch * 5 / 4 + EXCHANGE_LIFETIME + cfg.kme_timeout + Duration::from_secs(5)
}

/// The adversary stops: every datagram is delivered, the KMEs heal, nobody restarts.
/// The operator resets what status asks for. Returns the number of resets.
fn quiet_phase(w: &mut World) -> Result<u32, String> {
    w.note(|| "--- adversary stops ---".into());
    w.quiet = true;
    for p in &mut w.in_flight {
        p.not_before = w.now;
    }
    w.heal_kmes();
    let mut resets = 0;
    // A side whose chain descends from a rogue the policy let in (a stolen static key at
    // first contact, or with the bootstrap PSK) is compromised: the operator who learns
    // of the theft resets it. Nothing in status points at it (see SIMULATION.md).
    for x in [A, B] {
        if w.sides[x].tainted || w.sides[x].rogue_entered {
            w.note(|| format!("operator: reset compromised {}", name(x)));
            let (peer, now) = (w.sides[x].peer, w.now);
            w.sides[x].ep.reset_peer(peer, now);
            w.monitor.lineage_break();
            w.drain(x, super::driver::Cause::Operator);
            resets += 1;
        }
    }
    let mut t0 = w.now;
    let mut debt = clock_debt(w);
    loop {
        w.step += 1;
        while let Some(p) = w.in_flight.pop_front() {
            w.deliver(&p);
            if let Some(f) = w.monitor.failure.take() {
                return Err(f);
            }
        }
        if agreed_since(w, t0) {
            return Ok(resets);
        }
        let n = w.operator(
            Duration::ZERO,
            MAX_QUIET_RESETS - resets.min(MAX_QUIET_RESETS),
        );
        if n > 0 {
            resets += n;
            t0 = w.now;
            debt = clock_debt(w);
            continue;
        }
        let deadline = t0 + liveness_bound(&w.cfg) + debt;
        if w.now >= deadline {
            let st: Vec<String> = [A, B]
                .iter()
                .map(|&x| {
                    let s = &w.sides[x];
                    format!("{}: {:?}", name(x), s.ep.peer_status(s.peer, w.now))
                })
                .collect();
            return Err(format!(
                "liveness: no fresh common epoch {:?} (+ clock debt {:?}) after the adversary stopped; {}",
                liveness_bound(&w.cfg),
                debt,
                st.join("; ")
            ));
        }
        let t = w.next_deadline().map_or(deadline, |d| d.min(deadline));
        w.advance_to(t.max(w.now + Duration::from_millis(1)));
        if let Some(f) = w.monitor.failure.take() {
            return Err(f);
        }
    }
}

/// How far a side's Init timestamps are behind the newest one its peer has accepted from
/// it (its wall clock went back and it lost its state). Until its clock catches up the peer
/// refuses its Inits as replays: an accepted limit, as in WireGuard, documented in
/// docs/PROTOCOL.md. A reset keeps the timestamps (replay protection), so only time helps.
fn clock_debt(w: &World) -> Duration {
    let mut debt = Duration::ZERO;
    for x in [A, B] {
        let y = 1 - x;
        let Some(peer_saved) = &w.sides[y].saved else {
            continue;
        };
        let wall = w.wall(x, w.sides[x].wall_offset);
        let ours = wall
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let sent = w.sides[x].saved.as_ref().map_or(0, |s| s.last_init_sent_ts);
        // The side's next Init carries max(wall clock, last sent + 1): past the peer's
        // record at once if it already sent beyond it, else only once its clock gets there.
        let behind = if sent > peer_saved.highest_init_ts {
            0
        } else {
            peer_saved.highest_init_ts.saturating_sub(ours)
        };
        debt = debt.max(Duration::from_nanos(behind));
    }
    debt
}

fn agreed_since(w: &World, t0: Instant) -> bool {
    match (w.sides[A].last_commit, w.sides[B].last_commit) {
        (Some(a), Some(b)) => a.at >= t0 && b.at >= t0 && a.epoch == b.epoch && a.psk == b.psk,
        _ => false,
    }
}

impl World {
    /// The operator runs `trident reset` where a status has asked for it for `patience`.
    /// Returns how many resets were done (at most `budget`).
    pub fn operator(&mut self, patience: Duration, budget: u32) -> u32 {
        let mut done = 0;
        for x in [A, B] {
            let st = self.sides[x].ep.peer_status(self.sides[x].peer, self.now);
            let reason = st.reason.unwrap_or_default();
            if st.state != PeerState::Blocked || !reason.contains("trident reset") {
                self.sides[x].reset_asked_since = None;
                continue;
            }
            if self.sides[x].last_acted_reason.as_deref() == Some(reason.as_str()) {
                continue;
            }
            let since = *self.sides[x].reset_asked_since.get_or_insert(self.now);
            if self.now.saturating_duration_since(since) < patience || done >= budget {
                continue;
            }
            self.sides[x].last_acted_reason = Some(reason.clone());
            let target = if reason.contains("on the peer's side") {
                1 - x
            } else {
                x
            };
            self.note(|| format!("operator: reset on {} ({reason})", name(target)));
            self.sides[x].reset_asked_since = None;
            let (peer, now) = (self.sides[target].peer, self.now);
            self.sides[target].ep.reset_peer(peer, now);
            self.monitor.lineage_break();
            self.drain(target, super::driver::Cause::Operator);
            done += 1;
        }
        done
    }
}
