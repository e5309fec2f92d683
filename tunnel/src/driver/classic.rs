//! Plain WireGuard peers (`[[peer]] keymix = "off"`), for migrating sites one at a time: a
//! stock WireGuard (wireguard-go, the kernel) on the other side, one Tunn for the peer's
//! life keyed with the configured static PSK or none. keymix never hears of them, so they
//! come after the keymix peers in `Driver::peers` (keymix's peer ids stay indices).

use std::time::{Duration, Instant};

use boringtun::noise::Tunn;
use keymix::QkdPolicy;

use super::Driver;
use crate::epoch_tunn::EpochTunn;
use crate::epoch_tunns::EpochTunns;
use crate::error::TunnelError;
use crate::peer::Peer;
use crate::settings::PeerSettings;

impl Driver {
    /// Adds the plain peers with their one Tunn each (settings without `classic` are
    /// skipped: they are keymix peers).
    pub(super) fn add_classic_peers(
        &mut self,
        settings: Vec<PeerSettings>,
    ) -> Result<(), TunnelError> {
        let now = Instant::now();
        for p in settings {
            let Some(classic) = p.classic else { continue };
            let id = self.peers.len();
            // Epoch 0: no keymix epoch is ever 0, and nothing routes by it for this peer.
            let index = self
                .indices
                .allocate(id, 0)
                .map_err(|e| TunnelError::Settings(format!("plain peer: {e}")))?;
            // boringtun takes the PSK by value (the one unzeroized copy, as in EpochTunn).
            let psk: Option<[u8; 32]> = classic.preshared_key.as_deref().copied();
            let public = p.keymix.public_key;
            let tunn = Tunn::new(
                self.static_private.clone(),
                public,
                psk,
                p.persistent_keepalive,
                index,
                Some(self.rate_limiter.clone()),
            );
            // Never past its reject age: a static key has no epochs.
            let mut peer = Peer::new(
                public,
                p.endpoint,
                p.allowed_ips,
                p.persistent_keepalive,
                Duration::MAX,
                QkdPolicy::Off,
            );
            peer.classic = true;
            peer.current = Some(EpochTunns::new(
                EpochTunn::classic(tunn, index, now),
                Duration::MAX,
            ));
            for net in &peer.allowed_ips {
                self.allowed_ips.insert(*net, id);
            }
            tracing::warn!(
                peer = %peer.short(),
                static_psk = classic.preshared_key.is_some(),
                "plain WireGuard peer (keymix = \"off\"): no ML-KEM, no QKD, no epochs"
            );
            self.peers.push(peer);
        }
        Ok(())
    }
}

/// Status of a plain peer: up once WireGuard has a session.
pub(super) fn state(peer: &Peer) -> &'static str {
    if peer.tunns().any(|t| t.has_session()) {
        "up"
    } else {
        "connecting"
    }
}
