//! Every domain-separation label of the key schedule, in one place so that their
//! distinctness is checked by a test and their spelling matches docs/PROTOCOL.md.
//! The "v1" in each label is the protocol version: a change of schedule changes them all.

/// HKDF-Extract salt of C_0 (over the length-prefixed bootstrap PSK, empty without one).
pub const CHAIN0: &[u8] = b"trident keymix v1 chain0";
/// mac1 key = SHA-256(MAC1 || receiver's static public key).
pub const MAC1: &[u8] = b"trident keymix v1 mac1";
/// Cookie encryption key = SHA-256(COOKIE || receiver's static public key).
pub const COOKIE: &[u8] = b"trident keymix v1 cookie";
/// First bytes of the Extract input keying material of the authentication PRK (followed by
/// the length-prefixed static-static DH and bootstrap PSK; the salt is the chain key).
pub const AUTH: &[u8] = b"trident keymix v1 auth";
/// Expand info for the initiator-to-responder auth tag key.
pub const AUTH_I2R: &[u8] = b"trident keymix v1 auth i2r";
/// Expand info for the responder-to-initiator auth tag key.
pub const AUTH_R2I: &[u8] = b"trident keymix v1 auth r2i";
/// Prefix of the transcript hash T.
pub const TRANSCRIPT: &[u8] = b"trident keymix v1 transcript";
/// Expand info prefix for the next chain key C_n.
pub const CHAIN: &[u8] = b"trident keymix v1 chain";
/// Expand info prefix for PSK_n, the key handed to WireGuard.
pub const PSK: &[u8] = b"trident keymix v1 psk";
/// Expand info prefix for the responder's confirmation key.
pub const CONFIRM_R2I: &[u8] = b"trident keymix v1 confirm r2i";
/// Expand info prefix for the initiator's confirmation key.
pub const CONFIRM_I2R: &[u8] = b"trident keymix v1 confirm i2r";
/// Key-log fingerprint of PSK_n (never the PSK itself).
pub const PSK_FINGERPRINT: &[u8] = b"trident keymix v1 psk fingerprint";

/// All labels, for the distinctness test and the docs.
pub const ALL: &[&[u8]] = &[
    CHAIN0,
    MAC1,
    COOKIE,
    AUTH,
    AUTH_I2R,
    AUTH_R2I,
    TRANSCRIPT,
    CHAIN,
    PSK,
    CONFIRM_R2I,
    CONFIRM_I2R,
    PSK_FINGERPRINT,
];

#[cfg(test)]
mod tests {
    #[test]
    /// Not prefix-free (AUTH/AUTH_I2R, CHAIN/CHAIN0, PSK/PSK_FINGERPRINT): each label has a
    /// fixed role and position, so no two uses can meet (docs/PROTOCOL.md, "Labels"; pinned
    /// by tests/protocol_doc.rs).
    fn labels_are_distinct_and_versioned() {
        for (i, a) in super::ALL.iter().enumerate() {
            assert!(a.starts_with(b"trident keymix v1 "));
            for (j, b) in super::ALL.iter().enumerate() {
                if i != j {
                    assert_ne!(a, b);
                }
            }
        }
    }
}
