//! The event loop of one interface: owns the keymix endpoint, the peers and their Tunns,
//! and moves packets between the TUN device and the UDP socket. One task, no locks: every
//! input (TUN batch, UDP batch, timer, KME result, status request) is handled to the end
//! before the next.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use boringtun::noise::rate_limiter::RateLimiter;
use boringtun::noise::{Tunn, TunnResult};
use keymix::{
    Destination, Endpoint, EndpointConfig, EpochKey, Event, PeerId, PublicKey, Role, SourceMask,
    StaticSecret,
};
use quinn_udp::UdpSocketState;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tun_rs::AsyncDevice;

use crate::allowed_ips::AllowedIps;
use crate::chain_store::ChainStore;
use crate::control::{ControlReply, ControlRequest, ControlSocket};
use crate::counters::{TunnelCounters, TunnelDrop};
use crate::epoch_tunn::EpochTunn;
use crate::error::TunnelError;
use crate::handshake_rx::HandshakeLimits;
use crate::keylog::KeyLog;
use crate::metrics::{self, SnapshotRequest};
use crate::netconfig::InterfaceConfig;
use crate::packet_batch::{TunRx, TunTx, UdpRx, UdpTx};
use crate::peer::{Peer, PENDING_INIT_TTL};
use crate::qkd_bridge::QkdBridge;
use crate::reload::{self, Apply, ReloadTrigger, Reloader, RestartOnly};
use crate::settings::TunnelSettings;
use crate::status::{InterfaceStatus, PeerReport, SourcesReport};
use crate::tunn_index::{epoch_tag, TunnIndexTable};
use crate::udp_socket;

mod classic;
mod keymix_tx;
mod reconfigure;
mod wireguard_rx;

/// boringtun's timers have one-second resolution; 250 ms keeps keepalives and retries prompt.
const WIREGUARD_TICK: Duration = Duration::from_millis(250);
/// Handshakes per second before boringtun demands cookies (boringtun's device default).
const HANDSHAKE_RATE_LIMIT: u64 = 100;
/// Scratch for handshakes, cookies, keepalives and boringtun's queued packets.
const OUT_BUFFER: usize = crate::packet_batch::MAX_PACKET + 64;
/// A keymix responder whose new Tunn has no session after this long starts the WireGuard
/// handshake itself. Needed when the peer restarted and reuses an epoch number: its
/// initiation can reach us before our keymix finishes and be answered by the old Tunn of
/// the same epoch tag (wrong PSK), and WireGuard would only retry after 5 s.
const RESPONDER_HANDSHAKE_AFTER: Duration = Duration::from_secs(1);

/// The two file descriptors of the data plane.
struct Io {
    tun: AsyncDevice,
    udp: UdpSocket,
    /// quinn-udp's probe results (GSO segments, GRO) for `udp`.
    udp_state: UdpSocketState,
    /// `udp` is IPv6 (dual stack): IPv4 destinations are written IPv4-mapped.
    map_v4: bool,
}

impl Io {
    /// One datagram right away (handshakes, keymix, timers); data goes through [`UdpTx`].
    fn send_udp(&self, payload: &[u8], to: SocketAddr, counters: &mut TunnelCounters) {
        let to = udp_socket::for_family(self.map_v4, to);
        if let Err(e) = self.udp.try_send_to(payload, to) {
            tracing::trace!("UDP send to {to}: {e}");
            counters.count(TunnelDrop::IoError);
        }
    }

    /// Flushes decrypted packets to the TUN device.
    fn flush_tun(&self, tun_tx: &mut TunTx, counters: &mut TunnelCounters) {
        let lost = tun_tx.flush(&self.tun);
        counters.add(TunnelDrop::IoError, lost as u64);
    }
}

struct Driver {
    name: String,
    listen_port: u16,
    static_private: StaticSecret,
    public_key: PublicKey,
    endpoint: Endpoint,
    peers: Vec<Peer>,
    allowed_ips: AllowedIps,
    indices: TunnIndexTable,
    /// Given to every Tunn: checks mac1 only ([`HandshakeLimits::for_tunns`]).
    rate_limiter: Arc<RateLimiter>,
    /// Counts every handshake message once and answers with cookies under load.
    handshake_limits: HandshakeLimits,
    counters: TunnelCounters,
    qkd: QkdBridge,
    keylog: Option<KeyLog>,
    chain_store: Option<ChainStore>,
    /// Decrypted packets of the UDP batch being handled.
    tun_tx: TunTx,
    /// Encrypted datagrams of the TUN batch being handled.
    udp_tx: UdpTx,
    /// `[interface] metrics_listen`: what is observed as it happens.
    metrics: Option<Arc<metrics::Shared>>,
}

/// Runs the interface until `shutdown` completes, then removes routes, the TUN device and
/// the control socket (also when it fails half-way: every resource is a drop guard).
///
/// The packet loop runs on its own thread with a current-thread runtime, so readiness of
/// the TUN device and the UDP socket wakes the loop directly instead of going through a
/// worker thread of the caller's runtime (two context switches per batch). KME requests
/// still run on the caller's runtime.
pub async fn run(
    settings: TunnelSettings,
    shutdown: impl Future<Output = ()>,
) -> Result<(), TunnelError> {
    run_reloadable(settings, shutdown, None).await
}

/// [`run`], reloadable with `reloader` (SIGHUP, `trident reload`): see [`crate::reload`].
pub async fn run_reloadable(
    settings: TunnelSettings,
    shutdown: impl Future<Output = ()>,
    reloader: Option<Reloader>,
) -> Result<(), TunnelError> {
    let outer = tokio::runtime::Handle::current();
    // The reload task stays on this runtime: it reads files and runs `ip`.
    let (reload_task, reload) = match reloader {
        Some(r) => {
            let (apply_tx, apply_rx) = mpsc::channel::<Apply>(1);
            let trigger = r.trigger();
            let routes = reload::routes_for(settings.table, &settings.addresses, &settings.peers);
            let task = tokio::spawn(reload::serve(
                r,
                RestartOnly::of(&settings),
                routes,
                apply_tx,
            ));
            (Some(task), Some((apply_rx, trigger)))
        }
        None => (None, None),
    };
    // The metrics server also stays here: the packet thread accepts no new connections.
    let (metrics_task, metrics) = match settings.metrics_listen {
        Some(addr) => {
            let listener = metrics::bind(addr).await?;
            let shared = Arc::new(metrics::Shared::default());
            let (tx, rx) = mpsc::channel::<SnapshotRequest>(2);
            let task = metrics::serve(listener, shared.clone(), tx);
            tracing::info!(%addr, "metrics on http://{addr}/metrics");
            (Some(task), Some((rx, shared)))
        }
        None => (None, None),
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let thread = std::thread::Builder::new()
        .name("trident-data".to_owned())
        .spawn(move || {
            let result = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(run_loop(
                    settings,
                    async {
                        let _ = stop_rx.await;
                    },
                    outer,
                    reload,
                    metrics,
                )),
                Err(source) => Err(TunnelError::Io {
                    what: "data-plane runtime",
                    source,
                }),
            };
            let _ = done_tx.send(result);
        })
        .map_err(|source| TunnelError::Io {
            what: "data-plane thread",
            source,
        })?;
    tokio::pin!(shutdown);
    tokio::pin!(done_rx);
    let result = tokio::select! {
        () = &mut shutdown => {
            let _ = stop_tx.send(());
            (&mut done_rx).await
        }
        r = &mut done_rx => r,
    };
    for task in [reload_task, metrics_task].into_iter().flatten() {
        task.abort();
    }
    // The loop has returned (its cleanup done); wait for the thread's runtime to go away.
    let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    result.unwrap_or_else(|_| {
        Err(TunnelError::Io {
            what: "data-plane thread",
            source: std::io::Error::other("ended without a result"),
        })
    })
}

async fn run_loop(
    settings: TunnelSettings,
    shutdown: impl Future<Output = ()>,
    outer: tokio::runtime::Handle,
    reload: Option<(mpsc::Receiver<Apply>, ReloadTrigger)>,
    metrics: Option<(mpsc::Receiver<SnapshotRequest>, Arc<metrics::Shared>)>,
) -> Result<(), TunnelError> {
    let TunnelSettings {
        name,
        private_key,
        listen_port,
        addresses,
        mtu,
        peers: peer_settings,
        local_sae_id,
        qkd_source,
        keylog_file,
        control_dir,
        state_dir,
        wireguard: _,
        metrics_listen: _,
        table,
        fwmark,
        hooks: _,
        on_up,
    } = settings;

    // Claim the name first: a second `up` of the same interface must not touch the first.
    let (control, listener) = ControlSocket::bind(&control_dir, &name)?;
    let (udp, udp_state) = udp_socket::bind(listen_port, fwmark)?;
    let tun = build_tun(&name, mtu)?;
    let all_allowed: Vec<_> = peer_settings
        .iter()
        .flat_map(|p| p.allowed_ips.iter().copied())
        .collect();
    let netconfig = InterfaceConfig::apply(&name, &addresses, mtu, &all_allowed, table.id())?;
    let map_v4 = udp_socket::maps_v4(&udp);
    let io = Io {
        tun,
        udp,
        udp_state,
        map_v4,
    };
    let keylog = keylog_file.as_deref().map(KeyLog::open).transpose()?;

    let now = Instant::now();
    let public_key = PublicKey::from(&private_key);
    let mut endpoint_config = EndpointConfig::new(private_key.clone());
    endpoint_config.local_sae_id = local_sae_id;
    endpoint_config.keylog = keylog.is_some();
    let mut endpoint = Endpoint::new(
        endpoint_config,
        now,
        SystemTime::now(),
        Box::new(keymix::rng::OsRng),
    );
    let chain_store = state_dir
        .as_deref()
        .map(ChainStore::open)
        .transpose()
        .map_err(TunnelError::StateDir)?;
    // Plain WireGuard peers go after the keymix ones, so keymix's peer ids stay indices.
    let (peer_settings, classic_settings): (Vec<_>, Vec<_>) =
        peer_settings.into_iter().partition(|p| p.classic.is_none());
    let mut peers = Vec::with_capacity(peer_settings.len());
    let mut allowed_ips = AllowedIps::new();
    for mut p in peer_settings {
        let reject_after = p.keymix.reject_after;
        let qkd_policy = p.keymix.qkd;
        let public = p.keymix.public_key;
        p.keymix.endpoint_known = p.endpoint.is_some();
        if let Some(store) = &chain_store {
            p.keymix.state = store.load(public_key.as_bytes(), public.as_bytes());
        }
        let id = endpoint.add_peer(p.keymix, now).map_err(|e| {
            TunnelError::Settings(format!(
                "peer {}: {e}",
                base64::engine::general_purpose::STANDARD.encode(public.as_bytes())
            ))
        })?;
        if id != peers.len() {
            return Err(TunnelError::Settings(format!(
                "keymix numbered peer {} as {id}",
                peers.len()
            )));
        }
        for net in &p.allowed_ips {
            allowed_ips.insert(*net, id);
        }
        peers.push(Peer::new(
            public,
            p.endpoint,
            p.allowed_ips,
            p.persistent_keepalive,
            reject_after,
            qkd_policy,
        ));
    }
    let (mut qkd, mut kme_results) = QkdBridge::new(qkd_source, outer);
    let (mut snapshot_rx, metrics) = match metrics {
        Some((rx, shared)) => (Some(rx), Some(shared)),
        None => (None, None),
    };
    qkd.set_metrics(metrics.clone());
    let handshake_limits = HandshakeLimits::new(&public_key, HANDSHAKE_RATE_LIMIT);
    let mut driver = Driver {
        name,
        listen_port,
        rate_limiter: handshake_limits.for_tunns(),
        handshake_limits,
        static_private: private_key,
        public_key,
        endpoint,
        peers,
        allowed_ips,
        indices: TunnIndexTable::new(),
        counters: TunnelCounters::default(),
        qkd,
        keylog,
        chain_store,
        tun_tx: TunTx::new(),
        udp_tx: UdpTx::new(usize::from(mtu)),
        metrics,
    };
    driver.add_classic_peers(classic_settings)?;
    let (status_tx, mut status_rx) = mpsc::channel::<ControlRequest>(4);
    let (mut apply_rx, trigger) = match reload {
        Some((rx, trigger)) => (Some(rx), Some(trigger)),
        None => (None, None),
    };
    let control_task = ControlSocket::serve_with_reload(listener, status_tx, trigger);
    tracing::info!(
        interface = %driver.name,
        port = listen_port,
        peers = driver.peers.len(),
        "interface up; no traffic until the first PSK epoch"
    );
    crate::sd_notify::ready("interface up; no traffic until the first PSK epoch");
    if let Some(on_up) = on_up {
        // post_up runs on the caller's runtime; a closed receiver means nobody waits.
        let _ = on_up.send(());
    }
    // Setup is done: the loop starts no programs and opens no new sockets (privileges.rs).
    crate::privileges::confine_packet_thread();

    let mut tun_rx = TunRx::new(usize::from(mtu));
    let mut udp_rx = UdpRx::new();
    let mut out = vec![0u8; OUT_BUFFER];
    let mut wg_tick = tokio::time::interval(WIREGUARD_TICK);
    wg_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut ticks: u64 = 0;
    driver.drain_keymix(&io, &mut out);
    tokio::pin!(shutdown);

    let result = loop {
        let keymix_deadline = driver.endpoint.poll_timeout();
        let keymix_timer = async move {
            match keymix_deadline {
                Some(t) => tokio::time::sleep_until(t.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = &mut shutdown => break Ok(()),
            r = tun_rx.fill(&io.tun) => match r {
                Ok(_) => {
                    driver.on_tun_batch(&io, &tun_rx, &mut out);
                    driver.flush_udp(&io).await;
                }
                Err(source) => break Err(TunnelError::Io { what: "TUN device", source }),
            },
            r = udp_rx.fill(&io.udp, &io.udp_state) => match r {
                Ok(_) => {
                    driver.on_udp_batch(&io, &udp_rx, &mut out);
                    io.flush_tun(&mut driver.tun_tx, &mut driver.counters);
                }
                Err(e) => tracing::debug!("UDP receive: {e}"),
            },
            Some((id, result)) = kme_results.recv() => {
                driver.endpoint.handle_kme_result(Instant::now(), id, result);
                driver.drain_keymix(&io, &mut out);
            }
            () = keymix_timer => {
                driver.endpoint.handle_timeout(Instant::now());
                driver.drain_keymix(&io, &mut out);
            }
            _ = wg_tick.tick() => {
                ticks = ticks.wrapping_add(1);
                driver.on_wireguard_tick(&io, &mut out, ticks);
            }
            Some(request) = status_rx.recv() => driver.on_control(&io, request, &mut out),
            Some(apply) = async {
                match apply_rx.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                let result = driver.reconfigure(&io, apply.peers, &mut out);
                let _ = apply.reply.send(result);
            }
            Some(reply) = async {
                match snapshot_rx.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                let _ = reply.send(driver.metrics_snapshot());
            }
        }
        // Whatever an input produced on the slow paths (replayed initiations, ...).
        io.flush_tun(&mut driver.tun_tx, &mut driver.counters);
        driver.flush_udp(&io).await;
    };

    tracing::info!(interface = %driver.name, "shutting down");
    control_task.abort();
    // Order: routes, then the device (closing the fd deletes it with its addresses), then
    // the control socket, so `status` answers as long as anything of the interface exists.
    drop(netconfig);
    drop(io);
    drop(control);
    result
}

impl Driver {
    /// Sends keymix's datagrams and acts on its events; call after every keymix input.
    fn drain_keymix(&mut self, io: &Io, out: &mut [u8]) {
        loop {
            let mut progressed = false;
            // Events first: a chain state must be on disk before the datagram that commits
            // the peer to it (Resp, Confirm, Init) leaves.
            while let Some(event) = self.endpoint.poll_event() {
                progressed = true;
                self.on_keymix_event(io, event, out);
            }
            while let Some(t) = self.endpoint.poll_transmit() {
                progressed = true;
                let to = match t.destination {
                    Destination::Addr(a) => Some(a),
                    Destination::Peer(id) => self.peers.get(id).and_then(|p| p.endpoint),
                };
                match to {
                    Some(to) => io.send_keymix(&t.payload, to, &mut self.counters),
                    None => self.counters.count(TunnelDrop::NoEndpoint),
                }
            }
            if !progressed {
                break;
            }
        }
    }

    fn on_keymix_event(&mut self, io: &Io, event: Event, out: &mut [u8]) {
        match event {
            Event::EpochKey { peer, key } => {
                if let (Some(log), Some(entry)) = (self.keylog.as_mut(), &key.keylog) {
                    log.append(entry);
                }
                if let Some(m) = &self.metrics {
                    m.observe_epoch(&self.endpoint, peer, &key);
                }
                self.install_epoch(io, peer, &key, out);
            }
            Event::Expired { peer, epoch } => self.expire_epoch(peer, epoch),
            Event::KmeRequest(request) => self.qkd.submit(request),
            Event::PersistState { peer, state } => {
                if !ChainStore::persist(self.chain_store.as_ref(), peer, &state) {
                    self.counters.count(TunnelDrop::StateWriteFailed);
                }
            }
        }
    }

    fn install_epoch(&mut self, io: &Io, peer_id: PeerId, key: &EpochKey, out: &mut [u8]) {
        let Some(peer) = self.peers.get_mut(peer_id) else {
            return;
        };
        let index = match self.indices.allocate(peer_id, key.epoch) {
            Ok(index) => index,
            Err(e) => {
                tracing::error!(peer = peer_id, epoch = key.epoch, "{e}");
                return;
            }
        };
        let tunn = match EpochTunn::new(
            key,
            index,
            &self.static_private,
            peer.public_key,
            peer.persistent_keepalive,
            self.rate_limiter.clone(),
        ) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(peer = peer_id, "{e}");
                self.indices.release(index);
                return;
            }
        };
        for dropped in peer.install(tunn) {
            self.indices.release(dropped.index);
        }
        // The one info line per epoch commit: which peer (by key), which epoch, which sources.
        tracing::info!(
            peer = %base64::engine::general_purpose::STANDARD.encode(peer.public_key.as_bytes()),
            epoch = key.epoch,
            sources = %key.sources,
            role = ?key.role,
            "PSK epoch installed"
        );
        // The keymix initiator starts the new epoch's WireGuard handshake right away, so the
        // new session is up long before the previous PSK reaches its reject age; the
        // responder waits for it (two crossing initiations would only cost a round trip).
        if key.role == Role::Initiator {
            let endpoint = peer.endpoint;
            if let Some(current) = peer.current.as_mut() {
                if let TunnResult::WriteToNetwork(init) =
                    current.tunn.format_handshake_initiation(out, false)
                {
                    match endpoint {
                        Some(to) => io.send_udp(init, to, &mut self.counters),
                        None => self.counters.count(TunnelDrop::NoEndpoint),
                    }
                }
            }
        }
        if let Some(pending) = peer.pending_init.take() {
            if pending.epoch_tag == epoch_tag(key.epoch)
                && pending.received.elapsed() < PENDING_INIT_TTL
            {
                self.answer_pending(io, peer_id, &pending, out);
            } else {
                peer.pending_init = Some(pending);
            }
        }
    }

    fn expire_epoch(&mut self, peer_id: PeerId, epoch: u64) {
        let Some(peer) = self.peers.get_mut(peer_id) else {
            return;
        };
        let dropped = peer.expire(epoch);
        if !dropped.is_empty() && peer.current.is_none() {
            tracing::warn!(
                peer = peer_id,
                epoch,
                "last PSK epoch expired: no traffic until keymix agrees on a new one"
            );
        }
        for t in dropped {
            self.indices.release(t.index);
        }
    }

    /// Encrypts a TUN batch into `udp_tx` (sent by [`Self::flush_udp`]).
    fn on_tun_batch(&mut self, io: &Io, batch: &TunRx, out: &mut [u8]) {
        let max_segments = io.udp_state.max_gso_segments();
        let Self {
            peers,
            allowed_ips,
            counters,
            udp_tx,
            ..
        } = self;
        counters.add(TunnelDrop::TunReadDropped, batch.dropped());
        // Routes cannot change within a batch, whose packets mostly share a destination.
        let mut last_route: Option<(IpAddr, Option<PeerId>)> = None;
        for packet in batch.iter() {
            let Some(dst) = Tunn::dst_address(packet) else {
                counters.count(TunnelDrop::NoRoute);
                continue;
            };
            let route = match last_route {
                Some((ip, route)) if ip == dst => route,
                _ => {
                    let route = allowed_ips.lookup(dst);
                    last_route = Some((dst, route));
                    route
                }
            };
            let Some(peer) = route.and_then(|id| peers.get_mut(id)) else {
                counters.count(TunnelDrop::NoRoute);
                continue;
            };
            let endpoint = peer.endpoint;
            let Some(tunn) = peer.sending_tunn() else {
                // Fail closed: no live PSK, no WireGuard session, no traffic.
                counters.count(TunnelDrop::NoEpoch);
                continue;
            };
            // Encrypt straight into the send batch; the scratch buffer only if it is full.
            let (space, batched) = match udp_tx.space(packet.len()) {
                Some(space) => (space, true),
                None => (&mut *out, false),
            };
            let base = space.as_ptr() as usize;
            match tunn.tunn.encapsulate(packet, space) {
                TunnResult::WriteToNetwork(datagram) => match endpoint {
                    Some(to) if batched && datagram.as_ptr() as usize == base => {
                        let len = datagram.len();
                        udp_tx.commit(len, to, max_segments);
                        peer.tx_packets = peer.tx_packets.saturating_add(1);
                    }
                    Some(to) => {
                        io.send_udp(datagram, to, counters);
                        peer.tx_packets = peer.tx_packets.saturating_add(1);
                    }
                    None => counters.count(TunnelDrop::NoEndpoint),
                },
                TunnResult::Err(e) => {
                    tracing::trace!("encapsulate: {e:?}");
                    counters.count(TunnelDrop::WireguardRejected);
                }
                _ => {}
            }
        }
    }

    /// Sends the datagrams `on_tun_batch` encrypted (GSO runs, waiting for socket space).
    async fn flush_udp(&mut self, io: &Io) {
        if self.udp_tx.is_empty() {
            return;
        }
        let failed = self.udp_tx.flush(&io.udp, &io.udp_state, io.map_v4).await;
        for _ in 0..failed {
            self.counters.count(TunnelDrop::IoError);
        }
    }

    fn on_udp_batch(&mut self, io: &Io, batch: &UdpRx, out: &mut [u8]) {
        let mut keymix_input = false;
        for (datagram, src) in batch.datagrams() {
            if keymix::is_keymix(datagram) {
                keymix_input = true;
                match self.endpoint.handle_datagram(Instant::now(), src, datagram) {
                    Ok(Some(peer)) => {
                        // Authenticated: the peer is at `src` now (roaming).
                        if let Some(p) = self.peers.get_mut(peer) {
                            p.endpoint = Some(src);
                        }
                    }
                    Ok(None) => {}
                    Err(reason) => tracing::trace!(%src, "keymix dropped: {}", reason.as_str()),
                }
            } else {
                self.on_wireguard(io, src, datagram, out);
            }
        }
        if keymix_input {
            self.drain_keymix(io, out);
        }
    }

    fn on_wireguard_tick(&mut self, io: &Io, out: &mut [u8], ticks: u64) {
        let now = Instant::now();
        // With a shared rate limiter boringtun leaves the per-second reset to us.
        if ticks.is_multiple_of(4) {
            self.handshake_limits.reset();
        }
        let Self {
            peers,
            indices,
            counters,
            ..
        } = self;
        for (peer_id, peer) in peers.iter_mut().enumerate() {
            for t in peer.expire_by_age(now) {
                // Routine for the previous epoch; worth a warning when nothing is left.
                if peer.current.is_none() {
                    tracing::warn!(
                        peer = peer_id,
                        epoch = t.epoch,
                        "last PSK past its reject age: no traffic"
                    );
                } else {
                    tracing::debug!(
                        peer = peer_id,
                        epoch = t.epoch,
                        "previous PSK past its reject age"
                    );
                }
                indices.release(t.index);
            }
            if peer
                .pending_init
                .as_ref()
                .is_some_and(|p| p.received.elapsed() >= PENDING_INIT_TTL)
            {
                peer.pending_init = None;
            }
            let endpoint = peer.endpoint;
            if let Some(t) = peer.current.as_mut().filter(|t| {
                t.role == Role::Responder
                    && !t.has_session()
                    && now.saturating_duration_since(t.installed) >= RESPONDER_HANDSHAKE_AFTER
            }) {
                if let (TunnResult::WriteToNetwork(init), Some(to)) =
                    (t.tunn.format_handshake_initiation(out, false), endpoint)
                {
                    io.send_udp(init, to, counters);
                }
            }
            for t in peer.tunns_mut() {
                match t.tunn.update_timers(out) {
                    TunnResult::WriteToNetwork(datagram) => match endpoint {
                        Some(to) => io.send_udp(datagram, to, counters),
                        None => counters.count(TunnelDrop::NoEndpoint),
                    },
                    TunnResult::Err(e) => tracing::trace!(peer = peer_id, "timers: {e:?}"),
                    _ => {}
                }
            }
        }
    }

    /// A control-socket request: the status, or an operator's `trident reset` of one peer.
    fn on_control(&mut self, io: &Io, request: ControlRequest, out: &mut [u8]) {
        let (peer, reply) = match request {
            ControlRequest::Status(reply) => {
                let _ = reply.send(self.status(Instant::now()));
                return;
            }
            ControlRequest::Reset { peer, reply } => (peer, reply),
        };
        let key = base64::engine::general_purpose::STANDARD.encode(peer);
        let answer = match self
            .peers
            .iter()
            .position(|p| *p.public_key.as_bytes() == peer)
        {
            Some(id) => {
                tracing::warn!(interface = %self.name, peer = %key, "operator reset: keymix chain with this peer forgotten; next exchange is a bootstrap (C_0)");
                self.endpoint.reset_peer(id, Instant::now());
                self.drain_keymix(io, out);
                ControlReply::ok(format!(
                    "{}: chain with peer {key} reset; a bootstrap exchange starts now",
                    self.name
                ))
            }
            None => ControlReply::error(format!("interface {} has no peer {key}", self.name)),
        };
        let _ = reply.send(answer);
    }

    /// The status plus packet counts, for one metrics scrape.
    fn metrics_snapshot(&self) -> metrics::Snapshot {
        let packets = self
            .peers
            .iter()
            .filter(|p| !p.removed)
            .map(|p| (p.tx_packets, p.rx_packets))
            .collect();
        metrics::Snapshot {
            status: self.status(Instant::now()),
            packets,
        }
    }

    fn status(&self, now: Instant) -> InterfaceStatus {
        let b64 = base64::engine::general_purpose::STANDARD;
        let peers = self
            .peers
            .iter()
            .enumerate()
            .filter(|(_, peer)| !peer.removed)
            .map(|(id, peer)| {
                let st = self.endpoint.peer_status(id, now);
                let live: Vec<u64> = peer.tunns().map(|t| t.epoch).collect();
                // keymix knows the policy; the tunnel knows whether a Tunn is left. Either
                // one saying "no traffic" makes the peer blocked.
                let state = if peer.classic {
                    classic::state(peer)
                } else if st.expired || (st.epoch.is_some() && live.is_empty()) {
                    "blocked"
                } else {
                    st.state.as_str()
                };
                let (tx, rx) = peer.traffic();
                PeerReport {
                    public_key: b64.encode(peer.public_key.as_bytes()),
                    endpoint: peer.endpoint.map(|e| e.to_string()),
                    state: state.to_owned(),
                    epoch: st.epoch,
                    epoch_age_secs: st.epoch_age.map(|a| a.as_secs()),
                    sources: SourcesReport {
                        x25519: st.sources.contains(SourceMask::X25519),
                        mlkem: st.sources.contains(SourceMask::MLKEM),
                        qkd: st.sources.contains(SourceMask::QKD),
                    },
                    qkd_key_id: st.qkd_key_ids.first().cloned(),
                    last_handshake_secs: peer.last_handshake().map(|d| d.as_secs()),
                    rx_bytes: rx,
                    tx_bytes: tx,
                    last_kme_error: st.last_kme_error.clone(),
                    keymix_exchanges: st.exchanges,
                    allowed_ips: peer.allowed_ips.iter().map(|n| n.to_string()).collect(),
                    persistent_keepalive: peer.persistent_keepalive,
                    tunnel_epochs: live,
                    qkd_policy: peer.qkd_policy.to_string(),
                    auth: st.auth.map(|a| a.as_str().to_owned()),
                    reason: st.reason.clone(),
                    chain_epoch: st.chain_epoch,
                    classic: peer.classic,
                    installed_psk: None,
                }
            })
            .collect();
        let mut dropped = BTreeMap::new();
        for (reason, n) in self.endpoint.counters().iter() {
            dropped.insert(format!("keymix_{}", reason.as_str()), n);
        }
        for (reason, n) in self.counters.iter() {
            dropped.insert(reason.as_str().to_owned(), n);
        }
        let dropped_total = dropped.values().fold(0u64, |a, b| a.saturating_add(*b));
        InterfaceStatus {
            interface: self.name.clone(),
            public_key: b64.encode(self.public_key.as_bytes()),
            listen_port: self.listen_port,
            peers,
            dropped,
            dropped_total,
            keylog: self.keylog.as_ref().map(|k| k.path().display().to_string()),
            data_plane: "built-in".to_owned(),
            wireguard: None,
        }
    }
}

/// Creates the TUN device with offload (IFF_VNET_HDR, TSO/GRO) when the kernel allows it,
/// without otherwise: tun-rs probes the offload flags when it builds the device.
fn build_tun(name: &str, mtu: u16) -> Result<AsyncDevice, TunnelError> {
    let build = |offload: bool| {
        tun_rs::DeviceBuilder::new()
            .name(name)
            .mtu(mtu)
            .offload(offload)
            .build_async()
    };
    match build(true) {
        Ok(tun) => {
            tracing::debug!(
                tcp_offload = tun.tcp_gso(),
                udp_offload = tun.udp_gso(),
                "TUN offload probe"
            );
            Ok(tun)
        }
        Err(e) => {
            tracing::info!("TUN offload unavailable ({e}); one packet per read");
            build(false).map_err(|source| TunnelError::Tun {
                name: name.to_owned(),
                source,
            })
        }
    }
}
