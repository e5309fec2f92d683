//! Bringing one interface up, in the order that keeps a failed start harmless: the control
//! socket first (claims the name, so a second `up` never touches the first), then the UDP
//! socket, the TUN device and its routes, then keymix with the peers and their persisted
//! chains. Everything is a drop guard, so an error half-way undoes what was done.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use keymix::{Endpoint, EndpointConfig, PublicKey};
use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot};
use tun_rs::AsyncDevice;

use super::keymix_peer::add_keymix_peer;
use super::{Driver, Io};
use crate::allowed_ips::AllowedIps;
use crate::chain_store::ChainStore;
use crate::chain_writer::{ChainWriter, Written};
use crate::control::ControlSocket;
use crate::counters::TunnelCounters;
use crate::error::TunnelError;
use crate::handshake_rx::HandshakeLimits;
use crate::keylog::KeyLog;
use crate::metrics::{self, SnapshotRequest};
use crate::netconfig::InterfaceConfig;
use crate::packet_batch::{TunTx, UdpTx};
use crate::peer_keys::PeerKeys;
use crate::qkd_bridge::{KmeResult, QkdBridge};
use crate::settings::TunnelSettings;
use crate::tunn_index::TunnIndexTable;
use crate::udp_socket;

/// Handshakes per second before boringtun demands cookies (boringtun's device default).
const HANDSHAKE_RATE_LIMIT: u64 = 100;

/// What [`open`] brought up. `run_loop` releases the guards in its own order (routes,
/// device, control socket), so they are separate fields, not one drop.
pub(super) struct Opened {
    pub(super) driver: Driver,
    pub(super) io: Io,
    pub(super) netconfig: InterfaceConfig,
    pub(super) control: ControlSocket,
    pub(super) listener: UnixListener,
    pub(super) kme_results: mpsc::UnboundedReceiver<KmeResult>,
    pub(super) chains_written: mpsc::UnboundedReceiver<Written>,
    pub(super) snapshot_rx: Option<mpsc::Receiver<SnapshotRequest>>,
    pub(super) mtu: u16,
    pub(super) on_up: Option<oneshot::Sender<()>>,
}

/// Opens every resource of the interface and builds the driver with its peers.
pub(super) fn open(
    settings: TunnelSettings,
    outer: tokio::runtime::Handle,
    metrics: Option<(mpsc::Receiver<SnapshotRequest>, Arc<metrics::Shared>)>,
) -> Result<Opened, TunnelError> {
    let TunnelSettings {
        name,
        private_key,
        listen_port,
        listen_address,
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
    let (udp, udp_state) = udp_socket::bind(listen_address, listen_port, fwmark)?;
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
    let mut keylog = keylog_file.as_deref().map(KeyLog::open).transpose()?;
    if let (Some(log), Some(source)) = (keylog.as_mut(), qkd_source.as_ref()) {
        log.note_qkd_protocol(source.protocol());
    }

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
    for p in peer_settings {
        let id = peers.len();
        let peer = add_keymix_peer(&mut endpoint, chain_store.as_ref(), &public_key, p, id, now)
            .map_err(TunnelError::Settings)?;
        for net in &peer.allowed_ips {
            allowed_ips.insert(*net, id);
        }
        peers.push(peer);
    }
    let (chain_writer, chains_written) = ChainWriter::new(chain_store, outer.clone());
    let (mut qkd, kme_results) = QkdBridge::new(qkd_source, outer);
    let (snapshot_rx, metrics) = match metrics {
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
        peer_keys: PeerKeys::default(),
        allowed_ips,
        indices: TunnIndexTable::new(),
        counters: TunnelCounters::default(),
        qkd,
        keylog,
        chain_writer,
        tun_tx: TunTx::new(),
        udp_tx: UdpTx::new(usize::from(mtu)),
        metrics,
        confirmed: Vec::new(),
        keymix_deadline: None,
        rx_route: None,
    };
    driver.add_classic_peers(classic_settings)?;
    driver.peer_keys = PeerKeys::of(&driver.peers);
    Ok(Opened {
        driver,
        io,
        netconfig,
        control,
        listener,
        kme_results,
        chains_written,
        snapshot_rx,
        mtu,
        on_up,
    })
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
