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

/// One protocol version's labels of the key schedule (version 2 adds its hiding labels in
/// [`v2`]). Selected by [`crate::Version::labels`].
pub struct Labels {
    pub chain0: &'static [u8],
    pub mac1: &'static [u8],
    pub cookie: &'static [u8],
    pub auth: &'static [u8],
    pub auth_i2r: &'static [u8],
    pub auth_r2i: &'static [u8],
    pub transcript: &'static [u8],
    pub chain: &'static [u8],
    pub psk: &'static [u8],
    pub confirm_r2i: &'static [u8],
    pub confirm_i2r: &'static [u8],
    pub psk_fingerprint: &'static [u8],
}

pub const V1: Labels = Labels {
    chain0: CHAIN0,
    mac1: MAC1,
    cookie: COOKIE,
    auth: AUTH,
    auth_i2r: AUTH_I2R,
    auth_r2i: AUTH_R2I,
    transcript: TRANSCRIPT,
    chain: CHAIN,
    psk: PSK,
    confirm_r2i: CONFIRM_R2I,
    confirm_i2r: CONFIRM_I2R,
    psk_fingerprint: PSK_FINGERPRINT,
};

/// Version 2 (docs/PROTOCOL.md, "Version 2: wire privacy"): version 1's labels with `v2`,
/// and the labels of the hiding keys.
pub mod v2 {
    pub const CHAIN0: &[u8] = b"trident keymix v2 chain0";
    pub const MAC1: &[u8] = b"trident keymix v2 mac1";
    pub const COOKIE: &[u8] = b"trident keymix v2 cookie";
    pub const AUTH: &[u8] = b"trident keymix v2 auth";
    pub const AUTH_I2R: &[u8] = b"trident keymix v2 auth i2r";
    pub const AUTH_R2I: &[u8] = b"trident keymix v2 auth r2i";
    pub const TRANSCRIPT: &[u8] = b"trident keymix v2 transcript";
    pub const CHAIN: &[u8] = b"trident keymix v2 chain";
    pub const PSK: &[u8] = b"trident keymix v2 psk";
    pub const CONFIRM_R2I: &[u8] = b"trident keymix v2 confirm r2i";
    pub const CONFIRM_I2R: &[u8] = b"trident keymix v2 confirm i2r";
    pub const PSK_FINGERPRINT: &[u8] = b"trident keymix v2 psk fingerprint";
    /// First bytes of the IKM of PRK_hide (salt: a chain key).
    pub const HIDE: &[u8] = b"trident keymix v2 hide";
    /// Expand info under PRK_hide, followed by S_i and one byte j.
    pub const PSEUDONYM: &[u8] = b"trident keymix v2 pseudonym";
    /// Expand info under PRK_hide, followed by S_i, a u64 big-endian minute and a byte j.
    pub const BOOT_PSEUDONYM: &[u8] = b"trident keymix v2 boot pseudonym";
    /// Expand info under PRK_hide: the mac1 key of chain-keyed (and PSK bootstrap) Inits.
    pub const MAC1_CHAIN: &[u8] = b"trident keymix v2 mac1 chain";
    /// Expand info under PRK_hide or PRK_boot, followed by E_i: the Init's hiding key.
    pub const INIT_HIDE: &[u8] = b"trident keymix v2 init hide";
    /// First bytes of the IKM of PRK_boot (salt: C_0).
    pub const BOOT_HIDE: &[u8] = b"trident keymix v2 boot hide";
    /// Expand info under K_init: the key sealing the Resp's used mask.
    pub const RESP_HIDE: &[u8] = b"trident keymix v2 resp hide";
    /// Expand info under K_init: the mac1 key of Resp and Confirm.
    pub const MAC1_EXCHANGE: &[u8] = b"trident keymix v2 mac1 exchange";

    /// All version-2 labels, for the distinctness test.
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
        HIDE,
        PSEUDONYM,
        BOOT_PSEUDONYM,
        MAC1_CHAIN,
        INIT_HIDE,
        BOOT_HIDE,
        RESP_HIDE,
        MAC1_EXCHANGE,
    ];
}

pub const V2: Labels = Labels {
    chain0: v2::CHAIN0,
    mac1: v2::MAC1,
    cookie: v2::COOKIE,
    auth: v2::AUTH,
    auth_i2r: v2::AUTH_I2R,
    auth_r2i: v2::AUTH_R2I,
    transcript: v2::TRANSCRIPT,
    chain: v2::CHAIN,
    psk: v2::PSK,
    confirm_r2i: v2::CONFIRM_R2I,
    confirm_i2r: v2::CONFIRM_I2R,
    psk_fingerprint: v2::PSK_FINGERPRINT,
};

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
        for (all, prefix) in [
            (super::ALL, &b"trident keymix v1 "[..]),
            (super::v2::ALL, &b"trident keymix v2 "[..]),
        ] {
            for (i, a) in all.iter().enumerate() {
                assert!(a.starts_with(prefix));
                for (j, b) in all.iter().enumerate() {
                    if i != j {
                        assert_ne!(a, b);
                    }
                }
            }
        }
    }
}
