//! WireGuard handshake messages from the network: rate limiting (once per message), the
//! per-peer replay check of initiations, and which answers of a `Tunn` prove the sender
//! genuine, so the peer's endpoint may move there (roaming). No I/O: datagrams to send go
//! to a callback, which keeps all of this testable without sockets.
//!
//! A WireGuard initiation is not authentication: it needs only the initiator's static
//! private key (the PSK enters at the response), which a thief or a future quantum attacker
//! may hold. So an initiation for a keymix peer is answered by a Tunn made for it alone
//! ([`crate::initiation_slots`]) and believed only when the peer confirms the session (its
//! data under it decrypts: that needs the epoch's PSK). Until then it moves no endpoint,
//! advances no replay record and touches no Tunn that carries traffic. What moves an
//! endpoint: a data message that decrypted and passed the replay window (the driver's data
//! path), or a response one of our Tunns completed (type 2 confirmed with a keepalive: the
//! response is keyed with the PSK). A cookie reply (type 3) is what a rate limiter sends to
//! anyone who knows our public key: it never counts. Plain WireGuard peers (`keymix =
//! "off"`) keep stock WireGuard's rules: their static keys are all they have.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use std::time::{Duration, Instant, SystemTime};

use boringtun::noise::rate_limiter::RateLimiter;
use boringtun::noise::{Tunn, TunnResult};
use keymix::{PeerId, PublicKey, StaticSecret};

use crate::counters::TunnelDrop;
use crate::epoch_tunn::EpochTunn;
use crate::initiation::{self, Tai64n};
use crate::initiation_slots::{Slot, Waiting};
use crate::peer::Peer;
use crate::peer_keys::PeerKeys;
use crate::tunn_index::{initiator_epoch_tag, TunnIndexTable};

/// An initiation stamped further ahead of our wall clock than this is refused: as keymix's
/// bootstrap window, gateways' clocks must agree within ten minutes.
pub const MAX_FUTURE: Duration = Duration::from_secs(600);

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
    /// A response completed (confirmed with a keepalive): keyed with the PSK, so the
    /// sender is genuine.
    Proven,
    /// An initiation answered with a response: proves nothing yet (a static key suffices).
    Answered,
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
    let (expected, success) = match message_type(datagram) {
        Some(HANDSHAKE_INIT) => (Some(HANDSHAKE_RESPONSE), Fed::Answered),
        Some(HANDSHAKE_RESPONSE) => (Some(DATA), Fed::Proven),
        _ => (None, Fed::Unauthenticated),
    };
    let fed = match tunn.decapsulate(Some(src), datagram, out) {
        TunnResult::WriteToNetwork(answer) => {
            send(answer);
            if expected.is_some() && message_type(answer) == expected {
                success
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
    if matches!(fed, Fed::Proven | Fed::Answered) {
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
    /// Answered; believed (endpoint, replay record) only once the peer confirms it. For a
    /// plain WireGuard peer: answered by its Tunn and believed at once, as WireGuard does.
    Answered(PeerId),
    /// Kept until the key of its epoch lands here.
    Parked(PeerId),
    /// Dropped: not newer than what the peer already used, too far ahead, or a duplicate
    /// of one waiting; nothing changed.
    Dropped(PeerId, TunnelDrop),
    /// Does not decrypt, or not from a configured peer.
    Unknown,
}

/// What answering an initiation needs from the driver.
pub struct Responder<'a> {
    pub private: &'a StaticSecret,
    pub public: &'a PublicKey,
    pub indices: &'a mut TunnIndexTable,
    /// Given to every Tunn (mac1 only; see [`HandshakeLimits::for_tunns`]).
    pub rate_limiter: Arc<RateLimiter>,
}

/// TAI64N of `wall` as boringtun stamps initiations (2^62 + 37 + Unix seconds).
pub fn tai64n(wall: SystemTime) -> Tai64n {
    let since = wall
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let mut out = [0u8; 12];
    out[..8].copy_from_slice(&((1u64 << 62) + 37 + since.as_secs()).to_be_bytes());
    out[8..].copy_from_slice(&since.subsec_nanos().to_be_bytes());
    Tai64n(out)
}

/// An initiation that passed [`HandshakeLimits::screen`]: opens it, finds the peer by the
/// static key inside (`keys`, a hash lookup), checks its timestamp against the peer's
/// confirmed record and our clock, and answers it with a Tunn of its epoch made for it
/// alone (or parks it until that epoch's key lands).
pub fn on_initiation(
    peers: &mut [Peer],
    keys: &PeerKeys,
    r: &mut Responder<'_>,
    src: SocketAddr,
    datagram: &[u8],
    out: &mut [u8],
    send: &mut dyn FnMut(&[u8], SocketAddr),
) -> InitOutcome {
    let Some(opened) = initiation::open(r.private, r.public, datagram) else {
        return InitOutcome::Unknown;
    };
    let Some((peer_id, peer)) = keys
        .get(&opened.initiator)
        .and_then(|id| Some((id, peers.get_mut(id)?)))
        .filter(|(_, p)| !p.removed && p.public_key.as_bytes() == &opened.initiator)
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
    // Before any Tunn sees it: a fresh epoch's Tunn would accept any old initiation.
    if !peer.initiation_is_fresh(opened.timestamp) {
        return InitOutcome::Dropped(peer_id, TunnelDrop::ReplayedInitiation);
    }
    if opened.timestamp > tai64n(SystemTime::now() + MAX_FUTURE) {
        return InitOutcome::Dropped(peer_id, TunnelDrop::FutureInitiation);
    }
    if peer.classic {
        return answer_classic(peer, peer_id, src, datagram, opened.timestamp, out, send);
    }
    let slot = Slot {
        src,
        timestamp: opened.timestamp,
        received: Instant::now(),
        waiting: Waiting::Parked {
            datagram: datagram.to_vec(),
            epoch_tag: initiator_epoch_tag(sender_idx),
        },
    };
    answer_or_park(peer, peer_id, r, slot, out, send)
}

/// Answers the initiations parked for `epoch_tag` now that the key of their epoch landed.
pub fn on_key_landed(
    peer: &mut Peer,
    peer_id: PeerId,
    r: &mut Responder<'_>,
    epoch_tag: u32,
    out: &mut [u8],
    send: &mut dyn FnMut(&[u8], SocketAddr),
) -> Vec<InitOutcome> {
    peer.slots
        .take_parked(epoch_tag, Instant::now())
        .into_iter()
        .map(|slot| answer_or_park(peer, peer_id, r, slot, out, send))
        .collect()
}

/// A parked `slot`: answered by a new Tunn of its epoch if that epoch's key is here, else
/// kept parked. Either way it waits in the peer's slots.
fn answer_or_park(
    peer: &mut Peer,
    peer_id: PeerId,
    r: &mut Responder<'_>,
    mut slot: Slot,
    out: &mut [u8],
    send: &mut dyn FnMut(&[u8], SocketAddr),
) -> InitOutcome {
    let Waiting::Parked {
        datagram,
        epoch_tag,
    } = &slot.waiting
    else {
        return InitOutcome::Unknown;
    };
    let (public, keepalive) = (peer.public_key, peer.persistent_keepalive);
    let mut outcome = InitOutcome::Parked(peer_id);
    if let Some(group) = peer.epoch_by_tag(*epoch_tag) {
        let Ok(index) = r.indices.allocate(peer_id, group.epoch()) else {
            return InitOutcome::Dropped(peer_id, TunnelDrop::IoError);
        };
        let Some(mut tunn) =
            group
                .primary
                .answerer(index, r.private, public, keepalive, r.rate_limiter.clone())
        else {
            r.indices.release(index);
            return InitOutcome::Dropped(peer_id, TunnelDrop::WireguardRejected);
        };
        let src = slot.src;
        match feed_handshake(&mut tunn.tunn, src.ip(), datagram, out, &mut |d| {
            send(d, src)
        }) {
            Fed::Answered => {
                slot.waiting = Waiting::Answered(Box::new(tunn));
                outcome = InitOutcome::Answered(peer_id);
            }
            _ => {
                r.indices.release(index);
                return InitOutcome::Dropped(peer_id, TunnelDrop::WireguardRejected);
            }
        }
    }
    match peer.slots.insert(slot, peer.endpoint) {
        Ok(pushed_out) => release(r.indices, pushed_out),
        Err((_, slot)) => {
            if let Waiting::Answered(t) = slot.waiting {
                r.indices.release(t.index);
            }
            return InitOutcome::Dropped(peer_id, TunnelDrop::ReplayedInitiation);
        }
    }
    outcome
}

fn release(indices: &mut TunnIndexTable, tunns: Vec<EpochTunn>) {
    for t in tunns {
        indices.release(t.index);
    }
}

/// A plain WireGuard peer: its one Tunn answers, and as in WireGuard the answer moves the
/// endpoint and the replay record (a static key, or static PSK, is all such a peer has).
fn answer_classic(
    peer: &mut Peer,
    peer_id: PeerId,
    src: SocketAddr,
    datagram: &[u8],
    timestamp: Tai64n,
    out: &mut [u8],
    send: &mut dyn FnMut(&[u8], SocketAddr),
) -> InitOutcome {
    let Some(group) = peer.current.as_mut() else {
        return InitOutcome::Dropped(peer_id, TunnelDrop::UnknownIndex);
    };
    match feed_handshake(&mut group.primary.tunn, src.ip(), datagram, out, &mut |d| {
        send(d, src)
    }) {
        Fed::Answered => {
            peer.last_initiation = Some(timestamp);
            peer.endpoint = Some(src);
            InitOutcome::Answered(peer_id)
        }
        _ => InitOutcome::Dropped(peer_id, TunnelDrop::WireguardRejected),
    }
}

#[cfg(test)]
#[path = "handshake_rx_static_key_tests.rs"]
mod static_key_tests;
#[cfg(test)]
#[path = "handshake_rx_tests.rs"]
mod tests;
