//! The SKIP client against a hostile Key Provider (a canned TLS 1.3 server): every bad
//! answer is a clear `QkdError`, never a panic, never a key of another size, never a keyId
//! twice, and never longer than the timeout.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keymix::qkd::{QkdError, QkdKeySource};
use qkd::sim::InitOutput;
use qkd::skip::{SkipClient, SkipClientConfig, SkipTls};
use qkd::tls::TlsFiles;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

mod common;
use common::{init_at_defaults, TempDir};

const KEY_256: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

/// A server answering the n-th request with `answers[n]` (the last one repeated; None: never
/// answer). Returns its URL and the request lines it saw.
async fn canned(
    files: &InitOutput,
    dir: &TempDir,
    answers: Vec<Option<Vec<u8>>>,
) -> (String, Arc<Mutex<Vec<String>>>) {
    let tls = qkd::skip::cert::server_config(
        &TlsFiles {
            ca_file: files.ca_file.clone(),
            cert_file: dir.path().join("kme-a.pem"),
            key_file: dir.path().join("kme-a.key"),
        },
        false,
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "https://127.0.0.1:{}",
        listener.local_addr().unwrap().port()
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        let mut n = 0usize;
        while let Ok((tcp, _)) = listener.accept().await {
            let answer = answers.get(n).or(answers.last()).cloned().flatten();
            n += 1;
            let (acceptor, log) = (acceptor.clone(), log.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&head).to_string();
                log.lock()
                    .unwrap()
                    .push(text.lines().next().unwrap_or("").to_owned());
                match answer {
                    Some(bytes) => {
                        let _ = tls.write_all(&bytes).await;
                        let _ = tls.shutdown().await;
                    }
                    None => tokio::time::sleep(Duration::from_secs(30)).await,
                }
            });
        }
    });
    (url, seen)
}

fn http(status: &str, body: &str) -> Option<Vec<u8>> {
    Some(
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

fn key_body(id: &str, key: &str) -> String {
    format!(r#"{{"keyId": "{id}", "key": "{key}"}}"#)
}

struct Kp {
    _dir: TempDir,
    client: SkipClient,
    seen: Arc<Mutex<Vec<String>>>,
}

async fn kp(tag: &str, answers: Vec<Option<Vec<u8>>>) -> Kp {
    let dir = TempDir::new(tag);
    let files = init_at_defaults(dir.path(), "SAE_A", "SAE_B").unwrap();
    let (url, seen) = canned(&files, &dir, answers).await;
    let client = SkipClient::new(SkipClientConfig {
        kp_url: url,
        local_system_id: "KP_A".into(),
        tls: SkipTls::Certificate {
            ca_file: files.ca_file.clone(),
            identity: None,
        },
        timeout: Duration::from_millis(800),
    })
    .unwrap();
    Kp {
        _dir: dir,
        client,
        seen,
    }
}

async fn new_key_with(tag: &str, answer: Option<Vec<u8>>) -> Result<usize, QkdError> {
    let kp = kp(tag, vec![answer]).await;
    kp.client.enc_keys("KP_B", 1, 256).await.map(|k| k.len())
}

#[tokio::test]
async fn a_good_answer_is_asked_for_the_right_way() {
    let kp = kp(
        "h-good",
        vec![http(
            "200 OK",
            &key_body("ABCDEF0123456789abcdef0123456789abcdef0123456789", KEY_256),
        )],
    )
    .await;
    let keys = kp.client.enc_keys("KP B/1", 1, 256).await.unwrap();
    assert_eq!(keys[0].key.len(), 32);
    assert_eq!(
        keys[0].key_id,
        "ABCDEF0123456789abcdef0123456789abcdef0123456789"
    );
    assert_eq!(
        kp.seen.lock().unwrap()[0],
        "GET /key?remoteSystemID=KP%20B%2F1&size=256 HTTP/1.1"
    );
}

#[tokio::test]
async fn bad_keys_are_malformed_never_accepted() {
    let short = &KEY_256[..32];
    let cases = [
        ("h-short", key_body("0011", short)),
        ("h-long", key_body("0011", &format!("{KEY_256}00"))),
        ("h-nonhex", key_body("0011", &KEY_256.replace('0', "g"))),
        ("h-odd", key_body("0011", &KEY_256[1..])),
        ("h-idnonhex", key_body("00zz", KEY_256)),
        ("h-idlong", key_body(&"a".repeat(65), KEY_256)),
        ("h-idempty", key_body("", KEY_256)),
        ("h-notjson", "<html>".into()),
        ("h-nokey", r#"{"keyId": "0011"}"#.into()),
    ];
    for (tag, body) in cases {
        let e = new_key_with(tag, http("200 OK", &body)).await.unwrap_err();
        assert!(matches!(e, QkdError::Malformed(_)), "{tag}: {e}");
        assert!(
            !e.to_string().contains(&KEY_256[..16]),
            "{tag}: key material in {e}"
        );
    }
}

#[tokio::test]
async fn status_codes_are_reasons() {
    let e = new_key_with("h-400", http("400 Bad Request", r#"{"message":"unknown"}"#))
        .await
        .unwrap_err();
    assert!(
        matches!(e, QkdError::BadRequest(ref m) if m.contains("unknown")),
        "{e}"
    );
    let e = new_key_with("h-503", http("503 Service Unavailable", "no entropy"))
        .await
        .unwrap_err();
    assert!(
        matches!(e, QkdError::Unavailable(ref m) if m.contains("no entropy")),
        "{e}"
    );
    let e = new_key_with("h-500", http("500 Internal Server Error", ""))
        .await
        .unwrap_err();
    assert!(
        matches!(e, QkdError::UnexpectedStatus { status: 500, .. }),
        "{e}"
    );
    let e = new_key_with("h-404", http("404 Not Found", "\u{7}bell"))
        .await
        .unwrap_err();
    assert!(
        matches!(e, QkdError::UnexpectedStatus { status: 404, ref message } if !message.contains('\u{7}')),
        "{e}"
    );
}

#[tokio::test]
async fn oversized_and_silent_kps_are_bounded() {
    let huge = format!(r#"{{"keyId":"00","key":"{}"}}"#, "0".repeat(600 * 1024));
    let e = new_key_with("h-huge", http("200 OK", &huge))
        .await
        .unwrap_err();
    assert!(
        matches!(e, QkdError::Malformed(ref m) if m.contains("larger")),
        "{e}"
    );
    let started = Instant::now();
    let e = new_key_with("h-silent", None).await.unwrap_err();
    assert!(
        matches!(e, QkdError::Transport(ref m) if m.contains("within")),
        "{e}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn reused_and_substituted_key_ids_are_refused() {
    let same = http("200 OK", &key_body("00aa", KEY_256));
    let reuse = kp("h-reuse", vec![same.clone(), same]).await;
    reuse.client.enc_keys("KP_B", 1, 256).await.unwrap();
    let e = reuse.client.enc_keys("KP_B", 1, 256).await.unwrap_err();
    assert!(
        matches!(e, QkdError::Malformed(ref m) if m.contains("second time")),
        "{e}"
    );
    // The far side: asked for one keyId, handed another.
    let subst = kp("h-subst", vec![http("200 OK", &key_body("00bb", KEY_256))]).await;
    let e = subst
        .client
        .dec_keys("KP_B", &["00cc".into()])
        .await
        .unwrap_err();
    assert!(
        matches!(e, QkdError::Malformed(ref m) if m.contains("another keyId")),
        "{e}"
    );
    // The same keyId twice in one request is refused before any request.
    let e = subst
        .client
        .dec_keys("KP_B", &["00DD".into(), "00dd".into()])
        .await
        .unwrap_err();
    assert!(matches!(e, QkdError::Malformed(_)), "{e}");
    assert_eq!(subst.seen.lock().unwrap().len(), 1);
    // Either case of the asked keyId is the same key.
    let kp2 = kp("h-case", vec![http("200 OK", &key_body("00EE", KEY_256))]).await;
    let got = kp2.client.dec_keys("KP_B", &["00ee".into()]).await.unwrap();
    assert_eq!(got[0].key_id, "00ee");
}

#[tokio::test]
async fn capabilities_are_checked() {
    let body = r#"{"entropy":false,"key":true,"algorithm":"QKD","localSystemID":"KP_A","remoteSystemID":["KP_[BC]"]}"#;
    let good = kp("h-caps", vec![http("200 OK", body)]).await;
    let caps = good.client.capabilities().await.unwrap();
    assert!(good.client.check_local(&caps).is_ok());
    assert!(caps.lists_remote("KP_C") && !caps.lists_remote("KP_D"));
    let wrong = r#"{"entropy":false,"key":false,"algorithm":"QKD","localSystemID":"KP_X","remoteSystemID":[]}"#;
    let bad = kp("h-caps2", vec![http("200 OK", wrong)]).await;
    let caps = bad.client.capabilities().await.unwrap();
    assert!(bad.client.check_local(&caps).is_err());
    let many = format!(
        r#"{{"entropy":false,"key":true,"algorithm":"QKD","localSystemID":"KP_A","remoteSystemID":[{}]}}"#,
        vec!["\"x\""; 2000].join(",")
    );
    let big = kp("h-caps3", vec![http("200 OK", &many)]).await;
    assert!(matches!(
        big.client.capabilities().await,
        Err(QkdError::Malformed(_))
    ));
}
