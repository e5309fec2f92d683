//! The SAE side of ETSI GS QKD 014: an HTTPS client with mutual TLS, one connection per call.
//!
//! A fresh connection per call keeps the client stateless and trivially safe to share; keymix
//! asks for keys once per epoch, so the handshake cost does not matter. `enc_keys` is never
//! retried here: every successful call consumes key material at both KMEs, and a retry after
//! an ambiguous failure could burn keys the peer never learns about. Retrying is the caller's
//! decision.
//!
//! A hub asks once per epoch *per peer*, and its peers' epochs start together after a cold
//! start, so one client may be asked for hundreds of keys at once. A KME bounds the
//! connections one source may hold before their TLS handshake completes (the simulator:
//! 4, `MAX_ANONYMOUS_PER_SOURCE` in `sim/accept.rs`) and drops the rest, so one client
//! (with its clones) has at most [`MAX_CONCURRENT_CALLS`] calls open; the others wait their
//! turn, inside their timeout, instead of failing. A call holds its turn until the answer,
//! not only until its own side of the handshake is done: the KME finishes the handshake
//! (checking our certificate) after the client has moved on, and answers only after that.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{ACCEPT, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use serde::de::DeserializeOwned;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_rustls::TlsConnector;
use zeroize::Zeroizing;

use super::body::{read_limited, BodyError, MAX_BODY};
use super::model::{self, KeyContainer, KeyIds, KeyRequest, Status};
use super::tls::{self, TlsFiles, TlsSetupError};
use super::url::{encode, KmeUrl};
use keymix::qkd::{QkdError, QkdFuture, QkdKey, QkdKeySource};

/// Key IDs are UUIDs (36 characters); leave room for KMEs that use other formats, but keep
/// what we pass on to the peer (in the keymix message) bounded and printable.
const MAX_KEY_ID_LEN: usize = 128;
/// Error messages from a KME end up in logs and `status`; keep them short and printable.
const MAX_MESSAGE_LEN: usize = 256;
/// Calls one client (and its clones) has open at a time; below the simulator's per-source
/// bound of connections still in their handshake.
pub const MAX_CONCURRENT_CALLS: usize = 3;

/// How to reach and authenticate to one KME.
#[derive(Debug, Clone)]
pub struct Etsi014ClientConfig {
    /// `https://host:port`, optionally followed by a path prefix before `/api/v1/keys`.
    pub kme_url: String,
    /// The only CA trusted for the KME's server certificate.
    pub ca_file: PathBuf,
    /// This SAE's client certificate (PEM); the KME reads the SAE ID from it.
    pub cert_file: PathBuf,
    /// This SAE's private key (PEM).
    pub key_file: PathBuf,
    /// Upper bound for one whole call: connect, TLS handshake, request and answer.
    pub timeout: Duration,
}

/// Why an [`Etsi014Client`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientSetupError {
    #[error("invalid KME URL: {0}")]
    Url(String),
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
}

/// An ETSI GS QKD 014 client for one KME, usable as keymix's [`QkdKeySource`].
#[derive(Clone)]
pub struct Etsi014Client {
    url: KmeUrl,
    server_name: ServerName<'static>,
    connector: TlsConnector,
    timeout: Duration,
    /// Turns for [`MAX_CONCURRENT_CALLS`], shared by clones: a hub's peers all ask through
    /// clones of one client.
    turns: Arc<Semaphore>,
}

impl std::fmt::Debug for Etsi014Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Etsi014Client")
            .field("url", &self.url)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Etsi014Client {
    /// Load the TLS material and check the URL; no network I/O happens here.
    pub fn new(config: &Etsi014ClientConfig) -> Result<Self, ClientSetupError> {
        let url = KmeUrl::parse(&config.kme_url).map_err(ClientSetupError::Url)?;
        let server_name = url.server_name().map_err(ClientSetupError::Url)?;
        let tls = tls::client_config(&TlsFiles {
            ca_file: config.ca_file.clone(),
            cert_file: config.cert_file.clone(),
            key_file: config.key_file.clone(),
        })?;
        Ok(Self {
            url,
            server_name,
            connector: TlsConnector::from(tls),
            timeout: config.timeout,
            turns: Arc::new(Semaphore::new(MAX_CONCURRENT_CALLS)),
        })
    }

    fn path(&self, sae_id: &str, method: &str) -> String {
        format!(
            "{}/api/v1/keys/{}/{}",
            self.url.prefix,
            encode(sae_id),
            method
        )
    }

    /// Get status: `GET /api/v1/keys/{slave_SAE_ID}/status`.
    pub async fn status(&self, slave_sae_id: &str) -> Result<Status, QkdError> {
        let body = self
            .call(Method::GET, self.path(slave_sae_id, "status"), None)
            .await?;
        parse_plain(&body, "Status")
    }

    /// Get key with a Key request body: `POST /api/v1/keys/{slave_SAE_ID}/enc_keys`.
    pub async fn enc_keys_post(
        &self,
        slave_sae_id: &str,
        request: &KeyRequest,
    ) -> Result<KeyContainer, QkdError> {
        let json = serde_json::to_vec(request)
            .map_err(|e| QkdError::Transport(format!("cannot encode Key request: {e}")))?;
        let body = self
            .call(
                Method::POST,
                self.path(slave_sae_id, "enc_keys"),
                Some(json),
            )
            .await?;
        parse_key_container(&body)
    }

    /// Get key the simple way: `GET /api/v1/keys/{slave_SAE_ID}/enc_keys?number=&size=`.
    pub async fn enc_keys_get(
        &self,
        slave_sae_id: &str,
        number: Option<u32>,
        size_bits: Option<u32>,
    ) -> Result<KeyContainer, QkdError> {
        let mut query = Vec::new();
        if let Some(n) = number {
            query.push(format!("number={n}"));
        }
        if let Some(s) = size_bits {
            query.push(format!("size={s}"));
        }
        let mut path = self.path(slave_sae_id, "enc_keys");
        if !query.is_empty() {
            path = format!("{path}?{}", query.join("&"));
        }
        let body = self.call(Method::GET, path, None).await?;
        parse_key_container(&body)
    }

    /// Get key with key IDs: `POST /api/v1/keys/{master_SAE_ID}/dec_keys`.
    pub async fn dec_keys_post(
        &self,
        master_sae_id: &str,
        key_ids: &KeyIds,
    ) -> Result<KeyContainer, QkdError> {
        let json = serde_json::to_vec(key_ids)
            .map_err(|e| QkdError::Transport(format!("cannot encode Key IDs: {e}")))?;
        let body = self
            .call(
                Method::POST,
                self.path(master_sae_id, "dec_keys"),
                Some(json),
            )
            .await?;
        parse_key_container(&body)
    }

    /// Get key with one key ID: `GET /api/v1/keys/{master_SAE_ID}/dec_keys?key_ID=`.
    pub async fn dec_keys_get(
        &self,
        master_sae_id: &str,
        key_id: &str,
    ) -> Result<KeyContainer, QkdError> {
        let path = format!(
            "{}?key_ID={}",
            self.path(master_sae_id, "dec_keys"),
            encode(key_id)
        );
        let body = self.call(Method::GET, path, None).await?;
        parse_key_container(&body)
    }

    /// One request/answer exchange under the configured timeout, status mapped to [`QkdError`].
    async fn call(
        &self,
        method: Method,
        path: String,
        json: Option<Vec<u8>>,
    ) -> Result<Zeroizing<Vec<u8>>, QkdError> {
        let started = Instant::now();
        let what = format!("{method} {path}");
        let exchange = self.exchange(method, path, json);
        let (status, body) = match tokio::time::timeout(self.timeout, exchange).await {
            Ok(result) => result?,
            Err(_) => {
                tracing::warn!(request = %what, timeout = ?self.timeout, "KME call timed out");
                return Err(QkdError::Transport(format!(
                    "no answer from KME within {:?}",
                    self.timeout
                )));
            }
        };
        tracing::debug!(request = %what, status = status.as_u16(), elapsed = ?started.elapsed(), "KME answered");
        match status {
            StatusCode::OK => Ok(body),
            StatusCode::BAD_REQUEST => Err(QkdError::BadRequest(error_message(&body))),
            StatusCode::UNAUTHORIZED => Err(QkdError::Unauthorized),
            StatusCode::SERVICE_UNAVAILABLE => Err(QkdError::Unavailable(error_message(&body))),
            other => Err(QkdError::UnexpectedStatus {
                status: other.as_u16(),
                message: unexpected_body_summary(&body),
            }),
        }
    }

    async fn exchange(
        &self,
        method: Method,
        path: String,
        json: Option<Vec<u8>>,
    ) -> Result<(StatusCode, Zeroizing<Vec<u8>>), QkdError> {
        // Held until this function returns, with the answer (see the module comment).
        let _turn = self
            .turns
            .acquire()
            .await
            .map_err(|_| QkdError::Transport("client closed".to_owned()))?;
        let tcp = TcpStream::connect((self.url.host.as_str(), self.url.port))
            .await
            .map_err(|e| transport("connect", e))?;
        // Requests are single small writes; waiting for Nagle only adds latency.
        let _ = tcp.set_nodelay(true);
        let stream = self
            .connector
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(|e| transport("TLS handshake", e))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| transport("HTTP handshake", e))?;

        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, self.url.authority.as_str())
            .header(ACCEPT, "application/json");
        if json.is_some() {
            request = request.header(CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(Bytes::from(json.unwrap_or_default())))
            .map_err(|e| QkdError::Transport(format!("cannot build request: {e}")))?;

        let exchange = async move {
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| transport("request", e))?;
            let status = response.status();
            let body = read_limited(response.into_body(), MAX_BODY)
                .await
                .map_err(|e| match e {
                    BodyError::TooLarge(_) => QkdError::Malformed(format!("answer {e}")),
                    BodyError::Read(_) => transport("answer", e),
                })?;
            Ok::<_, QkdError>((status, body))
        };
        tokio::pin!(exchange);
        // The connection future drives the socket; it must be polled while we wait for the
        // answer. When it ends first, the answer may still be complete in the body buffer.
        let conn_result = tokio::select! {
            result = &mut exchange => return result,
            conn_result = conn => conn_result,
        };
        match (exchange.await, conn_result) {
            (Ok(answer), _) => Ok(answer),
            (Err(_), Err(conn_err)) => Err(transport("connection", conn_err)),
            (Err(e), Ok(())) => Err(e),
        }
    }
}

/// hyper's errors hide the cause (e.g. the peer's TLS alert) in their source chain.
fn transport(stage: &str, e: impl std::error::Error) -> QkdError {
    let mut text = format!("{stage}: {e}");
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    QkdError::Transport(text)
}

/// Printable, bounded copy of text that came from the network.
fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_MESSAGE_LEN)
        .collect()
}

/// The `message` of a 400/503 Error body.
fn error_message(body: &[u8]) -> String {
    match serde_json::from_slice::<model::Error>(body) {
        Ok(error) => sanitize(&error.message),
        Err(_) if body.is_empty() => "(no Error body)".into(),
        Err(_) => "(answer body is not an ETSI 014 Error)".into(),
    }
}

/// Non-spec answers (404 pages, proxies' 504s) rarely carry an Error body; show what they say.
fn unexpected_body_summary(body: &[u8]) -> String {
    if let Ok(error) = serde_json::from_slice::<model::Error>(body) {
        return sanitize(&error.message);
    }
    match std::str::from_utf8(body) {
        Ok("") => "(empty body)".into(),
        Ok(text) => sanitize(text),
        Err(_) => format!("({} bytes of non-UTF-8 body)", body.len()),
    }
}

fn parse_plain<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T, QkdError> {
    serde_json::from_slice(body)
        .map_err(|e| QkdError::Malformed(format!("{what} body: {}", sanitize(&e.to_string()))))
}

fn parse_key_container(body: &[u8]) -> Result<KeyContainer, QkdError> {
    // serde_json's messages can quote input strings, and this input holds keys: report only
    // where parsing failed.
    let container: KeyContainer = serde_json::from_slice(body).map_err(|e| {
        QkdError::Malformed(format!(
            "Key container body is not valid ({:?} error at line {}, column {})",
            e.classify(),
            e.line(),
            e.column()
        ))
    })?;
    for key in &container.keys {
        let id = &key.key_ID;
        if id.is_empty() || id.len() > MAX_KEY_ID_LEN || !id.chars().all(|c| c.is_ascii_graphic()) {
            return Err(QkdError::Malformed(format!(
                "key_ID is not a printable ID of at most {MAX_KEY_ID_LEN} characters"
            )));
        }
    }
    Ok(container)
}

fn into_qkd_keys(container: KeyContainer) -> Vec<QkdKey> {
    container
        .keys
        .into_iter()
        .map(|k| QkdKey {
            key_id: k.key_ID,
            key: k.key.0,
        })
        .collect()
}

impl QkdKeySource for Etsi014Client {
    fn enc_keys(&self, slave_sae_id: &str, number: u32, size_bits: u32) -> QkdFuture<'_> {
        let slave_sae_id = slave_sae_id.to_owned();
        Box::pin(async move {
            let request = KeyRequest {
                number: Some(number),
                size: Some(size_bits),
                ..KeyRequest::default()
            };
            let container = self.enc_keys_post(&slave_sae_id, &request).await?;
            let keys = into_qkd_keys(container);
            if keys.len() != number as usize {
                return Err(QkdError::Malformed(format!(
                    "asked for {number} keys, got {}",
                    keys.len()
                )));
            }
            check_sizes(&keys, size_bits)?;
            Ok(keys)
        })
    }

    fn dec_keys(&self, master_sae_id: &str, key_ids: &[String]) -> QkdFuture<'_> {
        let master_sae_id = master_sae_id.to_owned();
        let key_ids = key_ids.to_vec();
        Box::pin(async move {
            let container = self
                .dec_keys_post(&master_sae_id, &KeyIds::from_ids(&key_ids))
                .await?;
            let delivered = into_qkd_keys(container);
            let delivered_count = delivered.len();
            let mut by_id: HashMap<String, QkdKey> = delivered
                .into_iter()
                .map(|k| (k.key_id.clone(), k))
                .collect();
            if by_id.len() != delivered_count || delivered_count != key_ids.len() {
                return Err(QkdError::Malformed(format!(
                    "asked for {} keys by ID, got {delivered_count} (distinct: {})",
                    key_ids.len(),
                    by_id.len()
                )));
            }
            // Hand the keys back in the order asked for: the caller pairs them with its IDs.
            key_ids
                .iter()
                .map(|id| {
                    by_id.remove(id).ok_or_else(|| {
                        QkdError::Malformed(format!("KME did not return key {}", sanitize(id)))
                    })
                })
                .collect()
        })
    }
}

fn check_sizes(keys: &[QkdKey], size_bits: u32) -> Result<(), QkdError> {
    let expected = (size_bits / 8) as usize;
    match keys.iter().find(|k| k.key.len() != expected) {
        Some(k) => Err(QkdError::Malformed(format!(
            "key {} has {} bytes, expected {expected}",
            k.key_id,
            k.key.len()
        ))),
        None => Ok(()),
    }
}
