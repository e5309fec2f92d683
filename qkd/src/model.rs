//! The JSON data formats of ETSI GS QKD 014 V1.1.1 clause 6, with the spec's field names.
//!
//! Unknown fields are ignored rather than rejected: KMEs in the field add their own (some put
//! `master_SAE_ID` into `key_IDs` entries), and the spec's extension mechanism lets them.
//! Extension members are kept as raw JSON because their contents are vendor-defined.

#![allow(non_snake_case)] // The field names are the spec's wire names.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};
use zeroize::{Zeroize, Zeroizing};

/// One name/value object of `extension_mandatory`, `extension_optional` or Error `details`.
pub type ExtensionObject = Map<String, Value>;

/// Status data format (clause 6.1): what a KME reports about the link to one slave SAE.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub source_KME_ID: String,
    pub target_KME_ID: String,
    pub master_SAE_ID: String,
    pub slave_SAE_ID: String,
    /// Default key size in bits.
    pub key_size: u32,
    pub stored_key_count: u64,
    pub max_key_count: u64,
    pub max_key_per_request: u32,
    pub max_key_size: u32,
    pub min_key_size: u32,
    /// 0 when the KME does not support multicast (`additional_slave_SAE_IDs`).
    pub max_SAE_ID_count: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_extension: Option<Value>,
}

/// Key request data format (clause 6.2), the body of a POST to `enc_keys`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyRequest {
    /// Number of keys; the KME defaults it to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<u32>,
    /// Key size in bits; the KME defaults it to its `key_size`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_slave_SAE_IDs: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension_mandatory: Option<Vec<ExtensionObject>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension_optional: Option<Vec<ExtensionObject>>,
}

/// Key container data format (clause 6.3): the keys a KME delivers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyContainer {
    pub keys: Vec<Key>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_container_extension: Option<Value>,
}

/// One entry of a [`KeyContainer`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Key {
    /// A UUID string.
    pub key_ID: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_ID_extension: Option<Value>,
    /// Base64 on the wire.
    pub key: KeyMaterial,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_extension: Option<Value>,
}

/// Key IDs data format (clause 6.4), the body of a POST to `dec_keys`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyIds {
    pub key_IDs: Vec<KeyIdEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_IDs_extension: Option<Value>,
}

/// One entry of [`KeyIds`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyIdEntry {
    pub key_ID: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_ID_extension: Option<Value>,
}

/// Error data format (clause 6.5), the body of 400 and 503 answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Error {
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Vec<ExtensionObject>>,
}

impl KeyIds {
    /// A Key IDs body naming `ids`, without extensions.
    pub fn from_ids<S: AsRef<str>>(ids: &[S]) -> Self {
        Self {
            key_IDs: ids
                .iter()
                .map(|id| KeyIdEntry {
                    key_ID: id.as_ref().to_owned(),
                    key_ID_extension: None,
                })
                .collect(),
            key_IDs_extension: None,
        }
    }
}

impl Error {
    /// An Error body with only a message.
    pub fn message(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            details: None,
        }
    }
}

/// Key bytes: base64 on the wire, zeroized on drop, never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyMaterial(pub Zeroizing<Vec<u8>>);

impl KeyMaterial {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Zeroizing<Vec<u8>>> for KeyMaterial {
    fn from(bytes: Zeroizing<Vec<u8>>) -> Self {
        Self(bytes)
    }
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<{} key bytes redacted>", self.0.len())
    }
}

impl Serialize for KeyMaterial {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let encoded = Zeroizing::new(BASE64.encode(self.0.as_slice()));
        serializer.serialize_str(&encoded)
    }
}

impl<'de> Deserialize<'de> for KeyMaterial {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(KeyMaterialVisitor)
    }
}

struct KeyMaterialVisitor;

impl KeyMaterialVisitor {
    fn decode<E: de::Error>(text: &str) -> Result<KeyMaterial, E> {
        let mut bytes = Zeroizing::new(Vec::with_capacity(text.len() / 4 * 3 + 3));
        BASE64
            .decode_vec(text.as_bytes(), &mut bytes)
            // The decoder's message could quote input bytes, i.e. key material.
            .map_err(|_| E::custom("key is not valid base64"))?;
        Ok(KeyMaterial(bytes))
    }
}

impl Visitor<'_> for KeyMaterialVisitor {
    type Value = KeyMaterial;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a base64 string")
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
