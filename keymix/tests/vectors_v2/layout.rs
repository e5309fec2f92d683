//! The version-2 message tables of docs/PROTOCOL.md ("Messages (version 2)") against the
//! messages vectors_v2/verify.rs rebuilt (and found equal to the vectors): the stated sizes,
//! each row's offset and size, and every "bytes 0..X" a row covers.

use super::spec_v2::*;

/// A message built field by field, remembering each field's (offset, size).
#[derive(Default)]
pub struct Built {
    pub bytes: Vec<u8>,
    pub fields: Vec<(usize, usize)>,
}

impl Built {
    pub fn push(&mut self, field: &[u8]) {
        self.fields.push((self.bytes.len(), field.len()));
        self.bytes.extend_from_slice(field);
    }
}

/// One row of a message table: offset, size, field text.
struct Row {
    offset: usize,
    size: usize,
    field: String,
}

fn doc() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/PROTOCOL.md");
    std::fs::read_to_string(path).expect("docs/PROTOCOL.md")
}

/// The version-2 section: from its heading to the next top-level heading.
fn v2_section(doc: &str) -> &str {
    let start = doc
        .find("## Version 2: wire privacy")
        .expect("the version-2 section");
    let rest = &doc[start + 3..];
    &doc[start..start + 3 + rest.find("\n## ").unwrap_or(rest.len())]
}

/// The table under `**<name> (0x<type>), N bytes**`: N and its rows.
fn table(section: &str, name: &str, ty: u8) -> (usize, Vec<Row>) {
    let head = format!("**{name} (0x{ty:02x}), ");
    let start = section
        .find(&head)
        .unwrap_or_else(|| panic!("PROTOCOL.md lacks {head}"));
    let after = &section[start + head.len()..];
    let stated = after.split(' ').next().unwrap().parse().expect("N bytes");
    let rows = after
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split(" | ").map(str::trim).collect();
            Row {
                offset: cells[0].parse().expect("offset"),
                size: cells[1].parse().expect("size"),
                field: cells[2..].join(" | "),
            }
        })
        .collect();
    (stated, rows)
}

/// Checks the document's table for message type `ty` against a rebuilt message of `len`
/// bytes with the given fields.
pub fn check(ty: u8, len: usize, fields: &[(usize, usize)]) {
    let doc = doc();
    let section = v2_section(&doc);
    let name = match ty {
        0x81 => "Init",
        0x82 => "Resp",
        0x83 => "Confirm",
        _ => unreachable!(),
    };
    let (stated, rows) = table(section, name, ty);
    assert_eq!(stated, len, "PROTOCOL.md: {name} size");
    let doc_fields: Vec<(usize, usize)> = rows.iter().map(|r| (r.offset, r.size)).collect();
    assert_eq!(doc_fields, fields, "PROTOCOL.md: {name} offsets and sizes");
    for r in &rows {
        // "bytes 0..X" in a row means every byte before that field.
        for (i, _) in r.field.match_indices("bytes 0..") {
            let x: String = r.field[i + 9..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            let x: usize = x.parse().unwrap();
            assert_eq!(
                x, r.offset,
                "PROTOCOL.md: {name} at {}: {}",
                r.offset, r.field
            );
        }
    }
}

/// The sizes the text around the tables states.
pub fn check_prose() {
    let doc = doc();
    let section = v2_section(&doc);
    for needle in [
        format!(
            "The {PLAIN_LEN}-byte plaintext: S_i (32) || epoch (u64 LE) || timestamp (u64 LE) ||"
        ),
        format!("key-ID block ({KEY_ID_BLOCK_LEN} bytes)"),
        format!("zero padded to {KEY_ID_BLOCK_LEN} bytes"),
        format!(
            "| 1240 | {} | Seal(K_init, zero nonce, plaintext, aad = bytes 0..1240) |",
            PLAIN_LEN + 16
        ),
        format!(
            "| 1132 | {} | Seal(K_resp, nonce = sender_index LE and 8 zero bytes, used mask (1 byte), aad = bytes 0..1132) |",
            1 + 16
        ),
        format!("ChaCha20-Poly1305 open of {} bytes", PLAIN_LEN + 16),
    ] {
        let needle = needle.replace("||\n", "||");
        let flat = section.replace('\n', " ");
        assert!(
            flat.contains(needle.trim_end()),
            "PROTOCOL.md lacks: {needle}"
        );
    }
    assert_eq!(32 + 8 + 8 + 1 + KEY_ID_BLOCK_LEN, PLAIN_LEN);
    assert_eq!(
        1 + 2 + 72,
        KEY_ID_BLOCK_LEN,
        "k, two lengths, 72 bytes of key IDs"
    );
}

/// The lengths "Labels (version 2)" gives for the Expand infos under PRK_hide and K_init.
pub fn check_label_lengths() {
    let doc = doc();
    let flat = v2_section(&doc).replace('\n', " ");
    let (p, b) = (PSEUDONYM.len(), BOOT_PSEUDONYM.len());
    for needle in [
        format!("PSEUDONYM || S_i || j ({p} + 33 = {} bytes)", p + 33),
        format!(
            "BOOT_PSEUDONYM || S_i || minute || j ({b} + 41 = {})",
            b + 41
        ),
        format!("MAC1_CHAIN ({})", MAC1_CHAIN.len()),
        format!(
            "INIT_HIDE || E_i ({} + 32 = {})",
            INIT_HIDE.len(),
            INIT_HIDE.len() + 32
        ),
        format!(
            "RESP_HIDE ({}) and MAC1_EXCHANGE ({})",
            RESP_HIDE.len(),
            MAC1_EXCHANGE.len()
        ),
    ] {
        assert!(flat.contains(&needle), "PROTOCOL.md lacks: {needle}");
    }
    // The labels as spec_v2 spells them are the document's: the new ones verbatim in the
    // version-2 table, the others version 1's with `v1` replaced by `v2`.
    for (name, value) in ALL {
        let value = std::str::from_utf8(value).unwrap();
        let v1 = value.replace(" v2 ", " v1 ");
        let found = flat.contains(&format!("| {name} | `{value}` |"))
            || doc.contains(&format!("| {name} | `{v1}` |"));
        assert!(found, "PROTOCOL.md does not define {name} as {value:?}");
    }
    // HIDE, AUTH and BOOT_HIDE differ at byte 18 (from 0): h, a, b.
    assert_eq!([HIDE[18], AUTH[18], BOOT_HIDE[18]], *b"hab");
}

/// The labels that are prefixes of others are exactly the pairs the document names.
pub fn check_label_prefixes() {
    let mut pairs = Vec::new();
    for (a, va) in ALL {
        for (b, vb) in ALL {
            if a != b && vb.starts_with(va) {
                pairs.push(format!("{a} < {b}"));
            }
        }
    }
    pairs.sort();
    let want = [
        "AUTH < AUTH_I2R",
        "AUTH < AUTH_R2I",
        "CHAIN < CHAIN0",
        "MAC1 < MAC1_CHAIN",
        "MAC1 < MAC1_EXCHANGE",
        "PSK < PSK_FINGERPRINT",
    ];
    assert_eq!(pairs, want, "version-2 label prefix pairs");
    let doc = doc();
    let flat = v2_section(&doc).replace('\n', " ");
    let needle = "MAC1 is a prefix of MAC1_CHAIN and MAC1_EXCHANGE";
    assert!(flat.contains(needle), "PROTOCOL.md lacks: {needle}");
}
