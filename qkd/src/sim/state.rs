//! The shared state of one running KME: its configuration, key pool and key store.

use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use super::config::KmeConfig;
use super::link::LinkClient;
use super::pool::{effective_rate_bps, KeyPool};
use super::store::KeyStore;

/// Floor of the number of keys that may wait at this KME for their slave SAE.
const MIN_WAITING_CAPACITY: u64 = 10_000;

/// The two knobs that can change while running (see the reload watcher).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RuntimeParams {
    pub key_rate_bps: f64,
    pub qber: Option<f64>,
}

impl RuntimeParams {
    pub fn effective_rate_bps(&self) -> f64 {
        effective_rate_bps(self.key_rate_bps, self.qber)
    }
}

pub struct KmeState {
    /// As loaded at start; `key_rate_bps` and `qber` here are the start values only.
    pub config: KmeConfig,
    pub link: LinkClient,
    pool: Mutex<(KeyPool, RuntimeParams)>,
    store: Mutex<KeyStore>,
}

/// A poisoned lock only means a request task panicked mid-way; the data stays consistent
/// because every critical section is a single arithmetic or map update.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl KmeState {
    pub fn new(config: KmeConfig, link: LinkClient) -> Self {
        let runtime = RuntimeParams {
            key_rate_bps: config.key_rate_bps,
            qber: config.qber,
        };
        let initial_keys = config.initial_key_count.unwrap_or(config.max_key_count);
        let pool = KeyPool::new(
            initial_keys.saturating_mul(u64::from(config.key_size)),
            config.capacity_bits(),
            runtime.effective_rate_bps(),
            Instant::now(),
        );
        // Keys waiting for their slave are a memory cost, not key material we can refill:
        // bound them, but never below what a few busy epochs of a small pool need.
        let store_capacity =
            usize::try_from(config.max_key_count.max(MIN_WAITING_CAPACITY)).unwrap_or(usize::MAX);
        let key_ttl = config.key_ttl();
        Self {
            config,
            link,
            pool: Mutex::new((pool, runtime)),
            store: Mutex::new(KeyStore::new(store_capacity, key_ttl)),
        }
    }

    pub fn runtime(&self) -> RuntimeParams {
        lock(&self.pool).1
    }

    /// Apply new run-time parameters; returns whether anything changed.
    pub fn set_runtime(&self, params: RuntimeParams) -> bool {
        let mut guard = lock(&self.pool);
        let (pool, current) = &mut *guard;
        if *current == params {
            return false;
        }
        pool.set_rate(params.effective_rate_bps(), Instant::now());
        *current = params;
        true
    }

    /// Keys of `key_size` bits on hand.
    pub fn stored_key_count(&self) -> u64 {
        let bits = lock(&self.pool).0.available_bits(Instant::now());
        bits / u64::from(self.config.key_size.max(1))
    }

    pub fn effective_rate_bps(&self) -> f64 {
        lock(&self.pool).0.rate_bps()
    }

    pub fn try_draw(&self, bits: u64) -> bool {
        lock(&self.pool).0.try_take(bits, Instant::now())
    }

    pub fn give_back(&self, bits: u64) {
        lock(&self.pool).0.give_back(bits, Instant::now());
    }

    /// The peer KME drew `bits` from the link's shared key stream.
    pub fn peer_drew(&self, bits: u64) {
        lock(&self.pool).0.consume_up_to(bits, Instant::now());
    }

    pub fn store(&self) -> MutexGuard<'_, KeyStore> {
        lock(&self.store)
    }
}
