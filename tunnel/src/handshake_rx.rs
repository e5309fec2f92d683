//! WireGuard handshake messages from the network: rate limiting (once per message), the
//! per-peer replay check of initiations, and which answers of a `Tunn` prove the sender
//! genuine, so the peer's endpoint may move there (roaming). No I/O: datagrams to send go
//! to a callback, which keeps all of this testable without sockets.
//!
//! Roaming follows WireGuard: only a data message that decrypted and passed the replay
//! window (the driver's data path) or a completed handshake moves an endpoint. A completed
//! handshake is an initiation a Tunn answered with a handshake response (type 2) after it
//! passed the per-peer timestamp check, or a response a Tunn confirmed with its keepalive
//! (type 4). A cookie reply (type 3) is what a rate limiter sends to anyone who knows our
//! public key: it never counts.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use boringtun::noise::rate_limiter::RateLimiter;
use boringtun::noise::{Tunn, TunnResult};
use keymix::{PeerId, PublicKey, StaticSecret};

use crate::counters::TunnelDrop;
use crate::initiation::{self, Tai64n};
use crate::peer::{Peer, PendingInit};
use crate::tunn_index::initiator_epoch_tag;

const HANDSHAKE_INIT: u32 = 1;
const HANDSHAKE_RESPONSE: u32 = 2;
const DATA: u32 = 4;
/// boringtun queues at most 256 packets per Tunn while it has no session.
const MAX_QUEUED: usize = 512;

/// The driver's two rate limiters. `counting` sees every handshake message once, before
/// any Tunn (mac1, and the cookie under load). Every Tunn gets `for_tunns`, whose limit is
/// never reached: boringtun's `Tunn::decapsulate` verifies mac1 again and would otherwise
/// count the same message a second time (halving the real limit) and answer with cookie
/// replies of its own.
pub struct HandshakeLimits {
    counting: Arc<RateLimiter>,
    for_tunns: Arc<RateLimiter>,
}

/// What [`HandshakeLimits::screen`] decided.
#[derive(Debug)]
pub enum Screen<'o> {
    /// mac1 (and mac2 under load) good: hand it to a Tunn.
    Pass,
    /// Under load without a valid cookie: send this cookie reply to the source, nothing else.
    Cookie(&'o [u8]),
    /// Bad mac1 or not a handshake message.
    Reject,
}

impl HandshakeLimits {
    pub fn new(own_public: &PublicKey, per_second: u64) -> Self {
        Self {
            counting: Arc::new(RateLimiter::new(own_public, per_second)),
            for_tunns: Arc::new(RateLimiter::new(own_public, u64::MAX)),
        }
    }

    /// The limiter to give every Tunn (checks mac1 only).
    pub fn for_tunns(&self) -> Arc<RateLimiter> {
        self.for_tunns.clone()
    }

    /// Call once a second: the shared limiter leaves its reset to its owner.
    pub fn reset(&self) {
        self.counting.reset_count();
    }

    /// Checks an initiation or response from `src` and counts it against the limit.
    pub fn screen<'o>(&self, src: IpAddr, datagram: &[u8], out: &'o mut [u8]) -> Screen<'o> {
        match self.counting.verify_packet(Some(src), datagram, out) {
            Ok(_) => Screen::Pass,
            Err(TunnResult::WriteToNetwork(cookie)) => Screen::Cookie(cookie),
            Err(_) => Screen::Reject,
        }
    }
}

/// What a Tunn made of a handshake message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fed {
    /// Initiation answered with a response, or response confirmed: the sender is genuine.
    Authenticated,
    /// Accepted without proving anything (a cookie reply), or answered with a cookie.
    Unauthenticated,
    /// boringtun refused it (bad AEAD, its own replay check, unexpected, ...).
    Rejected,
}

fn message_type(datagram: &[u8]) -> Option<u32> {
    let bytes: [u8; 4] = datagram.get(..4)?.try_into().ok()?;
    Some(u32::from_le_bytes(bytes))
}

/// Feeds a screened handshake message (type 1 or 2) or a cookie reply (type 3) to `tunn`
/// and passes what it wants sent back to `send`: its answer, then the packets it queued
/// while it had no session (only once the sender proved genuine).
pub fn feed_handshake(
    tunn: &mut Tunn,
    src: IpAddr,
    datagram: &[u8],
    out: &mut [u8],
    send: &mut dyn FnMut(&[u8]),
) -> Fed {
    let proof = match message_type(datagram) {
        Some(HANDSHAKE_INIT) => Some(HANDSHAKE_RESPONSE),
        Some(HANDSHAKE_RESPONSE) => Some(DATA),
        _ => None,
    };
    let fed = match tunn.decapsulate(Some(src), datagram, out) {
        TunnResult::WriteToNetwork(answer) => {
            send(answer);
            if proof.is_some() && message_type(answer) == proof {
                Fed::Authenticated
            } else {
                Fed::Unauthenticated
            }
        }
        TunnResult::Err(e) => {
            tracing::trace!(%src, "WireGuard handshake rejected: {e:?}");
            Fed::Rejected
        }
        _ => Fed::Unauthenticated,
    };
    if fed == Fed::Authenticated {
        for _ in 0..MAX_QUEUED {
            match tunn.decapsulate(None, &[], out) {
                TunnResult::WriteToNetwork(queued) => send(queued),
                _ => break,
            }
        }
    }
    fed
}

/// What became of an initiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitOutcome {
    /// A Tunn answered it; the peer's endpoint is now its source.
    Answered(PeerId),
    /// Kept until the key of its epoch lands here.
    Parked(PeerId),
    /// Dropped: not newer than what the peer already used; nothing changed.
    Dropped(PeerId, TunnelDrop),
    /// Does not decrypt, or not from a configured peer.
    Unknown,
}

/// Our static key pair, as the responder of initiations.
pub struct OwnKeys<'a> {
    pub private: &'a StaticSecret,
    pub public: &'a PublicKey,
}

/// An initiation that passed [`HandshakeLimits::screen`]: opens it, checks its timestamp
/// against the peer's newest, and either answers it with the Tunn of its epoch or parks it.
pub fn on_initiation(
    peers: &mut [Peer],
    own: &OwnKeys<'_>,
    src: SocketAddr,
    datagram: &[u8],
    out: &mut [u8],
    send: &mut dyn FnMut(&[u8], SocketAddr),
) -> InitOutcome {
    let Some(opened) = initiation::open(own.private, own.public, datagram) else {
        return InitOutcome::Unknown;
    };
    let Some((peer_id, peer)) = peers
        .iter_mut()
        .enumerate()
        .find(|(_, p)| !p.removed && p.public_key.as_bytes() == &opened.initiator)
    else {
        return InitOutcome::Unknown;
    };
    let Some(sender_idx) = datagram
        .get(4..8)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_le_bytes)
    else {
        return InitOutcome::Unknown;
    };
    let tag = initiator_epoch_tag(sender_idx);
    if peer.tunn_by_epoch_tag(tag).is_some() {
        return answer(
            peer,
            peer_id,
            src,
            datagram,
            opened.timestamp,
            tag,
            out,
            send,
        );
    }
    // The peer is one keymix round trip ahead of us: keep its initiation (one per peer, so
    // this cannot grow) and answer it when the epoch's key lands.
    if !peer.may_park(opened.timestamp) {
        return InitOutcome::Dropped(peer_id, TunnelDrop::ReplayedInitiation);
    }
    peer.pending_init = Some(PendingInit {
        datagram: datagram.to_vec(),
        src,
        epoch_tag: tag,
        timestamp: opened.timestamp,
        received: std::time::Instant::now(),
    });
    InitOutcome::Parked(peer_id)
}

/// Answers a parked initiation now that the Tunn of its epoch exists (checked again: the
/// peer may have completed a newer handshake meanwhile).
pub fn on_pending(
    peer: &mut Peer,
    peer_id: PeerId,
    pending: &PendingInit,
    out: &mut [u8],
    send: &mut dyn FnMut(&[u8], SocketAddr),
) -> InitOutcome {
    answer(
        peer,
        peer_id,
        pending.src,
        &pending.datagram,
        pending.timestamp,
        pending.epoch_tag,
        out,
        send,
    )
}

#[allow(clippy::too_many_arguments)]
fn answer(
    peer: &mut Peer,
    peer_id: PeerId,
    src: SocketAddr,
    datagram: &[u8],
    timestamp: Tai64n,
    tag: u32,
    out: &mut [u8],
    send: &mut dyn FnMut(&[u8], SocketAddr),
) -> InitOutcome {
    // Before any Tunn sees it: a fresh epoch's Tunn would accept any old initiation.
    if !peer.initiation_is_fresh(timestamp) {
        return InitOutcome::Dropped(peer_id, TunnelDrop::ReplayedInitiation);
    }
    let Some(tunn) = peer.tunn_by_epoch_tag(tag) else {
        return InitOutcome::Dropped(peer_id, TunnelDrop::UnknownIndex);
    };
    match feed_handshake(&mut tunn.tunn, src.ip(), datagram, out, &mut |d| {
        send(d, src)
    }) {
        Fed::Authenticated => {
            peer.last_initiation = Some(timestamp);
            peer.endpoint = Some(src);
            InitOutcome::Answered(peer_id)
        }
        Fed::Unauthenticated | Fed::Rejected => {
            InitOutcome::Dropped(peer_id, TunnelDrop::WireguardRejected)
        }
    }
}

#[cfg(test)]
#[path = "handshake_rx_tests.rs"]
mod tests;
