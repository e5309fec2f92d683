//! The QKD key source as keymix sees it: two operations of ETSI GS QKD 014, behind a trait so
//! the sans-IO core never does I/O. The core emits [`crate::KmeRequest`]s; the driver answers
//! them through a [`QkdKeySource`] (the ETSI 014 client in the `qkd` crate, or
//! [`InMemoryKme`] in tests).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use zeroize::Zeroizing;

/// One key as delivered by a KME: its ID (a UUID string in ETSI 014) and the key bytes.
#[derive(Clone)]
pub struct QkdKey {
    pub key_id: String,
    pub key: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for QkdKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QkdKey")
            .field("key_id", &self.key_id)
            .field("key", &format_args!("<{} bytes redacted>", self.key.len()))
            .finish()
    }
}

/// Why a KME did not hand out a key. Every variant is a typed, displayable reason that ends
/// up in `status` as the last KME error; none carries key material.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum QkdError {
    /// 400 with the spec's Error body (`message`).
    #[error("KME rejected the request (400): {0}")]
    BadRequest(String),
    /// 401: the KME does not accept this SAE for this request (no body by spec).
    #[error("KME refused this SAE (401 unauthorized)")]
    Unauthorized,
    /// 503 with the spec's Error body: e.g. the key pool is empty.
    #[error("KME unavailable (503): {0}")]
    Unavailable(String),
    /// Any status code the spec does not define (404, 409, 412, 504, ...).
    #[error("KME answered with non-spec status {status}: {message}")]
    UnexpectedStatus { status: u16, message: String },
    /// The connection failed, TLS failed, or the call timed out.
    #[error("KME transport error: {0}")]
    Transport(String),
    /// The KME answered 200 with a body that is not what the spec says.
    #[error("KME sent a malformed answer: {0}")]
    Malformed(String),
    /// The keymix core gave up waiting for the driver's answer.
    #[error("KME request timed out")]
    Timeout,
}

/// A boxed future, so that [`QkdKeySource`] stays object-safe (the tunnel holds a
/// `Arc<dyn QkdKeySource>`).
pub type QkdFuture<'a> = Pin<Box<dyn Future<Output = Result<Vec<QkdKey>, QkdError>> + Send + 'a>>;

/// The two ETSI GS QKD 014 operations keymix needs.
///
/// As master SAE: `enc_keys` ("Get key") — fresh keys shared with `slave_sae_id`.
/// As slave SAE: `dec_keys` ("Get key with key IDs") — the keys the master obtained.
///
/// Other key-delivery protocols map onto the same two calls (SKIP: "a new key shared with
/// the remote system" and "the key of this keyId"), with the peer's ID in the protocol's
/// own terms in place of the SAE ID.
pub trait QkdKeySource: Send + Sync {
    fn enc_keys(&self, slave_sae_id: &str, number: u32, size_bits: u32) -> QkdFuture<'_>;
    fn dec_keys(&self, master_sae_id: &str, key_ids: &[String]) -> QkdFuture<'_>;
    /// The key-delivery protocol's short name, for status, metrics and the key log
    /// (`etsi014`, `skip`). Defaulted so existing sources need no change.
    fn protocol(&self) -> &'static str {
        "etsi014"
    }
}

/// One side of an in-memory KME pair. Two handles made by [`InMemoryKme::pair`] share a
/// key store, as two KMEs linked by QKD would. Keys are random, IDs are unique, and a key is
/// delivered once to the master and once to the slave, then deleted; failures can be switched
/// on to play a dead KME.
#[derive(Clone)]
pub struct InMemoryKme {
    own_sae_id: String,
    shared: Arc<Mutex<SharedStore>>,
}

#[derive(Default)]
struct SharedStore {
    /// Deterministic key material for known-answer vectors; OS randomness when None.
    seed: Option<[u8; 32]>,
    /// key_ID -> (master SAE, slave SAE, key)
    keys: HashMap<String, (String, String, Zeroizing<Vec<u8>>)>,
    next_id: u64,
    failing: HashMap<String, QkdError>,
    enc_calls: u64,
    dec_calls: u64,
}

impl InMemoryKme {
    /// Two KME handles sharing one key store, serving `sae_a` and `sae_b`.
    pub fn pair(sae_a: &str, sae_b: &str) -> (Self, Self) {
        let shared = Arc::new(Mutex::new(SharedStore::default()));
        (
            Self {
                own_sae_id: sae_a.to_owned(),
                shared: shared.clone(),
            },
            Self {
                own_sae_id: sae_b.to_owned(),
                shared,
            },
        )
    }

    /// Like [`InMemoryKme::pair`], but key bytes come from SHA-256(seed || counter), so that
    /// known-answer vectors are reproducible. Tests only.
    pub fn pair_seeded(sae_a: &str, sae_b: &str, seed: [u8; 32]) -> (Self, Self) {
        let (a, b) = Self::pair(sae_a, sae_b);
        a.store().seed = Some(seed);
        (a, b)
    }

    fn store(&self) -> std::sync::MutexGuard<'_, SharedStore> {
        // A poisoned lock only means a test thread panicked; the map is still consistent.
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Make every call from this SAE fail with `error` (None: work again).
    pub fn set_failing(&self, error: Option<QkdError>) {
        let mut s = self.store();
        match error {
            Some(e) => s.failing.insert(self.own_sae_id.clone(), e),
            None => s.failing.remove(&self.own_sae_id),
        };
    }

    /// Number of enc_keys / dec_keys calls that reached the store (for "no KME request" tests).
    pub fn calls(&self) -> (u64, u64) {
        let s = self.store();
        (s.enc_calls, s.dec_calls)
    }

    /// Keys currently stored (delivered to nobody or only to the master).
    pub fn stored_key_count(&self) -> usize {
        self.store().keys.len()
    }

    /// Synchronous form of `enc_keys`, for sans-IO tests.
    pub fn enc_keys_now(
        &self,
        slave_sae_id: &str,
        number: u32,
        size_bits: u32,
    ) -> Result<Vec<QkdKey>, QkdError> {
        let mut s = self.store();
        s.enc_calls += 1;
        if let Some(e) = s.failing.get(&self.own_sae_id) {
            return Err(e.clone());
        }
        if size_bits == 0 || !size_bits.is_multiple_of(8) {
            return Err(QkdError::BadRequest("size shall be a multiple of 8".into()));
        }
        let mut out = Vec::new();
        for _ in 0..number {
            let mut key = Zeroizing::new(vec![0u8; (size_bits / 8) as usize]);
            s.next_id += 1;
            match s.seed {
                Some(seed) => {
                    use sha2::{Digest, Sha256};
                    for (i, chunk) in key.chunks_mut(32).enumerate() {
                        let block = Sha256::new()
                            .chain_update(seed)
                            .chain_update(s.next_id.to_le_bytes())
                            .chain_update((i as u64).to_le_bytes())
                            .finalize();
                        chunk.copy_from_slice(&block[..chunk.len()]);
                    }
                }
                None => {
                    getrandom::fill(&mut key).map_err(|e| QkdError::Transport(e.to_string()))?
                }
            }
            let key_id = format!("00000000-0000-4000-8000-{:012x}", s.next_id);
            s.keys.insert(
                key_id.clone(),
                (
                    self.own_sae_id.clone(),
                    slave_sae_id.to_owned(),
                    key.clone(),
                ),
            );
            out.push(QkdKey { key_id, key });
        }
        Ok(out)
    }

    /// Synchronous form of `dec_keys`, for sans-IO tests.
    pub fn dec_keys_now(
        &self,
        master_sae_id: &str,
        key_ids: &[String],
    ) -> Result<Vec<QkdKey>, QkdError> {
        let mut s = self.store();
        s.dec_calls += 1;
        if let Some(e) = s.failing.get(&self.own_sae_id) {
            return Err(e.clone());
        }
        for id in key_ids {
            match s.keys.get(id) {
                None => {
                    return Err(QkdError::BadRequest(
                        "one or more keys specified are not found on KME".into(),
                    ))
                }
                Some((master, slave, _))
                    if master != master_sae_id || slave != &self.own_sae_id =>
                {
                    return Err(QkdError::Unauthorized)
                }
                Some(_) => {}
            }
        }
        Ok(key_ids
            .iter()
            .filter_map(|id| {
                s.keys.remove(id).map(|(_, _, key)| QkdKey {
                    key_id: id.clone(),
                    key,
                })
            })
            .collect())
    }
}

impl QkdKeySource for InMemoryKme {
    fn enc_keys(&self, slave_sae_id: &str, number: u32, size_bits: u32) -> QkdFuture<'_> {
        let r = self.enc_keys_now(slave_sae_id, number, size_bits);
        Box::pin(std::future::ready(r))
    }
    fn dec_keys(&self, master_sae_id: &str, key_ids: &[String]) -> QkdFuture<'_> {
        let r = self.dec_keys_now(master_sae_id, key_ids);
        Box::pin(std::future::ready(r))
    }
}
