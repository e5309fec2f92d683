//! Recomputes every line of a version-2 vector file from its inputs with the independent
//! formulas of vectors_v2/spec.rs (docs/PROTOCOL.md, "Version 2: wire privacy" and what it
//! inherits from version 1), so a file that passes here is one another implementation can
//! reproduce from the document alone.
//!
//! Inputs: the static private keys, the bootstrap PSK, per exchange the ephemeral secrets
//! (e_i, d || z, e_r, m), the KME keys, the pseudonym attempt j, and what only randomness
//! or the clock decides, read from the messages: the 16 random bytes in place of a
//! pseudonym (no-PSK bootstrap), both sender indices, and the timestamp, proposed mask and
//! key IDs inside the Init's sealed plaintext (opened with the recomputed K_init), the used
//! mask inside the Resp's (opened with the recomputed K_resp). Everything else is rebuilt
//! and compared, the messages byte for byte; each exchange after the first is keyed with
//! the C_n this check computed for the one before (the file never gives a chain key).

use std::collections::{BTreeMap, BTreeSet};

use ml_kem::array::Array;
use ml_kem::{Decapsulate, DecapsulationKey, EncapsulationKey, KeyExport, MlKem768};

use super::layout::Built;
use super::spec::{hex, mac, x25519, x25519_public};
use super::spec_v2::*;

/// A vector file: `name = hex` lines; every line must end up an input or checked.
pub struct Vector {
    pub name: String,
    prefix: String,
    values: BTreeMap<String, Vec<u8>>,
    seen: BTreeSet<String>,
    /// "# Wall clock at the start: N s after 1970", when the header says so.
    wall_clock_start: Option<u64>,
}

impl Vector {
    pub fn parse(name: &str, text: &str) -> Self {
        let wall_clock_start = text.lines().find_map(|l| {
            let rest = l.strip_prefix("# Wall clock at the start: ")?;
            rest.split(' ').next()?.parse().ok()
        });
        let values = super::values::parse(name, text);
        Self {
            name: name.into(),
            prefix: String::new(),
            values,
            seen: BTreeSet::new(),
            wall_clock_start,
        }
    }

    fn key(&self, k: &str) -> String {
        format!("{}{k}", self.prefix)
    }

    fn has(&self, k: &str) -> bool {
        self.values.contains_key(&self.key(k))
    }

    fn input(&mut self, k: &str) -> Option<Vec<u8>> {
        let k = self.key(k);
        let v = self.values.get(&k).cloned();
        if v.is_some() {
            self.seen.insert(k);
        }
        v
    }

    fn need(&mut self, k: &str) -> Vec<u8> {
        let v = self.input(k);
        v.unwrap_or_else(|| panic!("{}: no {}{k}", self.name, self.prefix))
    }

    /// Compares a recomputed value with the file's line, which must exist.
    fn check(&mut self, k: &str, computed: &[u8]) {
        let key = self.key(k);
        let v = self.values.get(&key);
        let v = v.unwrap_or_else(|| panic!("{}: no {key} to check", self.name));
        let (want, got) = (hex(v), hex(computed));
        assert_eq!(
            want, got,
            "{}: {key} differs from the recomputation",
            self.name
        );
        self.seen.insert(key);
    }

    fn need_len(&mut self, k: &str) -> usize {
        self.need(k).len()
    }

    fn finish(&self) {
        for k in self.values.keys() {
            let seen = self.seen.contains(k);
            assert!(seen, "{}: {k} is neither an input nor checked", self.name);
        }
    }
}

/// How an exchange's Init was hidden (docs/PROTOCOL.md, "Hiding keys").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Keyed with C_0 of a bootstrap PSK: a boot pseudonym, K_init from PRK_boot.
    BootPsk,
    /// Keyed with the public C_0: 16 random bytes, mac1 under mac1_key(S_r), PRK_boot.
    BootDh,
    /// Keyed with a chain key: a chain pseudonym, K_init from PRK_hide.
    Chain,
}

/// A rebuilt message: its type, its length and its fields as (offset, size).
pub type Layout = (u8, usize, Vec<(usize, usize)>);

/// What a verified file showed.
#[derive(Debug, Default)]
pub struct Summary {
    pub epochs: Vec<u64>,
    pub kinds: Vec<Kind>,
    /// Exchanges whose used mask has the QKD bit.
    pub with_qkd: usize,
    /// Every rebuilt message (each equal to the file's) with its fields as (offset, size),
    /// for the check against the document's tables.
    pub layouts: Vec<Layout>,
}

struct Statics {
    s_i: [u8; 32],
    s_r: [u8; 32],
    priv_r: Vec<u8>,
    ss_static: [u8; 32],
    psk_b: Vec<u8>,
    c0: [u8; 32],
}

fn statics(v: &mut Vector) -> Statics {
    let priv_i = v.need("initiator_static_private");
    let priv_r = v.need("responder_static_private");
    let (s_i, s_r) = (x25519_public(&priv_i), x25519_public(&priv_r));
    v.check("initiator_static_public", &s_i);
    v.check("responder_static_public", &s_r);
    let ss_static = x25519(&priv_i, &s_r);
    assert_eq!(ss_static, x25519(&priv_r, &s_i));
    v.check("ss_static", &ss_static);
    let psk_b = v.need("bootstrap_psk");
    assert!(
        psk_b.is_empty() || psk_b.len() == 32,
        "psk_b is 32 bytes or none"
    );
    let c0 = c0(&psk_b);
    v.check("c0", &c0);
    v.check("mac1_key_responder", &mac1_key(&s_r));
    Statics {
        s_i,
        s_r,
        priv_r,
        ss_static,
        psk_b,
        c0,
    }
}

/// Recomputes the exchanges of `v` (names prefixed `exchange<j>.`, j from 1).
pub fn verify(v: &mut Vector) -> Summary {
    let st = statics(v);
    let mut summary = Summary::default();
    let (mut c, mut last_ts) = (st.c0, v.wall_clock_start.map(|s| s * 1_000_000_000));
    for j in 1.. {
        v.prefix = format!("exchange{j}.");
        if !v.has("init") {
            break;
        }
        // Exchange 1 is the bootstrap (keyed with C_0); each later one is keyed with the
        // C_n computed for the exchange before and is for the next epoch.
        let out = exchange(v, &st, c, &mut summary);
        assert_eq!(out.epoch, j, "{}: exchange {j} is for epoch {j}", v.name);
        if let Some(prev) = last_ts {
            // The first Init is at or after the wall clock's start; then strictly increasing.
            let ok = if j == 1 {
                out.ts >= prev
            } else {
                out.ts > prev
            };
            assert!(
                ok,
                "{}: exchange {j}'s timestamp {} after {prev}",
                v.name, out.ts
            );
        }
        last_ts = Some(out.ts);
        summary.epochs.push(out.epoch);
        c = out.chain;
    }
    v.prefix.clear();
    assert!(
        summary.epochs.len() >= 2,
        "{}: fewer than two exchanges",
        v.name
    );
    v.finish();
    summary
}

struct Outcome {
    epoch: u64,
    ts: u64,
    chain: [u8; 32],
}

/// One exchange keyed with `c` (C_0: a bootstrap).
fn exchange(v: &mut Vector, st: &Statics, c: [u8; 32], summary: &mut Summary) -> Outcome {
    let (s_i, s_r, psk_b) = (&st.s_i, &st.s_r, &st.psk_b[..]);
    let init_msg = v.need("init");
    assert_eq!(init_msg.len(), INIT_LEN, "{}: Init length", v.name);

    // The initiator's ephemerals: E_i and the ML-KEM key pair from d || z.
    let e_i = v.need("initiator_ephemeral_private");
    let e_i_pub = x25519_public(&e_i);
    let seed = v.need("initiator_mlkem_seed");
    let dk = DecapsulationKey::<MlKem768>::from_seed(Array::try_from(&seed[..]).unwrap());
    let ek = dk.encapsulation_key().to_bytes().to_vec();

    // Hiding keys: PRK_hide(c) for a chain; the ephemeral-static DH for a bootstrap.
    let prk = prk_hide(&c, psk_b);
    let kind = match (c == st.c0, psk_b.is_empty()) {
        (false, _) => Kind::Chain,
        (true, false) => Kind::BootPsk,
        (true, true) => Kind::BootDh,
    };
    summary.kinds.push(kind);
    let k_init = if kind == Kind::Chain {
        k_init_chain(&prk, &e_i_pub)
    } else {
        let dh = x25519(&e_i, s_r);
        assert_eq!(dh, x25519(&st.priv_r, &e_i_pub), "X25519(s_r, E_i)");
        v.check("dh", &dh);
        k_init_boot(&st.c0, &dh, &e_i_pub, s_r)
    };
    v.check("k_init", &k_init);
    let (k_resp, k_mac1x) = exchange_keys(&k_init);
    v.check("k_resp", &k_resp);
    v.check("k_mac1x", &k_mac1x);
    let (k_auth_i2r, k_auth_r2i) = auth_keys(&c, &st.ss_static, psk_b, s_i, s_r);
    v.check("k_auth_i2r", &k_auth_i2r);
    v.check("k_auth_r2i", &k_auth_r2i);

    // The sealed plaintext: opened with K_init only to read what the clock and the
    // initiator's policy chose (timestamp, proposed mask, key IDs); then rebuilt.
    let opened = open(&k_init, &[0; 12], &init_msg[1240..1380], &init_msg[..1240]);
    let plain = Plain::decode(&opened.expect("the Init opens under the recomputed K_init"));
    assert_eq!(&plain.s_i, s_i, "S_i in the plaintext");
    let plain_bytes = plain.encode();
    v.check("init_plaintext", &plain_bytes);

    // The pseudonym (and the mac1 key it selects).
    let (pseudonym, mac1k) = if kind == Kind::BootDh {
        assert!(!v.has("pseudonym_attempt") && !v.has("k_mac1"));
        (arr16(&v.need("pseudonym_random")), mac1_key(s_r))
    } else {
        let j = v.need("pseudonym_attempt");
        assert!(j.len() == 1 && j[0] < ATTEMPTS, "j = 0..7");
        let p = if kind == Kind::Chain {
            pseudonym(&prk, s_i, j[0])
        } else {
            let minute = minute_of(plain.timestamp);
            v.check("pseudonym_minute", &minute.to_be_bytes());
            boot_pseudonym(&prk, s_i, minute, j[0])
        };
        v.check("pseudonym", &p);
        let k = k_mac1(&prk);
        v.check("k_mac1", &k);
        (p, k)
    };

    let mut init = Built::default();
    init.push(&[TYPE_INIT, VERSION, 0, 0]);
    init.push(&pseudonym);
    assert_ne!(init_msg[20..24], [0; 4], "a non-zero sender_index");
    init.push(&init_msg[20..24]); // sender_index: random, from the message
    init.push(&e_i_pub);
    init.push(&ek);
    init.push(&seal(&k_init, &[0; 12], &plain_bytes, &init.bytes));
    init.push(&mac(&k_auth_i2r, &init.bytes));
    init.push(&mac(&mac1k, &init.bytes));
    init.push(&mac(&k_mac1x, &init.bytes)); // mac2 of an initiator without a cookie
    v.check("init", &init.bytes);

    // Resp: E_r, the encapsulation to ek with m, the sealed used mask.
    let resp_msg = v.need("resp");
    assert_eq!(resp_msg.len(), RESP_LEN, "{}: Resp length", v.name);
    let e_r = v.need("responder_ephemeral_private");
    let e_r_pub = x25519_public(&e_r);
    let ss_x = x25519(&e_r, &e_i_pub);
    assert_eq!(ss_x, x25519(&e_i, &e_r_pub));
    assert_ne!(ss_x, [0; 32], "a contributory ss_x");
    v.check("ss_x", &ss_x);
    let m = v.need("responder_mlkem_m");
    let ek_key = EncapsulationKey::<MlKem768>::new(&Array::try_from(&ek[..]).unwrap()).unwrap();
    let (ct, ss_k) = ek_key.encapsulate_deterministic(&Array::try_from(&m[..]).unwrap());
    assert_eq!(dk.decapsulate(&ct), ss_k, "decapsulation");
    v.check("ss_k", &ss_k);
    let mask = open(
        &k_resp,
        &resp_nonce(&resp_msg),
        &resp_msg[1132..1149],
        &resp_msg[..1132],
    );
    let used = mask.expect("the Resp's mask opens under the recomputed K_resp");
    assert_eq!(used.len(), 1);
    let used = used[0];
    assert_eq!(used & !plain.proposed, 0, "used mask within the proposal");
    assert_eq!(used & 3, 3, "X25519 and ML-KEM are mandatory");
    v.check("resp_mask", &[used]);
    // k_q: the KME keys in key-ID order, concatenated; empty without QKD.
    let keys: Vec<Vec<u8>> = (1..=2)
        .filter_map(|i| v.input(&format!("qkd_key_{i}")))
        .collect();
    let k_q = if used & 4 == 0 {
        Vec::new()
    } else {
        assert_eq!(keys.len(), plain.key_ids.len(), "one KME key per key ID");
        summary.with_qkd += 1;
        keys.concat()
    };
    v.check("k_q", &k_q);

    let (init_index, resp_index) = (&init_msg[20..24], &resp_msg[4..8]);
    let t_in = transcript_input(
        s_i, s_r, &plain, init_index, resp_index, &e_i_pub, &ek, &e_r_pub, &ct, used,
    );
    let t = super::spec::sha256(&[&t_in]);
    v.check("transcript", &t);
    let comb = combine(&c, &ss_x, &ss_k, &k_q, &t);
    v.check("chain", &comb.chain);
    v.check("psk", &comb.psk);
    v.check("k_conf_r2i", &comb.conf_r2i);
    v.check("k_conf_i2r", &comb.conf_i2r);
    v.check("psk_fingerprint", &fingerprint(&comb.psk));

    let mut resp = Built::default();
    resp.push(&[TYPE_RESP, VERSION, 0, 0]);
    resp.push(resp_index); // the responder's sender_index: random, from the message
    resp.push(init_index); // receiver_index = the Init's sender_index
    resp.push(&e_r_pub);
    resp.push(&ct);
    resp.push(&seal(
        &k_resp,
        &resp_nonce(&resp.bytes),
        &[used],
        &resp.bytes,
    ));
    resp.push(&confirm_tag(&comb.conf_r2i, &t));
    resp.push(&mac(&k_auth_r2i, &resp.bytes));
    resp.push(&mac(&k_mac1x, &resp.bytes));
    v.check("resp", &resp.bytes);

    let mut confirm = Built::default();
    confirm.push(&[TYPE_CONFIRM, VERSION, 0, 0]);
    confirm.push(resp_index); // receiver_index = the Resp's sender_index
    confirm.push(&confirm_tag(&comb.conf_i2r, &t));
    confirm.push(&mac(&k_mac1x, &confirm.bytes));
    assert_eq!(
        v.need_len("confirm"),
        CONFIRM_LEN,
        "{}: Confirm length",
        v.name
    );
    v.check("confirm", &confirm.bytes);

    summary.layouts.extend(
        [
            (TYPE_INIT, init),
            (TYPE_RESP, resp),
            (TYPE_CONFIRM, confirm),
        ]
        .into_iter()
        .map(|(ty, b)| (ty, b.bytes.len(), b.fields)),
    );
    Outcome {
        epoch: plain.epoch,
        ts: plain.timestamp,
        chain: comb.chain,
    }
}

fn arr16(b: &[u8]) -> [u8; 16] {
    b.try_into().expect("16 bytes")
}
