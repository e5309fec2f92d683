//! The ETSI GS QKD 014 methods as the simulated KME answers them, independent of HTTP
//! plumbing: a routed request in, a status code and an optional JSON body out.

use serde::Serialize;
use serde_json::{json, Map, Value};
use zeroize::Zeroizing;

use super::issue::issue;
use super::keyid::canonical;
use super::state::KmeState;
use super::store::TakeError;
use crate::model::{self, Key, KeyContainer, KeyIds, KeyMaterial, KeyRequest, Status};
use crate::url::decode;

// The spec's 400 messages, word for word (clients may match on them).
pub const MSG_SIZE_NOT_MULTIPLE_OF_8: &str = "size shall be a multiple of 8";
pub const MSG_EXTENSION_MANDATORY_UNSUPPORTED: &str =
    "not all extension_mandatory parameters are supported";
pub const MSG_KEYS_NOT_FOUND: &str = "one or more keys specified are not found on KME";

/// Query strings are a few dozen characters; a long one is not a valid request.
const MAX_QUERY_LEN: usize = 2048;
/// Key IDs we issue are 36 characters; anything much longer cannot be ours.
const MAX_KEY_ID_LEN: usize = 128;

/// What to send back.
pub struct Answer {
    pub status: u16,
    /// JSON; `None` for 401, which has no body by spec. Wiped on drop (it may hold keys).
    pub body: Option<Zeroizing<Vec<u8>>>,
}

impl Answer {
    pub(super) fn json<T: Serialize>(status: u16, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => Self {
                status,
                body: Some(Zeroizing::new(body)),
            },
            Err(e) => {
                tracing::error!(error = %e, "cannot encode an answer");
                Self::error(503, "internal error: cannot encode the answer")
            }
        }
    }

    pub(super) fn error(status: u16, message: &str) -> Self {
        Self::json(status, &model::Error::message(message))
    }

    pub(super) fn bad_request(message: &str) -> Self {
        Self::error(400, message)
    }

    fn unauthorized() -> Self {
        Self {
            status: 401,
            body: None,
        }
    }
}

/// Which ETSI method a request is for, with its path parameter.
enum Route {
    Status { slave: String },
    EncKeys { slave: String },
    DecKeys { master: String },
}

/// Handle one request. `caller` is the SAE ID from the client certificate (None: the
/// certificate named nobody we could read); `body` is the already size-limited request body.
pub async fn handle(
    state: &KmeState,
    caller: Option<&str>,
    method: &str,
    path: &str,
    query: Option<&str>,
    body: &[u8],
) -> Answer {
    let route = match route(path) {
        Ok(route) => route,
        Err(answer) => return answer,
    };
    if query.is_some_and(|q| q.len() > MAX_QUERY_LEN) {
        return Answer::bad_request("query string too long");
    }
    // Only the SAE this KME serves may use it. The check comes before any parsing so that
    // strangers learn nothing about the KME from its error messages.
    if caller != Some(state.config.sae_id.as_str()) {
        tracing::info!(?caller, path, "request from an SAE this KME does not serve");
        return Answer::unauthorized();
    }
    let caller = state.config.sae_id.as_str();
    match (route, method) {
        (Route::Status { slave }, "GET") => status(state, caller, &slave),
        (Route::EncKeys { slave }, "GET") => match enc_request_from_query(query) {
            Ok(request) => enc_keys(state, caller, &slave, request).await,
            Err(answer) => answer,
        },
        (Route::EncKeys { slave }, "POST") => match parse_json::<KeyRequest>(body, "Key request") {
            Ok(request) => enc_keys(state, caller, &slave, request).await,
            Err(answer) => answer,
        },
        (Route::DecKeys { master }, "GET") => match dec_ids_from_query(query) {
            Ok(ids) => dec_keys(state, caller, &master, &ids),
            Err(answer) => answer,
        },
        (Route::DecKeys { master }, "POST") => match parse_json::<KeyIds>(body, "Key IDs") {
            Ok(ids) => {
                let ids: Vec<String> = ids.key_IDs.into_iter().map(|k| k.key_ID).collect();
                dec_keys(state, caller, &master, &ids)
            }
            Err(answer) => answer,
        },
        _ => Answer::error(405, "method not allowed"),
    }
}

fn route(path: &str) -> Result<Route, Answer> {
    let not_found = || Answer::error(404, "not found");
    let rest = path.strip_prefix("/api/v1/keys/").ok_or_else(not_found)?;
    let (id, method) = rest.split_once('/').ok_or_else(not_found)?;
    let id = decode(id)
        .filter(|id| !id.is_empty())
        .ok_or_else(not_found)?;
    match method {
        "status" => Ok(Route::Status { slave: id }),
        "enc_keys" => Ok(Route::EncKeys { slave: id }),
        "dec_keys" => Ok(Route::DecKeys { master: id }),
        _ => Err(not_found()),
    }
}

fn parse_json<T: serde::de::DeserializeOwned + Default>(
    body: &[u8],
    what: &str,
) -> Result<T, Answer> {
    // A POST without a body asks for the defaults, like a GET without parameters.
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| Answer::bad_request(&format!("{what} is not valid: {e}")))
}

/// `name=value&...`, percent-decoded, each name at most once, only names in `allowed`.
pub(super) fn query_params(
    query: Option<&str>,
    allowed: &[&str],
) -> Result<Map<String, Value>, Answer> {
    let mut params = Map::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (Some(name), Some(value)) = (decode(name), decode(value)) else {
            return Err(Answer::bad_request("malformed query string"));
        };
        if !allowed.contains(&name.as_str()) {
            return Err(Answer::bad_request(&format!(
                "unsupported query parameter {name:?}"
            )));
        }
        if params.insert(name.clone(), Value::String(value)).is_some() {
            return Err(Answer::bad_request(&format!(
                "query parameter {name:?} given twice"
            )));
        }
    }
    Ok(params)
}

pub(super) fn query_u32(params: &Map<String, Value>, name: &str) -> Result<Option<u32>, Answer> {
    match params.get(name).and_then(Value::as_str) {
        None => Ok(None),
        Some(text) => text
            .parse::<u32>()
            .map(Some)
            .map_err(|_| Answer::bad_request(&format!("{name} must be a non-negative integer"))),
    }
}

fn enc_request_from_query(query: Option<&str>) -> Result<KeyRequest, Answer> {
    let params = query_params(query, &["number", "size"])?;
    Ok(KeyRequest {
        number: query_u32(&params, "number")?,
        size: query_u32(&params, "size")?,
        ..KeyRequest::default()
    })
}

fn dec_ids_from_query(query: Option<&str>) -> Result<Vec<String>, Answer> {
    let params = query_params(query, &["key_ID"])?;
    match params.get("key_ID").and_then(Value::as_str) {
        Some(id) => Ok(vec![id.to_owned()]),
        None => Err(Answer::bad_request("key_ID is required")),
    }
}

fn check_slave(state: &KmeState, slave: &str) -> Result<(), Answer> {
    if slave == state.config.peer_sae_id {
        Ok(())
    } else {
        Err(Answer::bad_request(&format!(
            "slave_SAE_ID {slave:?} is not reachable from this KME"
        )))
    }
}

fn status(state: &KmeState, master: &str, slave: &str) -> Answer {
    if let Err(answer) = check_slave(state, slave) {
        return answer;
    }
    let c = &state.config;
    let runtime = state.runtime();
    let status = Status {
        source_KME_ID: c.kme_id.clone(),
        target_KME_ID: c.peer_kme_id.clone(),
        master_SAE_ID: master.to_owned(),
        slave_SAE_ID: slave.to_owned(),
        key_size: c.key_size,
        stored_key_count: state.stored_key_count(),
        max_key_count: c.max_key_count,
        max_key_per_request: c.max_key_per_request,
        max_key_size: c.max_key_size,
        min_key_size: c.min_key_size,
        max_SAE_ID_count: 0,
        // Vendor extension (prefix per the spec's naming rule): the simulator's link model.
        status_extension: Some(json!({
            "trident_qber": runtime.qber,
            "trident_key_rate_bps": runtime.key_rate_bps,
            "trident_effective_key_rate_bps": state.effective_rate_bps(),
            "trident_keys_waiting_for_slave": state.store().len(),
        })),
    };
    Answer::json(200, &status)
}

/// Validate a Key request against this KME's limits; `(number, size_bits)` on success.
fn check_key_request(state: &KmeState, request: &KeyRequest) -> Result<(u32, u32), Answer> {
    let c = &state.config;
    if let Some(extensions) = request
        .extension_mandatory
        .as_ref()
        .filter(|e| !e.is_empty())
    {
        // This KME implements no extension, so every mandatory one is unsupported.
        let details = extensions
            .iter()
            .flat_map(|object| object.keys())
            .map(|name| {
                let mut detail = Map::new();
                detail.insert(
                    "extension_mandatory_unsupported".into(),
                    Value::String(format!("{name} is not supported")),
                );
                detail
            })
            .collect();
        return Err(Answer::json(
            400,
            &model::Error {
                message: MSG_EXTENSION_MANDATORY_UNSUPPORTED.into(),
                details: Some(details),
            },
        ));
    }
    if request
        .additional_slave_SAE_IDs
        .as_ref()
        .is_some_and(|ids| !ids.is_empty())
    {
        return Err(Answer::bad_request(
            "additional_slave_SAE_IDs are not supported (max_SAE_ID_count is 0)",
        ));
    }
    let number = request.number.unwrap_or(1);
    let size = request.size.unwrap_or(c.key_size);
    if !size.is_multiple_of(8) {
        return Err(Answer::bad_request(MSG_SIZE_NOT_MULTIPLE_OF_8));
    }
    if size < c.min_key_size || size > c.max_key_size {
        return Err(Answer::bad_request(&format!(
            "size must be between min_key_size {} and max_key_size {}",
            c.min_key_size, c.max_key_size
        )));
    }
    if number == 0 || number > c.max_key_per_request {
        return Err(Answer::bad_request(&format!(
            "number must be between 1 and max_key_per_request {}",
            c.max_key_per_request
        )));
    }
    Ok((number, size))
}

async fn enc_keys(state: &KmeState, master: &str, slave: &str, request: KeyRequest) -> Answer {
    if let Err(answer) = check_slave(state, slave) {
        return answer;
    }
    let (number, size) = match check_key_request(state, &request) {
        Ok(checked) => checked,
        Err(answer) => return answer,
    };
    let keys = match issue(state, master, slave, number, size).await {
        Ok(keys) => keys,
        Err(answer) => return answer,
    };
    tracing::info!(
        master,
        slave,
        number,
        size,
        "keys delivered to the master SAE"
    );
    let container = KeyContainer {
        keys: keys
            .into_iter()
            .map(|k| Key {
                key_ID: k.key_ID,
                key_ID_extension: None,
                key: k.key,
                key_extension: None,
            })
            .collect(),
        key_container_extension: None,
    };
    Answer::json(200, &container)
}

fn dec_keys(state: &KmeState, slave: &str, master: &str, ids: &[String]) -> Answer {
    let max = state.config.max_key_per_request as usize;
    if ids.is_empty() || ids.len() > max {
        return Answer::bad_request(&format!("between 1 and {max} key_IDs are required"));
    }
    if ids.iter().any(|id| id.len() > MAX_KEY_ID_LEN) {
        return Answer::bad_request(MSG_KEYS_NOT_FOUND);
    }
    // Either ID form names the key (see keyid::canonical); the answer echoes the IDs as
    // asked, since the client matches keys to its own IDs.
    let canonical: Vec<String> = ids.iter().map(|id| canonical(id)).collect();
    let taken = state
        .store()
        .take(slave, master, &canonical, std::time::Instant::now());
    match taken {
        Ok(keys) => {
            let keys = ids
                .iter()
                .cloned()
                .zip(keys.into_iter().map(|(_, key)| key));
            tracing::info!(
                master,
                slave,
                number = keys.len(),
                "keys delivered to the slave SAE"
            );
            let container = KeyContainer {
                keys: keys
                    .into_iter()
                    .map(|(id, key)| Key {
                        key_ID: id,
                        key_ID_extension: None,
                        key: KeyMaterial(key),
                        key_extension: None,
                    })
                    .collect(),
                key_container_extension: None,
            };
            Answer::json(200, &container)
        }
        Err(TakeError::NotFound) => Answer::bad_request(MSG_KEYS_NOT_FOUND),
        Err(TakeError::NotAuthorized) => {
            tracing::warn!(master, slave, "dec_keys for keys designated to another SAE");
            Answer::unauthorized()
        }
    }
}
