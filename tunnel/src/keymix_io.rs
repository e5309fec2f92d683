//! What both data planes (the built-in one and the external-WireGuard one) do alike with
//! keymix's input and output, so the rules that matter for security, such as "a peer
//! roams only on an authenticated keymix datagram", are written once.

use std::net::SocketAddr;
use std::time::Instant;

use keymix::{Endpoint, EpochKey, PeerId};

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
