//! The opt-in RNDL key log (docs/PROTOCOL.md, "Key log"): for each epoch, the secret an
//! attacker who broke each source would hold, and a fingerprint of PSK_n (never PSK_n).
//! It exists so auditors can show on a real capture that every source is needed.

use zeroize::{Zeroize, ZeroizeOnDrop};

#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct KeyLogEntry {
    pub epoch: u64,
    pub ss_x: [u8; 32],
    pub ss_k: [u8; 32],
    pub k_q: Vec<u8>,
    pub psk_fingerprint: [u8; 16],
}

impl std::fmt::Debug for KeyLogEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyLogEntry")
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}
