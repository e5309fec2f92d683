//! The keymix endpoint of one interface: the cheap checks every datagram passes first
//! (parse, mac1, cookie under load), then demultiplexing to the peer's [`Session`].

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};

use crate::config::{EndpointConfig, PeerConfig};
use crate::cookie::{self, CookieJar};
use crate::counters::{Counters, DropReason};
use crate::event::{Destination, Event, KmeRequestId, PeerId, Transmit};
use crate::mac;
use crate::message::{self, Confirm, CookieReply, Init, Resp};
use crate::qkd::{QkdError, QkdKey};
use crate::rng::SecureRng;
use crate::schedule;
use crate::session::{PeerError, ResetBasis, ResetRefused, Session};
use crate::shared::Shared;
use crate::status::PeerStatus;

/// Counts initiations in one-second windows to decide whether we are under load.
struct LoadMeter {
    window_start: Instant,
    count: u32,
    threshold: u32,
    forced: Option<bool>,
}

impl LoadMeter {
    fn record_and_check(&mut self, now: Instant) -> bool {
        if now.saturating_duration_since(self.window_start) >= Duration::from_secs(1) {
            self.window_start = now;
            self.count = 0;
        }
        self.count = self.count.saturating_add(1);
        self.forced.unwrap_or(self.count > self.threshold)
    }
}

pub struct Endpoint {
    shared: Shared,
    /// Indexed by [`PeerId`]; a removed peer leaves `None` so the other ids stay stable.
    sessions: Vec<Option<Session>>,
    mac1_key: [u8; 32],
    cookie_key: [u8; 32],
    cookies: CookieJar,
    load: LoadMeter,
}

impl Endpoint {
    pub fn new(
        config: EndpointConfig,
        now: Instant,
        wall_clock: SystemTime,
        mut rng: Box<dyn SecureRng>,
    ) -> Self {
        let cookies = CookieJar::new(rng.as_mut(), now);
        let shared = Shared::new(config.static_secret, rng, now, wall_clock, config.keylog);
        Self {
            mac1_key: schedule::mac1_key(&shared.static_public),
            cookie_key: schedule::cookie_key(&shared.static_public),
            shared,
            sessions: Vec::new(),
            cookies,
            load: LoadMeter {
                window_start: now,
                count: 0,
                threshold: config.load_threshold_per_sec,
                forced: None,
            },
        }
    }

    /// Our static public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.shared.static_public
    }

    /// Adds a peer; its saved chain (if any) comes in `config.state`.
    pub fn add_peer(&mut self, config: PeerConfig, now: Instant) -> Result<PeerId, PeerError> {
        let id = self.sessions.len();
        let session = Session::new(id, config, &mut self.shared, now)?;
        self.sessions.push(Some(session));
        Ok(id)
    }

    /// Forgets a peer (live reconfiguration): its datagrams are dropped as from an unknown
    /// peer from now on, and its id is never reused, so every other peer keeps its id.
    pub fn remove_peer(&mut self, peer: PeerId) {
        if let Some(slot) = self.sessions.get_mut(peer) {
            *slot = None;
        }
    }

    /// Applies a changed config to a live peer without touching its chain or current key:
    /// policy (QKD, SAE ID) and reachability take effect from the next exchange, new epoch
    /// timings at once (the next exchange is due by the new epoch length), and a new
    /// bootstrap PSK starts a rotation (both accepted until the peer uses the new one).
    /// The public key and saved state in `config` are ignored (a new key is a new peer).
    /// Returns what changed that the operator should hear about.
    pub fn update_peer(
        &mut self,
        peer: PeerId,
        config: PeerConfig,
        now: Instant,
    ) -> Vec<&'static str> {
        match self.session_mut(peer) {
            Some(s) => s.update_config(now, config),
            None => Vec::new(),
        }
    }

    /// The driver could not send `payload` to `peer` (no endpoint yet, or the kernel refused
    /// it: an HA standby without its listen address). If it was our live Init, the next
    /// try is a fresh Init: a copy of one that never left carries an ever older timestamp,
    /// which the peer may meanwhile refuse as a replay.
    pub fn transmit_failed(&mut self, peer: PeerId, payload: &[u8]) {
        if let Some(s) = self.session_mut(peer) {
            s.transmit_failed(payload);
        }
    }

    /// The wall clock, read by the driver whenever it hands keymix an input: Init
    /// timestamps and the bootstrap clock window follow it, so a step of the system clock
    /// (NTP after boot) is honoured from the next input on.
    pub fn set_wall_clock(&mut self, now: Instant, wall_clock: SystemTime) {
        self.shared.set_wall_clock(now, wall_clock);
    }

    /// The data plane confirmed a WireGuard session the peer initiated (a data packet under
    /// it decrypted): persists its initiation's TAI64N as the peer's replay record, which
    /// the data plane restores from [`crate::ChainState::wireguard_initiation`] after a restart.
    pub fn record_wireguard_initiation(&mut self, peer: PeerId, tai64n: [u8; 12]) {
        if let Some(s) = self.sessions.get_mut(peer).and_then(Option::as_mut) {
            s.record_wireguard_initiation(&mut self.shared, tai64n);
        }
    }

    fn sessions(&self) -> impl Iterator<Item = &Session> {
        self.sessions.iter().flatten()
    }

    fn session_mut(&mut self, peer: PeerId) -> Option<&mut Session> {
        self.sessions.get_mut(peer).and_then(Option::as_mut)
    }

    /// Operator re-bootstrap of one peer (`trident reset`): forgets its chain (persisted
    /// through [`Event::PersistState`], keeping the replay records), expires its key and
    /// starts a bootstrap exchange. Refused when the peer has no bootstrap PSK and the
    /// operator did not acknowledge (`static_only`) that the next first contact then rests
    /// on the static keys alone.
    pub fn reset_peer(
        &mut self,
        peer: PeerId,
        now: Instant,
        static_only: bool,
    ) -> Result<ResetBasis, ResetRefused> {
        match self.sessions.get_mut(peer).and_then(Option::as_mut) {
            Some(s) => s.reset(&mut self.shared, now, static_only),
            None => Ok(ResetBasis::BootstrapPsk),
        }
    }

    /// Force (Some) or stop forcing (None) the under-load answer, for tests and operators.
    pub fn set_under_load(&mut self, forced: Option<bool>) {
        self.load.forced = forced;
    }

    /// A keymix datagram from `src`. `Ok(Some(peer))`: an authenticated message bound to an
    /// exchange of ours (a Resp or Confirm), or the first Init of a peer whose endpoint is
    /// unknown: the driver moves (or learns) the peer's endpoint to `src` (roaming). `Ok(None)`: handled, not
    /// attributable to a peer. `Err(reason)`: dropped and counted; nothing else changed.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        src: SocketAddr,
        datagram: &[u8],
    ) -> Result<Option<PeerId>, DropReason> {
        let r = self.dispatch(now, src, datagram);
        match &r {
            Ok(peer) => {
                self.shared.counters.accepted += 1;
                if let Some(s) = peer.and_then(|p| self.session_mut(p)) {
                    s.set_reachable();
                    s.heard_from_peer(now);
                }
            }
            Err(reason) => {
                tracing::trace!(%src, %reason, "keymix datagram dropped");
                self.shared.counters.record(*reason);
            }
        }
        r
    }

    fn dispatch(
        &mut self,
        now: Instant,
        src: SocketAddr,
        datagram: &[u8],
    ) -> Result<Option<PeerId>, DropReason> {
        match datagram.first() {
            Some(&message::TYPE_INIT) => self.on_init(now, src, datagram),
            Some(&message::TYPE_RESP) => self.on_resp(now, datagram),
            Some(&message::TYPE_CONFIRM) => self.on_confirm(now, datagram),
            Some(&message::TYPE_COOKIE) => self.on_cookie(datagram),
            _ => Err(DropReason::Malformed),
        }
    }

    fn check_mac1(&self, covered: &[u8], tag: &[u8; 16]) -> Result<(), DropReason> {
        if mac::verify(&self.mac1_key, covered, tag) {
            Ok(())
        } else {
            Err(DropReason::BadMac1)
        }
    }

    fn on_init(
        &mut self,
        now: Instant,
        src: SocketAddr,
        datagram: &[u8],
    ) -> Result<Option<PeerId>, DropReason> {
        let init = Init::parse(datagram).map_err(|_| DropReason::Malformed)?;
        self.check_mac1(&datagram[..Init::mac1_offset(datagram)], &init.mac1)?;
        // mac2 is zero until the initiator holds a cookie. A non-zero mac2 must be valid
        // even when we are not under load, so no byte of an Init goes unchecked; a stale
        // cookie (our secret rotated) is answered with a fresh one.
        let under_load = self.load.record_and_check(now);
        if under_load || init.mac2 != [0u8; 16] {
            let cookie = self.cookies.cookie_for(self.shared.rng.as_mut(), now, src);
            let covered = &datagram[..Init::mac2_offset(datagram)];
            if !mac::verify(&cookie, covered, &init.mac2) {
                let reply = cookie::seal(
                    self.shared.rng.as_mut(),
                    &self.cookie_key,
                    init.sender_index,
                    &init.mac1,
                    &cookie,
                );
                self.shared.send(Destination::Addr(src), reply.to_bytes());
                return Err(if under_load {
                    DropReason::CookieSent
                } else {
                    DropReason::BadMac2
                });
            }
        }
        let peer = self
            .sessions
            .iter()
            .position(|s| s.as_ref().is_some_and(|s| s.public_key() == &init.s_init))
            .ok_or(DropReason::UnknownPeer)?;
        let session = self
            .sessions
            .get_mut(peer)
            .and_then(Option::as_mut)
            .ok_or(DropReason::UnknownPeer)?;
        // An accepted Init answers at its source but does not move a known endpoint: until
        // its timestamp is recorded it can be replayed from anywhere. It teaches an address
        // only to a side that has none (a hub without the spoke's endpoint).
        let learn = !session.is_reachable();
        session.handle_init(&mut self.shared, now, src, init, datagram)?;
        Ok(learn.then_some(peer))
    }

    fn on_resp(&mut self, now: Instant, datagram: &[u8]) -> Result<Option<PeerId>, DropReason> {
        let resp = Resp::parse(datagram).map_err(|_| DropReason::Malformed)?;
        self.check_mac1(&datagram[..Resp::MAC1_OFFSET], &resp.mac1)?;
        let hash: [u8; 32] = Sha256::digest(datagram).into();
        let peer = self
            .sessions
            .iter()
            .position(|s| {
                s.as_ref()
                    .is_some_and(|s| s.answers_resp(resp.receiver_index, &hash))
            })
            .ok_or(DropReason::UnknownIndex)?;
        let session = self
            .sessions
            .get_mut(peer)
            .and_then(Option::as_mut)
            .ok_or(DropReason::UnknownIndex)?;
        session.handle_resp(&mut self.shared, now, &resp, datagram, &hash)?;
        Ok(Some(peer))
    }

    fn on_confirm(&mut self, now: Instant, datagram: &[u8]) -> Result<Option<PeerId>, DropReason> {
        let confirm = Confirm::parse(datagram).map_err(|_| DropReason::Malformed)?;
        self.check_mac1(&datagram[..Confirm::MAC1_OFFSET], &confirm.mac1)?;
        let peer = self
            .sessions
            .iter()
            .position(|s| {
                s.as_ref()
                    .is_some_and(|s| s.owns_resp_index(confirm.receiver_index))
            })
            .ok_or(DropReason::UnknownIndex)?;
        let session = self
            .sessions
            .get_mut(peer)
            .and_then(Option::as_mut)
            .ok_or(DropReason::UnknownIndex)?;
        session.handle_confirm(&mut self.shared, now, &confirm)?;
        Ok(Some(peer))
    }

    fn on_cookie(&mut self, datagram: &[u8]) -> Result<Option<PeerId>, DropReason> {
        let reply = CookieReply::parse(datagram).map_err(|_| DropReason::Malformed)?;
        for session in self.sessions.iter_mut().flatten() {
            if session.owns_init_index(reply.receiver_index) {
                return if session.handle_cookie(&reply) {
                    Ok(None)
                } else {
                    Err(DropReason::BadMac2)
                };
            }
        }
        Err(DropReason::UnknownIndex)
    }

    /// The driver's answer to a [`crate::KmeRequest`].
    pub fn handle_kme_result(
        &mut self,
        now: Instant,
        id: KmeRequestId,
        result: Result<Vec<QkdKey>, QkdError>,
    ) {
        let mut result = Some(result);
        for session in self.sessions.iter_mut().flatten() {
            if let Some(r) = result.take() {
                if session.handle_kme_result(&mut self.shared, now, id, r.clone()) {
                    return;
                }
                result = Some(r);
            }
        }
        tracing::debug!(?id, "KME answer for a request no exchange waits for");
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        for session in self.sessions.iter_mut().flatten() {
            session.handle_timeout(&mut self.shared, now);
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.sessions().filter_map(Session::poll_timeout).min()
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.shared.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.shared.events.pop_front()
    }

    /// Status of `peer`; a PeerId that was never returned by `add_peer` reads as connecting.
    pub fn peer_status(&self, peer: PeerId, now: Instant) -> PeerStatus {
        match self.sessions.get(peer).and_then(Option::as_ref) {
            Some(s) => s.status(now),
            None => PeerStatus {
                state: crate::status::PeerState::Connecting,
                epoch: None,
                chain_epoch: 0,
                epoch_age: None,
                sources: Default::default(),
                qkd_key_ids: Vec::new(),
                last_kme_error: None,
                expired: false,
                exchanges: 0,
                last_exchange: None,
                auth: None,
                reason: None,
                hint: None,
                unverified: 0,
                last_unverified: None,
                static_only_reset: false,
                psk_rotation: false,
                warning: None,
            },
        }
    }

    pub fn counters(&self) -> &Counters {
        &self.shared.counters
    }
}
