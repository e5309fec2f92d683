//! Allocation and lookup of Tunn indices (scheme in the crate docs): 24 bits, the low 4 are
//! the epoch number mod 16, the rest random so indices do not repeat across restarts.

use std::collections::HashMap;

use keymix::PeerId;

/// Bits of the Tunn index that carry the epoch number.
pub const EPOCH_BITS: u32 = 4;
const EPOCH_MASK: u32 = (1 << EPOCH_BITS) - 1;
const INDEX_MASK: u32 = (1 << 24) - 1;
/// Random draws before [`TunnIndexTable::allocate`] gives up.
const ALLOCATE_ATTEMPTS: usize = 8;

/// Why no Tunn index could be allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    #[error("the OS random number generator failed")]
    Rng,
    #[error("no free Tunn index after {ALLOCATE_ATTEMPTS} random draws")]
    Exhausted,
}

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
    pub fn allocate(&mut self, peer: PeerId, epoch: u64) -> Result<u32, IndexError> {
        self.allocate_with(peer, epoch, || getrandom::u32().ok())
    }

    /// [`Self::allocate`] with the random source as a parameter (tests give a broken one).
    /// A few draws only: a collision in 20 random bits is rare, several in a row mean the
    /// RNG is broken, and an index must never be predictable (it routes packets).
    fn allocate_with(
        &mut self,
        peer: PeerId,
        epoch: u64,
        mut random: impl FnMut() -> Option<u32>,
    ) -> Result<u32, IndexError> {
        for _ in 0..ALLOCATE_ATTEMPTS {
            let random = random().ok_or(IndexError::Rng)?;
            let index = ((random << EPOCH_BITS) | epoch_tag(epoch)) & INDEX_MASK;
            if let std::collections::hash_map::Entry::Vacant(slot) = self.owners.entry(index) {
                slot.insert(peer);
                return Ok(index);
            }
        }
        Err(IndexError::Exhausted)
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
            let index = table.allocate(3, epoch).unwrap_or_else(|e| panic!("{e}"));
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

    #[test]
    fn allocate_gives_up_when_the_rng_fails_or_repeats() {
        let mut table = TunnIndexTable::new();
        // A dead OS RNG: an error, not a predictable index and not a busy loop.
        assert_eq!(table.allocate_with(1, 1, || None), Err(IndexError::Rng));
        // An RNG stuck on one value: the first allocation works, the second gives up.
        let first = table.allocate_with(1, 1, || Some(5));
        assert_eq!(first, Ok((5 << EPOCH_BITS) | 1));
        assert_eq!(
            table.allocate_with(2, 1, || Some(5)),
            Err(IndexError::Exhausted)
        );
        assert_eq!(table.owner((5 << EPOCH_BITS) | 1), Some(1));
    }
}
