//! The loop of the external data plane: keymix on its own UDP socket, each epoch's PSK
//! set on the WireGuard peer with the same public key ([`super::psk`]), the control
//! socket answering `status` and `reset` like the built-in data plane. One task, no locks;
//! no user packet passes through here.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use keymix::{Destination, Endpoint, EndpointConfig, Event, PeerId, PublicKey};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::psk::{ExtPeer, Installed};
use super::{uapi, DeviceInfo, WireGuard};
use crate::chain_store::ChainStore;
use crate::control::{ControlRequest, ControlSocket};
use crate::error::TunnelError;
use crate::keylog::KeyLog;
use crate::keymix_io;
use crate::metrics;
use crate::qkd_bridge::QkdBridge;
use crate::settings::TunnelSettings;
use crate::status::{self, ExternalReport, InterfaceStatus, PeerReport};
use crate::udp_socket;

/// Retries of failed installs and the reject-age backstop.
const TICK: Duration = Duration::from_secs(1);
/// Largest keymix datagram (each fits one 1500-byte packet; margin for IPv6 jumbo paths).
const MAX_DATAGRAM: usize = 4096;

struct Driver {
    name: String,
    listen_port: u16,
    public_key: PublicKey,
    wg_name: String,
    wg_impl: String,
    wg: WireGuard,
    endpoint: Endpoint,
    peers: Vec<ExtPeer>,
    qkd: QkdBridge,
    keylog: Option<KeyLog>,
    chain_store: Option<ChainStore>,
    udp: UdpSocket,
    map_v4: bool,
    send_errors: u64,
    /// Keymix datagrams for a peer whose keymix address is not known yet.
    no_endpoint: u64,
    /// Chain states that could not be saved (logged as errors by the chain store).
    state_write_failed: u64,
    /// `[interface] metrics_listen`: what is observed as it happens (the same metrics as
    /// the built-in data plane; WireGuard's own packet counts are not visible here).
    metrics: Option<Arc<metrics::Shared>>,
}

fn b64(key: &[u8; 32]) -> String {
    base64::engine::general_purpose::STANDARD.encode(key)
}

/// Runs keymix for the WireGuard interface `settings.wireguard` until `shutdown`.
pub async fn run(
    settings: TunnelSettings,
    shutdown: impl Future<Output = ()>,
) -> Result<(), TunnelError> {
    run_with(settings, Path::new(uapi::SOCKET_DIR), shutdown).await
}

/// [`run`] with the directory of UAPI sockets as a parameter (tests).
pub async fn run_with(
    settings: TunnelSettings,
    uapi_dir: &Path,
    shutdown: impl Future<Output = ()>,
) -> Result<(), TunnelError> {
    // Every log line of this interface names it (keymix's included).
    let span = tracing::info_span!("iface", interface = %settings.name);
    tracing::Instrument::instrument(serve(settings, uapi_dir, shutdown), span).await
}

async fn serve(
    mut settings: TunnelSettings,
    uapi_dir: &Path,
    shutdown: impl Future<Output = ()>,
) -> Result<(), TunnelError> {
    let on_up = settings.on_up.take();
    let wg_name = settings
        .wireguard
        .clone()
        .ok_or_else(|| TunnelError::Settings("no [interface] wireguard".into()))?;
    let (control, listener) = ControlSocket::bind(&settings.control_dir, &settings.name)?;
    let (metrics_task, mut snapshot_rx, metrics) = match settings.metrics_listen {
        Some(addr) => {
            let m = metrics::start(addr).await?;
            (Some(m.task), Some(m.snapshots), Some(m.shared))
        }
        None => (None, None, None),
    };
    let (mut driver, mut kme_results) = Driver::setup(settings, wg_name, uapi_dir)?;
    driver.qkd.set_metrics(metrics.clone());
    driver.metrics = metrics;
    let (status_tx, mut status_rx) = mpsc::channel::<ControlRequest>(4);
    let control_task = ControlSocket::serve(listener, status_tx);
    crate::sd_notify::ready("external data plane up: random PSKs until the first epoch");
    if let Some(on_up) = on_up {
        // post_up runs on the caller's runtime.
        let _ = on_up.send(());
    }
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    driver.drain_keymix();
    tokio::pin!(shutdown);
    loop {
        let deadline = driver.endpoint.poll_timeout();
        let keymix_timer = async move {
            match deadline {
                Some(t) => tokio::time::sleep_until(t.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = &mut shutdown => break,
            r = driver.udp.recv_from(&mut buf) => match r {
                Ok((n, src)) => {
                    let src = udp_socket::canonical(src);
                    if let Some(datagram) = buf.get(..n) {
                        driver.on_datagram(src, datagram);
                    }
                }
                Err(e) => tracing::debug!("UDP receive: {e}"),
            },
            Some((id, result)) = kme_results.recv() => {
                keymix_io::read_wall_clock(&mut driver.endpoint);
                driver.endpoint.handle_kme_result(Instant::now(), id, result);
                driver.drain_keymix();
            }
            () = keymix_timer => {
                keymix_io::read_wall_clock(&mut driver.endpoint);
                driver.endpoint.handle_timeout(Instant::now());
                driver.drain_keymix();
            }
            _ = tick.tick() => {
                let now = Instant::now();
                for p in &mut driver.peers {
                    p.tick(&mut driver.wg, now);
                }
            }
            Some(request) = status_rx.recv() => driver.on_control(request),
            Some(reply) = metrics::next_request(&mut snapshot_rx) => {
                let snapshot = metrics::Snapshot {
                    status: driver.status(Instant::now()),
                    packets: Vec::new(),
                };
                let _ = reply.send(snapshot);
            }
        }
    }
    tracing::info!(interface = %driver.name, wireguard = %driver.wg_name, "shutting down: leaving random PSKs");
    for p in &mut driver.peers {
        if let Err(e) = p.set_random(&mut driver.wg) {
            tracing::error!(peer = %p.key_b64(), "could not replace the PSK at shutdown: {e}");
        }
    }
    control_task.abort();
    if let Some(task) = metrics_task {
        task.abort();
    }
    drop(control);
    Ok(())
}

impl Driver {
    fn setup(
        settings: TunnelSettings,
        wg_name: String,
        uapi_dir: &Path,
    ) -> Result<(Self, mpsc::UnboundedReceiver<crate::qkd_bridge::KmeResult>), TunnelError> {
        let err = |e: super::WgError| {
            TunnelError::Settings(format!("WireGuard interface {wg_name}: {e}"))
        };
        let mut wg = WireGuard::open(&wg_name, uapi_dir).map_err(err)?;
        let wg_impl = wg.implementation();
        let device = wg.device().map_err(err)?;
        let public_key = PublicKey::from(&settings.private_key);
        check_device(&device, &wg_name, public_key.as_bytes(), &settings)?;

        let (udp, _state) = udp_socket::bind(
            settings.listen_address,
            settings.listen_port,
            settings.fwmark,
        )?;
        let map_v4 = udp_socket::maps_v4(&udp);
        let mut keylog = settings
            .keylog_file
            .as_deref()
            .map(KeyLog::open)
            .transpose()?;
        if let (Some(log), Some(source)) = (keylog.as_mut(), settings.qkd_source.as_ref()) {
            log.note_qkd_protocol(source.protocol());
        }
        let now = Instant::now();
        let mut config = EndpointConfig::new(settings.private_key.clone());
        config.local_sae_id = settings.local_sae_id.clone();
        config.keylog = keylog.is_some();
        let mut endpoint =
            Endpoint::new(config, now, SystemTime::now(), Box::new(keymix::rng::OsRng));
        let chain_store = settings
            .state_dir
            .as_deref()
            .map(ChainStore::open)
            .transpose()
            .map_err(TunnelError::StateDir)?;
        let mut peers = Vec::new();
        for mut p in settings.peers {
            let public = p.keymix.public_key;
            p.keymix.endpoint_known = p.endpoint.is_some();
            if let Some(store) = &chain_store {
                p.keymix.state = store
                    .load(public_key.as_bytes(), public.as_bytes())
                    .map_err(|e| {
                        TunnelError::Settings(format!("peer {}: {e}", b64(public.as_bytes())))
                    })?;
            }
            let (reject_after, qkd) = (p.keymix.reject_after, p.keymix.qkd);
            let id = endpoint.add_peer(p.keymix, now).map_err(|e| {
                TunnelError::Settings(format!("peer {}: {e}", b64(public.as_bytes())))
            })?;
            if id != peers.len() {
                return Err(TunnelError::Settings(format!(
                    "keymix numbered peer {} as {id}",
                    peers.len()
                )));
            }
            let mut peer = ExtPeer::new(public, p.endpoint, reject_after, qkd);
            // Fail closed until the first epoch: whatever PSK the interface had is replaced.
            peer.set_random(&mut wg).map_err(err)?;
            peers.push(peer);
        }
        let (qkd, kme_results) =
            QkdBridge::new(settings.qkd_source, tokio::runtime::Handle::current());
        tracing::info!(interface = %settings.name, wireguard = %wg_name, implementation = %wg_impl,
            port = settings.listen_port, peers = peers.len(),
            "external data plane up: random PSKs installed until the first epoch");
        let driver = Self {
            name: settings.name,
            listen_port: settings.listen_port,
            public_key,
            wg_name,
            wg_impl,
            wg,
            endpoint,
            peers,
            qkd,
            keylog,
            chain_store,
            udp,
            map_v4,
            send_errors: 0,
            no_endpoint: 0,
            state_write_failed: 0,
            metrics: None,
        };
        Ok((driver, kme_results))
    }

    fn on_datagram(&mut self, src: std::net::SocketAddr, datagram: &[u8]) {
        if !keymix::is_keymix(datagram) {
            // WireGuard runs on its own port; anything else here is noise.
            return;
        }
        if let Some(peer) = keymix_io::accept_datagram(&mut self.endpoint, src, datagram) {
            // Authenticated: the peer's keymix is at `src` now (roaming).
            if let Some(p) = self.peers.get_mut(peer) {
                p.endpoint = Some(src);
            }
        }
        self.drain_keymix();
    }

    /// Events before datagrams: a chain state is on disk before the datagram that commits
    /// the peer to it leaves (see the built-in driver).
    fn drain_keymix(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(event) = self.endpoint.poll_event() {
                progressed = true;
                self.on_event(event);
            }
            while let Some(t) = self.endpoint.poll_transmit() {
                progressed = true;
                let to = match t.destination {
                    Destination::Addr(a) => Some(a),
                    Destination::Peer(id) => self.peers.get(id).and_then(|p| p.endpoint),
                };
                let Some(to) = to else {
                    self.no_endpoint = self.no_endpoint.saturating_add(1);
                    if let Destination::Peer(id) = t.destination {
                        self.endpoint.transmit_failed(id, &t.payload);
                    }
                    continue;
                };
                let to = udp_socket::for_family(self.map_v4, to);
                if let Err(e) = self.udp.try_send_to(&t.payload, to) {
                    tracing::trace!("UDP send to {to}: {e}");
                    self.send_errors = self.send_errors.saturating_add(1);
                    if let Destination::Peer(id) = t.destination {
                        self.endpoint.transmit_failed(id, &t.payload);
                    }
                }
            }
            if !progressed {
                break;
            }
        }
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::EpochKey { peer, key } => {
                keymix_io::record_epoch(
                    self.keylog.as_mut(),
                    self.metrics.as_deref(),
                    &self.endpoint,
                    peer,
                    &key,
                );
                if let Some(p) = self.peers.get_mut(peer) {
                    p.install_epoch(&mut self.wg, &key);
                }
            }
            Event::Expired { peer, epoch } => {
                if let Some(p) = self.peers.get_mut(peer) {
                    p.expire(&mut self.wg, epoch);
                }
            }
            Event::KmeRequest(request) => self.qkd.submit(request),
            Event::PersistState { peer, state } => {
                if !ChainStore::persist(self.chain_store.as_ref(), peer, &state) {
                    self.state_write_failed = self.state_write_failed.saturating_add(1);
                }
            }
        }
    }

    fn on_control(&mut self, request: ControlRequest) {
        let (peer, static_only, reply) = match request {
            ControlRequest::Status(reply) => {
                let _ = reply.send(self.status(Instant::now()));
                return;
            }
            ControlRequest::Reset {
                peer,
                static_only,
                reply,
            } => (peer, static_only, reply),
        };
        let id = self
            .peers
            .iter()
            .position(|p| *p.public_key.as_bytes() == peer);
        let answer =
            keymix_io::operator_reset(&mut self.endpoint, &self.name, id, &peer, static_only);
        if id.is_some() {
            self.drain_keymix();
        }
        let _ = reply.send(answer);
    }

    fn status(&mut self, now: Instant) -> InterfaceStatus {
        // Traffic figures are WireGuard's; a failed read shows zeros, not an error.
        let device = self.wg.device().unwrap_or_default();
        let peers = self
            .peers
            .iter()
            .enumerate()
            .map(|(id, p)| peer_report(&self.endpoint, id, p, &device, now))
            .collect();
        let mut dropped = status::keymix_dropped(&self.endpoint);
        dropped.insert("io_error".to_owned(), self.send_errors);
        dropped.insert("no_endpoint".to_owned(), self.no_endpoint);
        dropped.insert("state_write_failed".to_owned(), self.state_write_failed);
        let status = InterfaceStatus::new(&self.name, &self.public_key, self.listen_port)
            .with_keylog(self.keylog.as_ref())
            .with_qkd_protocol(self.qkd.protocol())
            .with_peers(peers)
            .with_dropped(dropped);
        InterfaceStatus {
            data_plane: "external".to_owned(),
            wireguard: Some(ExternalReport {
                interface: self.wg_name.clone(),
                implementation: self.wg_impl.clone(),
            }),
            ..status
        }
    }
}

fn peer_report(
    endpoint: &Endpoint,
    id: PeerId,
    p: &ExtPeer,
    device: &DeviceInfo,
    now: Instant,
) -> PeerReport {
    let st = endpoint.peer_status(id, now);
    let wg = device
        .peers
        .iter()
        .find(|w| w.public_key == *p.public_key.as_bytes());
    // keymix knows the policy; what WireGuard holds decides whether traffic can flow.
    let state = match &p.installed {
        Installed::Blocked(_) => "blocked",
        _ if st.expired => "blocked",
        _ => st.state.as_str(),
    };
    let epochs = match p.installed {
        Installed::Epoch { epoch, .. } => vec![epoch],
        _ => Vec::new(),
    };
    let since = |t: SystemTime| {
        SystemTime::now()
            .duration_since(t)
            .ok()
            .map(|d| d.as_secs())
    };
    let keymix = PeerReport::keymix_view(p.key_b64(), state, &st, p.qkd_policy);
    PeerReport {
        endpoint: p.endpoint.map(|e| e.to_string()),
        last_handshake_secs: wg.and_then(|w| w.last_handshake).and_then(since),
        rx_bytes: wg.map_or(0, |w| w.rx_bytes),
        tx_bytes: wg.map_or(0, |w| w.tx_bytes),
        last_kme_error: keymix.last_kme_error.or_else(|| p.last_error.clone()),
        allowed_ips: wg
            .map(|w| {
                w.allowed_ips
                    .iter()
                    .map(|(ip, n)| format!("{ip}/{n}"))
                    .collect()
            })
            .unwrap_or_default(),
        persistent_keepalive: wg.and_then(|w| w.persistent_keepalive),
        tunnel_epochs: epochs,
        installed_psk: Some(p.describe()),
        ..keymix
    }
}

/// The interface must hold Trident's key pair and every configured peer: Trident only
/// sets PSKs, it never adds a peer or changes a key.
pub(crate) fn check_device(
    device: &DeviceInfo,
    wg_name: &str,
    own: &[u8; 32],
    settings: &TunnelSettings,
) -> Result<(), TunnelError> {
    match device.public_key {
        Some(k) if &k == own => {}
        Some(k) => {
            return Err(TunnelError::Settings(format!(
                "WireGuard interface {wg_name} has public key {} but Trident's private_key_file \
                 gives {}: both must use the same key pair (wg set {wg_name} private-key FILE)",
                b64(&k),
                b64(own)
            )))
        }
        None => {
            return Err(TunnelError::Settings(format!(
            "WireGuard interface {wg_name} has no private key yet: set the same one Trident uses"
        )))
        }
    }
    for p in &settings.peers {
        let key = p.keymix.public_key.as_bytes();
        if !device.peers.iter().any(|w| &w.public_key == key) {
            return Err(TunnelError::Settings(format!(
                "WireGuard interface {wg_name} has no peer {}: add it there first \
                 (Trident only sets its preshared key)",
                b64(key)
            )));
        }
    }
    Ok(())
}
