//! qkd: Trident's I/O side of quantum key distribution: ETSI GS QKD 014 and SKIP over HTTPS.
//!
//! - [`model`]: the spec's JSON data formats (clause 6), field names as in the spec.
//! - [`Etsi014Client`]: the SAE side over HTTPS with mutual TLS; implements
//!   [`keymix::qkd::QkdKeySource`] so keymix can draw QKD keys from a real KME.
//! - [`skip`]: the same for Cisco's SKIP (draft-cisco-skip-02): a client of the site's Key
//!   Provider ([`skip::SkipClient`], also a `QkdKeySource`), with certificate (rustls) and
//!   pre-shared-key (OpenSSL) TLS.
//! - [`sim`]: a pair of simulated KMEs with a key link and a key-rate model, for
//!   `trident kme-sim` and the tests.
//!
//! keymix, the sans-IO key schedule, holds only the [`keymix::qkd::QkdKeySource`] trait and
//! the QKD policy; everything here that touches sockets, TLS or files lives in this crate.
//!
//! # What the simulator's "QKD" key is worth
//! The simulator's KME-to-KME key link is classical TLS (X25519/ECDHE key exchange) standing
//! in for the quantum channel. In the demo, the "QKD" key is therefore only as safe as that
//! TLS connection: an attacker who records the link and breaks that TLS, or the X25519/ECDHE
//! inside it, learns the key. With real QKD devices that link does not exist; the keys come
//! from the quantum channel itself.

mod body;
mod client;
pub mod model;
pub mod sim;
pub mod skip;
pub mod tls;
mod url;

pub use client::{ClientSetupError, Etsi014Client, Etsi014ClientConfig};
pub use tls::TlsSetupError;
