//! Allocation and lookup of Tunn indices (scheme in the crate docs): 24 bits, the low 4 are
//! the epoch number mod 16, the rest random so indices do not repeat across restarts.

use std::collections::HashMap;

use keymix::PeerId;

/// Bits of the Tunn index that carry the epoch number.
pub const EPOCH_BITS: u32 = 4;
const EPOCH_MASK: u32 = (1 << EPOCH_BITS) - 1;
const INDEX_MASK: u32 = (1 << 24) - 1;

/// The epoch tag (epoch mod 16) of an epoch number.
pub fn epoch_tag(epoch: u64) -> u32 {
    (epoch & u64::from(EPOCH_MASK)) as u32
}

/// The epoch tag of the Tunn that sent a WireGuard handshake initiation.
pub fn initiator_epoch_tag(sender_idx: u32) -> u32 {
    (sender_idx >> 8) & EPOCH_MASK
}

/// The Tunn index a session index (receiver index of incoming messages) belongs to.
pub fn tunn_index_of(receiver_idx: u32) -> u32 {
    receiver_idx >> 8
}

/// Live Tunn indices and the peer that owns each.
#[derive(Default)]
pub struct TunnIndexTable {
    owners: HashMap<u32, PeerId>,
}

impl TunnIndexTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// A fresh, unused index for a Tunn of `peer` at `epoch`.
    pub fn allocate(&mut self, peer: PeerId, epoch: u64) -> u32 {
        loop {
            // A failing OS RNG leaves 0: still unique thanks to the loop, just predictable.
            let random = getrandom::u32().unwrap_or(0);
            let index = ((random << EPOCH_BITS) | epoch_tag(epoch)) & INDEX_MASK;
            if let std::collections::hash_map::Entry::Vacant(slot) = self.owners.entry(index) {
                slot.insert(peer);
                return index;
            }
            if self.owners.len() >= (INDEX_MASK >> EPOCH_BITS) as usize {
                // Unreachable in practice (a million live Tunns); never spin forever.
                return index;
            }
        }
    }

    pub fn release(&mut self, index: u32) {
        self.owners.remove(&index);
    }

    pub fn owner(&self, index: u32) -> Option<PeerId> {
        self.owners.get(&index).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_carries_epoch_tag_through_session_index() {
        let mut table = TunnIndexTable::new();
        for epoch in [0u64, 1, 15, 16, 17, 12345] {
            let index = table.allocate(3, epoch);
            assert!(index <= INDEX_MASK);
            // boringtun's session indices are `index << 8 | counter`.
            let session_idx = (index << 8) | 0x2a;
            assert_eq!(initiator_epoch_tag(session_idx), epoch_tag(epoch));
            assert_eq!(tunn_index_of(session_idx), index);
            assert_eq!(table.owner(index), Some(3));
            table.release(index);
            assert_eq!(table.owner(index), None);
        }
    }
}
