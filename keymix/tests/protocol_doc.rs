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
