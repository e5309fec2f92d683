//! ML-KEM-768 assurance (issue 20). RustCrypto's `ml-kem`, which keymix runs, has never been
//! independently audited, so it is checked here, byte for byte, against libcrux-ml-kem
//! (formally verified; its runtime-selected back end, AVX2 where the CPU has it, and its
//! portable one, every call) and against NIST's own answers:
//!
//! - random: seeded (d, z) and m through the very calls keymix makes (the initiator's
//!   `DecapsulationKey::from_seed` and `decapsulate`, the responder's `EncapsulationKey::new`
//!   and `encapsulate_deterministic`): the same ek, expanded dk, ciphertext and key in both
//!   libraries; a corrupted ciphertext gives both the implicit-rejection key J(z || c),
//!   computed here apart from either library, and never the real key; an ek with a
//!   coefficient not reduced mod q is refused by both (the responder's BadKey check);
//! - NIST ACVP: the ML-KEM-768 groups of the keyGen and encapDecap internalProjection files
//!   (ACVP-Server commit 65370b8) that the fips203 0.4.3 package on crates.io ships: keyGen
//!   from (d, z), encapsulation with fixed m, and decapsulation of valid and of modified
//!   ciphertexts (implicit rejection), each checked against both libraries.
//!
//! Run: `cargo test -p keymix --test mlkem_crosscheck` (MLKEM_CROSSCHECK_N=10000 for a
//! longer random run; MLKEM_CROSSCHECK_SEED picks another random stream).

use std::path::PathBuf;
use std::process::Command;

use libcrux_ml_kem::mlkem768 as lx;
use ml_kem::array::Array;
#[allow(deprecated)]
use ml_kem::ExpandedKeyEncoding;
use ml_kem::{Decapsulate, DecapsulationKey, EncapsulationKey, KeyExport, MlKem768};
use serde_json::Value;
use sha3::digest::{ExtendableOutput, Update, XofReader};

const EK_LEN: usize = 1184;
const DK_LEN: usize = 2400;
const CT_LEN: usize = 1088;
const Q: u16 = 3329;

/// FIPS 203's J(s) = SHAKE256(s, 8 * 32): K̄ = J(z || c), the key a decapsulation that
/// rejects `c` returns. Computed with the sha3 crate, which neither library uses for it.
fn j(z: &[u8], c: &[u8]) -> [u8; 32] {
    let mut h = sha3::Shake256::default();
    h.update(z);
    h.update(c);
    let mut out = [0u8; 32];
    h.finalize_xof().read(&mut out);
    out
}

/// SplitMix64: a fixed, seeded stream, so a failure names an iteration that replays.
struct Stream(u64);

impl Stream {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut x = self.0;
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^ (x >> 31)
    }

    fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            chunk.copy_from_slice(&self.next().to_le_bytes()[..chunk.len()]);
        }
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What keymix's initiator derives from a 64-byte seed d || z, and libcrux's key pair.
struct Keys {
    dk: DecapsulationKey<MlKem768>,
    ek: [u8; EK_LEN],
    lx: lx::MlKem768KeyPair,
}

/// KeyGen_internal(d, z) in both libraries, as initiator.rs calls it; ek and the expanded
/// dk must agree byte for byte.
fn keygen(seed: [u8; 64], what: &str) -> Keys {
    let dk = DecapsulationKey::<MlKem768>::from_seed(Array::from(seed));
    let mut ek = [0u8; EK_LEN];
    ek.copy_from_slice(&dk.encapsulation_key().to_bytes());
    #[allow(deprecated)]
    let dk_expanded = dk.to_expanded_bytes();
    let pair = lx::generate_key_pair(seed);
    let portable = lx::portable::generate_key_pair(seed);
    assert_eq!(
        pair.public_key().as_slice(),
        portable.public_key().as_slice(),
        "{what}: libcrux back ends' ek"
    );
    assert_eq!(
        pair.private_key().as_slice(),
        portable.private_key().as_slice(),
        "{what}: libcrux back ends' dk"
    );
    assert_eq!(&ek, pair.public_key().as_slice(), "{what}: ek differs");
    assert_eq!(
        dk_expanded.as_slice(),
        pair.private_key().as_slice(),
        "{what}: expanded dk differs"
    );
    assert_eq!(
        dk.to_seed().map(|s| s.0),
        Some(seed),
        "{what}: seed round trip"
    );
    Keys { dk, ek, lx: pair }
}

/// Encaps_internal(ek, m) in both libraries, as responder.rs calls it (the ek parsed from
/// its bytes); returns (c, K) after checking that both agree.
fn encaps(ek: &[u8; EK_LEN], m: [u8; 32], what: &str) -> ([u8; CT_LEN], [u8; 32]) {
    let ek_array = Array::from(*ek);
    let key = EncapsulationKey::<MlKem768>::new(&ek_array)
        .unwrap_or_else(|_| panic!("{what}: ml-kem refused ek"));
    let (ct, k) = key.encapsulate_deterministic(&Array::from(m));
    let lx_ek = lx::MlKem768PublicKey::from(*ek);
    assert!(
        lx::validate_public_key(&lx_ek),
        "{what}: libcrux refused ek"
    );
    let (lx_ct, lx_k) = lx::encapsulate(&lx_ek, m);
    let (p_ct, p_k) = lx::portable::encapsulate(&lx_ek, m);
    assert_eq!(
        (lx_ct.as_slice(), lx_k),
        (p_ct.as_slice(), p_k),
        "{what}: libcrux back ends' encapsulation"
    );
    assert_eq!(
        ct.as_slice(),
        lx_ct.as_slice(),
        "{what}: ciphertext differs"
    );
    assert_eq!(k.as_slice(), &lx_k[..], "{what}: shared key differs");
    let mut c = [0u8; CT_LEN];
    c.copy_from_slice(&ct);
    (c, k.0)
}

/// Decaps(dk, c) in both libraries (ml-kem's as initiator.rs calls it); returns K after
/// checking that both agree.
fn decaps(
    dk: &DecapsulationKey<MlKem768>,
    lx_dk: &lx::MlKem768PrivateKey,
    c: &[u8; CT_LEN],
    what: &str,
) -> [u8; 32] {
    let k = dk.decapsulate(&Array::from(*c));
    let lx_c = lx::MlKem768Ciphertext::from(*c);
    let lx_k = lx::decapsulate(lx_dk, &lx_c);
    let p_k = lx::portable::decapsulate(lx_dk, &lx_c);
    assert_eq!(lx_k, p_k, "{what}: libcrux back ends' decapsulation");
    assert_eq!(k.as_slice(), &lx_k[..], "{what}: decapsulated key differs");
    k.0
}

/// Sets coefficient `i` (0..768) of ek's ByteEncode12(t̂) part to `v`.
fn set_coefficient(ek: &mut [u8; EK_LEN], i: usize, v: u16) {
    let b = 3 * (i / 2);
    let [lo, hi] = v.to_le_bytes();
    if i.is_multiple_of(2) {
        ek[b] = lo;
        ek[b + 1] = (ek[b + 1] & 0xF0) | hi;
    } else {
        ek[b + 1] = (ek[b + 1] & 0x0F) | (lo << 4);
        ek[b + 2] = (v >> 4) as u8;
    }
}

#[test]
fn random_keys_agree_with_libcrux() {
    let n = env_u64("MLKEM_CROSSCHECK_N", 200);
    let mut s = Stream(env_u64("MLKEM_CROSSCHECK_SEED", 0x7472_6964_656E_7400));
    for i in 0..n {
        let what = format!("random iteration {i}");
        let mut seed = [0u8; 64];
        s.fill(&mut seed);
        let mut m = [0u8; 32];
        s.fill(&mut m);
        let keys = keygen(seed, &what);
        let (c, k) = encaps(&keys.ek, m, &what);
        let k_dec = decaps(&keys.dk, keys.lx.private_key(), &c, &what);
        assert_eq!(k_dec, k, "{what}: decapsulation lost the key");

        // One byte of c changed (any position, any nonzero xor): implicit rejection.
        let mut bad = c;
        bad[s.below(CT_LEN as u64) as usize] ^= 1 + s.below(255) as u8;
        let k_bar = decaps(&keys.dk, keys.lx.private_key(), &bad, &what);
        assert_eq!(
            k_bar,
            j(&seed[32..], &bad),
            "{what}: rejection key is not J(z || c)"
        );
        assert_ne!(k_bar, k, "{what}: a corrupted ciphertext gave the real key");
    }
}

/// FIPS 203's encapsulation key check (7.2): every coefficient of t̂ below q. The responder
/// drops an Init whose ek fails it (DropReason::BadKey); libcrux must agree.
#[test]
fn unreduced_encapsulation_key_is_refused_by_both() {
    let mut s = Stream(0x6D6F_6475_6C75_7300);
    for i in 0..40 {
        let what = format!("modulus iteration {i}");
        let mut seed = [0u8; 64];
        s.fill(&mut seed);
        let mut ek = keygen(seed, &what).ek;
        let v = Q + s.below(u64::from(4096 - Q)) as u16;
        set_coefficient(&mut ek, s.below(768) as usize, v);
        assert!(
            EncapsulationKey::<MlKem768>::new(&Array::from(ek)).is_err(),
            "{what}: ml-kem accepted a coefficient {v} >= q"
        );
        assert!(
            !lx::validate_public_key(&lx::MlKem768PublicKey::from(ek)),
            "{what}: libcrux accepted a coefficient {v} >= q"
        );
    }
}

// ---- NIST ACVP vectors -------------------------------------------------------------------

/// tests/nist_vectors/ of the fips203 0.4.3 package, a dev-dependency of keymix, found with
/// `cargo metadata` (wherever cargo unpacked or vendored it).
fn acvp_dir() -> PathBuf {
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--offline",
            "--manifest-path",
        ])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .output()
        .expect("running cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).expect("cargo metadata's JSON");
    let pkg = meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .find(|p| p["name"] == "fips203" && p["version"] == "0.4.3")
        .expect("fips203 0.4.3 (keymix's dev-dependency) in cargo metadata");
    let manifest = PathBuf::from(pkg["manifest_path"].as_str().expect("manifest_path"));
    manifest
        .parent()
        .expect("package dir")
        .join("tests/nist_vectors")
}

fn acvp_file(dir: &str) -> Value {
    let path = acvp_dir().join(dir).join("internalProjection.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let v: Value = serde_json::from_str(&text).expect("ACVP JSON");
    assert_eq!(v["algorithm"], "ML-KEM");
    assert_eq!(v["revision"], "FIPS203");
    v
}

/// The one ML-KEM-768 group of `file` with the given testType (and function, if any).
fn group<'a>(file: &'a Value, test_type: &str, function: Option<&str>) -> &'a Value {
    let mut found = file["testGroups"]
        .as_array()
        .expect("testGroups")
        .iter()
        .filter(|g| {
            g["parameterSet"] == "ML-KEM-768"
                && g["testType"] == test_type
                && function.is_none_or(|f| g["function"] == f)
        });
    let g = found.next().expect("an ML-KEM-768 group");
    assert!(found.next().is_none(), "one ML-KEM-768 {test_type} group");
    g
}

fn tests(g: &Value) -> &Vec<Value> {
    g["tests"].as_array().expect("tests")
}

fn bytes<const N: usize>(v: &Value, field: &str) -> [u8; N] {
    let s = v[field].as_str().unwrap_or_else(|| panic!("no {field}"));
    let b = hex::decode(s).unwrap_or_else(|e| panic!("{field}: {e}"));
    b.try_into()
        .unwrap_or_else(|b: Vec<u8>| panic!("{field}: {} bytes, not {N}", b.len()))
}

fn tc(t: &Value) -> u64 {
    t["tcId"].as_u64().expect("tcId")
}

/// A decapsulation key loaded from its expanded form, as ACVP gives it (keymix itself only
/// ever builds one from a seed; decapsulation is the same code either way).
fn expanded_dk(dk: &[u8; DK_LEN], what: &str) -> DecapsulationKey<MlKem768> {
    #[allow(deprecated)]
    let key = DecapsulationKey::<MlKem768>::from_expanded_bytes(&Array::from(*dk));
    key.unwrap_or_else(|_| panic!("{what}: ml-kem refused the expanded dk"))
}

/// keyGen, AFT: KeyGen_internal(d, z) gives NIST's ek and dk in both libraries.
#[test]
fn acvp_keygen() {
    let file = acvp_file("ML-KEM-keyGen-FIPS203");
    let g = group(&file, "AFT", None);
    for t in tests(g) {
        let what = format!("ACVP keyGen tcId {}", tc(t));
        let mut seed = [0u8; 64];
        seed[..32].copy_from_slice(&bytes::<32>(t, "d"));
        seed[32..].copy_from_slice(&bytes::<32>(t, "z"));
        let keys = keygen(seed, &what);
        assert_eq!(
            keys.ek,
            bytes::<EK_LEN>(t, "ek"),
            "{what}: ek is not NIST's"
        );
        assert_eq!(
            keys.lx.private_key().as_slice(),
            &bytes::<DK_LEN>(t, "dk"),
            "{what}: dk is not NIST's"
        );
    }
    assert_eq!(tests(g).len(), 25, "ML-KEM-768 keyGen tests");
}

/// encapDecap, AFT encapsulation: Encaps_internal(ek, m) gives NIST's (c, K) in both
/// libraries; the same dk decapsulates c to K, and rejects a corrupted c with J(z || c).
#[test]
fn acvp_encapsulation() {
    let file = acvp_file("ML-KEM-encapDecap-FIPS203");
    let g = group(&file, "AFT", Some("encapsulation"));
    let mut s = Stream(0x6163_7670_0000_0000);
    for t in tests(g) {
        let what = format!("ACVP encapsulation tcId {}", tc(t));
        let ek = bytes::<EK_LEN>(t, "ek");
        let (c, k) = encaps(&ek, bytes::<32>(t, "m"), &what);
        assert_eq!(c, bytes::<CT_LEN>(t, "c"), "{what}: c is not NIST's");
        assert_eq!(k, bytes::<32>(t, "k"), "{what}: K is not NIST's");

        let dk_bytes = bytes::<DK_LEN>(t, "dk");
        let dk = expanded_dk(&dk_bytes, &what);
        assert_eq!(
            dk.encapsulation_key().to_bytes().as_slice(),
            &ek[..],
            "{what}: dk's ek"
        );
        let lx_dk = lx::MlKem768PrivateKey::from(dk_bytes);
        assert_eq!(decaps(&dk, &lx_dk, &c, &what), k, "{what}: decapsulation");
        let mut bad = c;
        bad[s.below(CT_LEN as u64) as usize] ^= 1 + s.below(255) as u8;
        let k_bar = decaps(&dk, &lx_dk, &bad, &what);
        assert_eq!(
            k_bar,
            j(&dk_bytes[DK_LEN - 32..], &bad),
            "{what}: K̄ is not J(z || c)"
        );
        assert_ne!(k_bar, k, "{what}: a corrupted ciphertext gave the real key");
    }
    assert_eq!(tests(g).len(), 25, "ML-KEM-768 encapsulation tests");
}

/// encapDecap, VAL decapsulation: one dk, ten ciphertexts, five of them modified by NIST;
/// both libraries give NIST's K, which for a modified ciphertext is J(z || c).
#[test]
fn acvp_decapsulation_and_implicit_rejection() {
    let file = acvp_file("ML-KEM-encapDecap-FIPS203");
    let g = group(&file, "VAL", Some("decapsulation"));
    let dk_bytes = bytes::<DK_LEN>(g, "dk");
    let dk = expanded_dk(&dk_bytes, "ACVP decapsulation group");
    let ek = bytes::<EK_LEN>(g, "ek");
    assert_eq!(
        dk.encapsulation_key().to_bytes().as_slice(),
        &ek[..],
        "group dk's ek"
    );
    let lx_dk = lx::MlKem768PrivateKey::from(dk_bytes);
    let z = &dk_bytes[DK_LEN - 32..];
    let (mut valid, mut modified) = (0, 0);
    for t in tests(g) {
        let what = format!("ACVP decapsulation tcId {}", tc(t));
        let c = bytes::<CT_LEN>(t, "c");
        let k = bytes::<32>(t, "k");
        assert_eq!(decaps(&dk, &lx_dk, &c, &what), k, "{what}: K is not NIST's");
        match t["reason"].as_str() {
            Some("no modification") => {
                valid += 1;
                assert_ne!(k, j(z, &c), "{what}: a valid ciphertext was rejected");
            }
            Some("modify ciphertext") => {
                modified += 1;
                assert_eq!(k, j(z, &c), "{what}: NIST's K̄ is not J(z || c)");
            }
            other => panic!("{what}: unknown reason {other:?}"),
        }
    }
    assert_eq!((valid, modified), (5, 5), "ML-KEM-768 decapsulation tests");
}
