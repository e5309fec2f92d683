//! One exchange of a vector file recomputed from its inputs with the independent formulas
//! of vectors/spec.rs (docs/PROTOCOL.md: "Key schedule", "MAC", "Messages"), and the
//! static values every exchange of a file shares.

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use ml_kem::array::Array;
use ml_kem::{Decapsulate, DecapsulationKey, EncapsulationKey, KeyExport, MlKem768};

use super::spec::*;
use super::verify::Vector;

/// The values of a file that do not depend on the exchange.
pub struct Statics {
    pub s_i: [u8; 32],
    pub s_r: [u8; 32],
    pub ss_static: [u8; 32],
    pub psk_b: Vec<u8>,
    pub c0: [u8; 32],
    pub mac1_i: [u8; 32],
    pub mac1_r: [u8; 32],
}

/// The static keys (by role: S_i is the initiator's, whichever key is smaller), the
/// bootstrap PSK, ss_static, C_0 and both mac1 keys.
pub fn statics(v: &mut Vector) -> Statics {
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
    let mac1_r = sha256(&[MAC1, &s_r]);
    let mac1_i = sha256(&[MAC1, &s_i]);
    v.check("mac1_key_responder", &mac1_r);
    v.check("mac1_key_initiator", &mac1_i);
    Statics {
        s_i,
        s_r,
        ss_static,
        psk_b,
        c0,
        mac1_i,
        mac1_r,
    }
}

/// What later checks need of a verified exchange.
#[derive(Debug)]
pub struct Outcome {
    /// The epoch n and the Init's timestamp.
    pub n: u64,
    pub ts: u64,
    /// The chain key the exchange was keyed with (C_0 for a bootstrap) and its C_n.
    pub c_prev: [u8; 32],
    pub c_n: [u8; 32],
}

/// Recomputes one exchange keyed with `c_prev` (None: C_0, then the epoch must be 1) and
/// compares every value of it the file has.
pub fn exchange(v: &mut Vector, st: &Statics, c_prev: Option<[u8; 32]>) -> Outcome {
    let Statics {
        s_i,
        s_r,
        ss_static,
        ref psk_b,
        mac1_i,
        mac1_r,
        ..
    } = *st;
    let init_b = v.need("init");
    let init = Init::new(&init_b);
    let (n, ts) = (le64(&init_b[8..16]), le64(&init_b[16..24]));
    assert_eq!(&init_b[24..56], &s_i);
    let c_prev = c_prev.unwrap_or_else(|| {
        assert_eq!(n, 1, "{}: epoch {n} needs c_prev", v.name);
        st.c0
    });
    let a_ikm = auth_ikm(&ss_static, psk_b);
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

    Outcome { n, ts, c_prev, c_n }
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
