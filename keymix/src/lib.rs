//! keymix: Trident's hybrid key schedule (X25519 + ML-KEM-768 + QKD) and the handshake that
//! carries it, as a sans-IO state machine. See docs/PROTOCOL.md for the bytes.

pub mod etsi014;
pub mod qkd;
