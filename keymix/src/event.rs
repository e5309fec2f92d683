//! What the state machine hands to its driver: epoch keys, expiry notices and KME requests.

use std::net::SocketAddr;
use std::time::Instant;

use zeroize::Zeroizing;

use crate::sources::SourceMask;

/// Index of a peer in its [`crate::Endpoint`], in the order peers were added.
pub type PeerId = usize;

/// Which side of the keymix exchange we were for an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Initiator,
    Responder,
}

/// The one thing keymix gives the tunnel: a PSK for an epoch, after mutual key confirmation.
/// Epoch numbers grow by one and continue across restarts (the chain is persisted); only a
/// bootstrap (`trident reset`, or a peer that lost its state and shares a bootstrap PSK)
/// starts again at 1, so the tunnel treats every `EpochKey` as the new current key.
pub struct EpochKey {
    pub epoch: u64,
    pub psk: Zeroizing<[u8; 32]>,
    pub sources: SourceMask,
    pub qkd_key_ids: Vec<String>,
    pub established: Instant,
    pub role: Role,
    /// Per-source secrets for the opt-in RNDL key log; `None` unless keylog is enabled.
    pub keylog: Option<Box<crate::keylog::KeyLogEntry>>,
}

impl std::fmt::Debug for EpochKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EpochKey")
            .field("epoch", &self.epoch)
            .field("psk", &"<redacted>")
            .field("sources", &self.sources)
            .field("qkd_key_ids", &self.qkd_key_ids)
            .field("role", &self.role)
            .finish()
    }
}

/// Identifies a KME request so its answer can be matched to the exchange that asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KmeRequestId(pub u64);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KmeRequestKind {
    /// ETSI 014 "Get key" as master SAE.
    EncKeys {
        slave_sae_id: String,
        number: u32,
        size_bits: u32,
    },
    /// ETSI 014 "Get key with key IDs" as slave SAE.
    DecKeys {
        master_sae_id: String,
        key_ids: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmeRequest {
    pub id: KmeRequestId,
    pub peer: PeerId,
    pub kind: KmeRequestKind,
}

#[derive(Debug)]
pub enum Event {
    /// A new epoch key, confirmed by both sides.
    EpochKey { peer: PeerId, key: EpochKey },
    /// The current key of `peer` passed its reject age: stop using it.
    Expired { peer: PeerId, epoch: u64 },
    /// Ask the KME; answer with [`crate::Endpoint::handle_kme_result`].
    KmeRequest(KmeRequest),
    /// Make this chain state durable (atomically) before handling any later event or
    /// sending any datagram queued with it: drain events before transmits.
    PersistState {
        peer: PeerId,
        state: Box<crate::ChainState>,
    },
}

/// Where a datagram must go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// The peer's current endpoint (the driver knows it, or drops the datagram).
    Peer(PeerId),
    /// A specific address: cookie replies go back where the triggering datagram came from.
    Addr(SocketAddr),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub destination: Destination,
    pub payload: Vec<u8>,
}
