//! The ETSI GS QKD 014 JSON models on arbitrary bytes. Bodies come from the network (a buggy
//! KME, or SAE requests to the simulator), so decoding must never panic, and whatever
//! decodes must encode and decode back to the same value, or the client and the simulator
//! could read one body two ways.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qkd::model::{Error, KeyContainer, KeyIds, KeyRequest, Status};
use serde::de::DeserializeOwned;
use serde::Serialize;

fn roundtrip<T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug>(data: &[u8]) {
    if let Ok(v) = serde_json::from_slice::<T>(data) {
        let encoded = serde_json::to_vec(&v).expect("a decoded model encodes");
        let again: T = serde_json::from_slice(&encoded).expect("an encoded model decodes");
        assert_eq!(again, v);
    }
}

fuzz_target!(|data: &[u8]| {
    // Every body shape the client or the simulator parses.
    roundtrip::<Status>(data);
    roundtrip::<KeyRequest>(data);
    roundtrip::<KeyContainer>(data);
    roundtrip::<KeyIds>(data);
    roundtrip::<Error>(data);
});
