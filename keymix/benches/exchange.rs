//! What a keymix epoch costs in CPU, next to the WireGuard handshake it feeds.
//!
//! - `exchange/*`: one complete keymix exchange (Init, Resp, Confirm) between two sans-IO
//!   endpoints until both emitted `Event::EpochKey`; KME requests are answered
//!   synchronously by an `InMemoryKme` pair. Endpoints are built outside the measurement
//!   (their construction includes the static-static DH, which a running tunnel pays once).
//! - `exchange_side/*`: the same exchange, timing only the calls into one side's endpoint.
//! - `wireguard/handshake`: boringtun's Noise IK handshake with a PSK, both sides.
//! - `schedule/*` and `parse/*`: the combiner, the transcript hash and the message parsers.
//!
//! Run: `cargo bench -p keymix` (add `-- --warm-up-time 1 --measurement-time 3` for a quick
//! pass).

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use boringtun::noise::{Tunn, TunnResult};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use keymix::mac::TAG_LEN;
use keymix::message::{Confirm, CookieReply, Init, Resp, COOKIE_LEN, COOKIE_NONCE_LEN};
use keymix::qkd::InMemoryKme;
use keymix::rng::OsRng;
use keymix::schedule::{self, SourceSecrets, Transcript};
use keymix::{
    Endpoint, EndpointConfig, Event, KmeRequestKind, PeerConfig, PublicKey, QkdPolicy, SourceMask,
    StaticSecret,
};

const SAE_A: &str = "SAE_A";
const SAE_B: &str = "SAE_B";

/// Fixed static keys keep the initiator role stable across iterations (the side with the
/// smaller public key initiates); ephemeral keys and QKD keys are fresh every time.
const SECRET_A: [u8; 32] = [0x11; 32];
const SECRET_B: [u8; 32] = [0x22; 32];

struct Side {
    ep: Endpoint,
    kme: InMemoryKme,
    addr: SocketAddr,
    has_key: bool,
}

/// Two endpoints that know each other and have not exchanged anything yet.
/// `sides[initiator]` is the one that initiates on its first timeout.
struct Pair {
    sides: [Side; 2],
    initiator: usize,
    now: Instant,
}

fn side(
    secret: [u8; 32],
    peer_secret: [u8; 32],
    peer_sae: &str,
    qkd: QkdPolicy,
    kme: InMemoryKme,
    addr: &str,
    (now, wall): (Instant, SystemTime),
) -> Side {
    let peer_public = PublicKey::from(&StaticSecret::from(peer_secret));
    // OsRng, as in production: SeededRng's SHA-256 stream would distort the figures.
    let mut ep = Endpoint::new(
        EndpointConfig::new(StaticSecret::from(secret)),
        now,
        wall,
        Box::new(OsRng),
    );
    let mut pc = PeerConfig::new(peer_public);
    pc.qkd = qkd;
    pc.peer_sae_id = Some(peer_sae.to_owned());
    ep.add_peer(pc, now).expect("valid bench peer");
    Side {
        ep,
        kme,
        addr: addr.parse().expect("literal socket address"),
        has_key: false,
    }
}

impl Pair {
    fn new(qkd: QkdPolicy) -> Self {
        let now = Instant::now();
        let wall = SystemTime::now();
        // Unseeded: QKD keys come from the OS, like a real KME's would be random.
        let (kme_a, kme_b) = InMemoryKme::pair(SAE_A, SAE_B);
        let a = side(
            SECRET_A,
            SECRET_B,
            SAE_B,
            qkd,
            kme_a,
            "192.0.2.1:51820",
            (now, wall),
        );
        let b = side(
            SECRET_B,
            SECRET_A,
            SAE_A,
            qkd,
            kme_b,
            "198.51.100.2:51820",
            (now, wall),
        );
        let initiator = usize::from(b.ep.public_key() < a.ep.public_key());
        Pair {
            sides: [a, b],
            initiator,
            now,
        }
    }
}

/// Runs `f` on one side, adding its duration to that side's clock when clocks are kept.
fn timed<R>(clocks: &mut Option<&mut [Duration; 2]>, who: usize, f: impl FnOnce() -> R) -> R {
    match clocks {
        None => f(),
        Some(c) => {
            let start = Instant::now();
            let r = f();
            c[who] += start.elapsed();
            r
        }
    }
}

/// Drives one exchange to completion: the initiator's first timeout, then datagrams and
/// KME answers back and forth until both sides emitted their EpochKey. Panics otherwise,
/// so that a broken exchange cannot pass for a fast one. Returns every datagram sent.
fn run_exchange(pair: &mut Pair, mut clocks: Option<&mut [Duration; 2]>) -> Vec<Vec<u8>> {
    let now = pair.now;
    let init = pair.initiator;
    timed(&mut clocks, init, || {
        pair.sides[init].ep.handle_timeout(now)
    });
    let mut sent = Vec::new();
    // Init, Resp, Confirm: three hops; a few spare rounds for KME round trips.
    for _ in 0..8 {
        let mut progressed = false;
        for who in [init, 1 - init] {
            let me = &mut pair.sides[who];
            let mut out = Vec::new();
            loop {
                let Some(ev) = timed(&mut clocks, who, || me.ep.poll_event()) else {
                    break;
                };
                progressed = true;
                match ev {
                    Event::EpochKey { key, .. } => {
                        black_box(key);
                        me.has_key = true;
                    }
                    // The KME itself is not keymix's CPU: it stays outside the side clocks.
                    Event::KmeRequest(req) => {
                        let result = match &req.kind {
                            KmeRequestKind::EncKeys {
                                slave_sae_id,
                                number,
                                size_bits,
                            } => me.kme.enc_keys_now(slave_sae_id, *number, *size_bits),
                            KmeRequestKind::DecKeys {
                                master_sae_id,
                                key_ids,
                            } => me.kme.dec_keys_now(master_sae_id, key_ids),
                        };
                        timed(&mut clocks, who, || {
                            me.ep.handle_kme_result(now, req.id, result)
                        });
                    }
                    Event::Expired { .. } => panic!("no key can expire within one exchange"),
                    Event::PersistState { .. } => {}
                }
            }
            while let Some(t) = timed(&mut clocks, who, || me.ep.poll_transmit()) {
                out.push(t.payload);
            }
            let src = me.addr;
            let other = &mut pair.sides[1 - who];
            for payload in out {
                progressed = true;
                let r = timed(&mut clocks, 1 - who, || {
                    other.ep.handle_datagram(now, src, &payload)
                });
                assert!(r.is_ok(), "datagram dropped: {r:?}");
                sent.push(payload);
            }
        }
        if pair.sides.iter().all(|s| s.has_key) {
            return sent;
        }
        assert!(progressed, "exchange stalled");
    }
    panic!("exchange did not complete");
}

fn bench_exchange(c: &mut Criterion) {
    let mut g = c.benchmark_group("exchange");
    for (name, qkd) in [
        ("x25519_mlkem_qkd", QkdPolicy::Required),
        ("x25519_mlkem", QkdPolicy::Off),
    ] {
        g.bench_function(name, |b| {
            b.iter_batched(
                || Pair::new(qkd),
                |mut pair| run_exchange(&mut pair, None),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();

    // Per side: iter_custom so that only the calls into that side's endpoint are timed;
    // the other side runs too (its messages are needed) but off the clock.
    let mut g = c.benchmark_group("exchange_side");
    for (name, initiator_side) in [("initiator", true), ("responder", false)] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let mut pair = Pair::new(QkdPolicy::Required);
                    let mut clocks = [Duration::ZERO; 2];
                    black_box(run_exchange(&mut pair, Some(&mut clocks)));
                    let who = if initiator_side {
                        pair.initiator
                    } else {
                        1 - pair.initiator
                    };
                    total += clocks[who];
                }
                total
            })
        });
    }
    g.finish();
}

/// Two boringtun tunnels that know each other, with a PSK (as Trident configures them).
fn wg_pair() -> (Tunn, Tunn) {
    let sk_i = StaticSecret::from([0x33; 32]);
    let sk_r = StaticSecret::from([0x44; 32]);
    let pk_i = PublicKey::from(&sk_i);
    let pk_r = PublicKey::from(&sk_r);
    let psk = Some([0x55; 32]);
    (
        Tunn::new(sk_i, pk_r, psk, None, 1, None),
        Tunn::new(sk_r, pk_i, psk, None, 2, None),
    )
}

/// Initiation -> responder -> response -> initiator. The initiator's answer to the response
/// is its first (keepalive) data packet, which completes the handshake on its side.
fn wg_handshake(initiator: &mut Tunn, responder: &mut Tunn, bufs: &mut [[u8; 256]; 3]) {
    let [b_init, b_resp, b_keepalive] = bufs;
    let init = match initiator.format_handshake_initiation(b_init, false) {
        TunnResult::WriteToNetwork(p) => &*p,
        _ => panic!("no handshake initiation"),
    };
    let resp = match responder.decapsulate(None, init, b_resp) {
        TunnResult::WriteToNetwork(p) => &*p,
        _ => panic!("no handshake response"),
    };
    match initiator.decapsulate(None, resp, b_keepalive) {
        TunnResult::WriteToNetwork(p) => {
            black_box(p);
        }
        _ => panic!("handshake response not accepted"),
    }
}

fn bench_wireguard(c: &mut Criterion) {
    let mut g = c.benchmark_group("wireguard");
    g.bench_function("handshake", |b| {
        b.iter_batched(
            wg_pair,
            |(mut i, mut r)| {
                let mut bufs = [[0u8; 256]; 3];
                wg_handshake(&mut i, &mut r, &mut bufs);
                (i, r)
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn bench_schedule(c: &mut Criterion) {
    let mut g = c.benchmark_group("schedule");
    let prev_chain = [1u8; 32];
    let t = [2u8; 32];
    let all = SourceSecrets {
        ss_x: vec![3; 32],
        ss_k: vec![4; 32],
        k_q: vec![5; 32],
    };
    g.bench_function("combine", |b| {
        b.iter(|| schedule::combine(black_box(&prev_chain), black_box(&all), black_box(&t)))
    });
    let ek = vec![6u8; keymix::message::MLKEM_EK_LEN];
    let ct = vec![7u8; keymix::message::MLKEM_CT_LEN];
    let key_ids = vec!["00000000-0000-4000-8000-000000000001".to_owned()];
    let transcript = Transcript {
        s_init: &[8; 32],
        s_resp: &[9; 32],
        epoch: 1,
        timestamp: 2,
        init_index: 3,
        resp_index: 4,
        proposed: SourceMask::ALL,
        e_init: &[10; 32],
        ek: &ek,
        key_ids: &key_ids,
        e_resp: &[11; 32],
        ct: &ct,
        sources: SourceMask::ALL,
    };
    g.bench_function("transcript_hash", |b| {
        b.iter(|| black_box(&transcript).hash())
    });
    g.finish();
}

fn bench_parse(c: &mut Criterion) {
    // Real messages from one exchange with QKD: Init (with a key ID), Resp, Confirm.
    let mut pair = Pair::new(QkdPolicy::Required);
    let sent = run_exchange(&mut pair, None);
    let find = |ty: u8| {
        sent.iter()
            .find(|m| m.first() == Some(&ty))
            .cloned()
            .expect("the exchange sent every message type")
    };
    let init = find(keymix::message::TYPE_INIT);
    let resp = find(keymix::message::TYPE_RESP);
    let confirm = find(keymix::message::TYPE_CONFIRM);
    // Cookie replies only appear under load; any well-formed one parses the same way.
    let cookie = CookieReply {
        receiver_index: 1,
        nonce: [2; COOKIE_NONCE_LEN],
        sealed_cookie: [3; COOKIE_LEN + TAG_LEN],
    }
    .to_bytes();

    let mut g = c.benchmark_group("parse");
    g.bench_function("init", |b| b.iter(|| Init::parse(black_box(&init)).is_ok()));
    g.bench_function("resp", |b| b.iter(|| Resp::parse(black_box(&resp)).is_ok()));
    g.bench_function("confirm", |b| {
        b.iter(|| Confirm::parse(black_box(&confirm)).is_ok())
    });
    g.bench_function("cookie_reply", |b| {
        b.iter(|| CookieReply::parse(black_box(&cookie)).is_ok())
    });
    g.finish();
}

criterion_group!(
    benches,
    bench_exchange,
    bench_wireguard,
    bench_schedule,
    bench_parse
);
criterion_main!(benches);
