//! Writes a seed corpus for every fuzz target into `corpus/<target>/` (next to Cargo.toml):
//! the messages of one real exchange, a cookie reply, and sample ETSI 014 bodies. Starting
//! from valid inputs lets the fuzzer mutate deep fields of a 1.3 KB Init at once instead of
//! first having to discover its layout.
//!
//! Run: `cargo run --manifest-path fuzz/Cargo.toml --example seed_corpus`

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, UNIX_EPOCH};

use keymix::message::{TYPE_CONFIRM, TYPE_COOKIE, TYPE_INIT, TYPE_RESP};
use keymix::qkd::InMemoryKme;
use keymix::rng::SeededRng;
use keymix::{
    Endpoint, EndpointConfig, Event, KmeRequestKind, PeerConfig, PublicKey, QkdPolicy, StaticSecret,
};

/// The endpoint_datagram harness's static keys and SAE IDs (see its source): seeds are
/// only useful there if they are addressed to the endpoint it builds.
const SECRET_1: [u8; 32] = [0x31; 32];
const SECRET_2: [u8; 32] = [0x52; 32];
const SAE_US: &str = "SAE_US";
const SAE_PEER: &str = "SAE_PEER";

fn endpoint(secret: [u8; 32], peer_secret: [u8; 32], peer_sae: &str, now: Instant) -> Endpoint {
    let wall = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let mut ep = Endpoint::new(
        EndpointConfig::new(StaticSecret::from(secret)),
        now,
        wall,
        // Not the harness's seed ([9; 32]): were the ephemerals equal, crossing seeds could
        // replay a whole exchange into the harness and trip its "no EpochKey" check.
        Box::new(SeededRng::new(secret)),
    );
    let mut pc = PeerConfig::new(PublicKey::from(&StaticSecret::from(peer_secret)));
    pc.qkd = QkdPolicy::Required;
    pc.peer_sae_id = Some(peer_sae.to_owned());
    ep.add_peer(pc, now).expect("the seed peer is valid");
    ep
}

/// Runs one exchange between the harness's two keys and returns every datagram, the first
/// byte telling its type. The responder is forced under load once, so a cookie reply (and
/// an Init carrying mac2) are in the record too.
fn exchange() -> Vec<Vec<u8>> {
    let now = Instant::now();
    let public = |s: [u8; 32]| *PublicKey::from(&StaticSecret::from(s)).as_bytes();
    let initiator = usize::from(public(SECRET_2) < public(SECRET_1));
    // The harness's endpoint is always SAE_US and the peer (master of its pre-drawn keys)
    // SAE_PEER, whichever key it holds; name the sides by role so the seed Init asks the
    // harness's KME for a key it has.
    let sae = |who: usize| if who == initiator { SAE_PEER } else { SAE_US };
    let mut eps = [
        endpoint(SECRET_1, SECRET_2, sae(1), now),
        endpoint(SECRET_2, SECRET_1, sae(0), now),
    ];
    let (kme_r, kme_i) = InMemoryKme::pair_seeded(SAE_US, SAE_PEER, [3; 32]);
    let kmes = if initiator == 0 {
        [kme_i, kme_r]
    } else {
        [kme_r, kme_i]
    };
    let addrs: [SocketAddr; 2] = [
        "192.0.2.1:51820".parse().expect("literal address"),
        "198.51.100.2:51820".parse().expect("literal address"),
    ];
    let initiator = usize::from(eps[1].public_key() < eps[0].public_key());
    eps[1 - initiator].set_under_load(Some(true));
    eps[initiator].handle_timeout(now);
    let mut sent = Vec::new();
    let mut keys = 0;
    for round in 0..16 {
        if round == 2 {
            eps[1 - initiator].set_under_load(None);
        }
        for who in [initiator, 1 - initiator] {
            while let Some(ev) = eps[who].poll_event() {
                match ev {
                    Event::KmeRequest(req) => {
                        let r = match &req.kind {
                            KmeRequestKind::EncKeys {
                                slave_sae_id,
                                number,
                                size_bits,
                            } => kmes[who].enc_keys_now(slave_sae_id, *number, *size_bits),
                            KmeRequestKind::DecKeys {
                                master_sae_id,
                                key_ids,
                            } => kmes[who].dec_keys_now(master_sae_id, key_ids),
                        };
                        eps[who].handle_kme_result(now, req.id, r);
                    }
                    Event::EpochKey { .. } => keys += 1,
                    // Nothing is persisted: the seed exchange runs once, in memory.
                    Event::Expired { .. } | Event::PersistState { .. } => {}
                }
            }
            while let Some(t) = eps[who].poll_transmit() {
                let _ = eps[1 - who].handle_datagram(now, addrs[who], &t.payload);
                sent.push(t.payload);
            }
        }
        if keys == 2 {
            return sent;
        }
        // The initiator resends its Init (now with the cookie's mac2) after a second.
        let later = now + Duration::from_secs(round + 1);
        for ep in &mut eps {
            ep.handle_timeout(later);
        }
    }
    panic!("the seed exchange did not complete");
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    fs::create_dir_all(dir).expect("create corpus directory");
    fs::write(dir.join(name), bytes).expect("write corpus file");
}

/// An endpoint_datagram input delivering `datagram`: the given flags, an honest KME, one
/// record with the given fix-ups and no clock step.
fn datagram_record(flags: u8, ctl: u8, datagram: &[u8]) -> Vec<u8> {
    let len = u16::try_from(datagram.len()).expect("datagrams fit u16");
    let mut v = vec![flags, 0, ctl, 0];
    v.extend(len.to_le_bytes());
    v.extend(datagram);
    v
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let sent = exchange();
    let secret_1_public = *PublicKey::from(&StaticSecret::from(SECRET_1)).as_bytes();
    let secret_2_public = *PublicKey::from(&StaticSecret::from(SECRET_2)).as_bytes();
    let initiator_is_1 = secret_1_public < secret_2_public;
    for (i, m) in sent.iter().enumerate() {
        let target = match m.first() {
            Some(&TYPE_INIT) => "init",
            Some(&TYPE_RESP) => "resp",
            Some(&TYPE_CONFIRM) => "confirm",
            Some(&TYPE_COOKIE) => "cookie_reply",
            _ => continue,
        };
        write(&root.join(target), &format!("exchange-{i}"), m);
        // The harness's endpoint holds SECRET_1 unless flags bit 2 swaps it for SECRET_2;
        // pick the key that received this message, with QKD required (flags bits 0-1 = 2).
        // An initiator must have started (bit 3) for a Resp or cookie reply to find its Init.
        let sent_by_initiator = matches!(m[0], TYPE_INIT | TYPE_CONFIRM);
        let receiver_is_1 = sent_by_initiator != initiator_is_1;
        let swap = if receiver_is_1 { 0 } else { 0b100 };
        let start = if sent_by_initiator { 0 } else { 0b1000 };
        let flags = 0b010 | swap | start;
        // The harness's Init index differs from the recorded one (another RNG seed): answers
        // to it are re-bound to the harness's index, then auth and mac1 fixed (ctl bits 4-6).
        let ctl = if sent_by_initiator { 0 } else { 0b0111_0000 };
        write(
            &root.join("endpoint_datagram"),
            &format!("exchange-{i}"),
            &datagram_record(flags, ctl, m),
        );
    }
    let json = root.join("etsi014_json");
    let samples: [(&str, &str); 5] = [
        (
            "status",
            r#"{"source_KME_ID":"KME_A","target_KME_ID":"KME_B","master_SAE_ID":"SAE_A","slave_SAE_ID":"SAE_B","key_size":256,"stored_key_count":25000,"max_key_count":100000,"max_key_per_request":128,"max_key_size":1024,"min_key_size":64,"max_SAE_ID_count":0}"#,
        ),
        (
            "key_request",
            r#"{"number":2,"size":256,"additional_slave_SAE_IDs":["SAE_C"],"extension_mandatory":[{"abc_route_type":"direct"}],"extension_optional":[{"abc_transfer_method":"qkd"}]}"#,
        ),
        (
            "key_container",
            r#"{"keys":[{"key_ID":"bc490419-7d60-487f-adc1-4ddcc177c139","key":"wHHVxRwDJs3/bXd38GHP3oe4svTuRpZS0yCC7x4Ly+s="}],"key_container_extension":{"x":1}}"#,
        ),
        (
            "key_ids",
            r#"{"key_IDs":[{"key_ID":"bc490419-7d60-487f-adc1-4ddcc177c139","key_ID_extension":null}]}"#,
        ),
        (
            "error",
            r#"{"message":"keys are being exhausted","details":[{"message":"requested 128, available 3"}]}"#,
        ),
    ];
    for (name, body) in samples {
        write(&json, name, body.as_bytes());
    }
    println!("seed corpus written to {}", root.display());
}
