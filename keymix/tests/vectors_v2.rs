//! Known-answer vectors of protocol version 2 (docs/PROTOCOL.md, "Version 2: wire
//! privacy"): fixed static keys, seeded randomness, a fixed clock and seeded QKD keys give
//! fixed messages, hiding values and PSKs. The files under tests/vectors_v2/ pin them.
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

use std::path::PathBuf;

use keymix::{QkdPolicy, Version};

fn check(name: &str, rendered: String) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors_v2")
        .join(name);
    if std::env::var_os("TRIDENT_REGENERATE_VECTORS").is_some() {
        std::fs::write(&path, &rendered).unwrap();
        return;
    }
    let stored = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; regenerate, see module docs", path.display()));
    for (want, got) in stored.lines().zip(rendered.lines()) {
        assert_eq!(want, got, "{name} differs from the pinned vector");
    }
    assert_eq!(stored, rendered);
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
