//! The per-peer keymix state machine (docs/PROTOCOL.md, "State machine"). It owns the
//! persisted chain ([`ChainState`]), the live epoch, at most one exchange as initiator and
//! one as responder. It never does I/O: it queues datagrams, events (including the state
//! the driver must persist) and KME requests in [`Shared`].

mod diagnosis;
mod initiator;
mod material;
mod responder;
mod retransmit;

use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use crate::chain_state::{ChainState, Tentative};
use crate::config::PeerConfig;
use crate::event::{EpochKey, Event, KmeRequest, KmeRequestId, KmeRequestKind, PeerId, Role};
use crate::keylog::KeyLogEntry;
use crate::qkd::{QkdError, QkdKey};
use crate::schedule::{self, EpochSecrets, Secret32};
use crate::shared::Shared;
use crate::sources::SourceMask;
use crate::status::AuthBasis;

use initiator::Initiation;
use responder::Responding;
pub use responder::BOOTSTRAP_MAX_CLOCK_SKEW;
use retransmit::jitter;

/// QKD key length requested from the KME, in bits (one 256-bit key per epoch).
pub const QKD_KEY_BITS: u32 = 256;
/// An unanswered initiation is abandoned after this long and a fresh one starts; a
/// responder stops retransmitting its Resp after it, but keeps the exchange until a newer
/// one supersedes it (implicit confirmation), however late that comes.
const EXCHANGE_LIFETIME: Duration = Duration::from_secs(30);
/// Pause before a new initiation after a failed one (KME error, abandoned exchange).
const RETRY_PAUSE: Duration = Duration::from_secs(2);
/// Without an epoch, the side that is not the preferred initiator waits this long first,
/// so that both sides rarely initiate at once.
const SECONDARY_START_DELAY: Duration = Duration::from_secs(1);
/// How long a chain-mismatch observation stays in status.
const MISMATCH_MEMORY: Duration = Duration::from_secs(600);

/// `now + d` for a configured duration; a duration too large to represent means "never"
/// (about 136 years from now), not a panic.
fn later(now: Instant, d: Duration) -> Instant {
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(u64::from(u32::MAX))))
        .unwrap_or(now)
}

/// The live epoch: what status shows and what expires.
struct Committed {
    epoch: u64,
    sources: SourceMask,
    key_ids: Vec<String>,
    established: Instant,
    expired: bool,
    auth: AuthBasis,
}

/// What the initiator keeps after completing, to answer a retransmitted Resp and a peer
/// that missed our Confirm.
struct LastConfirm {
    epoch: u64,
    resp_hash: [u8; 32],
    bytes: Vec<u8>,
}

pub(crate) struct Session {
    id: PeerId,
    cfg: PeerConfig,
    peer_public: [u8; 32],
    ss_static: Secret32,
    mac1_key_peer: [u8; 32],
    cookie_key_peer: [u8; 32],
    /// The side with the smaller static public key initiates on schedule; the other side
    /// only when the epoch is overdue, and yields when both initiate the same epoch.
    preferred_initiator: bool,
    /// Whether the driver can reach the peer: an endpoint was configured, or an
    /// authenticated message arrived. An unreachable side never initiates, and never wins
    /// a simultaneous initiation it could not have sent.
    reachable: bool,
    chain0: Secret32,
    state: ChainState,
    committed: Option<Committed>,
    initiating: Option<Initiation>,
    responding: Option<Responding>,
    last_confirm: Option<LastConfirm>,
    next_initiation_at: Instant,
    kme_error: Option<String>,
    mismatch: Option<(Instant, String)>,
    exchanges: u64,
    /// How long our last completed initiation took (Init sent to Resp accepted).
    last_exchange: Option<Duration>,
}

/// Why a peer could not be added.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PeerError {
    #[error("the peer's public key is a low-order point (no shared secret is possible)")]
    LowOrderKey,
    #[error("the peer's public key is our own")]
    OwnKey,
    #[error("the saved chain state belongs to another pair of keys")]
    ForeignState,
}

impl Session {
    pub(crate) fn new(
        id: PeerId,
        mut cfg: PeerConfig,
        sh: &mut Shared,
        now: Instant,
    ) -> Result<Self, PeerError> {
        let peer_public = *cfg.public_key.as_bytes();
        if peer_public == sh.static_public {
            return Err(PeerError::OwnKey);
        }
        let dh = sh.static_secret.diffie_hellman(&cfg.public_key);
        if !dh.was_contributory() {
            return Err(PeerError::LowOrderKey);
        }
        let ss_static = Zeroizing::new(dh.to_bytes());
        let state = match cfg.state.take() {
            Some(s) if s.local_public != sh.static_public || s.peer_public != peer_public => {
                return Err(PeerError::ForeignState)
            }
            Some(s) => s,
            None => ChainState::empty(sh.static_public, peer_public),
        };
        let preferred_initiator = sh.static_public < peer_public;
        let chain0 = schedule::chain0(cfg.bootstrap_psk.as_deref());
        Ok(Session {
            id,
            peer_public,
            ss_static,
            mac1_key_peer: schedule::mac1_key(&peer_public),
            cookie_key_peer: schedule::cookie_key(&peer_public),
            preferred_initiator,
            reachable: cfg.endpoint_known,
            chain0,
            state,
            committed: None,
            initiating: None,
            responding: None,
            last_confirm: None,
            next_initiation_at: if preferred_initiator {
                now
            } else {
                now + SECONDARY_START_DELAY
            },
            kme_error: None,
            mismatch: None,
            exchanges: 0,
            last_exchange: None,
            cfg,
        })
    }

    pub(crate) fn public_key(&self) -> &[u8; 32] {
        &self.peer_public
    }

    /// The driver knows where the peer is (an authenticated message arrived from it).
    pub(crate) fn set_reachable(&mut self) {
        self.reachable = true;
    }

    /// A reloaded config for this peer ([`crate::Endpoint::update_peer`]). Keeps the
    /// public key (the session's identity) and the chain; a changed bootstrap PSK only
    /// matters to a bootstrap exchange, so C_0 is derived again.
    pub(crate) fn update_config(&mut self, mut cfg: PeerConfig) {
        cfg.public_key = self.cfg.public_key;
        cfg.state = None;
        if cfg.endpoint_known {
            self.reachable = true;
        }
        self.chain0 = schedule::chain0(cfg.bootstrap_psk.as_deref());
        self.cfg = cfg;
    }

    fn bootstrap_psk(&self) -> Option<&[u8; 32]> {
        self.cfg.bootstrap_psk.as_deref()
    }

    /// The chain key the next exchange is keyed with: C_n, or C_0 without a chain.
    fn current_chain(&self) -> &[u8; 32] {
        if self.state.has_chain() {
            &self.state.chain
        } else {
            &self.chain0
        }
    }

    fn persist(&self, sh: &mut Shared) {
        sh.events.push_back(Event::PersistState {
            peer: self.id,
            state: Box::new(self.state.clone()),
        });
    }

    /// Queues a KME request for the driver; the answer comes back by its id.
    fn request_kme(&mut self, sh: &mut Shared, kind: KmeRequestKind) -> KmeRequestId {
        let id = sh.next_request_id();
        sh.events.push_back(Event::KmeRequest(KmeRequest {
            id,
            peer: self.id,
            kind,
        }));
        id
    }

    /// Operator re-bootstrap (`trident reset`): forget the chain, keep the replay
    /// timestamps (so no recorded Init passes after the reset either), stop using the
    /// current key, and start a bootstrap exchange.
    pub(crate) fn reset(&mut self, sh: &mut Shared, now: Instant) {
        tracing::warn!(
            peer = self.id,
            epoch = self.state.epoch,
            "chain reset by the operator"
        );
        self.state.epoch = 0;
        self.state.chain = [0; 32];
        self.state.prev_chain = None;
        self.state.tentative = None;
        self.initiating = None;
        self.responding = None;
        self.last_confirm = None;
        self.mismatch = None;
        self.persist(sh);
        if let Some(c) = self.committed.take() {
            sh.events.push_back(Event::Expired {
                peer: self.id,
                epoch: c.epoch,
            });
        }
        self.next_initiation_at = now;
    }

    // ---- timers -------------------------------------------------------------------------

    /// While we answer the peer's exchange we do not start our own; an answered exchange
    /// whose Confirm never came stops blocking us after its lifetime.
    fn responding_blocks_initiation(&self, now: Instant) -> bool {
        match &self.responding {
            None => false,
            Some(Responding::AwaitingKme(_)) => true,
            Some(Responding::Sent(s)) => now < s.retransmit.give_up,
        }
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        let mut consider = |x: Instant| t = Some(t.map_or(x, |t| t.min(x)));
        match &self.initiating {
            None if !self.reachable => {}
            None => match &self.responding {
                Some(Responding::AwaitingKme(_)) => {}
                Some(Responding::Sent(s)) => {
                    consider(s.retransmit.give_up.max(self.next_initiation_at))
                }
                None => consider(self.next_initiation_at),
            },
            Some(Initiation::AwaitingKme { deadline, .. }) => consider(*deadline),
            Some(Initiation::Sent(s)) => {
                consider(s.retransmit.next);
                consider(s.retransmit.give_up);
            }
        }
        match &self.responding {
            None => {}
            Some(Responding::AwaitingKme(w)) => consider(w.deadline),
            Some(Responding::Sent(s)) if s.retransmit.next < s.retransmit.give_up => {
                consider(s.retransmit.next)
            }
            Some(Responding::Sent(_)) => {}
        }
        if let Some(c) = &self.committed {
            if !c.expired {
                if let Some(at) = c.established.checked_add(self.cfg.reject_after) {
                    consider(at);
                }
            }
        }
        t
    }

    fn key_expired(&self, c: &Committed, now: Instant) -> bool {
        c.expired
            || c.established
                .checked_add(self.cfg.reject_after)
                .is_some_and(|at| now >= at)
    }

    pub(crate) fn handle_timeout(&mut self, sh: &mut Shared, now: Instant) {
        let newly_expired = self
            .committed
            .as_ref()
            .filter(|c| !c.expired && self.key_expired(c, now))
            .map(|c| c.epoch);
        if let (Some(epoch), Some(c)) = (newly_expired, self.committed.as_mut()) {
            c.expired = true;
            tracing::warn!(peer = self.id, epoch, "epoch key past its reject age");
            sh.events.push_back(Event::Expired {
                peer: self.id,
                epoch,
            });
        }
        self.initiator_timeout(sh, now);
        self.responder_timeout(sh, now);
    }

    pub(crate) fn handle_kme_result(
        &mut self,
        sh: &mut Shared,
        now: Instant,
        request: KmeRequestId,
        result: Result<Vec<QkdKey>, QkdError>,
    ) -> bool {
        if matches!(&self.initiating, Some(i) if i.awaits(request)) {
            self.initiator_kme_answer(sh, now, request, result);
            return true;
        }
        if matches!(&self.responding, Some(r) if r.awaits(request)) {
            self.responder_kme_answer(sh, now, request, result);
            return true;
        }
        false
    }

    // ---- commit and status --------------------------------------------------------------

    /// Moves the chain to `epoch` / `chain` and persists it; called before the epoch's PSK
    /// is handed out, so a restart continues from here. `keyed_with` is the chain key that
    /// authenticated the exchange (None for a bootstrap): a peer still holding only that
    /// one may re-run this epoch with it.
    fn advance_chain(
        &mut self,
        sh: &mut Shared,
        epoch: u64,
        chain: &[u8; 32],
        keyed_with: Option<&[u8; 32]>,
    ) {
        self.state.prev_chain = keyed_with.copied();
        self.state.epoch = epoch;
        self.state.chain = *chain;
        if self
            .state
            .tentative
            .as_ref()
            .is_some_and(|t| t.epoch <= epoch)
        {
            self.state.tentative = None;
        }
        self.persist(sh);
    }

    /// Records the responder's answered exchange so that a restart can still accept the
    /// peer's next Init keyed with it (implicit confirmation).
    fn record_tentative(&mut self, sh: &mut Shared, epoch: u64, chain: &[u8; 32]) {
        self.state.tentative = Some(Tentative {
            epoch,
            chain: *chain,
        });
        self.persist(sh);
    }

    #[allow(clippy::too_many_arguments)]
    fn commit(
        &mut self,
        sh: &mut Shared,
        now: Instant,
        epoch: u64,
        derived: &EpochSecrets,
        sources: SourceMask,
        key_ids: Vec<String>,
        role: Role,
        keyed_with: Option<&[u8; 32]>,
        keylog: Option<Box<KeyLogEntry>>,
    ) {
        self.advance_chain(sh, epoch, &derived.chain, keyed_with);
        let auth = if keyed_with.is_some() {
            AuthBasis::Chain
        } else if self.cfg.bootstrap_psk.is_some() {
            AuthBasis::BootstrapPsk
        } else {
            AuthBasis::StaticOnly
        };
        if auth == AuthBasis::StaticOnly {
            tracing::warn!(
                peer = self.id,
                "first contact authenticated by the static keys alone (no bootstrap PSK)"
            );
        }
        self.committed = Some(Committed {
            epoch,
            sources,
            key_ids: key_ids.clone(),
            established: now,
            expired: false,
            auth,
        });
        self.mismatch = None;
        self.exchanges += 1;
        if sources.has_qkd() {
            self.kme_error = None;
        }
        // Whatever exchange of ours or the peer's is for this epoch or older is superseded.
        if self.initiating.as_ref().is_some_and(|i| i.epoch() <= epoch) {
            self.initiating = None;
        }
        if self.responding.as_ref().is_some_and(|r| r.epoch() <= epoch) {
            self.responding = None;
        }
        // The preferred initiator rekeys on time; the other side only if it is overdue.
        let base = if self.preferred_initiator {
            self.cfg.epoch
        } else {
            self.cfg.epoch.saturating_add(self.cfg.epoch / 8)
        };
        self.next_initiation_at = later(now, jitter(base, sh.rng_word()).min(base));
        // Debug: the data plane logs the commit at info, naming the peer by its key.
        tracing::debug!(peer = self.id, epoch, %sources, ?role, auth = auth.as_str(), "new epoch key");
        sh.events.push_back(Event::EpochKey {
            peer: self.id,
            key: EpochKey {
                epoch,
                psk: Zeroizing::new(derived.psk),
                sources,
                qkd_key_ids: key_ids,
                established: now,
                role,
                keylog,
            },
        });
    }
}
