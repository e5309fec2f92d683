//! The ETSI 014 client against a pair of simulated KMEs over real mutual TLS on loopback.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use keymix::qkd::{QkdError, QkdKeySource};
use qkd::model::{KeyIds, KeyRequest};
use qkd::sim::{
    issue_sae_cert, KmeConfig, LocalPair, MSG_EXTENSION_MANDATORY_UNSUPPORTED, MSG_KEYS_NOT_FOUND,
    MSG_SIZE_NOT_MULTIPLE_OF_8,
};
use serde_json::{json, Map};

mod common;
use common::{client, fixed_pair, init_at_defaults, sae_a, sae_b, TempDir, SAE_A, SAE_B};

fn is_uuid_v4(id: &str) -> bool {
    let parts: Vec<&str> = id.split('-').collect();
    parts.iter().map(|p| p.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
        && id
            .chars()
            .all(|c| c == '-' || c.is_ascii_digit() || ('a'..='f').contains(&c))
        && parts[2].starts_with('4')
        && matches!(parts[3].chars().next(), Some('8' | '9' | 'a' | 'b'))
}

#[tokio::test]
async fn enc_keys_at_a_then_dec_keys_at_b_gives_the_same_key_once() {
    let dir = TempDir::new("flow");
    let pair = fixed_pair(&dir, |_, _| {}).await;
    let (a, b) = (sae_a(&pair), sae_b(&pair));

    let before = a.status(SAE_B).await.unwrap();
    assert_eq!(before.source_KME_ID, "KME_A");
    assert_eq!(before.target_KME_ID, "KME_B");
    assert_eq!(before.master_SAE_ID, SAE_A);
    assert_eq!(before.slave_SAE_ID, SAE_B);
    assert_eq!(before.stored_key_count, before.max_key_count);

    let master_keys = a.enc_keys(SAE_B, 2, 256).await.unwrap();
    assert_eq!(master_keys.len(), 2);
    assert_ne!(master_keys[0].key_id, master_keys[1].key_id);
    assert_ne!(*master_keys[0].key, *master_keys[1].key);
    for k in &master_keys {
        assert!(is_uuid_v4(&k.key_id), "{}", k.key_id);
        assert_eq!(k.key.len(), 32);
    }
    let ids: Vec<String> = master_keys.iter().map(|k| k.key_id.clone()).collect();

    // Both KMEs account for the drawn key material.
    let key_size = u64::from(before.key_size);
    let drawn = 2 * 256 / key_size;
    assert_eq!(
        a.status(SAE_B).await.unwrap().stored_key_count,
        before.stored_key_count - drawn
    );
    assert_eq!(
        b.status(SAE_A).await.unwrap().stored_key_count,
        before.stored_key_count - drawn
    );

    // Asked in reverse order, handed back in the order asked.
    let reversed: Vec<String> = ids.iter().rev().cloned().collect();
    let slave_keys = b.dec_keys(SAE_A, &reversed).await.unwrap();
    assert_eq!(slave_keys[0].key_id, ids[1]);
    assert_eq!(*slave_keys[0].key, *master_keys[1].key);
    assert_eq!(*slave_keys[1].key, *master_keys[0].key);

    // Delivered once: the second request is refused with the spec's message.
    let again = b.dec_keys(SAE_A, &ids[..1]).await.unwrap_err();
    assert_eq!(again, QkdError::BadRequest(MSG_KEYS_NOT_FOUND.into()));
    // The master's KME does not keep a copy either.
    let at_a = a.dec_keys(SAE_B, &ids[..1]).await.unwrap_err();
    assert_eq!(at_a, QkdError::BadRequest(MSG_KEYS_NOT_FOUND.into()));
}

#[tokio::test]
async fn get_forms_and_the_reverse_direction_work() {
    let dir = TempDir::new("get");
    let pair = fixed_pair(&dir, |_, _| {}).await;
    let (a, b) = (sae_a(&pair), sae_b(&pair));

    let container = a.enc_keys_get(SAE_B, Some(1), Some(512)).await.unwrap();
    assert_eq!(container.keys.len(), 1);
    assert_eq!(container.keys[0].key.len(), 64);
    let id = container.keys[0].key_ID.clone();
    let fetched = b.dec_keys_get(SAE_A, &id).await.unwrap();
    assert_eq!(fetched.keys[0].key, container.keys[0].key);

    // Defaults: one key of key_size bits.
    let default = a.enc_keys_get(SAE_B, None, None).await.unwrap();
    assert_eq!(default.keys.len(), 1);
    assert_eq!(default.keys[0].key.len() * 8, 256);

    // SAE B as master, SAE A as slave.
    let keys = b.enc_keys(SAE_A, 3, 128).await.unwrap();
    let ids: Vec<String> = keys.iter().map(|k| k.key_id.clone()).collect();
    let got = a
        .dec_keys_post(SAE_B, &KeyIds::from_ids(&ids))
        .await
        .unwrap();
    assert_eq!(got.keys.len(), 3);
    for (k, g) in keys.iter().zip(&got.keys) {
        assert_eq!(k.key_id, g.key_ID);
        assert_eq!(k.key.as_slice(), g.key.as_bytes());
    }
}

#[tokio::test]
async fn strangers_and_the_wrong_sae_are_unauthorized() {
    let dir = TempDir::new("auth");
    let pair = fixed_pair(&dir, |_, _| {}).await;
    let (a, b) = (sae_a(&pair), sae_b(&pair));
    let keys = a.enc_keys(SAE_B, 1, 256).await.unwrap();
    let ids = vec![keys[0].key_id.clone()];

    // A third SAE with a valid certificate from the same CA.
    let c_files = issue_sae_cert(&dir.0, "SAE_C").unwrap();
    let ca = &pair.files.ca_file;
    let c_at_b = client(&pair.url_b(), ca, &c_files.cert_file, &c_files.key_file);
    assert_eq!(
        c_at_b.dec_keys(SAE_A, &ids).await.unwrap_err(),
        QkdError::Unauthorized
    );
    let c_at_a = client(&pair.url_a(), ca, &c_files.cert_file, &c_files.key_file);
    assert_eq!(
        c_at_a.enc_keys(SAE_B, 1, 256).await.unwrap_err(),
        QkdError::Unauthorized
    );
    assert_eq!(
        c_at_a.status(SAE_B).await.unwrap_err(),
        QkdError::Unauthorized
    );

    // The master itself asking the slave's KME for the key.
    let f = &pair.files;
    let a_at_b = client(&pair.url_b(), ca, &f.sae_a.cert_file, &f.sae_a.key_file);
    assert_eq!(
        a_at_b.dec_keys(SAE_A, &ids).await.unwrap_err(),
        QkdError::Unauthorized
    );

    // None of that consumed the key: the designated slave still gets it.
    let got = b.dec_keys(SAE_A, &ids).await.unwrap();
    assert_eq!(*got[0].key, *keys[0].key);
}

#[tokio::test]
async fn bad_requests_get_the_specs_messages() {
    let dir = TempDir::new("bad");
    let pair = fixed_pair(&dir, |_, _| {}).await;
    let a = sae_a(&pair);

    assert_eq!(
        a.enc_keys(SAE_B, 1, 7).await.unwrap_err(),
        QkdError::BadRequest(MSG_SIZE_NOT_MULTIPLE_OF_8.into())
    );
    assert_eq!(MSG_SIZE_NOT_MULTIPLE_OF_8, "size shall be a multiple of 8");
    assert_eq!(
        a.enc_keys_get(SAE_B, Some(1), Some(7)).await.unwrap_err(),
        QkdError::BadRequest("size shall be a multiple of 8".into())
    );

    let mut route = Map::new();
    route.insert("abc_route_type".into(), json!("direct"));
    let request = KeyRequest {
        extension_mandatory: Some(vec![route]),
        ..KeyRequest::default()
    };
    assert_eq!(
        a.enc_keys_post(SAE_B, &request).await.unwrap_err(),
        QkdError::BadRequest("not all extension_mandatory parameters are supported".into())
    );
    assert_eq!(
        MSG_EXTENSION_MANDATORY_UNSUPPORTED,
        "not all extension_mandatory parameters are supported"
    );

    for (number, size) in [(1, 4096), (1, 8), (0, 256), (129, 256)] {
        assert!(
            matches!(
                a.enc_keys(SAE_B, number, size).await,
                Err(QkdError::BadRequest(_))
            ),
            "number {number} size {size}"
        );
    }
    assert!(matches!(
        a.enc_keys(SAE_A, 1, 256).await,
        Err(QkdError::BadRequest(_))
    ));
    let b = sae_b(&pair);
    assert_eq!(
        b.dec_keys(SAE_A, &["00000000-0000-4000-8000-000000000000".into()])
            .await
            .unwrap_err(),
        QkdError::BadRequest("one or more keys specified are not found on KME".into())
    );
    // Nothing above drew from the pool.
    let status = a.status(SAE_B).await.unwrap();
    assert_eq!(status.stored_key_count, status.max_key_count);
}

#[tokio::test]
async fn a_drained_pool_answers_unavailable() {
    let dir = TempDir::new("drain");
    let pair = fixed_pair(&dir, |a, b| {
        for c in [a, b] {
            c.max_key_count = 4;
            c.key_rate_bps = 1.0; // a key of 256 bits every 256 s: nothing within the test
        }
    })
    .await;
    let a = sae_a(&pair);
    a.enc_keys(SAE_B, 3, 256).await.unwrap();
    assert!(matches!(
        a.enc_keys(SAE_B, 2, 256).await,
        Err(QkdError::Unavailable(_))
    ));
    a.enc_keys(SAE_B, 1, 256).await.unwrap();
    assert_eq!(a.status(SAE_B).await.unwrap().stored_key_count, 0);
    let err = a.enc_keys(SAE_B, 1, 256).await.unwrap_err();
    assert!(
        matches!(err, QkdError::Unavailable(ref m) if m.contains("not enough key")),
        "{err}"
    );
}

#[tokio::test]
async fn a_dead_link_fails_the_request_and_keeps_the_pool() {
    let dir = TempDir::new("link");
    let pair = fixed_pair(&dir, |_, _| {}).await;
    let a = sae_a(&pair);
    let LocalPair {
        a: kme_a,
        b: kme_b,
        files,
    } = pair;
    drop(kme_b);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(matches!(
        a.enc_keys(SAE_B, 1, 256).await,
        Err(QkdError::Unavailable(_))
    ));
    let status = a.status(SAE_B).await.unwrap();
    assert_eq!(status.stored_key_count, status.max_key_count);
    drop((kme_a, files));
}

#[tokio::test]
async fn clients_without_the_right_certificates_are_refused() {
    let dir = TempDir::new("tls");
    let other = TempDir::new("tls-other");
    let pair = fixed_pair(&dir, |_, _| {}).await;
    // A complete second setup: its CA is unknown to the first pair.
    let rogue = init_at_defaults(&other.0, SAE_A, SAE_B).unwrap();

    // Trusts the right CA, but presents a certificate (with the right CN) from another CA.
    let wrong_cert = client(
        &pair.url_a(),
        &pair.files.ca_file,
        &rogue.sae_a.cert_file,
        &rogue.sae_a.key_file,
    );
    let err = wrong_cert.enc_keys(SAE_B, 1, 256).await.unwrap_err();
    assert!(matches!(err, QkdError::Transport(_)), "{err}");

    // Does not trust the KME's CA.
    let f = &pair.files;
    let distrustful = client(
        &pair.url_a(),
        &rogue.ca_file,
        &f.sae_a.cert_file,
        &f.sae_a.key_file,
    );
    let err = distrustful.status(SAE_B).await.unwrap_err();
    assert!(matches!(err, QkdError::Transport(_)), "{err}");

    // No client certificate at all.
    let answer = request_without_client_cert(&pair.url_a(), &f.ca_file).await;
    assert!(
        !answer.starts_with(b"HTTP/"),
        "{}",
        String::from_utf8_lossy(&answer)
    );

    // None of these drew keys.
    let status = sae_a(&pair).status(SAE_B).await.unwrap();
    assert_eq!(status.stored_key_count, status.max_key_count);
}

/// Speak TLS without a client certificate and return whatever comes back (nothing, if the
/// KME refuses the connection as it should).
async fn request_without_client_cert(url: &str, ca: &Path) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let addr = url.trim_start_matches("https://");
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let Ok(mut tls) = connector.connect(name, tcp).await else {
        return Vec::new();
    };
    let request =
        b"GET /api/v1/keys/SAE_B/status HTTP/1.1\r\nHost: kme\r\nConnection: close\r\n\r\n";
    if tls.write_all(request).await.is_err() {
        return Vec::new();
    }
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut answer)).await;
    answer
}

#[test]
fn init_writes_a_usable_setup_and_never_overwrites() {
    let dir = TempDir::new("init");
    let out = init_at_defaults(&dir.0, "alice", "bob").unwrap();
    let a = KmeConfig::load(&out.config_a).unwrap();
    let b = KmeConfig::load(&out.config_b).unwrap();
    assert_eq!(
        (a.sae_id.as_str(), a.peer_sae_id.as_str()),
        ("alice", "bob")
    );
    assert_eq!(
        (b.sae_id.as_str(), b.peer_sae_id.as_str()),
        ("bob", "alice")
    );
    assert_eq!(a.listen.to_string(), "127.0.0.1:8443");
    assert_eq!(b.listen.to_string(), "127.0.0.1:8444");
    assert_eq!(a.link_listen, b.peer_link);
    assert_eq!(a.peer_link.to_string(), "127.0.0.1:8446");
    for file in [
        "ca.pem",
        "ca.key",
        "link-ca.pem",
        "alice.pem",
        "alice.key",
        "bob.pem",
    ] {
        assert!(dir.0.join(file).is_file(), "{file}");
    }
    assert!(a.cert_file.is_file() && a.link_key_file.is_file());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&out.sae_a.key_file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "private key readable by others");
    }
    let again = init_at_defaults(&dir.0, "alice", "bob");
    assert!(again.is_err());
    assert!(init_at_defaults(&TempDir::new("init-bad").0, "a/b", "bob").is_err());
}

/// A hub asks for one key per peer at each epoch switch, all at once after a cold start.
/// The simulated KME drops connections of a source beyond a few that have not finished
/// their TLS handshake; one client's burst must queue for its handshakes, not fail.
#[tokio::test]
async fn a_burst_of_calls_through_one_client_all_succeed() {
    let dir = TempDir::new("burst");
    let pair = fixed_pair(&dir, |_, _| {}).await;
    let a = sae_a(&pair);
    let calls: Vec<_> = (0..40)
        .map(|_| {
            let a = a.clone();
            tokio::spawn(async move { a.status(SAE_B).await })
        })
        .collect();
    let mut failures = Vec::new();
    for call in calls {
        if let Err(e) = call.await.unwrap() {
            failures.push(e.to_string());
        }
    }
    assert!(
        failures.is_empty(),
        "{} of 40 failed: {:?}",
        failures.len(),
        failures.first()
    );
}
