//! The opt-in Prometheus endpoint (`[interface] metrics_listen`): GET /metrics over plain
//! HTTP/1.x, in the OpenMetrics text format (prometheus-client) when the scraper accepts
//! it (Prometheus does), else in the classic text format 0.0.4 (curl, promtool).
//!
//! The server ([`server`]) runs on the caller's runtime, not on the seccomp-filtered
//! packet thread (which may not accept TCP connections it did not set up), and serves
//! connections concurrently within fixed bounds. Per scrape it asks the packet loop for a
//! [`Snapshot`] (the status plus packet counts) over a channel; the exchange durations and
//! KME request counts are observed as they happen into [`Shared`], whose metrics are
//! atomics. Every sample carries the `interface` label (a constant label of the registry),
//! so scrapes of several gateways or interfaces never mix.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use crate::error::TunnelError;
use crate::status::InterfaceStatus;

#[path = "metrics_server.rs"]
pub mod server;
pub use server::Limits;

/// The states a peer can be in; each gets a 0/1 sample so a dashboard sees transitions.
const STATES: [&str; 5] = ["connecting", "up", "degraded", "stale", "blocked"];

type Labels = Vec<(String, String)>;

/// Metrics observed as events happen (from any thread).
pub struct Shared {
    exchange_seconds: Histogram,
    kme_requests: Family<Labels, Counter>,
    kme_errors: Family<Labels, Counter>,
}

impl Default for Shared {
    fn default() -> Self {
        Self {
            // 1 ms .. ~33 s: a LAN round trip up to a KME-bound exchange over a bad path.
            exchange_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            kme_requests: Family::default(),
            kme_errors: Family::default(),
        }
    }
}

impl Shared {
    /// Records the duration of an exchange this side initiated, when an epoch key arrives.
    pub fn observe_epoch(&self, endpoint: &keymix::Endpoint, peer: usize, key: &keymix::EpochKey) {
        if key.role != keymix::Role::Initiator {
            return;
        }
        if let Some(took) = endpoint
            .peer_status(peer, std::time::Instant::now())
            .last_exchange
        {
            self.observe_exchange(took);
        }
    }

    /// A keymix exchange this side initiated completed after `took`.
    pub fn observe_exchange(&self, took: Duration) {
        self.exchange_seconds.observe(took.as_secs_f64());
    }

    /// A KME request (`kind`: enc_keys or dec_keys) was sent over `protocol` (the key
    /// source's name: etsi014, skip).
    pub fn kme_request(&self, kind: &str, protocol: &str) {
        self.kme_requests
            .get_or_create(&vec![
                ("kind".to_owned(), kind.to_owned()),
                ("protocol".to_owned(), protocol.to_owned()),
            ])
            .inc();
    }

    /// A KME request failed with `error` (a [`keymix::qkd::QkdError`] kind).
    pub fn kme_error(&self, kind: &str, protocol: &str, error: &str) {
        self.kme_errors
            .get_or_create(&vec![
                ("kind".to_owned(), kind.to_owned()),
                ("protocol".to_owned(), protocol.to_owned()),
                ("error".to_owned(), error.to_owned()),
            ])
            .inc();
    }
}

/// What the packet loop reports per scrape.
pub struct Snapshot {
    pub status: InterfaceStatus,
    /// (tx, rx) packets per peer, in the order of `status.peers`.
    pub packets: Vec<(u64, u64)>,
}

/// A scrape's request to the packet loop.
pub type SnapshotRequest = oneshot::Sender<Snapshot>;

/// The next scrape's request, or never when metrics are off (for a `select!` arm).
pub async fn next_request(
    rx: &mut Option<tokio::sync::mpsc::Receiver<SnapshotRequest>>,
) -> Option<SnapshotRequest> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The OpenMetrics text of one scrape.
pub fn render(shared: &Shared, snap: &Snapshot) -> String {
    let status = &snap.status;
    let mut registry = Registry::with_prefix_and_labels(
        "trident",
        [("interface".into(), status.interface.clone().into())].into_iter(),
    );
    let rx_bytes = Family::<Labels, Counter>::default();
    let tx_bytes = Family::<Labels, Counter>::default();
    let rx_packets = Family::<Labels, Counter>::default();
    let tx_packets = Family::<Labels, Counter>::default();
    let epoch = Family::<Labels, Gauge>::default();
    let epoch_age = Family::<Labels, Gauge>::default();
    let state = Family::<Labels, Gauge>::default();
    let source = Family::<Labels, Gauge>::default();
    let exchanges = Family::<Labels, Counter>::default();
    let version = Family::<Labels, Gauge>::default();
    for (i, p) in status.peers.iter().enumerate() {
        let peer = vec![("peer".to_owned(), p.public_key.clone())];
        let (tx_p, rx_p) = snap.packets.get(i).copied().unwrap_or_default();
        let set = |f: &Family<Labels, Counter>, v: u64| {
            f.get_or_create(&peer).inc_by(v);
        };
        set(&rx_bytes, p.rx_bytes);
        set(&tx_bytes, p.tx_bytes);
        set(&rx_packets, rx_p);
        set(&tx_packets, tx_p);
        set(&exchanges, p.keymix_exchanges);
        if let Some(e) = p.epoch {
            epoch.get_or_create(&peer).set(to_i64(e));
        }
        if let Some(age) = p.epoch_age_secs {
            epoch_age.get_or_create(&peer).set(to_i64(age));
        }
        if let Some(v) = p.version {
            version.get_or_create(&peer).set(i64::from(v));
        }
        let mut states: Vec<&str> = STATES.to_vec();
        if !states.contains(&p.state.as_str()) {
            states.push(&p.state);
        }
        for s in states {
            let mut l = peer.clone();
            l.push(("state".to_owned(), s.to_owned()));
            state.get_or_create(&l).set(i64::from(s == p.state));
        }
        for (name, used) in [
            ("x25519", p.sources.x25519),
            ("mlkem", p.sources.mlkem),
            ("qkd", p.sources.qkd),
        ] {
            let mut l = peer.clone();
            l.push(("source".to_owned(), name.to_owned()));
            source.get_or_create(&l).set(i64::from(used));
        }
    }
    let dropped = Family::<Labels, Counter>::default();
    for (reason, n) in &status.dropped {
        dropped
            .get_or_create(&vec![("reason".to_owned(), reason.clone())])
            .inc_by(*n);
    }
    let peers = Gauge::<i64>::default();
    peers.set(i64::try_from(status.peers.len()).unwrap_or(i64::MAX));
    registry.register("peers", "Peers configured", peers);
    registry.register("peer_rx_bytes", "Bytes received from the peer", rx_bytes);
    registry.register("peer_tx_bytes", "Bytes sent to the peer", tx_bytes);
    registry.register("peer_rx_packets", "Data packets received", rx_packets);
    registry.register("peer_tx_packets", "Data packets sent", tx_packets);
    registry.register("peer_epoch", "Live PSK epoch", epoch);
    registry.register(
        "peer_keymix_version",
        "keymix protocol version of the live epoch's exchange",
        version,
    );
    registry.register(
        "peer_epoch_age_seconds",
        "Seconds since the live PSK epoch was agreed",
        epoch_age,
    );
    registry.register(
        "peer_state",
        "1 for the peer's current state (connecting, up, degraded, blocked)",
        state,
    );
    registry.register(
        "peer_key_source",
        "1 when the live PSK mixed in this source (x25519, mlkem, qkd)",
        source,
    );
    registry.register(
        "peer_keymix_exchanges",
        "Completed keymix exchanges",
        exchanges,
    );
    registry.register(
        "dropped",
        "Datagrams and packets dropped, by reason",
        dropped,
    );
    registry.register(
        "keymix_exchange_duration_seconds",
        "Keymix exchanges this side initiated: Init sent to Resp accepted",
        shared.exchange_seconds.clone(),
    );
    registry.register(
        "kme_requests",
        "KME requests, by kind and protocol (etsi014, skip)",
        shared.kme_requests.clone(),
    );
    registry.register(
        "kme_errors",
        "Failed KME requests, by kind, protocol and error",
        shared.kme_errors.clone(),
    );
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = encode(&mut out, &registry);
    out
}

/// A running metrics endpoint: its task, the snapshot requests of scrapes (answered by the
/// data plane's loop), and the counters the data plane observes into.
pub struct Running {
    pub task: tokio::task::JoinHandle<()>,
    pub snapshots: mpsc::Receiver<SnapshotRequest>,
    pub shared: Arc<Shared>,
}

/// Binds the listener at startup, so a taken port fails `up` at once, and starts serving
/// (concurrently, with the bounds of [`Limits::default`]).
pub async fn start(addr: SocketAddr) -> Result<Running, TunnelError> {
    start_with(addr, Limits::default()).await
}

/// [`start`] with other bounds (tests).
pub async fn start_with(addr: SocketAddr, limits: Limits) -> Result<Running, TunnelError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| TunnelError::Io {
            what: "metrics_listen",
            source,
        })?;
    if let Some(warning) = exposure_warning(addr) {
        tracing::warn!("{warning}");
    }
    let shared = Arc::new(Shared::default());
    let (tx, snapshots) = mpsc::channel::<SnapshotRequest>(2);
    let task = server::serve(listener, shared.clone(), tx, limits);
    tracing::info!(%addr, "metrics on http://{addr}/metrics");
    Ok(Running {
        task,
        snapshots,
        shared,
    })
}

/// What `up` says when the metrics listen beyond this host: they have no authentication,
/// and name every peer's key with its state and traffic, which `trident status` keeps to
/// root. On loopback only local users reach them (README, "Metrics").
pub fn exposure_warning(addr: SocketAddr) -> Option<String> {
    let ip = addr.ip();
    let ip = match ip {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, std::net::IpAddr::V4),
        v4 => v4,
    };
    if ip.is_loopback() {
        return None;
    }
    let reach = if ip.is_unspecified() {
        "every address of this host"
    } else {
        "a non-loopback address"
    };
    Some(format!(
        "metrics_listen {addr} is {reach}: anyone who can reach it reads every peer's public \
         key, state, epoch and traffic counters, without authentication; firewall the port \
         or listen on 127.0.0.1"
    ))
}

/// Whether the request's Accept header names the OpenMetrics format.
fn accepts_openmetrics(head: &[u8]) -> bool {
    String::from_utf8_lossy(head).lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("accept:") && l.contains("application/openmetrics-text")
    })
}

/// OpenMetrics text as the classic format: a counter family is named with its `_total`
/// (as its samples are), and `# UNIT` and `# EOF` go away.
pub fn classic_text(openmetrics: &str) -> String {
    let counters: Vec<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(&name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

#[derive(Debug, PartialEq, Eq)]
enum Route {
    Metrics,
    NotFound,
    BadMethod,
    Bad,
}

fn route(head: &[u8]) -> Route {
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let Ok(line) = std::str::from_utf8(line) else {
        return Route::Bad;
    };
    let mut words = line.split_ascii_whitespace();
    match (words.next(), words.next(), words.next()) {
        (Some(method), Some(path), Some(version)) if version.starts_with("HTTP/1.") => {
            if method != "GET" {
                Route::BadMethod
            } else if path == "/metrics" || path.starts_with("/metrics?") {
                Route::Metrics
            } else {
                Route::NotFound
            }
        }
        _ => Route::Bad,
    }
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
