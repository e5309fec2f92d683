//! One boringtun Tunn keyed with one epoch's PSK, plus what status reports about it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use boringtun::noise::rate_limiter::RateLimiter;
use boringtun::noise::Tunn;
use keymix::{EpochKey, PublicKey, Role, SourceMask, StaticSecret};

pub struct EpochTunn {
    pub epoch: u64,
    /// The 24-bit index given to `Tunn::new` (see [`crate::tunn_index`]).
    pub index: u32,
    pub tunn: Tunn,
    pub sources: SourceMask,
    pub qkd_key_ids: Vec<String>,
    pub role: Role,
    /// When keymix established the PSK: the Tunn must not outlive `established + reject_after`.
    pub established: Instant,
    /// When this Tunn was created here.
    pub installed: Instant,
}

/// Why a PSK was not installed.
#[derive(Debug, thiserror::Error)]
#[error("refusing an all-zero PSK for epoch {0}")]
pub struct ZeroPsk(pub u64);

impl EpochTunn {
    pub fn new(
        key: &EpochKey,
        index: u32,
        static_private: &StaticSecret,
        peer_public: PublicKey,
        persistent_keepalive: Option<u16>,
        rate_limiter: Arc<RateLimiter>,
    ) -> Result<Self, ZeroPsk> {
        if key.psk.iter().all(|b| *b == 0) {
            return Err(ZeroPsk(key.epoch));
        }
        // boringtun takes the PSK by value as a plain array and keeps it in its handshake
        // state; this stack copy is the one unavoidable unzeroized copy on our side.
        let psk: [u8; 32] = *key.psk;
        let tunn = Tunn::new(
            static_private.clone(),
            peer_public,
            Some(psk),
            persistent_keepalive,
            index,
            Some(rate_limiter),
        );
        Ok(Self {
            epoch: key.epoch,
            index,
            tunn,
            sources: key.sources,
            qkd_key_ids: key.qkd_key_ids.clone(),
            role: key.role,
            established: key.established,
            installed: Instant::now(),
        })
    }

    /// Whether this Tunn has a WireGuard session to encrypt with (for the responder: once
    /// the initiator's first data or keepalive arrived on it).
    pub fn has_session(&self) -> bool {
        self.tunn.time_since_last_handshake().is_some()
    }

    pub fn last_handshake(&self) -> Option<Duration> {
        self.tunn.time_since_last_handshake()
    }

    /// (tx_bytes, rx_bytes) of user data through this Tunn.
    pub fn traffic(&self) -> (u64, u64) {
        let (_, tx, rx, _, _) = self.tunn.stats();
        (tx as u64, rx as u64)
    }

    pub fn is_past(&self, reject_after: Duration, now: Instant) -> bool {
        now.saturating_duration_since(self.established) >= reject_after
    }
}
