//! State the endpoint shares with every peer session: our static key, randomness, the
//! output queues and the counters. Sessions borrow it mutably during each input.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use boringtun::x25519::{PublicKey, StaticSecret};

use crate::counters::Counters;
use crate::event::{Destination, Event, KmeRequestId, Transmit};
use crate::rng::SecureRng;

pub(crate) struct Shared {
    pub static_secret: StaticSecret,
    pub static_public: [u8; 32],
    pub rng: Box<dyn SecureRng>,
    pub transmits: VecDeque<Transmit>,
    pub events: VecDeque<Event>,
    pub counters: Counters,
    pub keylog: bool,
    /// Which peer's session waits for each pending KME request.
    pub kme_owner: HashMap<KmeRequestId, crate::event::PeerId>,
    next_request: u64,
    base_instant: Instant,
    base_unix: Duration,
    last_timestamp: u64,
}

impl Shared {
    pub fn new(
        static_secret: StaticSecret,
        rng: Box<dyn SecureRng>,
        now: Instant,
        wall_clock: SystemTime,
        keylog: bool,
    ) -> Self {
        let static_public = *PublicKey::from(&static_secret).as_bytes();
        Self {
            static_secret,
            static_public,
            rng,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            counters: Counters::default(),
            keylog,
            kme_owner: HashMap::new(),
            next_request: 0,
            base_instant: now,
            base_unix: wall_clock.duration_since(UNIX_EPOCH).unwrap_or_default(),
            last_timestamp: 0,
        }
    }

    pub fn send(&mut self, destination: Destination, payload: Vec<u8>) {
        self.transmits.push_back(Transmit {
            destination,
            payload,
        });
    }

    pub fn rng_word(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.rng.fill(&mut b);
        u32::from_le_bytes(b)
    }

    /// A fresh, non-zero exchange index.
    pub fn next_index(&mut self) -> u32 {
        loop {
            let i = self.rng_word();
            if i != 0 {
                return i;
            }
        }
    }

    pub fn next_request_id(&mut self) -> KmeRequestId {
        self.next_request += 1;
        KmeRequestId(self.next_request)
    }

    /// A new reading of the wall clock (see [`crate::Endpoint::set_wall_clock`]).
    pub fn set_wall_clock(&mut self, now: Instant, wall_clock: SystemTime) {
        self.base_instant = now;
        self.base_unix = wall_clock.duration_since(UNIX_EPOCH).unwrap_or_default();
    }

    /// Wall-clock nanoseconds now, as the Init timestamps count them.
    pub fn timestamp_now(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.base_instant);
        u64::try_from((self.base_unix + since).as_nanos()).unwrap_or(u64::MAX)
    }

    /// Wall-clock nanoseconds for an Init, strictly increasing within this process so the
    /// responder's replay check never rejects our own next Init.
    pub fn timestamp(&mut self, now: Instant) -> u64 {
        let t = self.timestamp_now(now);
        self.last_timestamp = t.max(self.last_timestamp.saturating_add(1));
        self.last_timestamp
    }
}
