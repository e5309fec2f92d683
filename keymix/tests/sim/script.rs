//! Scripted runs of the simulated world for the named scenarios: a fixed configuration,
//! a wire that delivers in order through a filter, and small helpers to look at it.

use std::time::{Duration, Instant};

use keymix::{PeerStatus, QkdPolicy, StaticSecret, Version};

use super::adversary::Rogue;
use super::world::{LastCommit, Packet, SimConfig, World, A, B};

/// A configuration with fixed static keys; A holds the smaller public key (the preferred
/// initiator) unless `a_prefers` is false.
pub fn config(epoch_s: u64, reject_s: u64, qkd: QkdPolicy, a_prefers: bool) -> SimConfig {
    let (mut sa, mut sb) = ([0x11u8; 32], [0x22u8; 32]);
    let pa = *keymix::PublicKey::from(&StaticSecret::from(sa)).as_bytes();
    let pb = *keymix::PublicKey::from(&StaticSecret::from(sb)).as_bytes();
    if (pa < pb) != a_prefers {
        std::mem::swap(&mut sa, &mut sb);
    }
    SimConfig {
        epoch: Duration::from_secs(epoch_s),
        reject_after: Duration::from_secs(reject_s),
        qkd,
        bootstrap_psk: None,
        endpoint_known: [true, true],
        kme_timeout: Duration::from_secs(3),
        secrets: [sa, sb],
        // The named scenarios forge and inspect version-1 messages unless they say
        // otherwise (`with_version`).
        versions: [(Version::V1, Version::V1); 2],
    }
}

/// `cfg` with both sides speaking `v` by default (version 2 falls back to 1 only for a
/// peer that has never spoken 2).
pub fn with_version(mut cfg: SimConfig, v: Version) -> SimConfig {
    cfg.versions = [(Version::V1, v); 2];
    cfg
}

impl World {
    /// Runs for `d`: every datagram `keep` accepts is delivered in order, the others are
    /// lost; timers fire on time. Panics on an invariant violation.
    pub fn run_for(&mut self, d: Duration, mut keep: impl FnMut(&Packet) -> bool) {
        let end = self.now + d;
        loop {
            self.step += 1;
            while let Some(p) = self.in_flight.pop_front() {
                if keep(&p) {
                    self.deliver(&p);
                }
            }
            self.assert_clean();
            if self.now >= end {
                return;
            }
            let t = self.next_deadline().map_or(end, |t| t.min(end));
            self.advance_to(t.max(self.now + Duration::from_millis(1)).min(end));
        }
    }

    pub fn assert_clean(&mut self) {
        if let Some(f) = self.monitor.failure.take() {
            let log: Vec<String> = self.log.iter().cloned().collect();
            panic!("{f}\n{}", log.join("\n"));
        }
    }

    pub fn status(&self, x: usize) -> PeerStatus {
        self.sides[x].ep.peer_status(self.sides[x].peer, self.now)
    }

    /// Both sides' last commits, if they agree (same epoch, same PSK).
    fn agreed_commits(&self) -> Option<[LastCommit; 2]> {
        match (self.sides[A].last_commit, self.sides[B].last_commit) {
            (Some(a), Some(b)) if a.epoch == b.epoch && a.psk == b.psk => Some([a, b]),
            _ => None,
        }
    }

    /// The epoch both sides agree on, if any.
    pub fn agreed(&self) -> Option<u64> {
        self.agreed_commits().map(|[a, _]| a.epoch)
    }

    /// When each side committed the epoch both agree on, if they agree.
    pub fn agreed_commit_times(&self) -> Option<[Instant; 2]> {
        self.agreed_commits().map(|c| c.map(|c| c.at))
    }

    /// Whether both sides agree on an epoch that each committed at or after `t0`.
    pub fn agreed_since(&self, t0: Instant) -> bool {
        self.agreed_commit_times()
            .is_some_and(|[a, b]| a >= t0 && b >= t0)
    }

    /// When the later side committed the epoch both agree on. Panics without one.
    pub fn last_agreed_at(&self) -> Instant {
        let [a, b] = self
            .agreed_commit_times()
            .expect("the sides do not agree on an epoch");
        a.max(b)
    }

    /// Runs (delivering everything) until both sides agree on an epoch committed after
    /// the call began; returns how long that took, or None within `limit`.
    pub fn time_to_fresh_agreement(&mut self, limit: Duration) -> Option<Duration> {
        let t0 = self.now;
        while self.now < t0 + limit {
            self.run_for(Duration::from_millis(100), |_| true);
            if self.agreed_since(t0) {
                return Some(self.now - t0);
            }
        }
        None
    }

    /// Adds a rogue with `impersonates`' static key and lets its timers run, so that its
    /// first Init waits in its outbox. Returns its index.
    pub fn add_rogue(&mut self, impersonates: usize, has_psk: bool) -> usize {
        let rogue = Rogue::new(self, impersonates, has_psk);
        self.rogues.push(rogue);
        let i = self.rogues.len() - 1;
        let later = self.now + Duration::from_secs(2);
        self.rogues[i].ep.handle_timeout(later);
        self.drain_rogue(i);
        i
    }
}

impl World {
    /// Restarts side `x` (keeping its state file) with its wall clock `offset` seconds off
    /// true time, as a gateway booted before NTP sync.
    pub fn restart_with_clock(&mut self, x: usize, offset: i64) {
        self.sides[x].wall_offset = offset;
        self.restart(x, true);
    }

    /// Steps side `x`'s wall clock to `offset` seconds off true time while it runs (NTP).
    pub fn step_clock(&mut self, x: usize, offset: i64) {
        self.sides[x].wall_offset = offset;
        self.set_clock(x);
    }

    /// The operator writes bootstrap PSK `psk` into side `x`'s config and reloads it.
    pub fn reload_psk(&mut self, x: usize, psk: [u8; 32]) {
        if !self.status(x).psk_rotation {
            self.sides[x].prev_psk = Some(self.sides[x].psk);
        }
        self.sides[x].psk = Some(psk);
        let mut pc = self.peer_config(x, None);
        pc.bootstrap_psk = Some(zeroize::Zeroizing::new(psk));
        let (peer, now) = (self.sides[x].peer, self.now);
        self.set_clock(x);
        self.sides[x].ep.update_peer(peer, pc, now);
        self.drain(x, super::driver::Cause::Operator);
    }
}
