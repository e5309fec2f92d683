//! The encryptor side of SKIP: a client of the site's Key Provider, usable as keymix's
//! [`QkdKeySource`]. The master asks for a new key shared with the peer's KP
//! (`GET /key?remoteSystemID=`), the slave for the key of the keyId the master sent
//! (`GET /key/{keyId}?remoteSystemID=`), where ETSI 014 has `enc_keys` and `dec_keys`.
//!
//! Everything a KP answers is checked before keymix sees it: status, a body under
//! [`transport::MAX_BODY`], JSON of the draft's shape, hex keyIds and keys, the exact key size asked
//! for, the keyId asked for, and no keyId twice ([`SeenKeyIds`]). Every failure is a
//! [`QkdError`] with a reason for `status`; keymix's policy then degrades or blocks.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::StatusCode;
use tokio_rustls::TlsConnector;
use zeroize::Zeroizing;

use super::cert;
use super::model::{self, Capabilities, KeyAnswer};
use super::psk::{self, PskMaterial, PskTlsVersion};
use super::seen::SeenKeyIds;
use super::transport::{self, Connector};
use crate::tls::TlsSetupError;
use crate::url::{encode, KmeUrl};
use keymix::qkd::{QkdError, QkdFuture, QkdKey, QkdKeySource};

/// Error text from a KP ends up in logs and `status`; keep it short and printable.
const MAX_MESSAGE_LEN: usize = 200;

/// How the client authenticates the KP and itself.
#[derive(Debug)]
pub enum SkipTls {
    /// TLS 1.3 with certificates: the KP's verified against `ca_file`; ours if given.
    Certificate {
        ca_file: PathBuf,
        identity: Option<(PathBuf, PathBuf)>,
    },
    /// TLS with an external pre-shared key (OpenSSL).
    Psk {
        material: PskMaterial,
        version: PskTlsVersion,
    },
}

/// How to reach one Key Provider.
#[derive(Debug)]
pub struct SkipClientConfig {
    /// `https://host:port`, optionally with a path prefix before `/key`.
    pub kp_url: String,
    /// This site's KP's system ID, as its capabilities must report it.
    pub local_system_id: String,
    pub tls: SkipTls,
    /// Upper bound of one whole request: connect, TLS, request and answer.
    pub timeout: Duration,
}

/// Why a [`SkipClient`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SkipSetupError {
    #[error("invalid KP URL: {0}")]
    Url(String),
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
    #[error("TLS (PSK mode) setup failed: {0}")]
    Psk(String),
}

/// A SKIP client for one KP.
pub struct SkipClient {
    url: KmeUrl,
    local_system_id: String,
    connector: Connector,
    timeout: Duration,
    seen: Mutex<SeenKeyIds>,
}

impl std::fmt::Debug for SkipClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SkipClient")
            .field("url", &self.url)
            .field("local_system_id", &self.local_system_id)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl SkipClient {
    /// Loads the TLS material and checks the URL; no network I/O happens here.
    pub fn new(config: SkipClientConfig) -> Result<Self, SkipSetupError> {
        let url = KmeUrl::parse(&config.kp_url).map_err(SkipSetupError::Url)?;
        let connector = match config.tls {
            SkipTls::Certificate { ca_file, identity } => {
                let identity = identity.as_ref().map(|(c, k)| (c.as_path(), k.as_path()));
                Connector::Certificate {
                    connector: TlsConnector::from(cert::client_config(&ca_file, identity)?),
                    server_name: url.server_name().map_err(SkipSetupError::Url)?,
                }
            }
            SkipTls::Psk { material, version } => Connector::Psk {
                context: psk::client_context(&material, version)
                    .map_err(|e| SkipSetupError::Psk(e.to_string()))?,
                // SNI carries names only, never addresses (RFC 6066).
                sni: url
                    .host
                    .parse::<std::net::IpAddr>()
                    .is_err()
                    .then(|| url.host.clone()),
            },
        };
        Ok(Self {
            url,
            local_system_id: config.local_system_id,
            connector,
            timeout: config.timeout,
            seen: Mutex::new(SeenKeyIds::default()),
        })
    }

    /// The configured local system ID.
    pub fn local_system_id(&self) -> &str {
        &self.local_system_id
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, SeenKeyIds> {
        // The set stays consistent under a panic elsewhere: every update is one insert.
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One GET under the timeout; the body of a 200, else the status as a [`QkdError`].
    async fn get(&self, path: String) -> Result<Zeroizing<Vec<u8>>, QkdError> {
        let path = format!("{}{path}", self.url.prefix);
        let call = transport::get(
            &self.connector,
            &self.url.host,
            self.url.port,
            &self.url.authority,
            &path,
        );
        let (status, body) = match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result?,
            Err(_) => {
                return Err(QkdError::Transport(format!(
                    "no answer from the SKIP KP within {:?}",
                    self.timeout
                )))
            }
        };
        tracing::debug!(path = %path, status = status.as_u16(), "SKIP KP answered");
        let text = || summary(&body);
        match status {
            StatusCode::OK => Ok(body),
            StatusCode::BAD_REQUEST => Err(QkdError::BadRequest(format!(
                "SKIP KP: malformed keyId or key not found: {}",
                text()
            ))),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(QkdError::Unauthorized),
            StatusCode::SERVICE_UNAVAILABLE => Err(QkdError::Unavailable(text())),
            other => Err(QkdError::UnexpectedStatus {
                status: other.as_u16(),
                message: text(),
            }),
        }
    }

    /// Method 1, `GET /capabilities`.
    pub async fn capabilities(&self) -> Result<Capabilities, QkdError> {
        let body = self.get("/capabilities".into()).await?;
        let caps: Capabilities = parse(&body, "capabilities")?;
        caps.check().map_err(QkdError::Malformed)?;
        Ok(caps)
    }

    /// Method 3: a new key of `size_bits` shared with `remote`.
    pub async fn new_key(&self, remote: &str, size_bits: u32) -> Result<QkdKey, QkdError> {
        let path = format!("/key?remoteSystemID={}&size={size_bits}", encode(remote));
        let answer: KeyAnswer = parse(&self.get(path).await?, "key")?;
        if !model::is_key_id(&answer.keyId) {
            return Err(QkdError::Malformed(format!(
                "keyId is not 1 to {} hex digits",
                model::MAX_KEY_ID_LEN
            )));
        }
        self.accept(answer, size_bits)
    }

    /// Method 4: the key of `key_id`, shared with `remote`.
    pub async fn key_by_id(
        &self,
        remote: &str,
        key_id: &str,
        size_bits: u32,
    ) -> Result<QkdKey, QkdError> {
        if !model::is_peer_key_id(key_id) {
            return Err(QkdError::Malformed(format!(
                "the peer's keyId {:?} is not hex",
                sanitize(key_id)
            )));
        }
        if self.seen().contains(&model::key_id_canonical(key_id)) {
            return Err(QkdError::Malformed(format!(
                "keyId {key_id} was already used; a SKIP key is single-use"
            )));
        }
        let path = format!("/key/{}?remoteSystemID={}", encode(key_id), encode(remote));
        let answer: KeyAnswer = parse(&self.get(path).await?, "key")?;
        if model::key_id_canonical(&answer.keyId) != model::key_id_canonical(key_id) {
            return Err(QkdError::Malformed(format!(
                "asked for keyId {key_id}, the KP answered with another keyId"
            )));
        }
        let mut key = self.accept(answer, size_bits)?;
        // Keep the ID exactly as the peer sent it: keymix compares it with the Init's.
        key.key_id = key_id.to_owned();
        Ok(key)
    }

    /// Size and single use of a delivered key.
    fn accept(&self, answer: KeyAnswer, size_bits: u32) -> Result<QkdKey, QkdError> {
        let expected = (size_bits / 8) as usize;
        if answer.key.0.len() != expected || !size_bits.is_multiple_of(8) {
            return Err(QkdError::Malformed(format!(
                "key {} has {} bits, expected {size_bits}",
                answer.keyId,
                answer.key.0.len() * 8
            )));
        }
        if !self.seen().insert(model::key_id_canonical(&answer.keyId)) {
            return Err(QkdError::Malformed(format!(
                "the KP delivered keyId {} a second time; a SKIP key is single-use",
                answer.keyId
            )));
        }
        Ok(QkdKey {
            key_id: answer.keyId,
            key: answer.key.0,
        })
    }

    /// The start-up check: the KP serves keys and reports the configured system ID.
    /// Peers' remote IDs are checked by the caller with [`Capabilities::lists_remote`].
    pub fn check_local(&self, caps: &Capabilities) -> Result<(), String> {
        if !caps.key {
            return Err("the KP's capabilities say it serves no keys (\"key\": false)".into());
        }
        if caps.localSystemID != self.local_system_id {
            return Err(format!(
                "the KP reports localSystemID {:?}, the config says {:?}",
                sanitize(&caps.localSystemID),
                self.local_system_id
            ));
        }
        Ok(())
    }
}

/// Parses a 200 body; serde's messages can quote input (keys), so only the position is kept.
fn parse<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, QkdError> {
    serde_json::from_slice(body).map_err(|e| {
        let detail = if e.is_data() && e.to_string().contains("not hex") {
            "a key is not hex".to_owned()
        } else {
            format!(
                "{:?} error at line {}, column {}",
                e.classify(),
                e.line(),
                e.column()
            )
        };
        QkdError::Malformed(format!("{what} answer is not SKIP JSON ({detail})"))
    })
}

/// Printable, bounded copy of text from the network.
fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_MESSAGE_LEN)
        .collect()
}

/// An error body: the `message` of a JSON object when there is one, else the text.
fn summary(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Message {
        message: String,
    }
    if let Ok(m) = serde_json::from_slice::<Message>(body) {
        return sanitize(&m.message);
    }
    match std::str::from_utf8(body) {
        Ok("") => "(empty body)".into(),
        Ok(text) => sanitize(text),
        Err(_) => format!("({} bytes of non-UTF-8 body)", body.len()),
    }
}

impl QkdKeySource for SkipClient {
    fn enc_keys(&self, remote_system_id: &str, number: u32, size_bits: u32) -> QkdFuture<'_> {
        let remote = remote_system_id.to_owned();
        Box::pin(async move {
            let mut keys = Vec::new();
            for _ in 0..number {
                keys.push(self.new_key(&remote, size_bits).await?);
            }
            Ok(keys)
        })
    }

    fn dec_keys(&self, remote_system_id: &str, key_ids: &[String]) -> QkdFuture<'_> {
        let remote = remote_system_id.to_owned();
        let key_ids = key_ids.to_vec();
        Box::pin(async move {
            let mut canonical: Vec<String> = key_ids
                .iter()
                .map(|id| model::key_id_canonical(id))
                .collect();
            canonical.sort();
            canonical.dedup();
            if canonical.len() != key_ids.len() {
                return Err(QkdError::Malformed(
                    "the same keyId twice in one request".into(),
                ));
            }
            let mut keys = Vec::new();
            for id in &key_ids {
                // keymix asks for keys of its own size; SKIP's fetch-by-ID carries no size.
                keys.push(self.key_by_id(&remote, id, keymix::QKD_KEY_BITS).await?);
            }
            Ok(keys)
        })
    }

    fn protocol(&self) -> &'static str {
        "skip"
    }
}

/// A client shared between the key source (the tunnel) and the start-up check (the CLI).
pub type SharedSkipClient = Arc<SkipClient>;
