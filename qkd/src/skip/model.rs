//! The JSON bodies of SKIP (draft-cisco-skip-02), with the draft's field names, and the
//! checks every value from a Key Provider passes before Trident uses it.
//!
//! Unknown fields are ignored (KPs may add their own). Bodies are size-limited by the caller
//! before they reach serde; strings are bounded here after parsing.

#![allow(non_snake_case)] // The field names are the draft's wire names.

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use zeroize::{Zeroize, Zeroizing};

/// System IDs: the draft asks for at least 32 bytes; room for long names, not for abuse.
pub const MAX_SYSTEM_ID_LEN: usize = 256;
/// Entries of `remoteSystemID` read from one capabilities answer.
pub const MAX_REMOTE_SYSTEM_IDS: usize = 1024;
/// keyIds travel in the keymix Init, which holds at most 64 bytes per ID.
pub const MAX_KEY_ID_LEN: usize = 64;

/// Method 1, `GET /capabilities`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Whether `GET /entropy` is served.
    pub entropy: bool,
    /// Whether `GET /key` is served.
    pub key: bool,
    /// How the KPs synchronise keys (free text, e.g. "QKD").
    pub algorithm: String,
    /// The KP's own system ID: what the far encryptor names as its `remoteSystemID`.
    pub localSystemID: String,
    /// The KPs this KP shares keys with; entries may be glob patterns.
    pub remoteSystemID: Vec<String>,
}

impl Capabilities {
    /// Bounds every string, so nothing unbounded reaches logs or status.
    pub fn check(&self) -> Result<(), String> {
        let too_long = |s: &String| s.len() > MAX_SYSTEM_ID_LEN;
        if too_long(&self.algorithm) || too_long(&self.localSystemID) {
            return Err(format!(
                "algorithm or localSystemID longer than {MAX_SYSTEM_ID_LEN} bytes"
            ));
        }
        if self.remoteSystemID.len() > MAX_REMOTE_SYSTEM_IDS
            || self.remoteSystemID.iter().any(too_long)
        {
            return Err(format!(
                "remoteSystemID has more than {MAX_REMOTE_SYSTEM_IDS} entries or one longer \
                 than {MAX_SYSTEM_ID_LEN} bytes"
            ));
        }
        Ok(())
    }

    /// Whether the KP shares keys with `remote` (literal or glob entry).
    pub fn lists_remote(&self, remote: &str) -> bool {
        self.remoteSystemID
            .iter()
            .any(|pattern| super::glob::matches(pattern, remote))
    }
}

/// Methods 2-4, `GET /key...`: one key and its ID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyAnswer {
    /// Hex; names the key at both KPs.
    pub keyId: String,
    /// Hex on the wire.
    pub key: HexKey,
}

/// Methods 5-6, `GET /entropy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entropy {
    pub randomStr: String,
    pub minentropy: u32,
}

/// Is `id` a keyId a KP may hand out: 1 to [`MAX_KEY_ID_LEN`] hex digits, either case
/// (the draft's own example has 48 digits in mixed case).
pub fn is_key_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_KEY_ID_LEN && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Is `id`, received from the peer encryptor, one we may ask our KP about: hex digits, and
/// hyphens for the UUID form an ETSI 014 peer sends (a mixed pair; see `qkd::sim`).
pub fn is_peer_key_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_KEY_ID_LEN
        && id.bytes().any(|b| b.is_ascii_hexdigit())
        && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

/// The form two keyIds are compared in: lower case, hyphens dropped, so `AB-12` and `ab12`
/// name the same key (hex is case-free; a UUID is its 32 digits).
pub fn key_id_canonical(id: &str) -> String {
    id.chars()
        .filter(|c| *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Key bytes: hex on the wire, zeroized on drop, never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct HexKey(pub Zeroizing<Vec<u8>>);

impl std::fmt::Debug for HexKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<{} key bytes redacted>", self.0.len())
    }
}

impl Serialize for HexKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut text = Zeroizing::new(vec![0u8; self.0.len() * 2]);
        hex::encode_to_slice(self.0.as_slice(), &mut text).map_err(serde::ser::Error::custom)?;
        // hex output is ASCII, so this never fails; an empty key encodes as "".
        serializer.serialize_str(std::str::from_utf8(&text).unwrap_or_default())
    }
}

impl<'de> Deserialize<'de> for HexKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(HexKeyVisitor)
    }
}

struct HexKeyVisitor;

impl HexKeyVisitor {
    fn decode<E: de::Error>(text: &str) -> Result<HexKey, E> {
        if !text.len().is_multiple_of(2) {
            return Err(E::custom("key is not hex (odd number of digits)"));
        }
        let mut bytes = Zeroizing::new(vec![0u8; text.len() / 2]);
        hex::decode_to_slice(text, &mut bytes)
            // The decoder's message could quote input characters, i.e. key material.
            .map_err(|_| E::custom("key is not hex"))?;
        Ok(HexKey(bytes))
    }
}

impl Visitor<'_> for HexKeyVisitor {
    type Value = HexKey;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a hex string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Self::decode(v)
    }

    fn visit_string<E: de::Error>(self, mut v: String) -> Result<Self::Value, E> {
        // serde_json hands over an owned copy when the string had escapes; wipe it too.
        let decoded = Self::decode(&v);
        v.zeroize();
        decoded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_drafts_examples_parse() {
        let caps: Capabilities = serde_json::from_str(
            r#"{"entropy": true, "key": true, "algorithm": "QKD",
                "localSystemID": "KP_A", "remoteSystemID": ["KP_B", "KP_C*"], "extra": 1}"#,
        )
        .unwrap();
        assert!(caps.check().is_ok());
        assert!(caps.lists_remote("KP_B") && caps.lists_remote("KP_C7"));
        assert!(!caps.lists_remote("KP_D"));
        let key: KeyAnswer = serde_json::from_str(
            r#"{"keyId": "8E5C0A8DbF3D4D3C9F5D9A2B7C1E4F6A8B0C2D4E6F8A0B1C",
                "key": "00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff"}"#,
        )
        .unwrap();
        assert!(is_key_id(&key.keyId));
        assert_eq!(key.key.0.len(), 32);
        assert_eq!(format!("{:?}", key.key), "<32 key bytes redacted>");
    }

    #[test]
    fn bad_keys_and_ids_are_refused() {
        for body in [
            r#"{"keyId": "01", "key": "0g"}"#,
            r#"{"keyId": "01", "key": "abc"}"#,
            r#"{"keyId": "01", "key": 5}"#,
            r#"{"keyId": "01"}"#,
        ] {
            assert!(serde_json::from_str::<KeyAnswer>(body).is_err(), "{body}");
        }
        assert!(!is_key_id(""));
        assert!(!is_key_id("0x12"));
        assert!(!is_key_id(&"a".repeat(MAX_KEY_ID_LEN + 1)));
        assert!(is_peer_key_id("550e8400-e29b-41d4-a716-446655440000"));
        assert!(!is_peer_key_id("---"));
        assert!(!is_peer_key_id("../x"));
        assert_eq!(key_id_canonical("AB-12"), "ab12");
    }

    #[test]
    fn hex_keys_roundtrip() {
        let key = HexKey(Zeroizing::new(vec![0xab, 0x01]));
        let json = serde_json::to_string(&key).unwrap();
        assert_eq!(json, "\"ab01\"");
        assert_eq!(serde_json::from_str::<HexKey>("\"AB01\"").unwrap(), key);
    }
}
