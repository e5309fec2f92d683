//! What both data planes (the built-in one and the external-WireGuard one) do alike with
//! keymix's input and output, so the rules that matter for security, such as "a peer
//! roams only on an authenticated keymix datagram", are written once.

use std::net::SocketAddr;
use std::time::Instant;

use base64::Engine;
use keymix::{Endpoint, EpochKey, PeerId, ResetBasis};

use crate::control::ControlReply;
use crate::keylog::KeyLog;
use crate::metrics;

/// Gives keymix the wall clock before an input, so a step of the system clock (NTP after
/// boot) is honoured from the next input on, not only after a restart.
pub(crate) fn read_wall_clock(endpoint: &mut Endpoint) {
    endpoint.set_wall_clock(Instant::now(), std::time::SystemTime::now());
}

/// Hands a keymix datagram to the endpoint. Returns the peer it authenticated as, whose
/// endpoint the caller moves to `src` (roaming); anything else is dropped and counted by
/// keymix itself.
pub(crate) fn accept_datagram(
    endpoint: &mut Endpoint,
    src: SocketAddr,
    datagram: &[u8],
) -> Option<PeerId> {
    read_wall_clock(endpoint);
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
/// interface has it): forgets the chain, so the next exchange is a bootstrap; refused
/// without a bootstrap PSK unless the operator acknowledged a static-key-only first
/// contact (`static_only`). The caller drains keymix afterwards, since the reset may start
/// an exchange at once.
pub(crate) fn operator_reset(
    endpoint: &mut Endpoint,
    interface: &str,
    id: Option<PeerId>,
    peer: &[u8; 32],
    static_only: bool,
) -> ControlReply {
    let key = base64::engine::general_purpose::STANDARD.encode(peer);
    let Some(id) = id else {
        return ControlReply::error(format!("interface {interface} has no peer {key}"));
    };
    read_wall_clock(endpoint);
    match endpoint.reset_peer(id, Instant::now(), static_only) {
        Ok(ResetBasis::BootstrapPsk) => {
            tracing::warn!(interface = %interface, peer = %key, "operator reset: keymix chain with this peer forgotten; the next exchange is a bootstrap by the bootstrap PSK");
            ControlReply::ok(format!(
                "{interface}: chain with peer {key} reset; a bootstrap by the bootstrap PSK \
                 starts now"
            ))
        }
        Ok(ResetBasis::StaticOnlyAcknowledged) => {
            tracing::warn!(interface = %interface, peer = %key, "operator reset acknowledged as static-only: keymix chain with this peer forgotten; the next first contact rests on the static keys alone");
            ControlReply::ok(format!(
                "{interface}: chain with peer {key} reset; the next first contact rests on the \
                 static keys alone (as acknowledged), status shows it until the chain has \
                 grown again; a bootstrap exchange starts now"
            ))
        }
        Err(refused) => ControlReply::error(format!("{interface}: peer {key}: {refused}")),
    }
}
