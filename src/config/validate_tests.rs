//! Every error and warning of `validate`: one line, naming the file, the line and the key.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use base64::Engine;
use keymix::{PublicKey, StaticSecret};

use super::super::{load, Loaded};

const KEY: &str = "YE1pzMgAo3J5DClDVMaZv0l7hLjxjpnG2aHDBCeVjXc=";
const PEER: &str = "ISVz4o732eUIYv8xk2Kao9J8Jj25aHR3T4H6aLt5h34=";
const PSK: &str = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";

fn peer_b() -> String {
    let public = PublicKey::from(&StaticSecret::from([7u8; 32]));
    base64::engine::general_purpose::STANDARD.encode(public.as_bytes())
}

fn dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("trident-validate-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    for (name, text) in [("a.key", KEY), ("p.psk", PSK)] {
        let path = d.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    d
}

fn load_text(d: &Path, text: &str) -> Result<Loaded, String> {
    let path = d.join("a.toml");
    std::fs::write(&path, text).unwrap();
    load(&path).map_err(|e| e.to_string())
}

/// Interface lines 1-5, then `[[peer]]` at line 6 with `extra` from line 9 on.
fn config(extra_interface: &str, peer_a: &str, peer_b_lines: &str) -> String {
    format!(
        "[interface]\nname = \"trA\"\nprivate_key_file = \"a.key\"\nlisten_port = 51820\n\
         address = [\"10.99.0.1/24\"]\n{extra_interface}[[peer]]\npublic_key = \"{PEER}\"\n\
         allowed_ips = [\"10.99.0.2/32\", \"192.168.20.0/24\"]\n{peer_a}{peer_b_lines}"
    )
}

fn second_peer(allowed: &str) -> String {
    format!(
        "[[peer]]\npublic_key = \"{}\"\nallowed_ips = {allowed}\n",
        peer_b()
    )
}

fn assert_error(text: &str, d: &Path, wants: &[&str]) {
    let e = load_text(d, text).err().unwrap_or_default();
    assert!(!e.contains('\n'), "one line: {e}");
    assert!(e.contains("a.toml"), "names the file: {e}");
    for want in wants {
        assert!(e.contains(want), "wanted {want:?} in: {e}");
    }
}

#[test]
fn a_clean_config_loads_without_warnings() {
    let d = dir("clean");
    let text = config("", "", &second_peer("[\"192.168.30.0/24\"]"));
    let loaded = load_text(&d, &text).unwrap();
    assert_eq!(loaded.settings.peers.len(), 2);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn the_same_or_an_overlapping_prefix_on_two_peers_is_refused() {
    let d = dir("overlap");
    let same = config("", "", &second_peer("[\"192.168.20.0/24\"]"));
    assert_error(&same, &d, &["line 11", "peer.allowed_ips", "is also"]);
    let nested = config(
        "",
        "",
        &second_peer("[\n  \"10.1.0.0/16\",\n  \"192.168.20.128/25\",\n]"),
    );
    assert_error(&nested, &d, &["line 13", "overlaps 192.168.20.0/24", PEER]);
}

#[test]
fn a_default_route_is_refused_with_the_reason() {
    let d = dir("default");
    for net in ["0.0.0.0/0", "::/0"] {
        let text = config("", "", &second_peer(&format!("[\"{net}\"]")));
        assert_error(&text, &d, &["line 11", "default route", "WAN", "table"]);
    }
}

#[test]
fn a_default_route_is_accepted_with_table_off_or_a_number() {
    let d = dir("default-table");
    for table in ["table = \"off\"\n", "table = 1234\nfwmark = 0x1234\n"] {
        let text = format!(
            "[interface]\nname = \"trA\"\nprivate_key_file = \"a.key\"\nlisten_port = 51820\n\
             {table}[[peer]]\npublic_key = \"{PEER}\"\nallowed_ips = [\"0.0.0.0/0\", \"::/0\"]\n"
        );
        let loaded = load_text(&d, &text);
        assert!(loaded.is_ok(), "{table}: {:?}", loaded.err());
    }
    let text = config("table = \"main\"\n", "", "");
    let e = load_text(&d, &text).err().unwrap_or_default();
    assert!(e.contains("interface.table") || e.contains("table"), "{e}");
}

#[test]
fn a_psk_that_is_the_private_key_is_refused() {
    let d = dir("psk-is-key");
    let peer_file = config("", "bootstrap_psk_file = \"a.key\"\n", "");
    assert_error(
        &peer_file,
        &d,
        &["line 9", "peer.bootstrap_psk_file", "private key file"],
    );
    let shared = config("[keymix]\nbootstrap_psk_file = \"./a.key\"\n", "", "");
    assert_error(
        &shared,
        &d,
        &["line 7", "keymix.bootstrap_psk_file", "private key file"],
    );
    // A copy of the key under another name: same bytes.
    std::fs::copy(d.join("a.key"), d.join("copy.psk")).unwrap();
    let copy = config("", "bootstrap_psk_file = \"copy.psk\"\n", "");
    assert_error(&copy, &d, &["peer.bootstrap_psk_file", "same key"]);
}

#[test]
fn endpoint_port_zero_and_unresolvable_hosts_name_the_cause() {
    let d = dir("endpoint");
    let zero = config("", "endpoint = \"203.0.113.2:0\"\n", "");
    assert_error(&zero, &d, &["line 9", "peer.endpoint", "port 0"]);
    let host = config("", "endpoint = \"no-such-gateway.invalid:51820\"\n", "");
    assert_error(
        &host,
        &d,
        &["line 9", "cannot resolve host \"no-such-gateway.invalid\""],
    );
    let port = config("", "endpoint = \"203.0.113.2:x\"\n", "");
    assert_error(&port, &d, &["\"x\" is not a port number"]);
}

#[test]
fn a_wg_quick_file_gets_a_pointer_to_the_toml_format() {
    let d = dir("ini");
    let ini = format!(
        "[Interface]\nPrivateKey = {KEY}\nListenPort = 51820\n\n[Peer]\nPublicKey = {PEER}\n"
    );
    assert_error(&ini, &d, &["wg-quick INI file", "TOML", "README"]);
}

#[test]
fn a_bad_element_of_a_multi_line_array_names_its_own_line() {
    let d = dir("array");
    let text = config(
        "",
        "",
        &second_peer("[\n  \"10.1.0.0/16\",\n  \"10.2.0.0/40\",\n]"),
    );
    assert_error(&text, &d, &["line 13", "peer.allowed_ips"]);
    let addr = config("", "", "").replace(
        "address = [\"10.99.0.1/24\"]",
        "address = [\n  \"10.99.0.1/24\",\n  \"10.99.0.300/24\",\n]",
    );
    assert_error(&addr, &d, &["line 7", "interface.address"]);
}

#[test]
fn key_files_other_users_can_read_are_refused_every_one() {
    let d = dir("modes");
    let text = config("", "bootstrap_psk_file = \"p.psk\"\n", "");
    assert!(load_text(&d, &text).unwrap().warnings.is_empty());
    for name in ["a.key", "p.psk"] {
        std::fs::set_permissions(d.join(name), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let e = load_text(&d, &text).err().unwrap_or_default();
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 2, "{e}");
    assert!(lines[0].contains("line 3") && lines[0].contains("interface.private_key_file"));
    assert!(lines[1].contains("line 9") && lines[1].contains("peer.bootstrap_psk_file"));
    assert!(lines
        .iter()
        .all(|l| l.contains("mode 0644") && l.contains("0600")));
}

#[test]
fn check_lists_every_problem_of_a_file() {
    let d = dir("many");
    // Three independent problems: an MTU out of range, host bits, the gateway's own address.
    let text = config(
        "mtu = 100\n",
        "",
        &second_peer("[\"192.168.120.5/24\", \"10.99.0.1/32\"]"),
    );
    let e = load_text(&d, &text).err().unwrap_or_default();
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 3, "{e}");
    assert!(lines[0].contains("interface.mtu"), "{e}");
    assert!(
        lines[1].contains("host bits") && lines[1].contains("192.168.120.0/24"),
        "{e}"
    );
    assert!(lines[2].contains("own address"), "{e}");
}

#[test]
fn overlaps_inside_one_peer_and_a_prefix_holding_our_address_warn() {
    let d = dir("warn-ips");
    let text = config("", "", "").replace(
        "[\"10.99.0.2/32\", \"192.168.20.0/24\"]",
        "[\"10.99.0.0/24\", \"192.168.20.0/24\", \"192.168.20.0/25\"]",
    );
    let warnings = load_text(&d, &text).unwrap().warnings;
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings[0].contains("own address 10.99.0.1"),
        "{warnings:?}"
    );
    assert!(warnings[1].contains("same peer"), "{warnings:?}");
}

#[test]
fn sae_id_with_qkd_off_warns() {
    let d = dir("sae");
    let text = config("", "sae_id = \"SAE_B\"\n", "");
    let warnings = load_text(&d, &text).unwrap().warnings;
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("line 9") && warnings[0].contains("QKD is off"),
        "{warnings:?}"
    );
}
