//! Idle TCP connections (no TLS handshake) must not starve the simulator's SAE API or key
//! link (issue 10): each is bounded in time before its handshake completes, and in number
//! per source address.
//!
//! The attacker's connections come from 127.0.0.2 (all of 127/8 is loopback on Linux), the
//! real SAEs and KMEs from 127.0.0.1, as on a network where they have different addresses.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use keymix::qkd::QkdKeySource;
use qkd::sim::LocalPair;
use tokio::io::AsyncReadExt as _;
use tokio::net::{TcpSocket, TcpStream};

mod common;
use common::{fixed_pair, sae_a, sae_b, TempDir, SAE_A, SAE_B};

const IDLE_PER_LISTENER: usize = 20;

/// A TCP connection from `source` that never starts TLS.
async fn idle_from(source: Ipv4Addr, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((source, 0))).unwrap();
    socket.connect(to).await.unwrap()
}

fn listeners(pair: &LocalPair) -> [SocketAddr; 4] {
    [
        pair.a.api_addr,
        pair.b.api_addr,
        pair.a.link_addr,
        pair.b.link_addr,
    ]
}

#[tokio::test]
async fn idle_connections_from_one_source_do_not_starve_enc_keys() {
    let dir = TempDir::new("starve");
    let pair = fixed_pair(&dir, |_, _| {}).await;
    let (a, b) = (sae_a(&pair), sae_b(&pair));

    let attacker = Ipv4Addr::new(127, 0, 0, 2);
    let mut idle = Vec::new();
    for to in listeners(&pair) {
        for _ in 0..IDLE_PER_LISTENER {
            idle.push(idle_from(attacker, to).await);
        }
    }
    // Let both KMEs accept them all before the real request.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let keys = a
        .enc_keys(SAE_B, 1, 256)
        .await
        .expect("enc_keys while idle connections are held");
    let ids: Vec<String> = keys.iter().map(|k| k.key_id.clone()).collect();
    let fetched = b
        .dec_keys(SAE_A, &ids)
        .await
        .expect("dec_keys while idle connections are held");
    assert_eq!(*fetched[0].key, *keys[0].key);
    drop(idle);
}

#[tokio::test]
async fn an_idle_connection_is_closed_soon_after_connecting() {
    let dir = TempDir::new("deadline");
    let pair = fixed_pair(&dir, |_, _| {}).await;
    let source = Ipv4Addr::new(127, 0, 0, 3);
    let mut idle = Vec::new();
    for to in listeners(&pair) {
        idle.push((to, idle_from(source, to).await));
    }
    let started = Instant::now();
    for (to, mut conn) in idle {
        let mut buf = [0u8; 16];
        // The handshake deadline is 2 s; 6 s leaves a wide margin on a slow machine.
        let left = Duration::from_secs(6).saturating_sub(started.elapsed());
        match tokio::time::timeout(left, conn.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {}
            Ok(Ok(n)) => panic!("{to}: {n} unexpected bytes before any TLS"),
            Err(_) => panic!(
                "{to}: idle connection still open after {:?}",
                started.elapsed()
            ),
        }
    }
}
