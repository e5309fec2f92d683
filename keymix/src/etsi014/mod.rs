//! ETSI GS QKD 014 client and KME simulator.
//!
//! - [`model`]: the spec's JSON data formats (clause 6), field names as in the spec.
//! - [`Etsi014Client`]: the SAE side over HTTPS with mutual TLS; implements
//!   [`crate::qkd::QkdKeySource`] so keymix can draw QKD keys from a real KME.
//! - [`sim`]: a pair of simulated KMEs with a key link and a key-rate model, for
//!   `trident kme-sim` and the tests.

mod body;
mod client;
pub mod model;
pub mod sim;
pub mod tls;
mod url;

pub use client::{ClientSetupError, Etsi014Client, Etsi014ClientConfig};
pub use tls::TlsSetupError;
