//! Golden tests: the example bodies of ETSI GS QKD 014 V1.1.1 clause 6 parse into the data
//! model and serialize back to equivalent JSON.

use std::path::PathBuf;

use qkd::model::{Error, Key, KeyContainer, KeyIdEntry, KeyIds, KeyMaterial, KeyRequest, Status};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};
use zeroize::Zeroizing;

fn example(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/etsi014")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Parse the example into `T`, serialize it again, and compare as JSON values.
fn round_trip<T: DeserializeOwned + Serialize>(name: &str) -> T {
    let original = example(name);
    let parsed: T = serde_json::from_value(original.clone()).unwrap();
    let produced = serde_json::to_value(&parsed).unwrap();
    assert_eq!(produced, original, "{name} did not round-trip");
    parsed
}

#[test]
fn status_example_round_trips() {
    let status: Status = round_trip("status.json");
    let built = Status {
        source_KME_ID: "AAAABBBBCCCCDDDD".into(),
        target_KME_ID: "EEEEFFFFGGGGHHHH".into(),
        master_SAE_ID: "IIIIJJJJKKKKLLLL".into(),
        slave_SAE_ID: "MMMMNNNNOOOOPPPP".into(),
        key_size: 352,
        stored_key_count: 25000,
        max_key_count: 100000,
        max_key_per_request: 128,
        max_key_size: 1024,
        min_key_size: 64,
        max_SAE_ID_count: 0,
        status_extension: None,
    };
    assert_eq!(status, built);
    assert_eq!(
        serde_json::to_value(&built).unwrap(),
        example("status.json")
    );
}

#[test]
fn key_request_examples_round_trip() {
    let first: KeyRequest = round_trip("key_request_1.json");
    let built = KeyRequest {
        number: Some(3),
        size: Some(1024),
        ..KeyRequest::default()
    };
    assert_eq!(first, built);
    assert_eq!(
        serde_json::to_value(&built).unwrap(),
        example("key_request_1.json")
    );

    let second: KeyRequest = round_trip("key_request_2.json");
    assert_eq!(
        second.additional_slave_SAE_IDs.as_deref(),
        Some(&["ABCDEFG".to_string(), "HIJKLMN".to_string()][..])
    );

    let third: KeyRequest = round_trip("key_request_3.json");
    let mandatory = third.extension_mandatory.unwrap();
    assert_eq!(mandatory.len(), 2);
    assert_eq!(mandatory[0]["abc_route_type"], json!("direct"));
    assert_eq!(
        third.extension_optional.unwrap()[0]["abc_max_age"],
        json!(30000)
    );
}

#[test]
fn empty_key_request_is_all_defaults() {
    let request: KeyRequest = serde_json::from_str("{}").unwrap();
    assert_eq!(request, KeyRequest::default());
    assert_eq!(serde_json::to_string(&request).unwrap(), "{}");
}

#[test]
fn key_container_example_round_trips_and_decodes_keys() {
    let container: KeyContainer = round_trip("key_container.json");
    assert_eq!(container.keys.len(), 4);
    assert_eq!(
        container.keys[0].key_ID,
        "bc490419-7d60-487f-adc1-4ddcc177c139"
    );
    for key in &container.keys {
        assert_eq!(key.key.len(), 32, "256-bit keys in the example");
    }
    assert_eq!(&container.keys[0].key.as_bytes()[..3], &[0xc0, 0x71, 0xd5]);

    let built = KeyContainer {
        keys: vec![Key {
            key_ID: "550e8400-e29b-41d4-a716-446655440000".into(),
            key_ID_extension: None,
            key: KeyMaterial(Zeroizing::new(container.keys[3].key.as_bytes().to_vec())),
            key_extension: None,
        }],
        key_container_extension: None,
    };
    assert_eq!(
        serde_json::to_value(&built).unwrap(),
        json!({"keys": [example("key_container.json")["keys"][3].clone()]})
    );
}

#[test]
fn key_ids_example_round_trips() {
    let ids: KeyIds = round_trip("key_ids.json");
    let built = KeyIds::from_ids(&[
        "bc490419-7d60-487f-adc1-4ddcc177c139",
        "0a782fb5-3434-48fe-aa4d-14f41d46cf92",
        "64a7e9a2-269c-4b2c-832c-5351f3ac5adb",
        "550e8400-e29b-41d4-a716-446655440000",
    ]);
    assert_eq!(ids, built);
    assert_eq!(
        serde_json::to_value(&built).unwrap(),
        example("key_ids.json")
    );
}

#[test]
fn error_examples_round_trip() {
    let plain: Error = round_trip("error_1.json");
    assert_eq!(plain, Error::message("key data access error"));
    let detailed: Error = round_trip("error_2.json");
    assert_eq!(
        detailed.message,
        "not all extension_mandatory parameters are supported"
    );
    assert_eq!(
        detailed.details.unwrap()[0]["extension_mandatory_unsupported"],
        json!("abc_route_type is not supported")
    );
}

#[test]
fn unknown_fields_are_tolerated() {
    // Some KMEs put master_SAE_ID into key_IDs entries and add their own top-level fields.
    let ids: KeyIds = serde_json::from_value(json!({
        "key_IDs": [{"key_ID": "x", "master_SAE_ID": "SAE_A"}],
        "vendor_thing": 1
    }))
    .unwrap();
    assert_eq!(
        ids.key_IDs,
        vec![KeyIdEntry {
            key_ID: "x".into(),
            key_ID_extension: None
        }]
    );
    let container: KeyContainer = serde_json::from_value(json!({
        "keys": [{"key_ID": "y", "key": "AAEC", "vendor": true}],
        "extra": []
    }))
    .unwrap();
    assert_eq!(container.keys[0].key.as_bytes(), &[0, 1, 2]);
}

#[test]
fn debug_never_shows_key_bytes() {
    let container: KeyContainer = serde_json::from_value(example("key_container.json")).unwrap();
    let debug = format!("{container:?}");
    assert!(!debug.contains("wHHVxRwDJs3"), "{debug}");
    assert!(!debug.contains("192"), "first key byte in decimal: {debug}");
    assert!(debug.contains("redacted"), "{debug}");
}

#[test]
fn bad_base64_is_rejected_without_echoing_the_key() {
    let err = serde_json::from_value::<KeyContainer>(json!({
        "keys": [{"key_ID": "z", "key": "not*base64*SECRETSTUFF"}]
    }))
    .unwrap_err()
    .to_string();
    assert!(!err.contains("SECRETSTUFF"), "{err}");
}
