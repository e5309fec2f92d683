//! The user-space side of the data path against the AEAD floor, per 64 KiB turn
//! (`packet_batch::TURN_BYTES`: 46 packets of 1420 bytes, the tunnel's MTU):
//!
//! * `aead_floor`: ring's ChaCha20-Poly1305 sealing the 46 packets in place, nothing else;
//! * `encapsulate_turn`: what gateway A does in user space with one TUN read: boringtun's
//!   `Tunn::encapsulate` of each packet straight into the UDP send batch (`UdpTx`), GSO runs
//!   built, the batch emptied as a send would;
//! * `decapsulate_turn`: what gateway B does with one GRO train: `Tunn::decapsulate` of each
//!   datagram into the TUN write batch (`TunTx`), each inner packet checked.
//!
//! No system call is measured: `scripts/bench.sh` measures the whole process (kernel work
//! included) against the same floor. Run: `cargo bench -p tunnel --bench data_path`.

use std::hint::black_box;
use std::net::SocketAddr;

use boringtun::noise::{Tunn, TunnResult};
use boringtun::x25519::{PublicKey, StaticSecret};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305};
use tunnel::packet_batch::{TunTx, UdpTx};

const MTU: usize = 1420;
const PACKETS: usize = 46;

/// An IPv4 packet of `len` bytes (a TCP segment as far as the tunnel can tell).
fn ipv4_packet(len: usize) -> Vec<u8> {
    let mut p = vec![0x5a; len];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    p[8] = 64;
    p[9] = 6;
    p[12..16].copy_from_slice(&[192, 168, 10, 2]);
    p[16..20].copy_from_slice(&[192, 168, 20, 2]);
    p
}

/// Two Tunns with an established session (a WireGuard handshake in memory).
fn session_pair() -> (Tunn, Tunn) {
    let (a_key, b_key) = (StaticSecret::from([1u8; 32]), StaticSecret::from([2u8; 32]));
    let (a_pub, b_pub) = (PublicKey::from(&a_key), PublicKey::from(&b_key));
    let psk = Some([7u8; 32]);
    let mut a = Tunn::new(a_key, b_pub, psk, None, 1, None);
    let mut b = Tunn::new(b_key, a_pub, psk, None, 2, None);
    let (mut m1, mut m2, mut out) = (vec![0u8; 2048], vec![0u8; 2048], vec![0u8; 2048]);
    let init = match a.format_handshake_initiation(&mut m1, false) {
        TunnResult::WriteToNetwork(p) => p.to_vec(),
        _ => panic!("no initiation"),
    };
    let resp = match b.decapsulate(None, &init, &mut m2) {
        TunnResult::WriteToNetwork(p) => p.to_vec(),
        _ => panic!("no response"),
    };
    // The initiator answers the response with a keepalive, which completes B's session.
    let keepalive = match a.decapsulate(None, &resp, &mut out) {
        TunnResult::WriteToNetwork(p) => p.to_vec(),
        _ => panic!("no keepalive"),
    };
    let _ = b.decapsulate(None, &keepalive, &mut out);
    (a, b)
}

fn bench(c: &mut Criterion) {
    let packet = ipv4_packet(MTU);
    let to: SocketAddr = "198.51.100.2:51820"
        .parse()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut group = c.benchmark_group("turn_of_46x1420");
    group.throughput(Throughput::Bytes((PACKETS * MTU) as u64));

    let key = LessSafeKey::new(
        UnboundKey::new(&CHACHA20_POLY1305, &[3u8; 32]).unwrap_or_else(|e| panic!("{e}")),
    );
    let mut records: Vec<Vec<u8>> = (0..PACKETS).map(|_| packet.clone()).collect();
    group.bench_function("aead_floor", |bench| {
        bench.iter(|| {
            for (n, record) in records.iter_mut().enumerate() {
                let mut nonce = [0u8; 12];
                nonce[4..].copy_from_slice(&(n as u64).to_le_bytes());
                let tag = key
                    .seal_in_place_separate_tag(
                        Nonce::assume_unique_for_key(nonce),
                        Aad::empty(),
                        record,
                    )
                    .unwrap_or_else(|e| panic!("{e}"));
                let _ = black_box(tag);
            }
        })
    });

    let (mut a, mut b) = session_pair();
    let mut udp_tx = UdpTx::new(MTU);
    group.bench_function("encapsulate_turn", |bench| {
        bench.iter(|| {
            for _ in 0..PACKETS {
                let Some(space) = udp_tx.space(packet.len()) else {
                    panic!("batch full");
                };
                if let TunnResult::WriteToNetwork(d) = a.encapsulate(&packet, space) {
                    let len = d.len();
                    udp_tx.commit(len, to, 64);
                }
            }
            black_box(&udp_tx);
            udp_tx.clear();
        })
    });

    // A turn of datagrams as gateway B receives them (fresh counters for every pass, so the
    // replay window accepts them all).
    let mut tun_tx = TunTx::new();
    let mut scratch = vec![0u8; 2048];
    group.bench_function("decapsulate_turn", |bench| {
        bench.iter_batched(
            || {
                (0..PACKETS)
                    .map(|_| match a.encapsulate(&packet, &mut scratch) {
                        TunnResult::WriteToNetwork(d) => d.to_vec(),
                        _ => panic!("no datagram"),
                    })
                    .collect::<Vec<_>>()
            },
            |datagrams| {
                for d in &datagrams {
                    let Some(slot) = tun_tx.slot(d.len()) else {
                        panic!("batch full");
                    };
                    if let TunnResult::WriteToTunnelV4(p, _) = b.decapsulate(None, d, slot) {
                        let len = p.len();
                        let _ = tun_tx.commit(len);
                    }
                }
                black_box(&tun_tx);
                tun_tx.clear();
            },
            criterion::BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
