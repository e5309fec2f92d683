//! Checks of KME answers and the key-log entry of an epoch: the key material that enters
//! an exchange and what the opt-in RNDL audit may see of it.

use zeroize::Zeroizing;

use crate::keylog::KeyLogEntry;
use crate::message::Init;
use crate::qkd::{QkdError, QkdKey};
use crate::schedule::{self, EpochSecrets, SourceSecrets};
use crate::Version;

/// Shortest QKD key material accepted from a KME.
const QKD_MIN_BYTES: usize = 16;

/// Checks a KME answer: the right IDs (when we asked for given IDs), enough key material.
/// Returns the IDs and the concatenated key.
pub(super) fn check_keys(
    keys: Vec<QkdKey>,
    expected_ids: Option<&[String]>,
) -> Result<(Vec<String>, Zeroizing<Vec<u8>>), QkdError> {
    let ids: Vec<String> = keys.iter().map(|k| k.key_id.clone()).collect();
    if let Some(expected) = expected_ids {
        if ids != expected {
            return Err(QkdError::Malformed(
                "KME returned other keys than the IDs asked for".into(),
            ));
        }
    }
    if !Init::key_ids_fit(&ids) || ids.is_empty() {
        return Err(QkdError::Malformed(
            "KME key IDs do not fit a keymix message (at most 2, 64 bytes each)".into(),
        ));
    }
    let mut key = Zeroizing::new(Vec::new());
    for k in &keys {
        key.extend_from_slice(&k.key);
    }
    if key.len() < QKD_MIN_BYTES {
        return Err(QkdError::Malformed(format!(
            "KME delivered {} bytes of key, need at least {QKD_MIN_BYTES}",
            key.len()
        )));
    }
    Ok((ids, key))
}

/// `ids` = (S_i, S_r, the Init's sender_index): what ties the entry to a captured exchange;
/// `k_init` (version 2) opens the exchange's hidden fields.
pub(super) fn keylog_entry(
    version: Version,
    epoch: u64,
    ids: ([u8; 32], [u8; 32], u32),
    secrets: &SourceSecrets,
    derived: &EpochSecrets,
    k_init: Option<[u8; 32]>,
) -> Box<KeyLogEntry> {
    let mut ss_x = [0u8; 32];
    let mut ss_k = [0u8; 32];
    if let (Some(x), Some(k)) = (secrets.ss_x.get(..32), secrets.ss_k.get(..32)) {
        ss_x.copy_from_slice(x);
        ss_k.copy_from_slice(k);
    }
    Box::new(KeyLogEntry {
        version: version.byte(),
        epoch,
        s_init: ids.0,
        s_resp: ids.1,
        init_index: ids.2,
        ss_x,
        ss_k,
        k_q: secrets.k_q.clone(),
        psk_fingerprint: schedule::psk_fingerprint_with(version.labels(), &derived.psk),
        k_init,
    })
}
