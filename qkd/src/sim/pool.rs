//! The simulated key pool: secret key bits that accrue at the link's secret key rate, up to
//! the pool's capacity, and are drawn when keys are handed out.
//!
//! The secret key rate follows BB84's asymptotic secret fraction r = 1 - 2 h(Q) (Shor-Preskill),
//! where Q is the quantum bit error rate and h the binary entropy: error correction costs
//! h(Q) and privacy amplification another h(Q) of every sifted bit. r reaches zero at
//! Q ~ 11 %, which is how an eavesdropper shows up in this simulator: raise `qber` and the
//! pool stops filling.

use std::time::Instant;

/// Binary entropy h(p) = -p log2 p - (1-p) log2 (1-p), with h(0) = h(1) = 0.
/// Outside [0, 1] (not a probability) the result is NaN.
pub fn binary_entropy(p: f64) -> f64 {
    if !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    let term = |x: f64| if x <= 0.0 { 0.0 } else { -x * x.log2() };
    term(p) + term(1.0 - p)
}

/// BB84 secret fraction r = 1 - 2 h(Q), clamped to [0, 1]: no key at all past Q ~ 11 %.
/// A QBER outside [0, 0.5] is not physical for a working link and yields 0.
pub fn secret_fraction(qber: f64) -> f64 {
    if !(0.0..=0.5).contains(&qber) {
        return 0.0;
    }
    (1.0 - 2.0 * binary_entropy(qber)).clamp(0.0, 1.0)
}

/// The secret key rate in bit/s: `key_rate_bps` scaled by the secret fraction when a QBER is
/// configured (`None` means the configured rate is already the secret key rate).
pub fn effective_rate_bps(key_rate_bps: f64, qber: Option<f64>) -> f64 {
    let rate = if key_rate_bps.is_finite() {
        key_rate_bps.max(0.0)
    } else {
        0.0
    };
    match qber {
        Some(q) => rate * secret_fraction(q),
        None => rate,
    }
}

/// Key bits on hand, refilled lazily from the elapsed time whenever it is looked at.
#[derive(Debug)]
pub struct KeyPool {
    bits: f64,
    capacity_bits: f64,
    rate_bps: f64,
    last: Instant,
}

impl KeyPool {
    pub fn new(initial_bits: u64, capacity_bits: u64, rate_bps: f64, now: Instant) -> Self {
        let capacity_bits = capacity_bits as f64;
        Self {
            bits: (initial_bits as f64).min(capacity_bits),
            capacity_bits,
            rate_bps: rate_bps.max(0.0),
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.bits = (self.bits + elapsed * self.rate_bps).min(self.capacity_bits);
        self.last = now;
    }

    /// Change the secret key rate from `now` on; bits accrued so far at the old rate stay.
    pub fn set_rate(&mut self, rate_bps: f64, now: Instant) {
        self.refill(now);
        self.rate_bps = rate_bps.max(0.0);
    }

    pub fn rate_bps(&self) -> f64 {
        self.rate_bps
    }

    /// Whole bits on hand now.
    pub fn available_bits(&mut self, now: Instant) -> u64 {
        self.refill(now);
        self.bits.floor() as u64
    }

    /// Take `bits` if that many are on hand; false (and nothing taken) otherwise.
    pub fn try_take(&mut self, bits: u64, now: Instant) -> bool {
        self.refill(now);
        let wanted = bits as f64;
        if wanted > self.bits {
            return false;
        }
        self.bits -= wanted;
        true
    }

    /// Remove up to `bits`: the peer KME drew them, and both ends of a QKD link hold the
    /// same key stream, so our copy of those bits is gone too.
    pub fn consume_up_to(&mut self, bits: u64, now: Instant) {
        self.refill(now);
        self.bits = (self.bits - bits as f64).max(0.0);
    }

    /// Put back bits drawn for keys that were never handed out (the peer could not take them).
    pub fn give_back(&mut self, bits: u64, now: Instant) {
        self.refill(now);
        self.bits = (self.bits + bits as f64).min(self.capacity_bits);
    }
}
