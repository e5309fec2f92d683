//! The per-peer keymix state machine (docs/PROTOCOL.md, "State machine"). It owns the
//! persisted chain ([`ChainState`]), the live epoch, at most one exchange as initiator and
//! one as responder. It never does I/O: it queues datagrams, events (including the state
//! the driver must persist) and KME requests in [`Shared`].

mod bootstrap_psk;
mod candidates;
mod commit;
mod diagnosis;
mod hiding;
mod init_send;
mod initiator;
mod initiator_retry;
mod material;
mod operator;
mod respond;
mod responder;
mod resume;
mod retransmit;
mod tie;
mod versions;

use std::cell::Cell;
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use crate::chain_state::ChainState;
use crate::config::PeerConfig;
use crate::event::{Event, KmeRequest, KmeRequestId, KmeRequestKind, PeerId};
use crate::qkd::{QkdError, QkdKey};
use crate::schedule::{self, Secret32};
use crate::shared::Shared;
use crate::sources::SourceMask;
use crate::status::AuthBasis;
use crate::Version;

use bootstrap_psk::BootstrapPsks;
pub(crate) use bootstrap_psk::PskChoice;
use diagnosis::Observations;
pub(crate) use hiding::{Pseudonym, Slot};
use initiator::Initiation;
pub use operator::{reset_basis, ResetBasis, ResetRefused};
use responder::Responding;
pub use responder::BOOTSTRAP_MAX_CLOCK_SKEW;

/// QKD key length requested from the KME, in bits (one 256-bit key per epoch).
pub const QKD_KEY_BITS: u32 = 256;
/// An unanswered initiation is abandoned after this long and a fresh one starts; a
/// responder stops retransmitting its Resp after it, but keeps the exchange until a newer
/// one supersedes it (implicit confirmation), however late that comes.
const EXCHANGE_LIFETIME: Duration = Duration::from_secs(30);
/// Pause before a new initiation after a failed one (KME error, abandoned exchange): 2 to
/// 4 s, at random, so that two sides whose timers ran in step (both gave up at once) do
/// not start again at once, cross, and repeat.
fn retry_pause(rng_word: u32) -> Duration {
    Duration::from_millis(2000 + u64::from(rng_word % 2000))
}
/// Without an epoch, the side that is not the preferred initiator waits this long first,
/// so that both sides rarely initiate at once.
const SECONDARY_START_DELAY: Duration = Duration::from_secs(1);
/// How long an authenticated note (e.g. a clock too far off) stays in status.
const MISMATCH_MEMORY: Duration = Duration::from_secs(600);

/// The first 8 base64 characters of a public key: enough to tell peers apart in a log.
fn short_key(key: &[u8; 32]) -> String {
    use base64::Engine;
    let mut s = base64::engine::general_purpose::STANDARD.encode(key);
    s.truncate(8);
    s
}

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
    /// Its reject age: the configured one at commit, raised (never lowered) by a reload, so
    /// a reload with shorter timings cannot expire the key before its replacement is due.
    reject_after: Duration,
    sources: SourceMask,
    key_ids: Vec<String>,
    established: Instant,
    expired: bool,
    auth: AuthBasis,
    /// The keymix protocol version of the exchange that made it.
    version: Version,
}

/// What the initiator keeps after completing, to answer a retransmitted Resp and a peer
/// that missed our Confirm.
struct LastConfirm {
    epoch: u64,
    /// Our Init's index, which the peer's copies of its Resp name.
    init_index: u32,
    resp_hash: [u8; 32],
    bytes: Vec<u8>,
}

pub(crate) struct Session {
    id: PeerId,
    /// The peer's public key, short (first 8 base64 characters), to name it in logs.
    short: String,
    cfg: PeerConfig,
    peer_public: [u8; 32],
    ss_static: Secret32,
    /// mac1 and cookie keys of the peer, per protocol version (index: version - 1).
    mac1_keys_peer: [[u8; 32]; 2],
    cookie_keys_peer: [[u8; 32]; 2],
    /// The side with the smaller static public key initiates on schedule; the other side
    /// only when the epoch is overdue, and yields when both initiate the same epoch.
    preferred_initiator: bool,
    /// Whether the driver can reach the peer: an endpoint was configured, or an
    /// authenticated message arrived. An unreachable side never initiates, and never wins
    /// a simultaneous initiation it could not have sent.
    reachable: bool,
    /// The bootstrap PSK (and C_0), with the previous one during a rotation.
    psks: BootstrapPsks,
    state: ChainState,
    committed: Option<Committed>,
    initiating: Option<Initiation>,
    responding: Option<Responding>,
    last_confirm: Option<LastConfirm>,
    next_initiation_at: Instant,
    kme_error: Option<String>,
    observations: Observations,
    exchanges: u64,
    /// How long our last completed initiation took (Init sent to Resp accepted).
    last_exchange: Option<Duration>,
    /// Bumped whenever a key the peer's version-2 pseudonyms derive from may change
    /// (see [`Session::hiding_generation`]).
    chain_generation: Cell<u64>,
    boot_generation: Cell<u64>,
    /// Our last version-2 Init's attempt number, and what it counted (a bootstrap's
    /// minute or a chain Init's epoch): the next pseudonym differs.
    attempts: Option<((bool, u64), u8)>,
    /// The keying of our last Init the peer answered with keys that differed: the next
    /// attempt starts with it ([`resume::Resume`]).
    resume: Option<resume::Resume>,
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
    #[error("another peer has the same public key")]
    Duplicate,
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
        let psks = BootstrapPsks::new(cfg.bootstrap_psk.clone());
        Ok(Session {
            id,
            short: short_key(&peer_public),
            peer_public,
            ss_static,
            mac1_keys_peer: [Version::V1, Version::V2]
                .map(|v| schedule::mac1_key_with(v.labels(), &peer_public)),
            cookie_keys_peer: [Version::V1, Version::V2]
                .map(|v| schedule::cookie_key_with(v.labels(), &peer_public)),
            preferred_initiator,
            reachable: cfg.endpoint_known,
            psks,
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
            observations: Observations::new(now),
            exchanges: 0,
            last_exchange: None,
            chain_generation: Cell::new(0),
            boot_generation: Cell::new(0),
            attempts: None,
            resume: None,
            cfg,
        })
    }

    pub(crate) fn public_key(&self) -> &[u8; 32] {
        &self.peer_public
    }

    /// See [`crate::Endpoint::record_wireguard_initiation`]; only a newer record is kept.
    pub(crate) fn record_wireguard_initiation(&mut self, sh: &mut Shared, tai64n: [u8; 12]) {
        if tai64n > self.state.wireguard_initiation {
            self.state.wireguard_initiation = tai64n;
            self.persist(sh);
        }
    }

    pub(crate) fn is_reachable(&self) -> bool {
        self.reachable
    }

    /// The driver knows where the peer is (an authenticated message arrived from it).
    pub(crate) fn set_reachable(&mut self) {
        self.reachable = true;
    }

    /// A reloaded config for this peer ([`crate::Endpoint::update_peer`]). Keeps the
    /// public key (the session's identity) and the chain. A changed bootstrap PSK starts a
    /// rotation: both are accepted until the peer uses the new one. Returns what changed
    /// that the operator should hear about.
    pub(crate) fn update_config(&mut self, now: Instant, mut cfg: PeerConfig) -> Vec<&'static str> {
        let mut changed = Vec::new();
        self.forget_resume();
        cfg.public_key = self.cfg.public_key;
        cfg.state = None;
        if cfg.endpoint_known {
            self.reachable = true;
        }
        if cfg.max_version != self.cfg.max_version {
            self.psks_changed();
        }
        if self.psks.update(cfg.bootstrap_psk.clone()) {
            self.psks_changed();
            self.relabel_live_exchanges();
            tracing::info!(
                peer = %self.short,
                "bootstrap PSK changed: the old one is accepted until the peer uses the new one"
            );
            changed.push("bootstrap PSK (both accepted until the peer uses the new one)");
        }
        if cfg.epoch != self.cfg.epoch || cfg.reject_after != self.cfg.reject_after {
            changed.push("epoch timings");
        }
        let old_epoch = self.cfg.epoch;
        self.cfg = cfg;
        // New timings apply to the schedule at once: the next exchange is due by the new
        // epoch length. The live key keeps the longer of its reject age and the new one,
        // so no key expires before its replacement is due; keys committed from now on get
        // the new one.
        if let Some(c) = self.committed.as_mut() {
            c.reject_after = c.reject_after.max(self.cfg.reject_after);
            if self.cfg.epoch < old_epoch {
                let due = later(c.established, self.rekey_after());
                self.next_initiation_at = self.next_initiation_at.min(due.max(now));
            }
        }
        changed
    }

    /// How long after a commit this side starts the next exchange (before jitter): the
    /// preferred initiator at one epoch, the other side only when the epoch is overdue.
    fn rekey_after(&self) -> Duration {
        if self.preferred_initiator {
            self.cfg.epoch
        } else {
            self.cfg.epoch.saturating_add(self.cfg.epoch / 8)
        }
    }

    fn bootstrap_psk(&self, which: PskChoice) -> Option<&[u8; 32]> {
        self.psks.get(which).psk.as_deref()
    }

    fn persist(&self, sh: &mut Shared) {
        self.chain_keys_changed();
        sh.events.push_back(Event::PersistState {
            peer: self.id,
            state: Box::new(self.state.clone()),
        });
    }

    /// Queues a KME request for the driver; the answer comes back by its id.
    fn request_kme(&mut self, sh: &mut Shared, kind: KmeRequestKind) -> KmeRequestId {
        let id = sh.next_request_id();
        sh.kme_owner.insert(id, self.id);
        sh.events.push_back(Event::KmeRequest(KmeRequest {
            id,
            peer: self.id,
            kind,
        }));
        id
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
                if let Some(at) = self.replacements_due(s).earliest() {
                    consider(at);
                }
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
                if let Some(at) = c.established.checked_add(c.reject_after) {
                    consider(at);
                }
            }
        }
        t
    }

    fn key_expired(&self, c: &Committed, now: Instant) -> bool {
        c.expired
            || c.established
                .checked_add(c.reject_after)
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
            tracing::warn!(peer = %self.short, epoch, "epoch key past its reject age");
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
}
