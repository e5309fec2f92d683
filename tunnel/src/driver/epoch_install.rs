//! Epoch installation: keymix agreed on a PSK epoch, so a new boringtun Tunn keyed with it
//! becomes the peer's current one (and its index routable), and the older ones go when
//! keymix expires them. This is where "no live PSK, no traffic" is kept.

use base64::Engine;
use boringtun::noise::TunnResult;
use keymix::{EpochKey, PeerId, Role};

use super::{Driver, Io};
use crate::counters::TunnelDrop;
use crate::epoch_tunn::EpochTunn;
use crate::tunn_index::epoch_tag;

impl Driver {
    pub(super) fn install_epoch(
        &mut self,
        io: &Io,
        peer_id: PeerId,
        key: &EpochKey,
        out: &mut [u8],
    ) {
        let Some(peer) = self.peers.get_mut(peer_id) else {
            return;
        };
        let index = match self.indices.allocate(peer_id, key.epoch) {
            Ok(index) => index,
            Err(e) => {
                tracing::error!(peer = %peer.short(), epoch = key.epoch, "{e}");
                return;
            }
        };
        let tunn = match EpochTunn::new(
            key,
            index,
            &self.static_private,
            peer.public_key,
            peer.persistent_keepalive,
            self.rate_limiter.clone(),
        ) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(peer = %peer.short(), "{e}");
                self.indices.release(index);
                return;
            }
        };
        for dropped in peer.install(tunn) {
            self.indices.release(dropped.index);
        }
        // The one info line per epoch commit: which peer (by key), which epoch, which sources.
        tracing::info!(
            peer = %base64::engine::general_purpose::STANDARD.encode(peer.public_key.as_bytes()),
            epoch = key.epoch,
            sources = %key.sources,
            role = ?key.role,
            "PSK epoch installed"
        );
        // The keymix initiator starts the new epoch's WireGuard handshake right away, so the
        // new session is up long before the previous PSK reaches its reject age; the
        // responder waits for it (two crossing initiations would only cost a round trip).
        if key.role == Role::Initiator {
            let endpoint = peer.endpoint;
            if let Some(current) = peer.current.as_mut() {
                if let TunnResult::WriteToNetwork(init) =
                    current.primary.tunn.format_handshake_initiation(out, false)
                {
                    match endpoint {
                        Some(to) => io.send_udp(init, to, &mut self.counters),
                        None => self.counters.count(TunnelDrop::NoEndpoint),
                    }
                }
            }
        }
        self.answer_parked(io, peer_id, epoch_tag(key.epoch), out);
    }

    pub(super) fn expire_epoch(&mut self, peer_id: PeerId, epoch: u64) {
        let Some(peer) = self.peers.get_mut(peer_id) else {
            return;
        };
        let dropped = peer.expire(epoch);
        if !dropped.is_empty() && peer.current.is_none() {
            tracing::warn!(
                peer = %peer.short(),
                epoch,
                "last PSK epoch expired: no traffic until keymix agrees on a new one"
            );
        }
        for t in dropped {
            self.indices.release(t.index);
        }
    }
}
