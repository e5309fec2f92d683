//! Retransmission timing of one exchange: first after 1 s, doubling, at most 4 s apart,
//! with +-10% jitter so that two sides (or many peers) do not fall into step.

use std::time::{Duration, Instant};

use super::EXCHANGE_LIFETIME;

const RETRANSMIT_FIRST: Duration = Duration::from_secs(1);
pub(super) const RETRANSMIT_MAX: Duration = Duration::from_secs(4);

pub(super) struct Retransmit {
    pub next: Instant,
    interval: Duration,
    pub give_up: Instant,
}

impl Retransmit {
    pub fn new(now: Instant) -> Self {
        Self {
            next: now + RETRANSMIT_FIRST,
            interval: RETRANSMIT_FIRST,
            give_up: now + EXCHANGE_LIFETIME,
        }
    }

    pub fn schedule_next(&mut self, now: Instant, rng_word: u32) {
        self.interval = (self.interval * 2).min(RETRANSMIT_MAX);
        self.next = now + jitter(self.interval, rng_word);
    }
}

/// `d` scaled by a factor in [0.9, 1.1) chosen by `rng_word`.
pub(super) fn jitter(d: Duration, rng_word: u32) -> Duration {
    let permille = 900 + u64::from(rng_word % 200);
    let millis = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(millis.saturating_mul(permille) / 1000)
}
