//! One simulation run: a configuration and an adversary profile drawn from the seed,
//! `steps` adversarial steps, then the adversary stops and the pair must agree on a
//! fresh epoch in time (liveness), with the operator resetting what status asks for.

use std::time::Duration;

use keymix::QkdPolicy;
use keymix::Version;

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
        versions: [(Version::V1, Version::LATEST); 2],
    }
}

/// The keymix versions each side speaks, drawn from a stream of its own so that adding
/// versions left every other draw of a seed as it was: mostly the default (2, falling back
/// to 1), some pairs on version 1 only, one side not upgraded yet, or one side that
/// refuses version 1 (with a peer that speaks 2).
pub fn draw_versions(seed: u64) -> [(Version, Version); 2] {
    use Version::{V1, V2};
    let mut r = Prng::new(seed ^ 0x7665_7273_696f_6e73);
    let default = (V1, V2);
    match r.below(20) {
        0..=10 => [default; 2],
        11..=13 => [(V1, V1); 2],
        14..=15 => [(V1, V1), default],
        16..=17 => [default, (V1, V1)],
        18 => [(V2, V2), default],
        _ => [default, (V2, V2)],
    }
}

pub fn run_seed(seed: u64, steps: u64) -> Result<Outcome, Failure> {
    let mut world_slot: Option<World> = None;
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut r = Prng::new(seed);
        let mut cfg = draw_config(&mut r);
        cfg.versions = draw_versions(seed);
        let profile = Profile::draw(&mut r);
        let world_seed = r.next_u64();
        let prefers_psk = !r.chance(250);
        let world = world_slot.insert(World::new(world_seed, cfg));
        world.seed = seed;
        world.operator_prefers_psk = prefers_psk;
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
        "epoch {:?} reject_after {:?} qkd {} psk {} endpoint_known {:?} versions {:?}",
        c.epoch,
        c.reject_after,
        c.qkd,
        c.bootstrap_psk.is_some(),
        c.endpoint_known,
        c.versions
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
    // first contact, or with the bootstrap PSK) is compromised: the operator who learns of
    // the theft gives both sides a new bootstrap PSK (the thief lacks it) and resets that
    // side. Nothing in status points at it (see SIMULATION.md).
    let compromised: Vec<usize> = [A, B]
        .into_iter()
        .filter(|&x| w.sides[x].tainted || w.sides[x].rogue_entered)
        .collect();
    if !compromised.is_empty() {
        w.new_bootstrap_psk();
    }
    for x in compromised {
        w.note(|| format!("operator: reset compromised {}", name(x)));
        w.operator_reset(x, false);
        resets += 1;
    }
    let mut t0 = w.now;
    let mut debt = clock_debt(w);
    loop {
        w.step += 1;
        w.deliver_all()?;
        if w.agreed_since(t0) {
            super::steady::calm_phase(w)?;
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
pub fn clock_debt(w: &World) -> Duration {
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

impl World {
    /// The operator follows whatever status advises (`hint`, or a `reason` naming a
    /// reset), including advice an attacker provoked, once it has shown for `patience`:
    /// a careful operator gives both sides a new bootstrap PSK, another acknowledges a
    /// static-key-only re-bootstrap (`trident reset --static-only`) where the advice says.
    /// Returns how many actions it took (at most `budget`).
    pub fn operator(&mut self, patience: Duration, budget: u32) -> u32 {
        let mut done = 0;
        for x in [A, B] {
            let st = self.sides[x].ep.peer_status(self.sides[x].peer, self.now);
            let advice = [st.hint.clone(), st.reason.clone()]
                .into_iter()
                .flatten()
                .find(|t| t.contains("trident reset"));
            let Some(advice) = advice else {
                self.sides[x].reset_asked_since = None;
                continue;
            };
            // A human reads the message, not its running counters.
            let message: String = advice.chars().filter(|c| !c.is_ascii_digit()).collect();
            if self.sides[x].last_acted_reason.as_deref() == Some(message.as_str()) {
                continue;
            }
            let since = *self.sides[x].reset_asked_since.get_or_insert(self.now);
            if self.now.saturating_duration_since(since) < patience || done >= budget {
                continue;
            }
            self.sides[x].last_acted_reason = Some(message);
            self.sides[x].reset_asked_since = None;
            // Invariant 6: advice rests on local facts only. Every reset advice says this
            // side holds no chain; advice while it holds one was provoked from outside.
            let warranted = !self.sides[x].has_chain();
            if !warranted {
                self.fail(format!(
                    "invariant 6: {} advises a reset while it holds a chain: {advice}",
                    name(x)
                ));
            }
            let target = if advice.contains("on the peer") {
                1 - x
            } else {
                x
            };
            // "give both sides a new bootstrap PSK ... and the pair re-bootstraps by itself":
            // no reset needed; otherwise the reset the advice names.
            let psk_suffices = advice.contains("re-bootstraps by itself");
            if self.operator_prefers_psk {
                self.note(|| format!("operator: new bootstrap PSK on both sides ({advice})"));
                self.new_bootstrap_psk();
                if !psk_suffices {
                    self.operator_reset(target, false);
                }
            } else {
                self.note(|| {
                    format!(
                        "operator: reset --static-only on {} ({advice})",
                        name(target)
                    )
                });
                // An acknowledgement given on provoked advice does not lower the bar.
                self.operator_reset(target, warranted);
            }
            done += 1;
        }
        done
    }

    /// `trident genpsk`, written into both configs, `trident reload` on both sides.
    pub fn new_bootstrap_psk(&mut self) {
        let psk = self.rng.bytes32();
        self.cfg.bootstrap_psk = Some(psk);
        for x in [A, B] {
            let old = self.sides[x].psk;
            if self.sides[x].prev_psk.is_none()
                || !self.sides[x]
                    .ep
                    .peer_status(self.sides[x].peer, self.now)
                    .psk_rotation
            {
                self.sides[x].prev_psk = Some(old);
            }
            self.sides[x].psk = Some(psk);
            let (peer, now) = (self.sides[x].peer, self.now);
            let pc = self.peer_config(x, None);
            self.set_clock(x);
            self.sides[x].ep.update_peer(peer, pc, now);
            self.drain(x, super::driver::Cause::Operator);
        }
    }

    /// `trident reset` on side `x` (with `--static-only` when `static_only`); a refusal
    /// is what a real operator would see, and changes nothing.
    pub fn operator_reset(&mut self, x: usize, static_only: bool) {
        let (peer, now) = (self.sides[x].peer, self.now);
        self.set_clock(x);
        match self.sides[x].ep.reset_peer(peer, now, static_only) {
            Ok(basis) => {
                self.note(|| format!("{} reset ({basis:?})", name(x)));
                self.sides[x].no_chain = super::world::NoChain::Reset {
                    static_only: basis == keymix::ResetBasis::StaticOnlyAcknowledged,
                };
                self.monitor.lineage_break();
                self.drain(x, super::driver::Cause::Operator);
            }
            Err(e) => self.note(|| format!("{} reset refused: {e}", name(x))),
        }
    }
}
