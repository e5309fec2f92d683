//! The SKIP methods (draft-cisco-skip-02, Table 2) as the simulated KP answers them, over
//! the same pool, key link and key store as its ETSI 014 API: a key handed out here is
//! fetched at the far KME over either API (`keyid::canonical` maps the ID forms).
//!
//! System IDs: this KP's `localSystemID` is its KME ID, its one `remoteSystemID` the peer
//! KME's. The encryptor it serves is the SAE of its config (the key store is indexed by SAE
//! IDs, so both APIs find the same keys).

use serde_json::Value;
use zeroize::Zeroizing;

use super::api::{query_params, query_u32, Answer};
use super::issue::issue;
use super::keyid::{canonical, skip_form};
use super::state::KmeState;
use super::store::TakeError;
use crate::skip::model::{Capabilities, Entropy, HexKey, KeyAnswer, MAX_KEY_ID_LEN};

/// The draft's default key size and entropy size, in bits.
const DEFAULT_BITS: u32 = 256;
/// Largest `GET /entropy` answer, in bits.
const MAX_ENTROPY_BITS: u32 = 8192;

/// Answer one SKIP request (the TLS layer has authenticated the caller already).
pub async fn handle(state: &KmeState, method: &str, path: &str, query: Option<&str>) -> Answer {
    let known = path == "/capabilities"
        || path == "/entropy"
        || path == "/key"
        || path
            .strip_prefix("/key/")
            .is_some_and(|id| !id.contains('/'));
    if !known {
        return Answer::error(404, "not found");
    }
    if method != "GET" {
        return Answer::error(405, "method not allowed");
    }
    match (path, path.strip_prefix("/key/")) {
        ("/capabilities", _) => capabilities(state),
        ("/entropy", _) => entropy(query),
        ("/key", _) => new_key(state, query).await,
        (_, Some(id)) => key_by_id(state, id, query),
        _ => Answer::error(404, "not found"),
    }
}

fn capabilities(state: &KmeState) -> Answer {
    Answer::json(
        200,
        &Capabilities {
            entropy: true,
            key: true,
            algorithm: "trident-kme-sim (classical TLS link, not QKD)".into(),
            localSystemID: state.config.kme_id.clone(),
            remoteSystemID: vec![state.config.peer_kme_id.clone()],
        },
    )
}

/// The `remoteSystemID` of a key request: it must name the peer KP.
fn remote(state: &KmeState, params: &serde_json::Map<String, Value>) -> Result<(), Answer> {
    match params.get("remoteSystemID").and_then(Value::as_str) {
        Some(id) if id == state.config.peer_kme_id => Ok(()),
        Some(id) => Err(Answer::bad_request(&format!(
            "remoteSystemID {:?} is not a KP this KP shares keys with",
            id.chars().take(64).collect::<String>()
        ))),
        None => Err(Answer::bad_request("remoteSystemID is required")),
    }
}

async fn new_key(state: &KmeState, query: Option<&str>) -> Answer {
    let params = match query_params(query, &["remoteSystemID", "size"]) {
        Ok(p) => p,
        Err(answer) => return answer,
    };
    if let Err(answer) = remote(state, &params) {
        return answer;
    }
    let c = &state.config;
    let size = match query_u32(&params, "size") {
        Ok(size) => size.unwrap_or(DEFAULT_BITS),
        Err(answer) => return answer,
    };
    if !size.is_multiple_of(8) || size < c.min_key_size || size > c.max_key_size {
        return Answer::bad_request(&format!(
            "size must be a multiple of 8 between {} and {}",
            c.min_key_size, c.max_key_size
        ));
    }
    // This KP's encryptor is the master, the peer KP's encryptor the slave.
    let keys = match issue(state, &c.sae_id, &c.peer_sae_id, 1, size).await {
        Ok(keys) => keys,
        Err(answer) => return answer,
    };
    let Some(key) = keys.into_iter().next() else {
        return Answer::error(500, "no key issued");
    };
    tracing::info!(remote = %c.peer_kme_id, size, "SKIP key delivered to the local encryptor");
    Answer::json(
        200,
        &KeyAnswer {
            keyId: skip_form(&key.key_ID),
            key: HexKey(key.key.0),
        },
    )
}

fn key_by_id(state: &KmeState, id: &str, query: Option<&str>) -> Answer {
    let params = match query_params(query, &["remoteSystemID"]) {
        Ok(p) => p,
        Err(answer) => return answer,
    };
    if let Err(answer) = remote(state, &params) {
        return answer;
    }
    let Some(asked) = crate::url::decode(id).filter(|i| !i.is_empty() && i.len() <= MAX_KEY_ID_LEN)
    else {
        return Answer::bad_request("malformed keyId");
    };
    let c = &state.config;
    let taken = state.store().take(
        &c.sae_id,
        &c.peer_sae_id,
        &[canonical(&asked)],
        std::time::Instant::now(),
    );
    match taken.map(|keys| keys.into_iter().next()) {
        Ok(Some((_, key))) => {
            tracing::info!(remote = %c.peer_kme_id, "SKIP key delivered by keyId");
            Answer::json(
                200,
                &KeyAnswer {
                    keyId: asked,
                    key: HexKey(key),
                },
            )
        }
        // The draft has 400 for "malformed keyId, or key not found".
        Ok(None) | Err(TakeError::NotFound) => Answer::bad_request("key not found"),
        Err(TakeError::NotAuthorized) => Answer::bad_request("key not found"),
    }
}

fn entropy(query: Option<&str>) -> Answer {
    let params = match query_params(query, &["minentropy"]) {
        Ok(p) => p,
        Err(answer) => return answer,
    };
    let bits = match query_u32(&params, "minentropy") {
        Ok(bits) => bits.unwrap_or(DEFAULT_BITS),
        Err(answer) => return answer,
    };
    if bits == 0 || !bits.is_multiple_of(8) || bits > MAX_ENTROPY_BITS {
        return Answer::bad_request(&format!(
            "minentropy must be a multiple of 8 up to {MAX_ENTROPY_BITS}"
        ));
    }
    let mut random = Zeroizing::new(vec![0u8; (bits / 8) as usize]);
    if getrandom::fill(&mut random).is_err() {
        return Answer::error(503, "not enough entropy");
    }
    Answer::json(
        200,
        &Entropy {
            randomStr: hex::encode(random.as_slice()),
            minentropy: bits,
        },
    )
}
