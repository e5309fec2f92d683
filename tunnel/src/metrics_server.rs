//! The HTTP side of the metrics endpoint: connections served concurrently on the caller's
//! runtime, every resource bounded (issue 21, finding 6).
//!
//! * Connections: at most [`Limits::connections`] at once. A connection that has not yet
//!   sent its request head is *idle*; when the limit is reached, a new connection evicts the
//!   oldest idle one (its holder was slowest to ask), and is refused only when every slot is
//!   busy answering. So idle connections held open cannot starve a scraper, who sends its
//!   head at once and is then never evicted.
//! * Time: [`Limits::head_timeout`] to send the head, [`Limits::write_timeout`] to take the
//!   answer, [`Limits::snapshot_timeout`] for the data plane's snapshot.
//! * Bytes: a head of at most [`Limits::max_head`] (else 431), an answer of at most
//!   [`Limits::max_body`] (else 503). Concurrent scrapes share one snapshot and one
//!   rendered text, so the data plane is asked at most once at a time and the memory of
//!   many scrapes is one text, not one each.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use super::{accepts_openmetrics, classic_text, render, route, Route, Shared, SnapshotRequest};

/// What one server allows; [`Limits::default`] is what `metrics_listen` gets.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub connections: usize,
    pub max_head: usize,
    pub head_timeout: Duration,
    pub write_timeout: Duration,
    pub snapshot_timeout: Duration,
    pub max_body: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            // A Prometheus server or two, curl, and room for a few stray clients.
            connections: 64,
            // A scraper's GET is a few hundred bytes.
            max_head: 8 * 1024,
            // Loopback or a management network: a real client sends its head at once.
            head_timeout: Duration::from_secs(2),
            write_timeout: Duration::from_secs(10),
            // The packet loop answers between two batches; seconds mean it is stuck.
            snapshot_timeout: Duration::from_secs(5),
            // About 2.5 KiB of text per peer: ten thousand peers fit.
            max_body: 32 << 20,
        }
    }
}

/// Who holds a slot: idle connections can be evicted (by dropping their sender), busy
/// ones cannot.
#[derive(Default)]
struct Slots {
    next: u64,
    idle: BTreeMap<u64, oneshot::Sender<()>>,
    busy: usize,
}

type SharedSlots = Arc<Mutex<Slots>>;

fn lock(slots: &SharedSlots) -> std::sync::MutexGuard<'_, Slots> {
    // A panic elsewhere cannot leave the counts torn: each update is one statement.
    slots.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Slots {
    /// A slot for a new connection: evicts the oldest idle one when all are taken;
    /// `None` when all are busy.
    fn admit(&mut self, max: usize) -> Option<(u64, oneshot::Receiver<()>)> {
        if self.idle.len() + self.busy >= max {
            // Dropping the sender wakes the idle connection, which closes.
            self.idle.pop_first()?;
        }
        let id = self.next;
        self.next += 1;
        let (evict, evicted) = oneshot::channel();
        self.idle.insert(id, evict);
        Some((id, evicted))
    }
}

/// A connection's slot; freed on drop, however the connection ends.
struct Slot {
    slots: SharedSlots,
    id: u64,
    busy: bool,
}

impl Slot {
    /// Idle to busy; `false` when the slot was evicted meanwhile.
    fn start_answering(&mut self) -> bool {
        let mut s = lock(&self.slots);
        if s.idle.remove(&self.id).is_none() {
            return false;
        }
        s.busy += 1;
        self.busy = true;
        true
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut s = lock(&self.slots);
        if self.busy {
            s.busy = s.busy.saturating_sub(1);
        } else {
            s.idle.remove(&self.id);
        }
    }
}

/// The rendered text of one snapshot, in both formats.
struct Texts {
    openmetrics: String,
    classic: String,
}

/// The latest snapshot's texts and when it was asked for: a scrape that arrived before
/// that moment may answer with it, since the snapshot is younger than the request.
struct Renderer {
    shared: Arc<Shared>,
    requests: mpsc::Sender<SnapshotRequest>,
    latest: tokio::sync::Mutex<Option<(Instant, Arc<Texts>)>>,
}

impl Renderer {
    async fn texts(&self, arrived: Instant) -> Option<Arc<Texts>> {
        let mut latest = self.latest.lock().await;
        if let Some((asked, texts)) = latest.as_ref() {
            if *asked >= arrived {
                return Some(texts.clone());
            }
        }
        let asked = Instant::now();
        let (tx, rx) = oneshot::channel();
        self.requests.send(tx).await.ok()?;
        let snap = rx.await.ok()?;
        let openmetrics = render(&self.shared, &snap);
        let classic = classic_text(&openmetrics);
        let texts = Arc::new(Texts {
            openmetrics,
            classic,
        });
        *latest = Some((asked, texts.clone()));
        Some(texts)
    }
}

/// Accepts and serves until aborted; aborting it also ends every connection (they live in
/// its [`JoinSet`]).
pub fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    requests: mpsc::Sender<SnapshotRequest>,
    limits: Limits,
) -> tokio::task::JoinHandle<()> {
    let renderer = Arc::new(Renderer {
        shared,
        requests,
        latest: tokio::sync::Mutex::new(None),
    });
    let slots = SharedSlots::default();
    tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            };
            let stream = match accepted {
                Ok((s, _)) => s,
                Err(e) => {
                    // Out of descriptors, most likely: let some connections end first.
                    tracing::debug!("metrics accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Some((id, evicted)) = lock(&slots).admit(limits.connections) else {
                tracing::debug!(
                    "metrics: {} connections busy, refusing one",
                    limits.connections
                );
                continue;
            };
            let slot = Slot {
                slots: slots.clone(),
                id,
                busy: false,
            };
            connections.spawn(connection(stream, slot, evicted, renderer.clone(), limits));
        }
    })
}

/// One connection: its head (unless evicted first), then one answer.
async fn connection(
    mut stream: TcpStream,
    mut slot: Slot,
    evicted: oneshot::Receiver<()>,
    renderer: Arc<Renderer>,
    limits: Limits,
) {
    let arrived = Instant::now();
    let head = tokio::select! {
        head = tokio::time::timeout(limits.head_timeout, read_head(&mut stream, limits.max_head)) => head,
        _ = evicted => return,
    };
    // Nothing complete within the time: an idle connection, closed without a word.
    let Ok(head) = head else { return };
    if !slot.start_answering() {
        return;
    }
    let (status, content_type, body) = match head {
        Head::TooLong => (
            "431 Request Header Fields Too Large",
            "text/plain",
            Body::Static("request head too long\n"),
        ),
        Head::Complete(head) => answer(&head, arrived, &renderer, &limits).await,
    };
    let len = body.as_str().len();
    let header = format!(
        "HTTP/1.0 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len}\r\n\
         Connection: close\r\n\r\n"
    );
    let _ = tokio::time::timeout(limits.write_timeout, async {
        stream.write_all(header.as_bytes()).await?;
        stream.write_all(body.as_str().as_bytes()).await?;
        stream.shutdown().await
    })
    .await;
}

/// An answer's body: a constant, or one format of a shared rendered text.
enum Body {
    Static(&'static str),
    OpenMetrics(Arc<Texts>),
    Classic(Arc<Texts>),
}

impl Body {
    fn as_str(&self) -> &str {
        match self {
            Body::Static(s) => s,
            Body::OpenMetrics(t) => &t.openmetrics,
            Body::Classic(t) => &t.classic,
        }
    }
}

async fn answer(
    head: &[u8],
    arrived: Instant,
    renderer: &Renderer,
    limits: &Limits,
) -> (&'static str, &'static str, Body) {
    let plain = "text/plain";
    match route(head) {
        Route::Metrics => {
            let texts =
                tokio::time::timeout(limits.snapshot_timeout, renderer.texts(arrived)).await;
            let Ok(Some(texts)) = texts else {
                return (
                    "503 Service Unavailable",
                    plain,
                    Body::Static("the data plane did not answer\n"),
                );
            };
            let (content_type, body) = if accepts_openmetrics(head) {
                let om = "application/openmetrics-text; version=1.0.0; charset=utf-8";
                (om, Body::OpenMetrics(texts))
            } else {
                let classic = "text/plain; version=0.0.4; charset=utf-8";
                (classic, Body::Classic(texts))
            };
            if body.as_str().len() > limits.max_body {
                tracing::warn!(
                    "metrics text is {} bytes, more than the {} allowed: not served",
                    body.as_str().len(),
                    limits.max_body
                );
                return (
                    "503 Service Unavailable",
                    plain,
                    Body::Static("metrics text too large\n"),
                );
            }
            ("200 OK", content_type, body)
        }
        Route::NotFound => ("404 Not Found", plain, Body::Static("GET /metrics\n")),
        Route::BadMethod => ("405 Method Not Allowed", plain, Body::Static("GET only\n")),
        Route::Bad => ("400 Bad Request", plain, Body::Static("bad request\n")),
    }
}

enum Head {
    /// Up to the blank line, or all the client sent before closing its side.
    Complete(Vec<u8>),
    /// `max` bytes without the blank line.
    TooLong,
}

/// Reads the request head; nothing is allocated before the client sends something, so an
/// idle connection costs its socket only.
async fn read_head(stream: &mut TcpStream, max: usize) -> Head {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return Head::Complete(head),
            Ok(n) => {
                head.extend_from_slice(buf.get(..n).unwrap_or_default());
                if head.windows(4).any(|w| w == b"\r\n\r\n")
                    || head.windows(2).any(|w| w == b"\n\n")
                {
                    return Head::Complete(head);
                }
                if head.len() >= max {
                    return Head::TooLong;
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "metrics_server_tests.rs"]
mod tests;
