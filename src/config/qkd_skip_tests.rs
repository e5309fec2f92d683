//! `[qkd] protocol = "skip"`: what loads, and the one-line errors naming key and line.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::config::load;

const KEY: &str = "YE1pzMgAo3J5DClDVMaZv0l7hLjxjpnG2aHDBCeVjXc=";
const PEER: &str = "ISVz4o732eUIYv8xk2Kao9J8Jj25aHR3T4H6aLt5h34=";

fn dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("trident-skipcfg-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    dir
}

fn write(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("{e}"));
    path
}

/// A config with a SKIP table in PSK mode; `qkd` and `peer` lines are appended to the
/// `[qkd]` table and the peer.
fn config(dir: &Path, qkd: &str, peer: &str) -> PathBuf {
    write(dir, "a.key", KEY, 0o600);
    write(dir, "psk-id", "gw-a\n", 0o600);
    write(dir, "psk", &format!("{}\n", "ab".repeat(32)), 0o600);
    let text = format!(
        "[interface]\nname = \"trA\"\nprivate_key_file = \"a.key\"\nlisten_port = 51820\n\n\
         [keymix]\nqkd = \"required\"\n\n\
         [qkd]\nprotocol = \"skip\"\nkp_url = \"https://127.0.0.1:8643\"\nlocal_system_id = \"KP_A\"\n\
         tls = \"psk\"\npsk_identity_file = \"psk-id\"\npsk_file = \"psk\"\n{qkd}\n\
         [[peer]]\npublic_key = \"{PEER}\"\n{peer}\n"
    );
    write(dir, "a.toml", &text, 0o600)
}

fn error(path: &Path) -> String {
    load(path).err().map(|e| e.to_string()).unwrap_or_default()
}

#[test]
fn a_skip_table_in_psk_mode_loads() {
    let d = dir("psk");
    let loaded = load(&config(
        &d,
        "tls_version = \"1.2\"",
        "remote_system_id = \"KP_B\"",
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let s = &loaded.settings;
    assert_eq!(s.qkd_source.as_ref().map(|q| q.protocol()), Some("skip"));
    assert_eq!(s.local_sae_id.as_deref(), Some("KP_A"));
    assert_eq!(s.peers[0].keymix.peer_sae_id.as_deref(), Some("KP_B"));
    assert!(loaded.kp_check.is_some());
}

#[test]
fn keys_of_the_other_protocol_and_mode_are_named() {
    let d = dir("other");
    let cases = [
        (
            "sae_id = \"SAE_A\"",
            "remote_system_id = \"KP_B\"",
            "qkd.sae_id",
            16,
        ),
        (
            "ca_file = \"ca.pem\"",
            "remote_system_id = \"KP_B\"",
            "qkd.ca_file",
            16,
        ),
        (
            "tls_version = \"1.1\"",
            "remote_system_id = \"KP_B\"",
            "qkd.tls_version",
            16,
        ),
        ("", "sae_id = \"SAE_B\"", "peer.sae_id", 19),
        ("", "", "peer.remote_system_id", 18),
        ("", "remote_system_id = \" \"", "peer.remote_system_id", 19),
    ];
    for (qkd, peer, key, line) in cases {
        let e = error(&config(&d, qkd, peer));
        assert!(
            e.contains(&format!("key `{key}`")) && e.contains(&format!("line {line}")),
            "{qkd} / {peer}: {e}"
        );
    }
}

#[test]
fn psk_files_follow_the_secret_file_rules() {
    let d = dir("mode");
    let path = config(&d, "", "remote_system_id = \"KP_B\"");
    std::fs::set_permissions(d.join("psk"), std::fs::Permissions::from_mode(0o644))
        .unwrap_or_else(|e| panic!("{e}"));
    let e = error(&path);
    assert!(
        e.contains("qkd.psk_file") && e.contains("line 15") && e.contains("0600"),
        "{e}"
    );
    write(&d, "psk", "not hex\n", 0o600);
    let e = error(&path);
    assert!(e.contains("qkd.psk_file") && e.contains("hex"), "{e}");
    write(&d, "psk", "abcd\n", 0o600);
    assert!(error(&path).contains("16 to 64 bytes"));
}

#[test]
fn a_skip_key_without_protocol_skip_is_named() {
    let d = dir("etsi");
    write(&d, "a.key", KEY, 0o600);
    let text = format!(
        "[interface]\nname = \"trA\"\nprivate_key_file = \"a.key\"\nlisten_port = 51820\n\
         [qkd]\nkp_url = \"https://x:1\"\n[[peer]]\npublic_key = \"{PEER}\"\n"
    );
    let e = error(&write(&d, "a.toml", &text, 0o600));
    assert!(
        e.contains("qkd.kp_url") && e.contains("line 6") && e.contains("protocol"),
        "{e}"
    );
}
