//! The SKIP JSON models and the capabilities' glob patterns on arbitrary bytes. Bodies come
//! from a Key Provider, so decoding and the checks must never panic, and whatever decodes
//! must encode and decode back to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qkd::skip::model::{Capabilities, Entropy, KeyAnswer};
use serde::de::DeserializeOwned;
use serde::Serialize;

fn roundtrip<T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug>(
    data: &[u8],
) -> Option<T> {
    let v = serde_json::from_slice::<T>(data).ok()?;
    let encoded = serde_json::to_vec(&v).expect("a decoded model encodes");
    let again: T = serde_json::from_slice(&encoded).expect("an encoded model decodes");
    assert_eq!(again, v);
    Some(v)
}

fuzz_target!(|data: &[u8]| {
    if let Some(caps) = roundtrip::<Capabilities>(data) {
        if caps.check().is_ok() {
            let _ = caps.lists_remote(&caps.localSystemID);
        }
    }
    if let Some(key) = roundtrip::<KeyAnswer>(data) {
        let _ = qkd::skip::model::is_key_id(&key.keyId);
    }
    let _ = roundtrip::<Entropy>(data);
    // Pattern and text from the two halves of the input, bounded as the client bounds them.
    if let Ok(text) = std::str::from_utf8(data) {
        let (p, t) = text.split_at(
            text.char_indices()
                .nth(text.chars().count() / 2)
                .map_or(0, |(i, _)| i),
        );
        let _ = qkd::skip::glob_matches(p, t);
    }
});
