//! The keymix endpoint of one interface: the cheap checks every datagram passes first
//! (parse, mac1, cookie under load), then demultiplexing to the peer's [`Session`] through
//! hash tables (static key, exchange index, version-2 pseudonym): no datagram and no timer
//! looks at every peer.

mod dispatch_v1;
mod dispatch_v2;
mod tables;

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use crate::config::{EndpointConfig, PeerConfig};
use crate::cookie::CookieJar;
use crate::counters::{Counters, DropReason};
use crate::event::{Event, KmeRequestId, PeerId, Transmit};
use crate::hide;
use crate::message;
use crate::qkd::{QkdError, QkdKey};
use crate::rng::SecureRng;
use crate::schedule::{self, Secret32};
use crate::session::{PeerError, ResetBasis, ResetRefused, Session};
use crate::shared::Shared;
use crate::status::PeerStatus;
use crate::Version;

use tables::Tables;

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
    /// Our mac1 and cookie keys per protocol version (index: version - 1).
    mac1_keys: [[u8; 32]; 2],
    cookie_keys: [[u8; 32]; 2],
    /// Version 2's C_0 without a bootstrap PSK: the salt of the DH path.
    public_chain0_v2: Secret32,
    cookies: CookieJar,
    load: LoadMeter,
    tables: Tables,
    /// The peer whose session the datagram being dispatched reached.
    touched: Option<PeerId>,
    /// The datagram being dispatched carried a valid cookie in mac2.
    cookie_checked: bool,
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
        let versions = [Version::V1, Version::V2];
        let mut e = Self {
            mac1_keys: versions.map(|v| schedule::mac1_key_with(v.labels(), &shared.static_public)),
            cookie_keys: versions
                .map(|v| schedule::cookie_key_with(v.labels(), &shared.static_public)),
            public_chain0_v2: schedule::chain0_with(Version::V2.labels(), None),
            shared,
            sessions: Vec::new(),
            cookies,
            load: LoadMeter {
                window_start: now,
                count: 0,
                threshold: config.load_threshold_per_sec,
                forced: None,
            },
            tables: Tables::default(),
            touched: None,
            cookie_checked: false,
        };
        e.move_boot_window(now);
        e
    }

    /// Our static public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.shared.static_public
    }

    /// Adds a peer; its saved chain (if any) comes in `config.state`.
    pub fn add_peer(&mut self, config: PeerConfig, now: Instant) -> Result<PeerId, PeerError> {
        let id = self.sessions.len();
        if self
            .tables
            .peer_by_static(config.public_key.as_bytes())
            .is_some()
        {
            // Two peers with one key could not be told apart; the config layer refuses it,
            // and so do we.
            return Err(PeerError::Duplicate);
        }
        let session = Session::new(id, config, &mut self.shared, now)?;
        self.sessions.push(Some(session));
        self.tables.add(id);
        self.sync(id);
        Ok(id)
    }

    /// Forgets a peer (live reconfiguration): its datagrams are dropped as from an unknown
    /// peer from now on, and its id is never reused, so every other peer keeps its id.
    pub fn remove_peer(&mut self, peer: PeerId) {
        if let Some(slot) = self.sessions.get_mut(peer) {
            *slot = None;
        }
        self.tables.remove(peer);
    }

    /// Applies a changed config to a live peer without touching its chain or current key:
    /// policy (QKD, SAE ID, versions) and reachability take effect from the next exchange,
    /// new epoch timings at once (the next exchange is due by the new epoch length), and a
    /// new bootstrap PSK starts a rotation (both accepted until the peer uses the new one).
    /// The public key and saved state in `config` are ignored (a new key is a new peer).
    /// Returns what changed that the operator should hear about.
    pub fn update_peer(
        &mut self,
        peer: PeerId,
        config: PeerConfig,
        now: Instant,
    ) -> Vec<&'static str> {
        let changed = match self.session_mut(peer) {
            Some(s) => s.update_config(now, config),
            None => Vec::new(),
        };
        self.sync(peer);
        changed
    }

    /// The driver could not send `payload` to `peer` (no endpoint yet, or the kernel refused
    /// it: an HA standby without its listen address). If it was our live Init, the next
    /// try is a fresh Init: a copy of one that never left carries an ever older timestamp,
    /// which the peer may meanwhile refuse as a replay.
    pub fn transmit_failed(&mut self, peer: PeerId, payload: &[u8]) {
        if let Some(s) = self.session_mut(peer) {
            s.transmit_failed(payload);
        }
        self.sync(peer);
    }

    /// The wall clock, read by the driver whenever it hands keymix an input: Init
    /// timestamps and the bootstrap clock window follow it, so a step of the system clock
    /// (NTP after boot) is honoured from the next input on.
    pub fn set_wall_clock(&mut self, now: Instant, wall_clock: SystemTime) {
        self.shared.set_wall_clock(now, wall_clock);
        self.move_boot_window(now);
    }

    /// The data plane confirmed a WireGuard session the peer initiated (a data packet under
    /// it decrypted): persists its initiation's TAI64N as the peer's replay record, which
    /// the data plane restores from [`crate::ChainState::wireguard_initiation`] after a restart.
    pub fn record_wireguard_initiation(&mut self, peer: PeerId, tai64n: [u8; 12]) {
        if let Some(s) = self.sessions.get_mut(peer).and_then(Option::as_mut) {
            s.record_wireguard_initiation(&mut self.shared, tai64n);
        }
        self.sync(peer);
    }

    fn session_mut(&mut self, peer: PeerId) -> Option<&mut Session> {
        self.sessions.get_mut(peer).and_then(Option::as_mut)
    }

    /// Brings the lookup tables up to date with `peer`'s session (after every call into it).
    fn sync(&mut self, peer: PeerId) {
        if let Some(s) = self.sessions.get(peer).and_then(Option::as_ref) {
            self.tables.sync(peer, s);
        }
    }

    /// Holds the bootstrap pseudonyms of the minutes within the bootstrap clock window of
    /// our clock.
    fn move_boot_window(&mut self, now: Instant) {
        let minute = hide::minute_of(self.shared.timestamp_now(now));
        let window = minute.saturating_sub(hide::BOOT_MINUTES)..=minute + hide::BOOT_MINUTES;
        let sessions = self
            .sessions
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|s| (i, s)));
        self.tables.set_window(window, sessions);
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
        let r = match self.sessions.get_mut(peer).and_then(Option::as_mut) {
            Some(s) => s.reset(&mut self.shared, now, static_only),
            None => Ok(ResetBasis::BootstrapPsk),
        };
        self.sync(peer);
        r
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
                if let Some(p) = *peer {
                    if let Some(s) = self.session_mut(p) {
                        s.set_reachable();
                        s.heard_from_peer(now);
                    }
                    self.sync(p);
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
        self.cookie_checked = false;
        let version = datagram
            .get(1)
            .and_then(|v| Version::from_byte(*v))
            .ok_or(DropReason::Malformed)?;
        let r = match (datagram.first().copied(), version) {
            (Some(message::TYPE_INIT), Version::V1) => self.on_init_v1(now, src, datagram),
            (Some(message::TYPE_INIT), Version::V2) => self.on_init_v2(now, src, datagram),
            (Some(message::TYPE_RESP), v) => self.on_resp(now, v, datagram),
            (Some(message::TYPE_CONFIRM), v) => self.on_confirm(now, v, datagram),
            (Some(message::TYPE_COOKIE), v) => self.on_cookie(v, datagram),
            _ => Err(DropReason::Malformed),
        };
        // A session that saw the datagram may have changed (also when it refused it: an
        // exchange it ended, a tie it recorded).
        if let Some(p) = self.touched.take() {
            self.sync(p);
        }
        r
    }

    /// The driver's answer to a [`crate::KmeRequest`].
    pub fn handle_kme_result(
        &mut self,
        now: Instant,
        id: KmeRequestId,
        result: Result<Vec<QkdKey>, QkdError>,
    ) {
        let Some(peer) = self.shared.kme_owner.remove(&id) else {
            tracing::debug!(?id, "KME answer for a request no exchange waits for");
            return;
        };
        if let Some(s) = self.sessions.get_mut(peer).and_then(Option::as_mut) {
            if !s.handle_kme_result(&mut self.shared, now, id, result) {
                tracing::debug!(?id, "KME answer for a request no exchange waits for");
            }
        }
        self.sync(peer);
    }

    /// Runs the timers that are due (only those sessions).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.move_boot_window(now);
        for peer in self.tables.due(now) {
            if let Some(s) = self.sessions.get_mut(peer).and_then(Option::as_mut) {
                s.handle_timeout(&mut self.shared, now);
            }
            self.sync(peer);
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.tables.next_deadline()
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
            None => PeerStatus::connecting(),
        }
    }

    pub fn counters(&self) -> &Counters {
        &self.shared.counters
    }
}
