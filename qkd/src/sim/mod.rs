//! A pair of simulated KMEs that speak ETSI GS QKD 014 to their SAEs (`trident kme-sim`).
//!
//! # Setup and start
//! [`init()`] writes a directory with two CAs, all certificates and `kme-a.toml` /
//! `kme-b.toml`; [`run`] serves one KME from its config until Ctrl-C. Tests use [`spawn`]
//! (returns a [`KmeHandle`], optionally on pre-bound listeners) or [`spawn_local_pair`].
//!
//! # Who may do what
//! A KME serves exactly one SAE, identified by the CN of its client certificate (issued by
//! `ca.pem`). Any other caller gets 401 on every method, so a third SAE and the peer's SAE
//! are both refused. The master SAE calls `enc_keys` at its own KME naming the peer's SAE as
//! slave; the slave later calls `dec_keys` at its own KME naming the master.
//!
//! # Key flow
//! On `enc_keys` the master's KME draws the bits from its pool, generates random keys
//! (getrandom) with random UUID v4 IDs, and pushes them, with master and slave SAE IDs, to
//! the peer KME over the key link (a separate mTLS connection under `link-ca.pem`) before it
//! answers. If the push fails, the bits go back into the pool and the master gets 503, so the
//! master never holds a key its slave cannot get. The master's KME keeps no copy; the peer
//! KME keeps the keys until the designated slave fetches them, once.
//!
//! # The key link is classical TLS, not a quantum channel
//! The KME-to-KME key link is an ordinary TLS 1.2/1.3 connection (X25519/ECDHE key exchange)
//! standing in for the quantum channel. So in the demo the "QKD" key is only as safe as that
//! TLS connection: an attacker who records the link and later breaks that TLS, or the
//! X25519/ECDHE inside it (for instance with a quantum computer), learns every key pushed
//! over it. With real QKD devices this link does not exist; both KMEs get the key from the
//! quantum channel. Use the simulator to exercise the protocol, never to protect traffic.
//!
//! # Key-rate model
//! Each KME models the pool of secret bits that QKD has distilled on the link: it fills at
//! `key_rate_bps` x max(0, 1 - 2 h(qber)) bit/s (BB84's secret fraction, see [`pool`]) up to
//! `max_key_count` keys of `key_size` bits, and `stored_key_count` is the whole keys of
//! `key_size` bits on hand. Both ends of a real link hold the same key stream, so when one
//! KME draws bits for `enc_keys`, the peer removes the same number of bits from its own pool
//! on receiving the push: with the same rate settings in both configs (as `init` writes
//! them), both KMEs report the same `stored_key_count`. A request larger than the pool gets
//! 503. Each KME fills at the rate in its own config; to model an eavesdropper on the
//! link, set `qber` in both files (setting it for the master's KME alone is enough to stop
//! that direction's keys, because only the master's KME draws).
//!
//! `key_rate_bps` and `qber` are re-read while running (on SIGHUP and when the config file
//! changes; polled every 500 ms).
//!
//! # SKIP
//! Each KME also serves SKIP (draft-cisco-skip-02) to the same SAE, over the same pool, key
//! link and store (`skip_api`, `skip_server`): certificate mode on `skip_listen` and PSK
//! mode on `skip_psk_listen`. Its system ID is its KME ID. A key ID is 128 bits written as
//! a UUID (ETSI 014) or as 32 hex digits (SKIP), and either KME accepts either form over
//! either API, so one pair can back an ETSI 014 site and a SKIP site.
//!
//! # Limits
//! Keys pushed to the slave's KME wait until fetched, at most `key_ttl_secs` (default 300);
//! their number is capped at max(`max_key_count`, 10000), after which further pushes (and so
//! `enc_keys`) fail with 503. Each listener gives a connection 2 s to complete its mutual-TLS
//! handshake and lets one source (IPv4 address, IPv6 /64) have at most 4 connections without
//! a completed handshake, so idle connections cannot take the slots of real clients.

mod accept;
mod api;
pub mod config;
mod error;
mod identity;
pub mod init;
mod issue;
mod keyid;
mod kme;
mod link;
mod local;
pub mod pool;
mod reload;
mod server;
mod skip_api;
mod skip_server;
mod state;
mod store;

pub use api::{
    MSG_EXTENSION_MANDATORY_UNSUPPORTED, MSG_KEYS_NOT_FOUND, MSG_SIZE_NOT_MULTIPLE_OF_8,
};
pub use config::KmeConfig;
pub use error::SimError;
pub use init::{
    init, issue_sae_cert, InitOutput, SaeFiles, DEFAULT_LINK_A, DEFAULT_LINK_B, DEFAULT_LISTEN_A,
    DEFAULT_LISTEN_B, KME_A_ID, KME_B_ID, SKIP_PORT_OFFSET, SKIP_PSK_PORT_OFFSET,
};
pub use kme::{run, spawn, KmeHandle, KmeListeners};
pub use local::{spawn_local_pair, LocalPair};
pub use pool::{binary_entropy, effective_rate_bps, secret_fraction};
