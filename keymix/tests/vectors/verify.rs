//! Recomputes every derivable value of a vector file from its inputs with the independent
//! formulas of vectors/spec.rs, so a vector that passes here is one another implementation
//! can reproduce from docs/PROTOCOL.md alone.

use std::collections::{BTreeMap, BTreeSet};

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use ml_kem::array::Array;
use ml_kem::{Decapsulate, DecapsulationKey, EncapsulationKey, KeyExport, MlKem768};

use super::spec::*;

/// A vector file: `name = hex` lines. Every line must end up either declared an input or
/// checked against a recomputation.
pub struct Vector {
    name: String,
    values: BTreeMap<String, Vec<u8>>,
    seen: BTreeSet<String>,
}

impl Vector {
    pub fn parse(name: &str, text: &str) -> Self {
        let mut values = BTreeMap::new();
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let (k, v) = line
                .split_once(" = ")
                .unwrap_or((line.trim_end_matches(" ="), ""));
            let v = (0..v.len() / 2)
                .map(|i| u8::from_str_radix(&v[2 * i..2 * i + 2], 16).unwrap())
                .collect();
            assert!(
                values.insert(k.to_string(), v).is_none(),
                "{name}: {k} twice"
            );
        }
        Self {
            name: name.into(),
            values,
            seen: BTreeSet::new(),
        }
    }

    fn input(&mut self, k: &str) -> Option<Vec<u8>> {
        let v = self.values.get(k).cloned();
        if v.is_some() {
            self.seen.insert(k.into());
        }
        v
    }

    fn need(&mut self, k: &str) -> Vec<u8> {
        self.input(k)
            .unwrap_or_else(|| panic!("{}: no {k}", self.name))
    }

    /// Compares a recomputed value with the file's, when the file has it.
    fn check(&mut self, k: &str, computed: &[u8]) {
        if let Some(v) = self.values.get(k) {
            assert_eq!(
                hex(v),
                hex(computed),
                "{}: {k} differs from the recomputation",
                self.name
            );
            self.seen.insert(k.into());
        }
    }

    fn finish(&self) {
        for k in self.values.keys() {
            assert!(
                self.seen.contains(k),
                "{}: {k} is neither an input nor checked",
                self.name
            );
        }
    }
}

/// Recomputes the whole exchange of `v` and compares.
pub fn verify(v: &mut Vector) {
    let (priv_i, priv_r) = (
        v.need("initiator_static_private"),
        v.need("responder_static_private"),
    );
    let (s_i, s_r) = (x25519_public(&priv_i), x25519_public(&priv_r));
    v.check("initiator_static_public", &s_i);
    v.check("responder_static_public", &s_r);
    let ss_static = x25519(&priv_i, &s_r);
    assert_eq!(ss_static, x25519(&priv_r, &s_i));
    v.check("ss_static", &ss_static);
    let psk_b = v.need("bootstrap_psk");
    let mut c0_ikm = Vec::new();
    lp(&mut c0_ikm, &psk_b);
    let c0 = extract(CHAIN0, &c0_ikm);
    v.check("c0", &c0);

    let init_b = v.need("init");
    let init = Init::new(&init_b);
    let (n, ts) = (le64(&init_b[8..16]), le64(&init_b[16..24]));
    assert_eq!(&init_b[24..56], &s_i);
    let c_prev = match v.input("c_prev") {
        Some(c) => arr32(&c),
        None => {
            assert_eq!(n, 1, "{}: epoch {n} needs c_prev", v.name);
            c0
        }
    };
    let mac1_r = sha256(&[MAC1, &s_r]);
    let mac1_i = sha256(&[MAC1, &s_i]);
    v.check("mac1_key_responder", &mac1_r);
    v.check("mac1_key_initiator", &mac1_i);
    let a_ikm = auth_ikm(&ss_static, &psk_b);
    v.check("auth_ikm", &a_ikm);
    let prk_auth = extract(&c_prev, &a_ikm);
    v.check("auth_prk", &prk_auth);
    let k_i2r = expand(&prk_auth, &[AUTH_I2R, &s_i, &s_r]);
    let k_r2i = expand(&prk_auth, &[AUTH_R2I, &s_i, &s_r]);
    v.check("k_auth_i2r", &k_i2r);
    v.check("k_auth_r2i", &k_r2i);

    // Init: rebuilt from its scalar fields, the key IDs and the initiator's secrets.
    let e_i = v.input("initiator_ephemeral_private");
    let e_i_pub = e_i
        .as_ref()
        .map_or(arr32(&init_b[56..88]), |e| x25519_public(e));
    let seed = v.input("initiator_mlkem_seed");
    let dk = seed
        .as_ref()
        .map(|s| DecapsulationKey::<MlKem768>::from_seed(Array::try_from(&s[..]).unwrap()));
    let ek = dk.as_ref().map_or(init_b[88..1272].to_vec(), |dk| {
        dk.encapsulation_key().to_bytes().to_vec()
    });
    let ids_end = init.ids_end();
    let mut rebuilt = init_b[..24].to_vec();
    rebuilt.extend_from_slice(&s_i);
    rebuilt.extend_from_slice(&e_i_pub);
    rebuilt.extend_from_slice(&ek);
    rebuilt.extend_from_slice(&init_b[1272..ids_end]);
    assert_eq!(ids_end + 48, init_b.len(), "{}: Init length", v.name);
    assert_eq!(
        init_b[1272] > 0,
        init_b[2] & 4 != 0,
        "key IDs iff the QKD bit"
    );
    let auth = mac(&k_i2r, &rebuilt);
    rebuilt.extend_from_slice(&auth);
    let mac1 = mac(&mac1_r, &rebuilt);
    rebuilt.extend_from_slice(&mac1);
    rebuilt.extend_from_slice(&[0; 16]);
    v.check("init", &rebuilt);
    verify_cookie(v, &init_b, &s_r, mac1);

    // Resp.
    let resp = v.need("resp");
    assert_eq!(resp.len(), 1188);
    assert_eq!((&resp[..2], resp[3]), (&[0x82u8, 1][..], 0));
    let (proposed, used) = (init_b[2], resp[2]);
    assert_eq!(
        used & !proposed,
        0,
        "used mask must be a subset of the proposal"
    );
    assert_eq!(used & 3, 3, "X25519 and ML-KEM are mandatory");
    assert_eq!(
        &resp[8..12],
        &init_b[4..8],
        "receiver_index = Init sender_index"
    );
    assert_eq!(&resp[12..20], &init_b[8..16], "epoch");
    let e_r = v.input("responder_ephemeral_private");
    let e_r_pub = e_r
        .as_ref()
        .map_or(arr32(&resp[20..52]), |e| x25519_public(e));
    let ss_x = match (&e_r, &e_i) {
        (Some(r), i) => {
            let ss = x25519(r, &e_i_pub);
            if let Some(i) = i {
                assert_eq!(ss, x25519(i, &e_r_pub));
            }
            v.check("ss_x", &ss);
            ss.to_vec()
        }
        (None, _) => v.need("ss_x"),
    };
    let (ct, ss_k) = match v.input("responder_mlkem_m") {
        Some(m) => {
            let ek = EncapsulationKey::<MlKem768>::new(&Array::try_from(&ek[..]).unwrap()).unwrap();
            let (ct, ss) = ek.encapsulate_deterministic(&Array::try_from(&m[..]).unwrap());
            v.check("ss_k", &ss);
            (ct.to_vec(), ss.to_vec())
        }
        None => (resp[52..1140].to_vec(), v.need("ss_k")),
    };
    if let Some(dk) = &dk {
        let ss = dk.decapsulate(&Array::try_from(&ct[..]).unwrap());
        assert_eq!(hex(&ss), hex(&ss_k), "decapsulation");
    }
    // k_q: the KME keys concatenated in key-ID order, empty when QKD was not used.
    let parts: Vec<Vec<u8>> = (1..=2)
        .filter_map(|i| v.input(&format!("qkd_key_{i}")))
        .collect();
    let k_q = if used & 4 == 0 {
        v.check("k_q", &[]);
        Vec::new()
    } else if parts.is_empty() {
        v.need("k_q")
    } else {
        assert_eq!(parts.len(), init.key_ids().len());
        let k: Vec<u8> = parts.concat();
        v.check("k_q", &k);
        k
    };

    let mut resp_body = resp[..20].to_vec();
    resp_body.extend_from_slice(&e_r_pub);
    resp_body.extend_from_slice(&ct);
    let t_in = transcript_input(&init_b, &resp_body, &s_r);
    v.check("transcript_input", &t_in);
    let t = sha256(&[&t_in]);
    v.check("transcript", &t);
    let ikm = combiner_ikm(&ss_x, &ss_k, &k_q);
    v.check("combiner_ikm", &ikm);
    let prk = extract(&c_prev, &ikm);
    v.check("prk", &prk);
    let c_n = expand(&prk, &[CHAIN, &t]);
    let psk = expand(&prk, &[PSK, &t]);
    let k_conf_r2i = expand(&prk, &[CONFIRM_R2I, &t]);
    let k_conf_i2r = expand(&prk, &[CONFIRM_I2R, &t]);
    v.check("chain", &c_n);
    v.check("psk", &psk);
    v.check("k_conf_r2i", &k_conf_r2i);
    v.check("k_conf_i2r", &k_conf_i2r);
    resp_body.extend_from_slice(&mac(&k_conf_r2i, &t));
    let auth = mac(&k_r2i, &resp_body);
    resp_body.extend_from_slice(&auth);
    let mac1 = mac(&mac1_i, &resp_body);
    resp_body.extend_from_slice(&mac1);
    v.check("resp", &resp_body);

    let mut confirm = vec![0x83, 1, used, 0];
    confirm.extend_from_slice(&resp[4..8]);
    confirm.extend_from_slice(&n.to_le_bytes());
    confirm.extend_from_slice(&mac(&k_conf_i2r, &t));
    let mac1 = mac(&mac1_r, &confirm);
    confirm.extend_from_slice(&mac1);
    v.check("confirm", &confirm);
    v.check("sources_proposed", &[proposed]);
    v.check("sources", &[used]);
    v.check("psk_fingerprint", &sha256(&[PSK_FINGERPRINT, &psk])[..16]);

    let pair = (s_i, s_r);
    if let Some(before) = v.input("state_before") {
        let st = State::parse(&before, &v.name);
        assert_eq!(
            (st.epoch, st.chain),
            (n - 1, c_prev),
            "{}: state_before",
            v.name
        );
        assert_eq!(
            st.keys, pair,
            "{}: the restarted side is the initiator",
            v.name
        );
        assert!(st.last_init_sent_ts < ts);
    }
    if let Some(after) = v.input("state_after") {
        let st = State::parse(&after, &v.name);
        assert_eq!(
            (st.epoch, st.chain, st.prev),
            (n, c_n, Some(c_prev)),
            "{}",
            v.name
        );
        assert_eq!(
            (st.keys, st.tentative, st.last_init_sent_ts),
            (pair, None, ts)
        );
        // Nothing of this exchange touches the other records.
        assert_eq!(
            (
                st.static_only_reset,
                st.wireguard_initiation,
                st.pinned_version
            ),
            (false, [0; 12], 0),
            "{}",
            v.name
        );
        if let Some(before) = v.input("state_before") {
            let b = State::parse(&before, &v.name);
            assert_eq!(st.highest_init_ts, b.highest_init_ts, "{}", v.name);
        }
    }
    v.finish();
}

/// The cookie reply and the retransmitted Init carrying mac2, when the vector has them.
fn verify_cookie(v: &mut Vector, init_b: &[u8], s_r: &[u8; 32], init_mac1: [u8; 16]) {
    let Some(reply) = v.input("cookie_reply") else {
        return;
    };
    let secret = v.need("cookie_secret");
    // The source address as the responder saw it: IP octets (4 or 16), then the port, u16
    // big-endian. Only the responder ever computes a cookie, so this is local convention.
    let source = v.need("cookie_source");
    let cookie = cookie(&secret, &source);
    v.check("cookie", &cookie);
    let key = sha256(&[COOKIE, s_r]);
    v.check("cookie_key", &key);
    assert_eq!(reply.len(), 80);
    let nonce = XNonce::try_from(&reply[8..32]).unwrap();
    let mut sealed = cookie;
    let tag = XChaCha20Poly1305::new((&key).into())
        .encrypt_inout_detached(&nonce, &init_mac1, (&mut sealed[..]).into())
        .unwrap();
    let mut rebuilt = vec![0x84, 1, 0, 0];
    rebuilt.extend_from_slice(&init_b[4..8]);
    rebuilt.extend_from_slice(&reply[8..32]);
    rebuilt.extend_from_slice(&sealed);
    rebuilt.extend_from_slice(&tag);
    v.check("cookie_reply", &rebuilt);
    let covered = &init_b[..init_b.len() - 16];
    let mac2 = mac(&cookie, covered);
    v.check("mac2", &mac2);
    v.check("init_retransmitted", &[covered, &mac2[..]].concat());
}
