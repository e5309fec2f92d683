//! What both data planes (the built-in one and the external-WireGuard one) do alike with
//! keymix's input and output, so the rules that matter for security, such as "a peer
//! roams only on an authenticated keymix datagram", are written once.

use std::net::SocketAddr;
use std::time::Instant;

use base64::Engine;
use keymix::{Endpoint, EpochKey, PeerId};

use crate::control::ControlReply;
use crate::keylog::KeyLog;
use crate::metrics;

/// Hands a keymix datagram to the endpoint. Returns the peer it authenticated as, whose
/// endpoint the caller moves to `src` (roaming); anything else is dropped and counted by
/// keymix itself.
pub(crate) fn accept_datagram(
    endpoint: &mut Endpoint,
    src: SocketAddr,
    datagram: &[u8],
) -> Option<PeerId> {
    match endpoint.handle_datagram(Instant::now(), src, datagram) {
        Ok(peer) => peer,
        Err(reason) => {
            tracing::trace!(%src, "keymix dropped: {}", reason.as_str());
            None
        }
    }
}

/// Records a new epoch's key where the operator asked for it: the key log (opt-in, for the
/// audit) and the metrics' exchange timing. Installing the PSK is each data plane's own.
pub(crate) fn record_epoch(
    keylog: Option<&mut KeyLog>,
    metrics: Option<&metrics::Shared>,
    endpoint: &Endpoint,
    peer: PeerId,
    key: &EpochKey,
) {
    if let (Some(log), Some(entry)) = (keylog, &key.keylog) {
        log.append(entry);
    }
    if let Some(m) = metrics {
        m.observe_epoch(endpoint, peer, key);
    }
}

/// An operator's `trident reset` of the peer with public key `peer` (at index `id`, if this
/// interface has it): forgets the chain, so the next exchange is a bootstrap. The caller
/// drains keymix afterwards, since the reset may start an exchange at once.
pub(crate) fn operator_reset(
    endpoint: &mut Endpoint,
    interface: &str,
    id: Option<PeerId>,
    peer: &[u8; 32],
) -> ControlReply {
    let key = base64::engine::general_purpose::STANDARD.encode(peer);
    let Some(id) = id else {
        return ControlReply::error(format!("interface {interface} has no peer {key}"));
    };
    tracing::warn!(interface = %interface, peer = %key, "operator reset: keymix chain with this peer forgotten; next exchange is a bootstrap (C_0)");
    endpoint.reset_peer(id, Instant::now());
    ControlReply::ok(format!(
        "{interface}: chain with peer {key} reset; a bootstrap exchange starts now"
    ))
}
