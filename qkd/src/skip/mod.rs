//! SKIP, the Secure Key Integration Protocol (IETF draft-cisco-skip-02): the encryptor gets
//! a key and its keyId from its site's Key Provider (KP), sends the keyId to the peer
//! encryptor (in the keymix Init, where ETSI 014 key_IDs travel), and the peer's KP returns
//! the same key for that keyId, once.
//!
//! - [`model`]: the draft's JSON bodies (capabilities, key, entropy) and their checks.
//! - [`SkipClient`]: the encryptor side, a [`keymix::qkd::QkdKeySource`] like the ETSI 014
//!   client: `enc_keys` is "a new key shared with the remote system", `dec_keys` "the key
//!   of this keyId"; the peer's ID is its KP's system ID instead of an SAE ID.
//! - TLS: certificate mode on rustls ([`cert`]: TLS 1.3, TLS_AES_256_GCM_SHA384 only), PSK
//!   mode on OpenSSL ([`psk`]: TLS 1.3 external PSK, or TLS 1.2 DHE-PSK), since rustls has
//!   no external PSKs.
//!
//! The simulator serves the same API (`qkd::sim`, module `skip_api`) over the same key store
//! as its ETSI 014 API.

pub mod cert;
mod client;
mod glob;
pub mod model;
pub mod psk;
mod psk_ffi;
mod seen;
mod transport;

pub use client::{SharedSkipClient, SkipClient, SkipClientConfig, SkipSetupError, SkipTls};
pub use glob::matches as glob_matches;
pub use psk::{PskMaterial, PskTlsVersion};
