//! Adding a keymix peer: to the endpoint, with its chain restored from the state directory,
//! and as the data plane's `Peer`. `up` and a live reload both add peers here, so a peer
//! added by reload resumes its chain exactly as one present at start does.

use std::time::Instant;

use base64::Engine;
use keymix::{Endpoint, PublicKey};

use crate::chain_store::ChainStore;
use crate::initiation::Tai64n;
use crate::peer::Peer;
use crate::settings::PeerSettings;

/// Registers `p` with keymix, which must number it `expected` (keymix's peer ids are the
/// indices of the data plane's peers). On any error keymix is left without the peer.
pub(super) fn add_keymix_peer(
    endpoint: &mut Endpoint,
    chain_store: Option<&ChainStore>,
    own_key: &PublicKey,
    mut p: PeerSettings,
    expected: usize,
    now: Instant,
) -> Result<Peer, String> {
    let public = p.keymix.public_key;
    let reject_after = p.keymix.reject_after;
    let qkd_policy = p.keymix.qkd;
    p.keymix.endpoint_known = p.endpoint.is_some();
    if let Some(store) = chain_store {
        p.keymix.state = store
            .load(own_key.as_bytes(), public.as_bytes())
            .map_err(|e| {
                format!(
                    "peer {}: {e}",
                    base64::engine::general_purpose::STANDARD.encode(public.as_bytes())
                )
            })?;
    }
    // The WireGuard replay record is kept with the chain, so a recorded initiation stays a
    // replay across a restart.
    let wireguard_record = p
        .keymix
        .state
        .as_ref()
        .map(|s| s.wireguard_initiation)
        .filter(|r| *r != [0; 12])
        .map(Tai64n);
    let b64 = base64::engine::general_purpose::STANDARD;
    let id = endpoint
        .add_peer(p.keymix, now)
        .map_err(|e| format!("peer {}: {e}", b64.encode(public.as_bytes())))?;
    if id != expected {
        // Cannot happen while plain peers come after keymix ones; never misroute if it does.
        endpoint.remove_peer(id);
        return Err(format!(
            "keymix numbered a new peer {id}, expected {expected}"
        ));
    }
    let mut peer = Peer::new(
        public,
        p.endpoint,
        p.allowed_ips,
        p.persistent_keepalive,
        reject_after,
        qkd_policy,
    );
    peer.last_initiation = wireguard_record;
    Ok(peer)
}
