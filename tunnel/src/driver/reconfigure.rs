//! The packet loop's half of a reload ([`crate::reload`]): peers added, removed or changed
//! in place. An unchanged peer keeps its Tunns, epochs and keymix chain; a changed one
//! keeps them too (only its policy, endpoint, allowed IPs or keepalive change). Peer ids
//! are never reused: a removed peer stays as a tombstone in `peers` and in keymix.

use std::collections::BTreeMap;
use std::time::Instant;

use base64::Engine;

use super::keymix_peer::add_keymix_peer;
use super::{Driver, Io};
use crate::allowed_ips::AllowedIps;
use crate::peer::Peer;
use crate::peer_keys::PeerKeys;
use crate::settings::PeerSettings;

impl Driver {
    /// Applies a reloaded peer list; `Err` leaves everything as it was.
    pub(super) fn reconfigure(
        &mut self,
        io: &Io,
        new: Vec<PeerSettings>,
        out: &mut [u8],
    ) -> Result<String, String> {
        let result = self.apply_peers(io, new, out);
        // Also after a failed reload: the peers it added were removed again (tombstones).
        self.peer_keys = PeerKeys::of(&self.peers);
        result
    }

    fn apply_peers(
        &mut self,
        io: &Io,
        new: Vec<PeerSettings>,
        out: &mut [u8],
    ) -> Result<String, String> {
        let (new_keymix, new_classic): (Vec<_>, Vec<_>) =
            new.into_iter().partition(|p| p.classic.is_none());
        self.check_classic_unchanged(&new_classic)?;
        let live: BTreeMap<[u8; 32], usize> = self
            .peers
            .iter()
            .enumerate()
            .filter(|(_, p)| !p.removed && !p.classic)
            .map(|(id, p)| (*p.public_key.as_bytes(), id))
            .collect();
        let added = new_keymix
            .iter()
            .filter(|p| !live.contains_key(p.keymix.public_key.as_bytes()))
            .count();
        if added > 0 && self.peers.iter().any(|p| p.classic) {
            // keymix's ids are indices into `peers`, and plain peers sit after them.
            return Err(
                "adding a peer to an interface with plain WireGuard peers (keymix = \"off\") \
                 needs a restart"
                    .to_owned(),
            );
        }
        let now = Instant::now();
        let b64 = base64::engine::general_purpose::STANDARD;
        let (mut changed, mut unchanged, mut removed) = (0usize, 0usize, 0usize);
        let mut notes: Vec<String> = Vec::new();
        let mut keep = std::collections::BTreeSet::new();
        let (existing, fresh): (Vec<_>, Vec<_>) = new_keymix
            .into_iter()
            .partition(|p| live.contains_key(p.keymix.public_key.as_bytes()));
        // Additions first, the only step that can fail: on failure the ones added by this
        // reload are removed again and nothing else has changed yet.
        let first_new = self.peers.len();
        for p in fresh {
            let key = b64.encode(p.keymix.public_key.as_bytes());
            if let Err(e) = self.add_peer_live(p, now) {
                for id in first_new..self.peers.len() {
                    self.remove_peer(id);
                }
                return Err(e);
            }
            tracing::info!(peer = %key, "reload: peer added");
        }
        for p in existing {
            let key = *p.keymix.public_key.as_bytes();
            let Some(&id) = live.get(&key) else {
                continue;
            };
            keep.insert(id);
            let Some(peer) = self.peers.get_mut(id) else {
                continue;
            };
            let differs = peer.configured_endpoint != p.endpoint
                || peer.allowed_ips != p.allowed_ips
                || peer.persistent_keepalive != p.persistent_keepalive
                || peer.qkd_policy != p.keymix.qkd
                || peer.reject_after != p.keymix.reject_after;
            if differs {
                changed += 1;
                tracing::info!(peer = %b64.encode(key), "reload: peer changed in place");
            } else {
                unchanged += 1;
            }
            if peer.configured_endpoint != p.endpoint {
                peer.configured_endpoint = p.endpoint;
                if p.endpoint.is_some() {
                    peer.endpoint = p.endpoint;
                }
            }
            peer.allowed_ips = p.allowed_ips;
            // New Tunns (from the next epoch on) keep alive at the new interval; boringtun
            // cannot change a live Tunn's.
            peer.persistent_keepalive = p.persistent_keepalive;
            peer.qkd_policy = p.keymix.qkd;
            peer.set_reject_after(p.keymix.reject_after);
            let mut cfg = p.keymix;
            cfg.endpoint_known = peer.endpoint.is_some();
            let keymix_changes = self.endpoint.update_peer(id, cfg, now);
            if !differs && !keymix_changes.is_empty() {
                changed += 1;
                unchanged -= 1;
            }
            for what in keymix_changes {
                tracing::info!(peer = %b64.encode(key), "reload: {what}");
                notes.push(format!("peer {}: {what}", b64.encode(key)));
            }
        }
        for (key, id) in &live {
            if keep.contains(id) {
                continue;
            }
            self.remove_peer(*id);
            removed += 1;
            tracing::info!(peer = %b64.encode(key), "reload: peer removed");
        }
        self.rebuild_allowed_ips();
        self.drain_keymix(io, out);
        let mut summary =
            format!("{added} added, {removed} removed, {changed} changed, {unchanged} unchanged");
        for n in notes {
            summary.push_str("; ");
            summary.push_str(&n);
        }
        Ok(summary)
    }

    /// Plain peers have no keymix id to keep: any change to them needs a restart.
    fn check_classic_unchanged(&self, new: &[PeerSettings]) -> Result<(), String> {
        let old: Vec<&Peer> = self.peers.iter().filter(|p| p.classic).collect();
        let same = old.len() == new.len()
            && new.iter().all(|n| {
                old.iter().any(|o| {
                    o.public_key == n.keymix.public_key
                        && o.configured_endpoint == n.endpoint
                        && o.allowed_ips == n.allowed_ips
                        && o.persistent_keepalive == n.persistent_keepalive
                })
            });
        if same {
            Ok(())
        } else {
            Err("changing plain WireGuard peers (keymix = \"off\") needs a restart".to_owned())
        }
    }

    fn remove_peer(&mut self, id: usize) {
        self.endpoint.remove_peer(id);
        let Some(peer) = self.peers.get_mut(id) else {
            return;
        };
        let mut dropped: Vec<_> = peer
            .current
            .take()
            .into_iter()
            .chain(peer.previous.take())
            .flat_map(crate::epoch_tunns::EpochTunns::into_tunns)
            .collect();
        dropped.extend(peer.slots.clear());
        for t in dropped {
            self.indices.release(t.index);
        }
        peer.removed = true;
        peer.allowed_ips.clear();
        peer.endpoint = None;
        peer.configured_endpoint = None;
    }

    fn add_peer_live(&mut self, p: PeerSettings, now: Instant) -> Result<(), String> {
        let peer = add_keymix_peer(
            &mut self.endpoint,
            self.chain_writer.store(),
            &self.public_key,
            p,
            self.peers.len(),
            now,
        )?;
        self.peers.push(peer);
        Ok(())
    }

    fn rebuild_allowed_ips(&mut self) {
        let mut table = AllowedIps::new();
        for (id, peer) in self.peers.iter().enumerate() {
            for net in &peer.allowed_ips {
                table.insert(*net, id);
            }
        }
        self.allowed_ips = table;
    }
}
