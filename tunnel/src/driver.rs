//! The event loop of one interface: owns the keymix endpoint, the peers and their Tunns,
//! and moves packets between the TUN device and the UDP socket. One task, no locks: every
//! input (TUN batch, UDP batch, timer, KME result, status request) is handled to the end
//! before the next.
//!
//! This file holds the driver's state and its entry points; each input has its own file
//! under `driver/`, so a change to one path (say, the timers) reads and reviews alone:
//!
//! * `setup`: the interface comes up (sockets, TUN device, routes, keymix peers);
//! * `event_loop`: waits on every input and hands it to its handler, then tears down;
//! * `tun_input`: user packets, encrypted in batches;
//! * `udp_input` / `wireguard_rx`: datagrams, to keymix or to their Tunn by index;
//! * `keymix_events` / `epoch_install`: what keymix asks for, epochs becoming Tunns;
//! * `timers`: WireGuard's timers, reject ages, the responder's own handshake;
//! * `control_requests` / `status_report`: `trident status`, `reset`, metrics scrapes;
//! * `keymix_peer`: a keymix peer added with its restored chain (at start and on reload);
//! * `classic`, `reconfigure`, `keymix_tx`: plain peers, reloads, keymix sends.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use boringtun::noise::rate_limiter::RateLimiter;
use keymix::{Endpoint, PublicKey, StaticSecret};
use quinn_udp::UdpSocketState;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::Instrument;
use tun_rs::AsyncDevice;

use crate::allowed_ips::AllowedIps;
use crate::chain_writer::ChainWriter;
use crate::counters::{TunnelCounters, TunnelDrop};
use crate::error::TunnelError;
use crate::handshake_rx::HandshakeLimits;
use crate::keylog::KeyLog;
use crate::metrics;
use crate::packet_batch::{TunTx, UdpTx};
use crate::peer::Peer;
use crate::peer_keys::PeerKeys;
use crate::qkd_bridge::QkdBridge;
use crate::reload::{self, Apply, Reloader, RestartOnly};
use crate::settings::TunnelSettings;
use crate::tunn_index::TunnIndexTable;
use crate::udp_socket;

mod classic;
mod control_requests;
mod epoch_install;
mod event_loop;
mod keymix_events;
mod keymix_peer;
mod keymix_tx;
mod reconfigure;
mod setup;
mod status_report;
mod timers;
mod tun_input;
mod udp_input;
mod wireguard_rx;

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
    /// Peer by static key (WireGuard initiations, `reset`); rebuilt whenever `peers` changes.
    peer_keys: PeerKeys,
    allowed_ips: AllowedIps,
    indices: TunnIndexTable,
    /// Given to every Tunn: checks mac1 only ([`HandshakeLimits::for_tunns`]).
    rate_limiter: Arc<RateLimiter>,
    /// Counts every handshake message once and answers with cookies under load.
    handshake_limits: HandshakeLimits,
    counters: TunnelCounters,
    qkd: QkdBridge,
    keylog: Option<KeyLog>,
    /// The state directory's writer: chain states go to disk off this thread, and keymix
    /// output after a state waits there until it is durable.
    chain_writer: ChainWriter,
    /// Decrypted packets of the UDP batch being handled.
    tun_tx: TunTx,
    /// Encrypted datagrams of the TUN batch being handled.
    udp_tx: UdpTx,
    /// `[interface] metrics_listen`: what is observed as it happens.
    metrics: Option<Arc<metrics::Shared>>,
    /// WireGuard initiations the peers confirmed during the input being handled, to be
    /// recorded with their keymix chain (persisted) once it is done.
    confirmed: Vec<(keymix::PeerId, crate::initiation::Tai64n)>,
    /// keymix's next deadline as of the last [`Self::drain_keymix`], which follows every
    /// keymix input: `Endpoint::poll_timeout` visits every peer, so the packet loop reads
    /// this instead of asking again for each batch of data.
    keymix_deadline: Option<std::time::Instant>,
    /// The owner of the last inner source address checked in the UDP batch being handled
    /// (routes change only between batches).
    rx_route: Option<(std::net::IpAddr, Option<keymix::PeerId>)>,
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
    // Every log line of this interface names it (keymix's and boringtun's included).
    let span = tracing::info_span!("iface", interface = %settings.name);
    // The reload task stays on this runtime: it reads files and runs `ip`.
    let (reload_task, reload) = match reloader {
        Some(r) => {
            let (apply_tx, apply_rx) = mpsc::channel::<Apply>(1);
            let trigger = r.trigger();
            let routes = reload::routes_for(settings.table, &settings.addresses, &settings.peers);
            let task = tokio::spawn(
                reload::serve(r, RestartOnly::of(&settings), routes, apply_tx)
                    .instrument(span.clone()),
            );
            (Some(task), Some((apply_rx, trigger)))
        }
        None => (None, None),
    };
    // The metrics server also stays here: the packet thread accepts no new connections.
    let (metrics_task, metrics) = match settings.metrics_listen {
        Some(addr) => {
            let m = metrics::start(addr).await?;
            (Some(m.task), Some((m.snapshots, m.shared)))
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
                Ok(rt) => rt.block_on(
                    event_loop::run_loop(
                        settings,
                        async {
                            let _ = stop_rx.await;
                        },
                        outer,
                        reload,
                        metrics,
                    )
                    .instrument(span),
                ),
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
