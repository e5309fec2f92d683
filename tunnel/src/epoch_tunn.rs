//! One boringtun Tunn keyed with one epoch's PSK, plus what status reports about it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use boringtun::noise::rate_limiter::RateLimiter;
use boringtun::noise::Tunn;
use keymix::{EpochKey, PublicKey, Role, SourceMask, StaticSecret};
use zeroize::Zeroizing;

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
    /// The epoch's PSK, kept to key a fresh Tunn for each WireGuard initiation the peer
    /// sends ([`Self::answerer`]); `None` for a plain WireGuard peer.
    psk: Option<Zeroizing<[u8; 32]>>,
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
        let kept = Zeroizing::new(*key.psk);
        let tunn = keyed_tunn(
            &kept,
            index,
            static_private,
            peer_public,
            persistent_keepalive,
            rate_limiter,
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
            psk: Some(kept),
        })
    }

    /// A plain WireGuard peer's one Tunn (static PSK or none, no epochs).
    pub fn classic(tunn: Tunn, index: u32, now: Instant) -> Self {
        Self {
            epoch: 0,
            index,
            tunn,
            sources: SourceMask::default(),
            qkd_key_ids: Vec::new(),
            // Not a responder waiting for a keymix initiator: WireGuard's own timers
            // start handshakes when traffic needs them.
            role: Role::Initiator,
            established: now,
            installed: now,
            psk: None,
        }
    }

    /// A fresh Tunn of the same epoch and PSK, with its own `index`, to answer one
    /// WireGuard initiation. A initiation needs only the sender's static key, so it is
    /// answered outside the Tunns that carry traffic: a forged one never touches a live
    /// session, and the answer counts only once the peer's data under it decrypts.
    /// `None` for a plain peer (no epoch PSK).
    pub fn answerer(
        &self,
        index: u32,
        static_private: &StaticSecret,
        peer_public: PublicKey,
        persistent_keepalive: Option<u16>,
        rate_limiter: Arc<RateLimiter>,
    ) -> Option<Self> {
        let psk = self.psk.as_ref()?;
        let tunn = keyed_tunn(
            psk,
            index,
            static_private,
            peer_public,
            persistent_keepalive,
            rate_limiter,
        );
        Some(Self {
            epoch: self.epoch,
            index,
            tunn,
            sources: self.sources,
            qkd_key_ids: self.qkd_key_ids.clone(),
            role: self.role,
            established: self.established,
            installed: Instant::now(),
            psk: Some(psk.clone()),
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

fn keyed_tunn(
    psk: &[u8; 32],
    index: u32,
    static_private: &StaticSecret,
    peer_public: PublicKey,
    persistent_keepalive: Option<u16>,
    rate_limiter: Arc<RateLimiter>,
) -> Tunn {
    // boringtun takes the PSK by value as a plain array and keeps it in its handshake
    // state; this stack copy is the one unavoidable unzeroized copy on our side.
    let psk: [u8; 32] = *psk;
    Tunn::new(
        static_private.clone(),
        peer_public,
        Some(psk),
        persistent_keepalive,
        index,
        Some(rate_limiter),
    )
}
