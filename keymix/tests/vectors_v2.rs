//! Known-answer vectors of protocol version 2 (docs/PROTOCOL.md, "Version 2: wire
//! privacy"): fixed static keys, seeded randomness, a fixed clock and seeded QKD keys give
//! fixed messages, hiding values and PSKs. The files under tests/vectors_v2/ pin them, and
//! every_v2_vector_recomputes_from_its_inputs recomputes each line of them from its inputs
//! by an independent reading of docs/PROTOCOL.md (vectors_v2/spec.rs, vectors_v2/verify.rs,
//! the message tables by vectors_v2/layout.rs).
//!
//! Regenerate (only after an intended, documented change of protocol):
//!     TRIDENT_REGENERATE_VECTORS=1 cargo test -p keymix --test vectors_v2

// Shared with the version-1 vectors, which use all of it.
#[allow(dead_code)]
#[path = "vectors/gen.rs"]
mod gen;
#[path = "vectors_v2/render.rs"]
mod render;
#[allow(dead_code)]
#[path = "vectors/spec.rs"]
mod spec;
// An independent reading of PROTOCOL.md, version 2 (none of keymix's schedule or hiding
// code), and the check of every vector file with it.
#[path = "vectors_v2/layout.rs"]
mod layout;
#[path = "vectors_v2/spec.rs"]
mod spec_v2;
#[path = "vectors/values.rs"]
mod values;
#[path = "vectors_v2/verify.rs"]
mod verify;

#[path = "vectors/pinned.rs"]
mod pinned;

use std::path::PathBuf;

use keymix::{QkdPolicy, Version};

fn check(name: &str, rendered: String) {
    pinned::check("tests/vectors_v2", name, rendered);
}

fn v2(title: &'static str, seed: u8) -> gen::Scenario {
    gen::Scenario {
        version: Version::V2,
        ..gen::Scenario::new(title, seed)
    }
}

/// A bootstrap with a bootstrap PSK (a boot pseudonym, the DH and the PSK's C_0 hide the
/// Init), then epochs 2 and 3 keyed with the chain (chain pseudonyms), QKD required.
#[test]
fn psk_bootstrap_then_chain_with_qkd_matches_the_vector() {
    let sc = gen::Scenario {
        pins: &[
            "Version 2. Exchange 1: a bootstrap with a bootstrap PSK (boot pseudonym, DH path",
            "keyed with the PSK's C_0). Exchanges 2 and 3: keyed with the chain (chain",
            "pseudonyms, K_init from PRK_hide). QKD required: one key ID per Init.",
        ],
        qkd_a: QkdPolicy::Required,
        qkd_b: QkdPolicy::Required,
        bootstrap_psk: Some([0x5b; 32]),
        ..v2("version 2: PSK bootstrap, then epochs 2 and 3 with QKD", 21)
    };
    check("v2_psk_bootstrap_chain_qkd.txt", render::render(sc, 3));
}

/// A bootstrap without a bootstrap PSK (random pseudonym bytes: the responder takes the
/// DH path with the public C_0), then epoch 2 keyed with the chain; no QKD.
#[test]
fn static_only_bootstrap_then_chain_matches_the_vector() {
    let sc = gen::Scenario {
        pins: &[
            "Version 2. Exchange 1: a bootstrap without a bootstrap PSK (16 random bytes in",
            "place of a pseudonym; the DH path with the public C_0). Exchange 2: keyed with",
            "the chain. No QKD.",
        ],
        ..v2(
            "version 2: static-key bootstrap (DH path), then epoch 2",
            22,
        )
    };
    check("v2_dh_bootstrap_chain.txt", render::render(sc, 2));
}

#[test]
fn rendering_is_deterministic() {
    let sc = v2("determinism", 23);
    assert_eq!(render::render(sc.clone(), 2), render::render(sc, 2));
}

/// Every version-2 vector file recomputed from its inputs by an independent reading of
/// docs/PROTOCOL.md (vectors_v2/spec.rs, vectors_v2/verify.rs), its messages checked
/// against the document's tables (vectors_v2/layout.rs); the files named here show the
/// case their name promises.
#[test]
fn every_v2_vector_recomputes_from_its_inputs() {
    use verify::Kind::{BootDh, BootPsk, Chain};
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors_v2");
    let mut summaries = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "txt") {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            let summary = verify::verify(&mut verify::Vector::parse(&name, &text));
            for (ty, len, fields) in &summary.layouts {
                layout::check(*ty, *len, fields);
            }
            summaries.insert(name, summary);
        }
    }
    layout::check_prose();
    layout::check_label_lengths();
    layout::check_label_prefixes();
    assert_eq!(summaries.len(), 2, "the version-2 vector files");
    let psk = &summaries["v2_psk_bootstrap_chain_qkd.txt"];
    assert_eq!(psk.epochs, [1, 2, 3]);
    assert_eq!(psk.kinds, [BootPsk, Chain, Chain]);
    assert_eq!(psk.with_qkd, 3);
    let dh = &summaries["v2_dh_bootstrap_chain.txt"];
    assert_eq!(dh.epochs, [1, 2]);
    assert_eq!(dh.kinds, [BootDh, Chain]);
    assert_eq!(dh.with_qkd, 0);
}
