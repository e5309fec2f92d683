//! The one loop of the packet thread: waits on every input at once and hands each to its
//! handler, which runs to the end before the next (no locks). After any input it flushes
//! what the slow paths queued, so no packet waits for the next batch.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::setup::{self, Opened};
use crate::control::{ControlRequest, ControlSocket};
use crate::error::TunnelError;
use crate::metrics::{self, SnapshotRequest};
use crate::packet_batch::{TunRx, UdpRx};
use crate::reload::{Apply, ReloadTrigger};
use crate::settings::TunnelSettings;

/// boringtun's timers have one-second resolution; 250 ms keeps keepalives and retries prompt.
const WIREGUARD_TICK: Duration = Duration::from_millis(250);
/// Scratch for handshakes, cookies, keepalives and boringtun's queued packets.
const OUT_BUFFER: usize = crate::packet_batch::MAX_PACKET + 64;

/// Brings the interface up ([`setup::open`]), serves it until `shutdown`, then releases
/// routes, device and control socket in that order.
pub(super) async fn run_loop(
    settings: TunnelSettings,
    shutdown: impl Future<Output = ()>,
    outer: tokio::runtime::Handle,
    reload: Option<(mpsc::Receiver<Apply>, ReloadTrigger)>,
    metrics: Option<(mpsc::Receiver<SnapshotRequest>, Arc<metrics::Shared>)>,
) -> Result<(), TunnelError> {
    let Opened {
        mut driver,
        io,
        netconfig,
        control,
        listener,
        mut kme_results,
        mut chains_written,
        mut snapshot_rx,
        mtu,
        on_up,
    } = setup::open(settings, outer, metrics)?;
    let (status_tx, mut status_rx) = mpsc::channel::<ControlRequest>(4);
    let (mut apply_rx, trigger) = match reload {
        Some((rx, trigger)) => (Some(rx), Some(trigger)),
        None => (None, None),
    };
    let control_task = ControlSocket::serve_with_reload(listener, status_tx, trigger);
    tracing::info!(
        interface = %driver.name,
        port = driver.listen_port,
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

    // WireGuard's padding is on; TRIDENT_WG_PADDING=0 turns it off, only to measure its
    // cost (scripts/bench.sh): unpadded lengths show each inner packet's size on the wire.
    let pad = std::env::var_os("TRIDENT_WG_PADDING").is_none_or(|v| v != "0");
    if !pad {
        tracing::warn!(
            "WireGuard padding off (TRIDENT_WG_PADDING=0): inner packet sizes show on the wire"
        );
    }
    let mut tun_rx = TunRx::with_padding(usize::from(mtu), pad);
    let mut udp_rx = UdpRx::new();
    let mut out = crate::packet_batch::resident(OUT_BUFFER);
    let mut wg_tick = tokio::time::interval(WIREGUARD_TICK);
    wg_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut ticks: u64 = 0;
    driver.drain_keymix(&io, &mut out);
    tokio::pin!(shutdown);

    let result = loop {
        let keymix_deadline = driver.keymix_deadline;
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
                crate::keymix_io::read_wall_clock(&mut driver.endpoint);
                driver.endpoint.handle_kme_result(Instant::now(), id, result);
                driver.drain_keymix(&io, &mut out);
            }
            Some(written) = chains_written.recv() => driver.on_chains_written(&io, &written, &mut out),
            () = keymix_timer => {
                crate::keymix_io::read_wall_clock(&mut driver.endpoint);
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
