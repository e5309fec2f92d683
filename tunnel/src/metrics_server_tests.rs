//! The bounds of the metrics server on real loopback sockets: idle connections neither
//! delay a scrape nor outlive their time, the connection limit evicts the idle, oversize
//! heads and answers are refused, and a stuck data plane costs a 503, not a hang.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::metrics::tests::snapshot;

/// Bounds small enough for tests to reach them quickly.
fn limits() -> Limits {
    Limits {
        connections: 8,
        head_timeout: Duration::from_millis(300),
        snapshot_timeout: Duration::from_millis(500),
        ..Limits::default()
    }
}

/// A server on an ephemeral loopback port whose "packet loop" answers each snapshot
/// request after `delay` (never, with `None`); returns its address and the number of
/// snapshots asked for.
async fn server(limits: Limits, delay: Option<Duration>) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, mut rx) = mpsc::channel::<SnapshotRequest>(2);
    let asked = Arc::new(AtomicUsize::new(0));
    let count = asked.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Some(reply) = rx.recv().await {
            count.fetch_add(1, Ordering::SeqCst);
            match delay {
                Some(d) => {
                    tokio::time::sleep(d).await;
                    let _ = reply.send(snapshot());
                }
                None => held.push(reply),
            }
        }
    });
    // Detached: the task ends with the test's runtime.
    drop(serve(listener, Arc::new(Shared::default()), tx, limits));
    (addr, asked)
}

/// Sends `request`, returns the whole answer and how long it took.
async fn exchange(addr: SocketAddr, request: &[u8]) -> (String, Duration) {
    let start = Instant::now();
    let mut s = TcpStream::connect(addr).await.unwrap();
    // A refused connection may be closed before the request is written.
    let _ = s.write_all(request).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut answer)).await;
    (
        String::from_utf8_lossy(&answer).into_owned(),
        start.elapsed(),
    )
}

const GET: &[u8] = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";

/// Whether the server closed `s` (EOF or reset) within `within`.
async fn closed(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(within, s.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

#[tokio::test]
async fn fifty_idle_connections_do_not_delay_a_scrape() {
    let (addr, _) = server(
        Limits {
            head_timeout: Duration::from_secs(30),
            ..Limits::default()
        },
        Some(Duration::ZERO),
    )
    .await;
    let mut idle = Vec::new();
    for _ in 0..50 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    let (answer, took) = exchange(addr, GET).await;
    assert!(answer.starts_with("HTTP/1.0 200 OK\r\n"), "{answer}");
    assert!(answer.contains("trident_peer_rx_bytes_total{interface=\"trdA\""));
    assert!(took < Duration::from_millis(500), "scrape took {took:?}");
    // The idle ones were not evicted: 51 fit in the 64 slots.
    for s in &mut idle {
        assert!(!closed(s, Duration::from_millis(1)).await);
    }
}

#[tokio::test]
async fn idle_connections_are_closed_after_the_head_timeout() {
    let (addr, asked) = server(limits(), Some(Duration::ZERO)).await;
    let mut idle = TcpStream::connect(addr).await.unwrap();
    // A head that never ends is no better than silence.
    let mut partial = TcpStream::connect(addr).await.unwrap();
    partial
        .write_all(b"GET /metrics HTTP/1.1\r\n")
        .await
        .unwrap();
    assert!(closed(&mut idle, Duration::from_secs(3)).await);
    assert!(closed(&mut partial, Duration::from_secs(3)).await);
    assert_eq!(asked.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn beyond_the_limit_the_oldest_idle_connection_is_evicted() {
    let l = Limits {
        head_timeout: Duration::from_secs(30),
        ..limits()
    };
    let (addr, _) = server(l, Some(Duration::ZERO)).await;
    let mut idle = Vec::new();
    for _ in 0..l.connections {
        idle.push(TcpStream::connect(addr).await.unwrap());
        // In order of arrival at the server.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (answer, _) = exchange(addr, GET).await;
    assert!(answer.starts_with("HTTP/1.0 200 OK\r\n"), "{answer}");
    let (oldest, rest) = idle.split_first_mut().unwrap();
    assert!(closed(oldest, Duration::from_secs(2)).await);
    // Only as many as needed: the scrape took one slot and then gave it back.
    for s in rest {
        assert!(!closed(s, Duration::from_millis(1)).await);
    }
}

#[tokio::test]
async fn when_every_slot_is_busy_new_connections_are_refused_then_served() {
    // A stuck data plane: the scrapes wait for a snapshot that never comes.
    let l = Limits {
        connections: 2,
        ..limits()
    };
    let (addr, _) = server(l, None).await;
    let busy = [
        tokio::spawn(exchange(addr, GET)),
        tokio::spawn(exchange(addr, GET)),
    ];
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (refused, took) = exchange(addr, GET).await;
    assert_eq!(refused, "");
    assert!(took < Duration::from_millis(300), "{took:?}");
    for b in busy {
        let (answer, took) = b.await.unwrap();
        assert!(answer.starts_with("HTTP/1.0 503 "), "{answer}");
        assert!(took < Duration::from_secs(2), "{took:?}");
    }
    // The slots are free again (once the busy ones' tasks have ended after their answer).
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (answer, _) = exchange(addr, b"GET / HTTP/1.0\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.0 404 "), "{answer}");
}

#[tokio::test]
async fn oversize_heads_and_answers_are_refused() {
    let (addr, _) = server(limits(), Some(Duration::ZERO)).await;
    let mut long = b"GET /metrics HTTP/1.1\r\n".to_vec();
    long.extend(std::iter::repeat_n(b'a', Limits::default().max_head));
    let (answer, _) = exchange(addr, &long).await;
    assert!(answer.starts_with("HTTP/1.0 431 "), "{answer}");

    let small = Limits {
        max_body: 100,
        ..limits()
    };
    let (addr, _) = server(small, Some(Duration::ZERO)).await;
    let (answer, _) = exchange(addr, GET).await;
    assert!(answer.starts_with("HTTP/1.0 503 "), "{answer}");
    assert!(answer.ends_with("metrics text too large\n"), "{answer}");
}

#[tokio::test]
async fn concurrent_scrapes_share_a_snapshot_taken_after_they_arrived() {
    let (addr, asked) = server(limits(), Some(Duration::from_millis(200))).await;
    let scrapes: Vec<_> = (0..6).map(|_| tokio::spawn(exchange(addr, GET))).collect();
    for s in scrapes {
        let (answer, _) = s.await.unwrap();
        assert!(answer.starts_with("HTTP/1.0 200 OK\r\n"), "{answer}");
    }
    // The first scrape's snapshot, then one for all who arrived while it was taken (one
    // more if a scrape is scheduled 200 ms late on a loaded machine).
    let n = asked.load(Ordering::SeqCst);
    assert!(
        (1..=3).contains(&n),
        "{n} snapshots for 6 concurrent scrapes"
    );
    // A later scrape does not get an older snapshot.
    let (answer, _) = exchange(addr, GET).await;
    assert!(answer.starts_with("HTTP/1.0 200 OK\r\n"), "{answer}");
    assert_eq!(asked.load(Ordering::SeqCst), n + 1);
}

#[test]
fn only_loopback_listeners_go_without_a_warning() {
    for quiet in ["127.0.0.1:9586", "[::1]:9586", "[::ffff:127.0.0.1]:9586"] {
        assert_eq!(super::super::exposure_warning(quiet.parse().unwrap()), None);
    }
    let any = super::super::exposure_warning("0.0.0.0:9586".parse().unwrap()).unwrap();
    assert!(any.contains("every address of this host"), "{any}");
    assert!(any.contains("public key, state"), "{any}");
    let lan = super::super::exposure_warning("[fd00::1]:9586".parse().unwrap()).unwrap();
    assert!(lan.contains("non-loopback"), "{lan}");
}
