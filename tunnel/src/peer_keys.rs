//! Which peer holds a static public key: the lookup a WireGuard handshake initiation needs
//! once it is opened (and an operator's `trident reset`). A hash map, so a hub with a
//! thousand peers does not compare the key with every peer's for each initiation.

use std::collections::HashMap;

use keymix::PeerId;

use crate::peer::Peer;

#[derive(Default)]
pub struct PeerKeys {
    by_key: HashMap<[u8; 32], PeerId>,
}

impl PeerKeys {
    /// The live peers of `peers` (ids are their indices); a removed peer is never matched
    /// again. Should a key appear twice, the first peer keeps it, as a scan in order would.
    pub fn of(peers: &[Peer]) -> Self {
        let mut by_key = HashMap::with_capacity(peers.len());
        for (id, p) in peers.iter().enumerate().filter(|(_, p)| !p.removed) {
            by_key.entry(*p.public_key.as_bytes()).or_insert(id);
        }
        Self { by_key }
    }

    pub fn get(&self, key: &[u8; 32]) -> Option<PeerId> {
        self.by_key.get(key).copied()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use keymix::{PublicKey, QkdPolicy, StaticSecret};

    use super::*;

    fn peer(seed: u8) -> Peer {
        let key = PublicKey::from(&StaticSecret::from([seed; 32]));
        Peer::new(
            key,
            None,
            Vec::new(),
            None,
            Duration::from_secs(180),
            QkdPolicy::Off,
        )
    }

    #[test]
    fn finds_live_peers_by_key_and_never_a_removed_one() {
        let mut peers: Vec<Peer> = (1..=200).map(peer).collect();
        if let Some(p) = peers.get_mut(7) {
            p.removed = true;
        }
        let keys = PeerKeys::of(&peers);
        for (id, p) in peers.iter().enumerate() {
            let want = (!p.removed).then_some(id);
            assert_eq!(keys.get(p.public_key.as_bytes()), want);
        }
        assert_eq!(keys.get(&[0; 32]), None);
        // A re-added key (a new peer id after a reload) maps to the live peer.
        peers.push(peer(8));
        assert_eq!(
            PeerKeys::of(&peers).get(peer(8).public_key.as_bytes()),
            Some(200)
        );
    }
}
