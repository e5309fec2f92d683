//! Config loading: defaults, one-line errors with file, line and key.

use super::*;
use crate::keys::decode_key;
use keymix::{PublicKey, QkdPolicy, StaticSecret};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    // Key files as an operator should keep them (validate warns about world-readable ones).
    let private = std::os::unix::fs::PermissionsExt::from_mode(0o600);
    std::fs::set_permissions(&path, private).unwrap_or_else(|e| panic!("{e}"));
    path
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("trident-config-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    dir
}

const KEY: &str = "YE1pzMgAo3J5DClDVMaZv0l7hLjxjpnG2aHDBCeVjXc=";
const PEER: &str = "ISVz4o732eUIYv8xk2Kao9J8Jj25aHR3T4H6aLt5h34=";

fn good(dir: &Path) -> String {
    let key = write(dir, "a.key", KEY);
    format!(
        "[interface]\nname = \"trA\"\nprivate_key_file = \"{}\"\nlisten_port = 51820\naddress = [\"10.99.0.1/24\"]\n\n[[peer]]\npublic_key = \"{PEER}\"\nendpoint = \"203.0.113.2:51820\"\nallowed_ips = [\"10.99.0.2/32\", \"192.168.20.0/24\"]\npersistent_keepalive = 25\n",
        key.display()
    )
}

#[test]
fn good_config_has_defaults() {
    let dir = temp_dir("good");
    let path = write(&dir, "a.toml", &good(&dir));
    let settings = load(&path).unwrap_or_else(|e| panic!("{e}")).settings;
    assert_eq!(settings.mtu, DEFAULT_MTU);
    assert_eq!(settings.peers.len(), 1);
    let peer = &settings.peers[0];
    assert_eq!(peer.keymix.epoch, Duration::from_secs(120));
    assert_eq!(peer.keymix.reject_after, Duration::from_secs(180));
    assert_eq!(peer.allowed_ips.len(), 2);
    assert_eq!(peer.persistent_keepalive, Some(25));
}

#[test]
fn unknown_key_names_key_and_line() {
    let dir = temp_dir("unknown");
    let text = good(&dir).replace("listen_port = 51820\n", "listen_port = 51820\ncolour = 1\n");
    let path = write(&dir, "a.toml", &text);
    let e = load(&path).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        e.contains("line 5") && e.contains("interface.colour"),
        "{e}"
    );
}

#[test]
fn bad_value_names_key_and_line() {
    let dir = temp_dir("bad");
    let text = good(&dir).replace("192.168.20.0/24", "192.168.20.0/40");
    let path = write(&dir, "a.toml", &text);
    let e = load(&path).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        e.contains("line 10") && e.contains("peer.allowed_ips"),
        "{e}"
    );
}

#[test]
fn qkd_policy_without_qkd_table_is_an_error() {
    let dir = temp_dir("qkd-missing");
    let text = good(&dir).replace("[[peer]]", "[keymix]\nqkd = \"required\"\n\n[[peer]]");
    let path = write(&dir, "a.toml", &text);
    let e = load(&path).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        e.contains("keymix.qkd") && e.contains("[qkd]") && e.contains("line 8"),
        "{e}"
    );
}

/// A `[qkd]` table with the files `kme-sim init` writes, referenced relative to the
/// config's directory.
fn with_qkd(dir: &Path, peer_sae: Option<&str>) -> String {
    let sim_dir = dir.join("kme");
    if !sim_dir.join("kme-a.toml").exists() {
        ::qkd::sim::init(
            &sim_dir,
            "SAE_A",
            "SAE_B",
            ::qkd::sim::DEFAULT_LISTEN_A,
            ::qkd::sim::DEFAULT_LISTEN_B,
            ::qkd::sim::DEFAULT_LINK_A,
            ::qkd::sim::DEFAULT_LINK_B,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    }
    let peer_line = peer_sae.map_or(String::new(), |s| format!("sae_id = \"{s}\"\n"));
    format!(
        "{}{peer_line}\n[qkd]\nkme_url = \"https://127.0.0.1:8443\"\nsae_id = \"SAE_A\"\nca_file = \"kme/ca.pem\"\ncert_file = \"kme/SAE_A.pem\"\nkey_file = \"kme/SAE_A.key\"\n",
        good(dir)
    )
}

#[test]
fn qkd_table_defaults_to_preferred_with_relative_paths() {
    let dir = temp_dir("qkd-good");
    let path = write(&dir, "a.toml", &with_qkd(&dir, Some("SAE_B")));
    let settings = load(&path).unwrap_or_else(|e| panic!("{e}")).settings;
    assert!(settings.qkd_source.is_some());
    assert_eq!(settings.local_sae_id.as_deref(), Some("SAE_A"));
    let peer = &settings.peers[0];
    assert_eq!(peer.keymix.qkd, QkdPolicy::Preferred);
    assert_eq!(peer.keymix.peer_sae_id.as_deref(), Some("SAE_B"));
}

#[test]
fn qkd_peer_without_sae_id_and_bad_files_are_errors() {
    let dir = temp_dir("qkd-bad");
    let path = write(&dir, "a.toml", &with_qkd(&dir, None));
    let e = load(&path).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("peer.sae_id"), "{e}");
    let text = with_qkd(&dir, Some("SAE_B")).replace("kme/SAE_A.key", "kme/nope.key");
    let path = write(&dir, "a.toml", &text);
    let e = load(&path).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("qkd.key_file") && e.contains("nope.key"), "{e}");
}

fn load_err(dir: &Path, text: &str) -> String {
    let path = write(dir, "a.toml", text);
    load(&path).err().map(|e| e.to_string()).unwrap_or_default()
}

#[test]
fn dangerous_peer_keys_are_rejected_with_line() {
    let dir = temp_dir("lowkey");
    // Identity and a point of order 8 (both low order), and our own key.
    for low in [
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "4Ot6fDtBuK4WVuP68Z/EatoJjeucMrH9hmIFFl9JuAA=",
    ] {
        let e = load_err(&dir, &good(&dir).replace(PEER, low));
        assert!(
            e.contains("line 8") && e.contains("peer.public_key") && e.contains("low-order"),
            "{e}"
        );
    }
    let own = PublicKey::from(&StaticSecret::from(*decode_key(KEY).unwrap_or_default()));
    let own = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, own.as_bytes());
    let e = load_err(&dir, &good(&dir).replace(PEER, &own));
    assert!(
        e.contains("peer.public_key") && e.contains("own public key"),
        "{e}"
    );
}

#[test]
fn absurd_epoch_schedules_are_errors_not_panics() {
    let dir = temp_dir("epochs");
    let cases = [
        ("epoch_secs = 0\n", "keymix.epoch_secs"),
        ("epoch_secs = 86401\n", "keymix.epoch_secs"),
        (
            "reject_after_secs = 18446744073709551615\n",
            "keymix.reject_after_secs",
        ),
        ("reject_after_secs = 172801\n", "keymix.reject_after_secs"),
        (
            "epoch_secs = 60\nreject_after_secs = 60\n",
            "keymix.reject_after_secs",
        ),
    ];
    for (keymix, key) in cases {
        let text = good(&dir).replace("[[peer]]", &format!("[keymix]\n{keymix}\n[[peer]]"));
        let e = load_err(&dir, &text);
        assert!(e.contains(key) && e.contains("line"), "{keymix}: {e}");
    }
}

#[test]
fn keymix_versions_are_checked_and_reach_every_peer() {
    let dir = temp_dir("versions");
    for (keymix, key) in [
        ("min_version = 0\n", "keymix.min_version"),
        ("max_version = 3\n", "keymix.max_version"),
        ("min_version = 2\nmax_version = 1\n", "keymix.min_version"),
    ] {
        let text = good(&dir).replace("[[peer]]", &format!("[keymix]\n{keymix}\n[[peer]]"));
        let e = load_err(&dir, &text);
        assert!(e.contains(key) && e.contains("line"), "{keymix}: {e}");
    }
    let path = write(&dir, "v.toml", &good(&dir));
    let peers = load(&path).unwrap_or_else(|e| panic!("{e}")).settings.peers;
    assert!(peers
        .iter()
        .all(|p| (p.keymix.min_version, p.keymix.max_version)
            == (keymix::Version::V1, keymix::Version::V2)));
    let text = good(&dir).replace("[[peer]]", "[keymix]\nmax_version = 1\n\n[[peer]]");
    let path = write(&dir, "v1.toml", &text);
    let peers = load(&path).unwrap_or_else(|e| panic!("{e}")).settings.peers;
    assert!(peers
        .iter()
        .all(|p| p.keymix.max_version == keymix::Version::V1));
}

#[test]
fn state_dir_defaults_and_resolves_relative_to_the_config() {
    let dir = temp_dir("state");
    assert_eq!(
        default_state_dir_in(None, "trA"),
        PathBuf::from("/var/lib/trident/trA")
    );
    assert_eq!(
        default_state_dir_in(Some("/var/lib/trident-sd:/other".into()), "trA"),
        PathBuf::from("/var/lib/trident-sd/trA")
    );
    let text = good(&dir).replace(
        "listen_port = 51820\n",
        "listen_port = 51820\nstate_dir = \"st\"\n",
    );
    let path = write(&dir, "a.toml", &text);
    let settings = load(&path).unwrap_or_else(|e| panic!("{e}")).settings;
    assert_eq!(settings.state_dir, Some(dir.join("st")));
}

#[test]
fn per_peer_bootstrap_psk_and_shared_interface_psk_warning() {
    let dir = temp_dir("psk");
    write(
        &dir,
        "ab.psk",
        "dGVzdHRlc3R0ZXN0dGVzdHRlc3R0ZXN0dGVzdHRlc3Q=",
    );
    write(
        &dir,
        "shared.psk",
        "c2hhcmVkc2hhcmVkc2hhcmVkc2hhcmVkc2hhcmVkMTI=",
    );
    let second = "\n[[peer]]\npublic_key = \"bwIIS/ZKQ3TaHkh0p+Q5hAVHl3TbQWRnkZk3iejGhmQ=\"\nallowed_ips = [\"10.99.0.3/32\"]\n";
    // Per-peer file: that peer gets it, no warning.
    let text = format!("{}bootstrap_psk_file = \"ab.psk\"\n{second}", good(&dir));
    let path = write(&dir, "a.toml", &text);
    let loaded = load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(loaded.warnings.is_empty());
    let psk = loaded.settings.peers[0]
        .keymix
        .bootstrap_psk
        .as_deref()
        .copied();
    assert_eq!(psk.map(|p| p[0]), Some(b't'));
    assert!(loaded.settings.peers[1].keymix.bootstrap_psk.is_none());
    // Interface-level file shared by two peers: accepted, with a warning.
    let text = format!("{}{second}", good(&dir)).replacen(
        "[[peer]]",
        "[keymix]\nbootstrap_psk_file = \"shared.psk\"\n\n[[peer]]",
        1,
    );
    let path = write(&dir, "a.toml", &text);
    let loaded = load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.contains("shared by 2 peers")),
        "{:?}",
        loaded.warnings
    );
    // A missing per-peer file names the key.
    let text = format!("{}bootstrap_psk_file = \"nope.psk\"\n", good(&dir));
    let e = load_err(&dir, &text);
    assert!(
        e.contains("peer.bootstrap_psk_file") && e.contains("nope.psk"),
        "{e}"
    );
}

#[test]
fn metrics_listen_is_ip_port() {
    let dir = temp_dir("metrics");
    let with = |value: &str| {
        good(&dir).replace(
            "listen_port = 51820\n",
            &format!("listen_port = 51820\nmetrics_listen = \"{value}\"\n"),
        )
    };
    let path = write(&dir, "a.toml", &with("127.0.0.1:9586"));
    let settings = load(&path).unwrap_or_else(|e| panic!("{e}")).settings;
    assert_eq!(settings.metrics_listen, "127.0.0.1:9586".parse().ok());
    let path = write(&dir, "b.toml", &with("localhost"));
    let e = load(&path).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("interface.metrics_listen"), "{e}");
    let off = load(&write(&dir, "c.toml", &good(&dir)));
    assert_eq!(off.map(|l| l.settings.metrics_listen).ok(), Some(None));
}
