//! The client against a canned mTLS server: what it sends, and how every kind of answer maps
//! to a `QkdError`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use keymix::qkd::{QkdError, QkdKeySource};
use qkd::sim::InitOutput;
use qkd::tls::{server_config, TlsFiles};
use qkd::{Etsi014Client, Etsi014ClientConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

mod common;
use common::{init_at_defaults, TempDir};

struct Setup {
    dir: TempDir,
    files: InitOutput,
}

fn setup(tag: &str) -> Setup {
    let dir = TempDir::new(tag);
    let files = init_at_defaults(dir.path(), "SAE_A", "SAE_B").unwrap();
    Setup { dir, files }
}

/// Requests seen by the canned server (head and body as text).
type Seen = Arc<Mutex<Vec<String>>>;

/// An mTLS server on 127.0.0.1:0 that answers every request with `response` (None: never
/// answers). Returns its URL and the requests it saw.
async fn canned(setup: &Setup, response: Option<Vec<u8>>) -> (String, Seen) {
    let tls = server_config(&TlsFiles {
        ca_file: setup.files.ca_file.clone(),
        cert_file: setup.dir.path().join("kme-a.pem"),
        key_file: setup.dir.path().join("kme-a.key"),
    })
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "https://127.0.0.1:{}",
        listener.local_addr().unwrap().port()
    );
    let seen: Seen = Arc::default();
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let response = response.clone();
            let log = log.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                // Read the head, then as much body as Content-Length says.
                loop {
                    let n = tls.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap())
                            })
                            .unwrap_or(0);
                        if request.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                log.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&request).to_string());
                match response {
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

fn http(status: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn client(setup: &Setup, url: &str, timeout: Duration) -> Etsi014Client {
    Etsi014Client::new(&Etsi014ClientConfig {
        kme_url: url.to_owned(),
        ca_file: setup.files.ca_file.clone(),
        cert_file: setup.files.sae_a.cert_file.clone(),
        key_file: setup.files.sae_a.key_file.clone(),
        timeout,
    })
    .unwrap()
}

async fn enc_with(setup: &Setup, response: Vec<u8>) -> (Result<usize, QkdError>, Seen) {
    let (url, seen) = canned(setup, Some(response)).await;
    let c = client(setup, &url, Duration::from_secs(5));
    (c.enc_keys("SAE_B", 1, 256).await.map(|k| k.len()), seen)
}

const ONE_KEY: &str = r#"{"keys":[{"key_ID":"bc490419-7d60-487f-adc1-4ddcc177c139","key":"wHHVxRwDJs3/bXd38GHP3oe4svTuRpZS0yCC7x4Ly+s="}]}"#;

#[tokio::test]
async fn enc_keys_sends_a_key_request_and_accepts_a_container() {
    let s = setup("c-ok");
    let (result, seen) = enc_with(&s, http("200 OK", ONE_KEY)).await;
    assert_eq!(result, Ok(1));
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    let request = &seen[0];
    assert!(
        request.starts_with("POST /api/v1/keys/SAE_B/enc_keys HTTP/1.1\r\n"),
        "{request}"
    );
    assert!(request
        .to_ascii_lowercase()
        .contains("content-type: application/json"));
    let body = request.split("\r\n\r\n").nth(1).unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(body).unwrap(),
        serde_json::json!({"number": 1, "size": 256})
    );
}

#[tokio::test]
async fn status_codes_map_to_errors_and_nothing_is_retried() {
    let s = setup("c-codes");
    let cases: Vec<(Vec<u8>, QkdError)> = vec![
        (
            http(
                "400 Bad Request",
                r#"{"message":"size shall be a multiple of 8"}"#,
            ),
            QkdError::BadRequest("size shall be a multiple of 8".into()),
        ),
        (
            http("400 Bad Request", "<html>nope</html>"),
            QkdError::BadRequest("(answer body is not an ETSI 014 Error)".into()),
        ),
        (
            b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n".to_vec(),
            QkdError::Unauthorized,
        ),
        (
            http(
                "503 Service Unavailable",
                r#"{"message":"pool empty","details":[]}"#,
            ),
            QkdError::Unavailable("pool empty".into()),
        ),
        (
            http("404 Not Found", "no such route\n"),
            QkdError::UnexpectedStatus {
                status: 404,
                message: "no such route ".into(),
            },
        ),
        (
            http("409 Conflict", r#"{"message":"busy","vendor":1}"#),
            QkdError::UnexpectedStatus {
                status: 409,
                message: "busy".into(),
            },
        ),
    ];
    for (response, expected) in cases {
        let (result, seen) = enc_with(&s, response).await;
        assert_eq!(result, Err(expected));
        assert_eq!(
            seen.lock().unwrap().len(),
            1,
            "enc_keys must not be retried"
        );
    }
}

#[tokio::test]
async fn bad_200_answers_are_malformed() {
    let s = setup("c-garbage");
    let two_keys = r#"{"keys":[{"key_ID":"a","key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="},{"key_ID":"b","key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}]}"#;
    let short_key = r#"{"keys":[{"key_ID":"a","key":"AAAA"}]}"#;
    let bad_id = r#"{"keys":[{"key_ID":"with space","key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}]}"#;
    let big = format!(r#"{{"keys":[],"pad":"{}"}}"#, "x".repeat(2 * 1024 * 1024));
    for body in [
        "not json at all",
        "{}",
        r#"{"keys":[{"key_ID":"a","key":"***"}]}"#,
        two_keys,
        short_key,
        bad_id,
        &big,
    ] {
        let (result, _) = enc_with(&s, http("200 OK", body)).await;
        assert!(
            matches!(result, Err(QkdError::Malformed(_))),
            "{}: {result:?}",
            &body[..body.len().min(40)]
        );
    }
}

#[tokio::test]
async fn dec_keys_checks_the_returned_ids() {
    let s = setup("c-dec");
    let (url, seen) = canned(&s, Some(http("200 OK", ONE_KEY))).await;
    let c = client(&s, &url, Duration::from_secs(5));
    let wanted = vec!["bc490419-7d60-487f-adc1-4ddcc177c139".to_string()];
    let keys = c.dec_keys("SAE_B", &wanted).await.unwrap();
    assert_eq!(keys[0].key_id, wanted[0]);
    let request = seen.lock().unwrap()[0].clone();
    assert!(request.starts_with("POST /api/v1/keys/SAE_B/dec_keys HTTP/1.1\r\n"));
    assert!(request.contains(r#"{"key_IDs":[{"key_ID":"bc490419-7d60-487f-adc1-4ddcc177c139"}]}"#));

    let other = vec!["0a782fb5-3434-48fe-aa4d-14f41d46cf92".to_string()];
    assert!(matches!(
        c.dec_keys("SAE_B", &other).await,
        Err(QkdError::Malformed(_))
    ));
}

#[tokio::test]
async fn get_forms_encode_their_parameters() {
    let s = setup("c-get");
    let (url, seen) = canned(&s, Some(http("200 OK", ONE_KEY))).await;
    let c = client(&s, &format!("{url}/"), Duration::from_secs(5));
    c.enc_keys_get("SAE B/1", Some(3), Some(1024))
        .await
        .unwrap();
    c.dec_keys_get("SAE_B", "id&x=1").await.unwrap();
    let seen = seen.lock().unwrap();
    assert!(
        seen[0].starts_with("GET /api/v1/keys/SAE%20B%2F1/enc_keys?number=3&size=1024 HTTP/1.1"),
        "{}",
        seen[0]
    );
    assert!(
        seen[1].starts_with("GET /api/v1/keys/SAE_B/dec_keys?key_ID=id%26x%3D1 HTTP/1.1"),
        "{}",
        seen[1]
    );
}

#[tokio::test]
async fn silence_and_refused_connections_are_transport_errors() {
    let s = setup("c-silent");
    let (url, seen) = canned(&s, None).await;
    let c = client(&s, &url, Duration::from_millis(300));
    let started = std::time::Instant::now();
    let err = c.enc_keys("SAE_B", 1, 256).await.unwrap_err();
    assert!(matches!(err, QkdError::Transport(_)), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "enc_keys must not be retried"
    );

    // Nothing listens on a port we just released.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    };
    let c = client(
        &s,
        &format!("https://127.0.0.1:{port}"),
        Duration::from_secs(2),
    );
    assert!(matches!(
        c.status("SAE_B").await,
        Err(QkdError::Transport(_))
    ));
}

#[test]
fn bad_urls_are_rejected_at_construction() {
    let s = setup("c-url");
    for url in [
        "http://127.0.0.1:8443",
        "https://",
        "https://127.0.0.1:notaport",
        "https://user@127.0.0.1",
        "https://127.0.0.1/x?y",
    ] {
        let result = Etsi014Client::new(&Etsi014ClientConfig {
            kme_url: url.into(),
            ca_file: s.files.ca_file.clone(),
            cert_file: s.files.sae_a.cert_file.clone(),
            key_file: s.files.sae_a.key_file.clone(),
            timeout: Duration::from_secs(1),
        });
        assert!(result.is_err(), "{url}");
    }
}
