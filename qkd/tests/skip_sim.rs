//! The SKIP client against the simulated KP pair, in both TLS modes: keys handed out at one
//! KP come back at the other for their keyId, once; the start-up capabilities check; and a
//! mixed pair, one site on ETSI 014 and the other on SKIP, over one simulated link.

use std::path::Path;
use std::time::Duration;

use keymix::qkd::{QkdError, QkdKeySource};
use qkd::sim::{LocalPair, KME_A_ID, KME_B_ID};
use qkd::skip::{PskMaterial, PskTlsVersion, SkipClient, SkipClientConfig, SkipTls};

mod common;
use common::{client as etsi_client, pair, TempDir, SAE_A, SAE_B};

fn cert_client(pair: &LocalPair, kme_a: bool, with_cert: bool) -> SkipClient {
    let (kme, sae, system) = if kme_a {
        (&pair.a, &pair.files.sae_a, KME_A_ID)
    } else {
        (&pair.b, &pair.files.sae_b, KME_B_ID)
    };
    SkipClient::new(SkipClientConfig {
        kp_url: pair.skip_url(kme, false),
        local_system_id: system.into(),
        tls: SkipTls::Certificate {
            ca_file: pair.files.ca_file.clone(),
            identity: with_cert.then(|| (sae.cert_file.clone(), sae.key_file.clone())),
        },
        timeout: Duration::from_secs(5),
    })
    .unwrap()
}

fn psk_material(dir: &Path, sae: &str) -> PskMaterial {
    let id = std::fs::read(dir.join(format!("{sae}.skip-psk-id"))).unwrap();
    let key = std::fs::read(dir.join(format!("{sae}.skip-psk"))).unwrap();
    PskMaterial::from_files(&id, &key).unwrap()
}

fn psk_client(pair: &LocalPair, dir: &Path, kme_a: bool, version: PskTlsVersion) -> SkipClient {
    let (kme, sae, system) = if kme_a {
        (&pair.a, SAE_A, KME_A_ID)
    } else {
        (&pair.b, SAE_B, KME_B_ID)
    };
    SkipClient::new(SkipClientConfig {
        kp_url: pair.skip_url(kme, true),
        local_system_id: system.into(),
        tls: SkipTls::Psk {
            material: psk_material(dir, sae),
            version,
        },
        timeout: Duration::from_secs(5),
    })
    .unwrap()
}

/// A key from `master` arrives at `slave` for its keyId, once.
async fn one_key(master: &SkipClient, slave: &SkipClient) {
    let sent = master.enc_keys(KME_B_ID, 1, 256).await.unwrap();
    let [sent] = sent.as_slice() else {
        panic!("one key")
    };
    assert_eq!(sent.key.len(), 32);
    assert!(
        sent.key_id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{}",
        sent.key_id
    );
    let got = slave
        .dec_keys(KME_A_ID, std::slice::from_ref(&sent.key_id))
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].key_id, sent.key_id);
    assert_eq!(got[0].key, sent.key);
}

#[tokio::test]
async fn certificate_mode_and_tls13_psk_deliver_the_same_key() {
    let dir = TempDir::new("skip-cert");
    let pair = pair(&dir, |_, _| {}).await;
    let a = cert_client(&pair, true, true);
    let b = psk_client(&pair, dir.path(), false, PskTlsVersion::Tls13);
    one_key(&a, &b).await;

    let caps = a.capabilities().await.unwrap();
    assert!(a.check_local(&caps).is_ok());
    assert!(caps.lists_remote(KME_B_ID) && !caps.lists_remote("KME_C"));
    let caps_b = b.capabilities().await.unwrap();
    assert_eq!(caps_b.localSystemID, KME_B_ID);
    assert_eq!(a.protocol(), "skip");

    // A second fetch of the same keyId is refused by this client before the KP is asked,
    // and by the KP too (a fresh client has no memory of it).
    let sent = a.enc_keys(KME_B_ID, 1, 256).await.unwrap();
    let ids = vec![sent[0].key_id.clone()];
    b.dec_keys(KME_A_ID, &ids).await.unwrap();
    let again = b.dec_keys(KME_A_ID, &ids).await.unwrap_err();
    assert!(
        matches!(again, QkdError::Malformed(ref m) if m.contains("already used")),
        "{again}"
    );
    let fresh = psk_client(&pair, dir.path(), false, PskTlsVersion::Tls13);
    let gone = fresh.dec_keys(KME_A_ID, &ids).await.unwrap_err();
    assert!(matches!(gone, QkdError::BadRequest(_)), "{gone}");
}

#[tokio::test]
async fn tls12_dhe_psk_works_and_a_wrong_psk_does_not() {
    let dir = TempDir::new("skip-psk12");
    let pair = pair(&dir, |_, _| {}).await;
    let a = psk_client(&pair, dir.path(), true, PskTlsVersion::Tls12);
    let b = psk_client(&pair, dir.path(), false, PskTlsVersion::Tls12);
    one_key(&a, &b).await;
    // A's PSK at KP B: the handshake fails, nothing is handed out.
    let wrong = SkipClient::new(SkipClientConfig {
        kp_url: pair.skip_url(&pair.b, true),
        local_system_id: KME_B_ID.into(),
        tls: SkipTls::Psk {
            material: psk_material(dir.path(), SAE_A),
            version: PskTlsVersion::Tls13,
        },
        timeout: Duration::from_secs(5),
    })
    .unwrap();
    for client in [&wrong] {
        let e = client.capabilities().await.unwrap_err();
        assert!(matches!(e, QkdError::Transport(_)), "{e}");
    }
}

#[tokio::test]
async fn the_client_certificate_is_optional_only_where_the_kp_allows_it() {
    let dir = TempDir::new("skip-nocert");
    let pair = pair(&dir, |_, b| b.skip_require_client_cert = Some(false)).await;
    // KP A demands one (the default): refused without; KP B lets the encryptor in.
    let e = cert_client(&pair, true, false)
        .capabilities()
        .await
        .unwrap_err();
    assert!(matches!(e, QkdError::Transport(_)), "{e}");
    let a = cert_client(&pair, true, true);
    let b = cert_client(&pair, false, false);
    one_key(&a, &b).await;
    // Another site's certificate is not this KP's encryptor.
    let stranger = SkipClient::new(SkipClientConfig {
        kp_url: pair.skip_url(&pair.a, false),
        local_system_id: KME_A_ID.into(),
        tls: SkipTls::Certificate {
            ca_file: pair.files.ca_file.clone(),
            identity: Some((
                pair.files.sae_b.cert_file.clone(),
                pair.files.sae_b.key_file.clone(),
            )),
        },
        timeout: Duration::from_secs(5),
    })
    .unwrap();
    assert!(stranger.capabilities().await.is_err());
}

#[tokio::test]
async fn a_mixed_pair_shares_keys_across_protocols() {
    let dir = TempDir::new("skip-mixed");
    let pair = pair(&dir, |_, _| {}).await;
    let files = &pair.files;
    let etsi_a = etsi_client(
        &pair.url_a(),
        &files.ca_file,
        &files.sae_a.cert_file,
        &files.sae_a.key_file,
    );
    let skip_b = psk_client(&pair, dir.path(), false, PskTlsVersion::Tls13);
    // A (ETSI 014) is master: a UUID key_ID goes to B, who asks its KP over SKIP.
    let sent = etsi_a.enc_keys(SAE_B, 1, 256).await.unwrap();
    let got = skip_b
        .dec_keys(KME_A_ID, &[sent[0].key_id.clone()])
        .await
        .unwrap();
    assert_eq!(got[0].key, sent[0].key);
    assert_eq!(got[0].key_id, sent[0].key_id);
    // B (SKIP) is master: a hex keyId goes to A, who asks its KME over ETSI 014.
    let sent = skip_b.enc_keys(KME_A_ID, 1, 256).await;
    // KP B shares keys with KME_A only; naming itself is refused.
    assert!(skip_b.enc_keys(KME_B_ID, 1, 256).await.is_err());
    let sent = sent.unwrap();
    let got = etsi_a
        .dec_keys(SAE_B, &[sent[0].key_id.clone()])
        .await
        .unwrap();
    assert_eq!(got[0].key, sent[0].key);
}

#[tokio::test]
async fn an_unknown_remote_system_and_an_unknown_key_id_are_clear_errors() {
    let dir = TempDir::new("skip-unknown");
    let pair = pair(&dir, |_, _| {}).await;
    let a = cert_client(&pair, true, true);
    let e = a.enc_keys("KME_Z", 1, 256).await.unwrap_err();
    assert!(
        matches!(e, QkdError::BadRequest(ref m) if m.contains("KME_Z")),
        "{e}"
    );
    let e = a
        .dec_keys(KME_B_ID, &["00112233445566778899aabbccddeeff".into()])
        .await
        .unwrap_err();
    assert!(
        matches!(e, QkdError::BadRequest(ref m) if m.contains("not found")),
        "{e}"
    );
    let e = a
        .dec_keys(KME_B_ID, &["../capabilities".into()])
        .await
        .unwrap_err();
    assert!(matches!(e, QkdError::Malformed(_)), "{e}");
}
