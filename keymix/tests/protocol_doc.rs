//! docs/PROTOCOL.md is the byte-level truth: check that what it states about labels,
//! message types and sizes is what the code does.

use keymix::labels;
use keymix::message::*;

fn doc() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/PROTOCOL.md");
    std::fs::read_to_string(path).expect("docs/PROTOCOL.md")
}

#[test]
fn every_label_is_documented_verbatim() {
    let doc = doc();
    for l in labels::ALL {
        let s = std::str::from_utf8(l).unwrap();
        assert!(
            doc.contains(&format!("`{s}`")),
            "label {s:?} missing from PROTOCOL.md"
        );
    }
}

#[test]
fn message_types_and_sizes_match() {
    let doc = doc();
    let min_init = INIT_FIXED_LEN + 3 * 16;
    for needle in [
        format!("### Init (0x{TYPE_INIT:02x}), initiator to responder, {min_init}-{INIT_MAX_LEN} bytes"),
        format!("### Resp (0x{TYPE_RESP:02x}), responder to initiator, {RESP_LEN} bytes"),
        format!("### Confirm (0x{TYPE_CONFIRM:02x}), initiator to responder, {CONFIRM_LEN} bytes"),
        format!("### Cookie reply (0x{TYPE_COOKIE:02x}), responder under load to initiator, {COOKIE_REPLY_LEN} bytes"),
        format!("| {} | 16 | confirm_r = MAC(K_conf_r2i, T) |", RESP_LEN - 48),
        format!("| {} | 16 | auth = MAC(K_auth_r2i, all bytes before auth) |", Resp::AUTH_OFFSET),
        format!("| {} | 16 | mac1 = MAC(mac1_key(S_i), all bytes before mac1) |", Resp::MAC1_OFFSET),
        format!("| 88 | {MLKEM_EK_LEN} | ek, a fresh ML-KEM-768 encapsulation key |"),
        format!("| 52 | {MLKEM_CT_LEN} | ct, the ML-KEM-768 ciphertext to ek |"),
        format!("| {} | 1 | key-ID count k (0..{MAX_KEY_IDS}; non-zero iff the QKD bit is set) |", INIT_FIXED_LEN - 1),
    ] {
        assert!(doc.contains(&needle), "PROTOCOL.md lacks: {needle}");
    }
}

/// The rows `| a | b | c |` of the first table after `heading`.
fn table(doc: &str, heading: &str) -> Vec<Vec<String>> {
    let start = doc.find(heading).unwrap_or_else(|| panic!("no {heading}"));
    doc[start..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_string())
                .collect()
        })
        .collect()
}

#[test]
fn label_prefixes_and_roles_are_as_documented() {
    let doc = doc();
    let rows = table(&doc, "## Labels");
    let value = |row: &Vec<String>| row[1].trim_matches('`').as_bytes().to_vec();
    assert_eq!(rows.len(), labels::ALL.len());
    for row in &rows {
        assert!(
            labels::ALL.contains(&&value(row)[..]),
            "{} is not a label",
            row[0]
        );
    }
    // Exactly these are prefixes of each other; the doc explains why each pair never meets.
    let mut pairs = Vec::new();
    for a in &rows {
        for b in &rows {
            if a[0] != b[0] && value(b).starts_with(&value(a)) {
                pairs.push(format!("{} < {}", a[0], b[0]));
            }
        }
    }
    pairs.sort();
    assert_eq!(
        pairs,
        [
            "AUTH < AUTH_I2R",
            "AUTH < AUTH_R2I",
            "CHAIN < CHAIN0",
            "PSK < PSK_FINGERPRINT"
        ]
    );
    assert!(doc.contains(
        "AUTH is a prefix of AUTH_I2R and AUTH_R2I, CHAIN of CHAIN0, PSK of\nPSK_FINGERPRINT"
    ));
    // The plain SHA-256 uses may have variable-length input: none may prefix another.
    let sha: Vec<Vec<u8>> = rows
        .iter()
        .filter(|r| r[2].starts_with("SHA-256 input prefix"))
        .map(value)
        .collect();
    assert_eq!(sha.len(), 4);
    for a in &sha {
        for b in &sha {
            assert!(a == b || !b.starts_with(a));
        }
    }
    // Under one PRK the Expand labels are followed by a fixed-length context.
    for (prk, context) in [("PRK_auth", "64 bytes"), ("PRK,", "T (32 bytes)")] {
        let n = rows
            .iter()
            .filter(|r| r[2].starts_with(&format!("HKDF-Expand info under {prk}")))
            .inspect(|r| assert!(r[2].ends_with(context), "{r:?}"))
            .count();
        assert!(n >= 2, "{prk}");
    }
}

#[test]
fn state_file_layout_matches_the_code() {
    use keymix::chain_state::{Tentative, ENCODED_LEN};
    let doc = doc();
    assert!(doc.contains(&format!(
        "**Layout** ({ENCODED_LEN} bytes, `chain_state::ENCODED_LEN`"
    )));
    let mut s = keymix::ChainState::empty([0x11; 32], [0x22; 32]);
    s.epoch = 0x0102_0304_0506_0708;
    s.chain = [0x33; 32];
    s.prev_chain = Some([0x44; 32]);
    s.tentative = Some(Tentative {
        epoch: 0x1112_1314_1516_1718,
        chain: [0x55; 32],
    });
    s.highest_init_ts = 0x2122_2324_2526_2728;
    s.last_init_sent_ts = 0x3132_3334_3536_3738;
    s.wireguard_initiation = [0x66; 12];
    s.static_only_reset = true;
    s.pinned_version = 2;
    s.tie_floor = 0x4142_4344_4546_4748;
    let bytes = s.to_bytes();
    assert_eq!(bytes.len(), ENCODED_LEN);
    let mut next = 0;
    for row in table(&doc, "**Layout** (") {
        let (off, size): (usize, usize) = (row[0].parse().unwrap(), row[1].parse().unwrap());
        assert_eq!(off, next, "rows must be contiguous: {row:?}");
        next = off + size;
        let field = &bytes[off..next];
        let f = row[2].as_str();
        let want: Vec<u8> = if f.starts_with("magic") {
            f.split('`').nth(1).unwrap().as_bytes().to_vec()
        } else if f.starts_with("own static") {
            vec![0x11; 32]
        } else if f.starts_with("peer static") {
            vec![0x22; 32]
        } else if f.starts_with("epoch m (u64") {
            s.epoch.to_be_bytes().to_vec()
        } else if f.starts_with("C_m ") {
            vec![0x33; 32]
        } else if f.starts_with("flags") {
            vec![7]
        } else if f.starts_with("C_{m-1}") {
            vec![0x44; 32]
        } else if f.starts_with("tentative epoch") {
            0x1112_1314_1516_1718u64.to_be_bytes().to_vec()
        } else if f.starts_with("tentative chain") {
            vec![0x55; 32]
        } else if f.starts_with("highest accepted") {
            s.highest_init_ts.to_be_bytes().to_vec()
        } else if f.starts_with("timestamp of our last") {
            s.last_init_sent_ts.to_be_bytes().to_vec()
        } else if f.starts_with("WireGuard initiation record") {
            vec![0x66; 12]
        } else if f.starts_with("pinned protocol version") {
            vec![2]
        } else if f.starts_with("tie floor") {
            s.tie_floor.to_be_bytes().to_vec()
        } else if f.starts_with(&format!("SHA-256 of bytes 0..{off}")) {
            use sha2::Digest;
            sha2::Sha256::digest(&bytes[..off]).to_vec()
        } else {
            panic!("undocumented field {f:?}");
        };
        assert_eq!(field, &want[..], "state file field {f:?}");
    }
    assert_eq!(next, ENCODED_LEN);
}

#[test]
fn bootstrap_clock_window_matches() {
    let secs = keymix::BOOTSTRAP_MAX_CLOCK_SKEW.as_secs();
    let doc = doc();
    assert!(doc.contains(&format!("within {secs} s of our wall clock")));
    assert!(doc.contains(&format!("within **{secs} s** of its wall clock")));
}

#[test]
fn the_vector_table_lists_every_vector_file() {
    let doc = doc();
    for (heading, dir) in [
        ("## Known-answer vectors", "/tests/vectors"),
        ("### Version 2 known-answer vectors", "/tests/vectors_v2"),
    ] {
        let listed: std::collections::BTreeSet<String> = table(&doc, heading)
            .iter()
            .map(|row| row[0].trim_matches('`').to_string())
            .collect();
        let dir = format!("{}{dir}", env!("CARGO_MANIFEST_DIR"));
        let files: std::collections::BTreeSet<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".txt"))
            .collect();
        assert_eq!(listed, files, "PROTOCOL.md, {heading}");
    }
}
