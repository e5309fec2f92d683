//! Which PSK each WireGuard peer holds, and the three ways it changes: an epoch's PSK after
//! key confirmation, a fresh random PSK when the policy is not met (fail closed, and the
//! peer's sessions dropped), and a random PSK at start and clean shutdown (never zero,
//! never a real epoch's key left behind).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use base64::Engine;
use keymix::{EpochKey, PublicKey, QkdPolicy, SourceMask};
use zeroize::Zeroizing;

use super::{WgError, WireGuard};

/// What the WireGuard peer's `preshared_key` is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Installed {
    /// Set at start; nobody knows it. No WireGuard handshake succeeds until an epoch lands.
    StartRandom,
    /// PSK_n of `epoch`, confirmed by both sides at `established`.
    Epoch {
        epoch: u64,
        established: Instant,
        sources: SourceMask,
    },
    /// Fail closed: a fresh random PSK (and the peer's sessions dropped).
    Blocked(&'static str),
}

/// One configured peer of the external data plane.
pub struct ExtPeer {
    pub public_key: PublicKey,
    /// Where its keymix runs (not its WireGuard endpoint, which WireGuard owns).
    pub endpoint: Option<SocketAddr>,
    pub reject_after: Duration,
    pub qkd_policy: QkdPolicy,
    pub installed: Installed,
    /// The last failed attempt's error, retried every tick with `retry`.
    pub last_error: Option<String>,
    retry: Option<Retry>,
}

/// An install that failed and is tried again.
enum Retry {
    Epoch(Zeroizing<[u8; 32]>, Installed),
    Block(&'static str),
}

/// A fresh random PSK; never all-zero (WireGuard reads zero as "no PSK").
pub fn random_psk() -> Result<Zeroizing<[u8; 32]>, WgError> {
    let mut psk = Zeroizing::new([0u8; 32]);
    while psk.iter().all(|b| *b == 0) {
        getrandom::fill(psk.as_mut())
            .map_err(|e| WgError::Io(format!("OS random number generator: {e}")))?;
    }
    Ok(psk)
}

impl ExtPeer {
    pub fn new(
        public_key: PublicKey,
        endpoint: Option<SocketAddr>,
        reject_after: Duration,
        qkd_policy: QkdPolicy,
    ) -> Self {
        Self {
            public_key,
            endpoint,
            reject_after,
            qkd_policy,
            installed: Installed::StartRandom,
            last_error: None,
            retry: None,
        }
    }

    pub fn key_b64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.public_key.as_bytes())
    }

    /// Installs an epoch's PSK (keymix emits `EpochKey` only after mutual confirmation).
    pub fn install_epoch(&mut self, wg: &mut WireGuard, key: &EpochKey) {
        if key.psk.iter().all(|b| *b == 0) {
            tracing::error!(peer = %self.key_b64(), epoch = key.epoch, "refusing an all-zero PSK");
            return;
        }
        let state = Installed::Epoch {
            epoch: key.epoch,
            established: key.established,
            sources: key.sources,
        };
        let psk = Zeroizing::new(*key.psk);
        match wg.set_psk(self.public_key.as_bytes(), &psk) {
            Ok(()) => {
                tracing::info!(peer = %self.key_b64(), epoch = key.epoch, sources = %key.sources,
                    "PSK epoch installed on the WireGuard peer");
                self.installed = state;
                self.last_error = None;
                self.retry = None;
            }
            Err(e) => {
                tracing::error!(peer = %self.key_b64(), epoch = key.epoch, "installing the PSK failed, retrying: {e}");
                self.last_error = Some(e.to_string());
                self.retry = Some(Retry::Epoch(psk, state));
            }
        }
    }

    /// Fail closed: a fresh random PSK, and the peer re-created with its own settings so
    /// WireGuard drops the sessions keyed under the old PSK now (not 180 s later).
    pub fn block(&mut self, wg: &mut WireGuard, reason: &'static str) {
        match block_peer(wg, self.public_key.as_bytes()) {
            Ok(()) => {
                tracing::warn!(peer = %self.key_b64(), reason,
                    "fail closed: random PSK installed, WireGuard sessions dropped");
                self.installed = Installed::Blocked(reason);
                self.last_error = None;
                self.retry = None;
            }
            Err(e) => {
                tracing::error!(peer = %self.key_b64(), reason, "failing closed failed, retrying: {e}");
                self.last_error = Some(e.to_string());
                self.retry = Some(Retry::Block(reason));
            }
        }
    }

    /// A random PSK without touching the sessions (start and clean shutdown: a restart
    /// of Trident keeps the running WireGuard session until the next epoch lands).
    pub fn set_random(&mut self, wg: &mut WireGuard) -> Result<(), WgError> {
        let psk = random_psk()?;
        wg.set_psk(self.public_key.as_bytes(), &psk)
    }

    /// Backstop and retries, once a second: a PSK past its reject age is replaced even if
    /// keymix said nothing, and failed installs are tried again.
    pub fn tick(&mut self, wg: &mut WireGuard, now: Instant) {
        match self.retry.take() {
            Some(Retry::Epoch(psk, state)) => match wg.set_psk(self.public_key.as_bytes(), &psk) {
                Ok(()) => {
                    self.installed = state;
                    self.last_error = None;
                }
                Err(e) => {
                    self.last_error = Some(e.to_string());
                    self.retry = Some(Retry::Epoch(psk, state));
                }
            },
            Some(Retry::Block(reason)) => self.block(wg, reason),
            None => {}
        }
        if let Installed::Epoch { established, .. } = self.installed {
            if now.saturating_duration_since(established) >= self.reject_after {
                self.block(wg, "PSK past its reject age");
            }
        }
    }

    /// Keymix reported `epoch` expired: block if that is what WireGuard holds.
    pub fn expire(&mut self, wg: &mut WireGuard, epoch: u64) {
        if matches!(self.installed, Installed::Epoch { epoch: e, .. } if e <= epoch) {
            self.block(wg, "PSK expired (policy not met)");
        }
    }

    /// For status: what the WireGuard peer holds.
    pub fn describe(&self) -> String {
        match &self.installed {
            Installed::StartRandom => "random (no epoch yet)".to_owned(),
            Installed::Epoch { epoch, .. } => format!("epoch {epoch}"),
            Installed::Blocked(reason) => format!("random (fail closed: {reason})"),
        }
    }
}

fn block_peer(wg: &mut WireGuard, peer: &[u8; 32]) -> Result<(), WgError> {
    let psk = random_psk()?;
    let device = wg.device()?;
    match device.peers.iter().find(|p| &p.public_key == peer) {
        Some(info) => wg.recreate_peer(info, &psk).or_else(|e| {
            // Still fail closed: new handshakes fail, old sessions end at REJECT_AFTER.
            tracing::warn!("re-creating the WireGuard peer failed ({e}); setting its PSK only");
            wg.set_psk(peer, &psk)
        }),
        None => Err(WgError::Protocol(
            "the WireGuard interface no longer has this peer".into(),
        )),
    }
}
