//! keymix: Trident's hybrid key schedule (X25519 + ML-KEM-768 + QKD) and the handshake that
//! carries it, as a sans-IO state machine: datagrams, time and KME answers go in;
//! datagrams, KME requests, timer deadlines and [`EpochKey`]s come out. The byte-level
//! truth is docs/PROTOCOL.md; module names follow its sections.

pub mod audit;
pub mod chain_state;
mod config;
mod cookie;
mod counters;
mod endpoint;
mod event;
mod frame;
pub mod hide;
pub mod keylog;
pub mod labels;
pub mod mac;
pub mod message;
pub mod message_v2;
pub mod qkd;
pub mod reconstruct;
pub mod rng;
pub mod schedule;
mod session;
mod shared;
mod sources;
mod status;
mod version;

pub use boringtun::x25519::{PublicKey, StaticSecret};
pub use chain_state::{ChainState, ChainStateError};
pub use config::{EndpointConfig, PeerConfig, QkdPolicy};
pub use counters::{Counters, DropReason};
pub use endpoint::Endpoint;
pub use event::{
    Destination, EpochKey, Event, KmeRequest, KmeRequestId, KmeRequestKind, PeerId, Role, Transmit,
};
pub use message::is_keymix;
pub use session::{
    reset_basis, PeerError, ResetBasis, ResetRefused, BOOTSTRAP_MAX_CLOCK_SKEW, QKD_KEY_BITS,
};
pub use sources::SourceMask;
pub use status::{AuthBasis, PeerState, PeerStatus};
pub use version::Version;
