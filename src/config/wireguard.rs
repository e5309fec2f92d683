//! Two ways of living next to plain WireGuard (issue 12):
//!
//! * `[interface] wireguard = "wg0"`: the external data plane. Trident runs keymix only (on
//!   `listen_port`; a peer's `endpoint` is its keymix address) and sets the PSKs of the
//!   existing interface. Its address, MTU, allowed IPs and keepalive belong to the WireGuard
//!   side (wg-quick), so they are refused here rather than silently ignored.
//! * `[[peer]] keymix = "off"` (optional `preshared_key_file`): a plain WireGuard peer of
//!   the built-in data plane, for migrating sites one at a time. Loud: it has none of
//!   Trident's key sources.

use std::ops::Range;

use base64::Engine;
use tunnel::settings::ClassicPeer;

use super::file::{InterfaceSection, PeerSection};
use super::files::read_key_file;
use super::source::Source;
use super::{ConfigError, MAX_NAME_LEN};

/// The span of the first line that sets `key` (`key = ...`) at or after `from`, so an
/// error about a list (which carries no span of its own) still names its line.
fn key_span(text: &str, key: &str, from: usize) -> Option<Range<usize>> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        if start < from {
            continue;
        }
        let t = line.trim_start();
        if let Some(rest) = t.strip_prefix(key) {
            if rest.trim_start().starts_with('=') {
                let at = start + (line.len() - t.len());
                return Some(at..at + key.len());
            }
        }
    }
    None
}

/// The WireGuard interface of the external data plane, checked (every problem into
/// `errors`); None for the built-in one or when the name itself is wrong.
pub(super) fn external_interface(
    src: &Source,
    interface: &InterfaceSection,
    peers: &[PeerSection],
    errors: &mut Vec<ConfigError>,
) -> Option<String> {
    let wg = interface.wireguard.as_ref()?;
    let name = wg.get_ref();
    if name.is_empty()
        || name.len() > MAX_NAME_LEN
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    {
        errors.push(src.error(
            Some(wg.span()),
            "interface.wireguard",
            format!("{name:?} is not a valid interface name"),
        ));
        return None;
    }
    let refuse = |key: &str, span: Option<Range<usize>>| {
        src.error(
            span,
            key,
            format!(
                "not with `wireguard = \"{name}\"`: it belongs to the WireGuard interface \
                 (set it in its wg-quick config); Trident only sets the peers' PSKs"
            ),
        )
    };
    if !interface.address.is_empty() {
        errors.push(refuse(
            "interface.address",
            key_span(src.text, "address", 0),
        ));
    }
    if let Some(mtu) = &interface.mtu {
        errors.push(refuse("interface.mtu", Some(mtu.span())));
    }
    for peer in peers {
        let at = peer.public_key.span().start;
        if !peer.allowed_ips.is_empty() {
            errors.push(refuse(
                "peer.allowed_ips",
                key_span(src.text, "allowed_ips", at),
            ));
        }
        if peer.persistent_keepalive.is_some() {
            errors.push(refuse(
                "peer.persistent_keepalive",
                key_span(src.text, "persistent_keepalive", at),
            ));
        }
        if let Some(k) = peer.keymix.as_ref().filter(|k| k.get_ref() == "off") {
            errors.push(src.error(
                Some(k.span()),
                "peer.keymix",
                format!(
                    "a plain WireGuard peer needs no Trident with `wireguard = \"{name}\"`: \
                     keep it in {name}'s config only"
                ),
            ));
        }
    }
    Some(name.clone())
}

/// `keymix = "off"`: the peer's [`ClassicPeer`] and a warning; None for a hybrid peer.
pub(super) fn classic_peer(
    src: &Source,
    peer: &PeerSection,
    warnings: &mut Vec<String>,
) -> Result<Option<ClassicPeer>, ConfigError> {
    let off = match &peer.keymix {
        None => false,
        Some(k) => match k.get_ref().as_str() {
            "on" => false,
            "off" => true,
            other => {
                return Err(src.error(
                    Some(k.span()),
                    "peer.keymix",
                    format!("{other:?}: expected \"on\" (default) or \"off\" (plain WireGuard)"),
                ))
            }
        },
    };
    if !off {
        if let Some(p) = &peer.preshared_key_file {
            return Err(src.error(
                Some(p.span()),
                "peer.preshared_key_file",
                "only for `keymix = \"off\"` peers (keymix peers get a new PSK every epoch; \
                 see bootstrap_psk_file)",
            ));
        }
        return Ok(None);
    }
    for (set, key) in [
        (peer.sae_id.is_some(), "peer.sae_id"),
        (peer.bootstrap_psk_file.is_some(), "peer.bootstrap_psk_file"),
    ] {
        if set {
            return Err(src.error(
                Some(peer.public_key.span()),
                key,
                "means nothing for a `keymix = \"off\"` peer (no keymix, no QKD)",
            ));
        }
    }
    let preshared_key = match &peer.preshared_key_file {
        Some(p) => Some(read_key_file(src, p, "peer.preshared_key_file")?),
        None => None,
    };
    let key =
        base64::engine::general_purpose::STANDARD.encode(peer.public_key.get_ref().0 .0.as_bytes());
    warnings.push(format!(
        "peer {key}: keymix = \"off\": classic WireGuard ({}), no ML-KEM, no QKD, no epochs: \
         recorded traffic is only as safe as X25519{} against a future quantum computer",
        if preshared_key.is_some() {
            "static PSK"
        } else {
            "no PSK"
        },
        if preshared_key.is_some() {
            " and the static PSK"
        } else {
            ""
        },
    ));
    Ok(Some(ClassicPeer { preshared_key }))
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::super::load;

    const KEY: &str = "YE1pzMgAo3J5DClDVMaZv0l7hLjxjpnG2aHDBCeVjXc=";
    const PEER: &str = "ISVz4o732eUIYv8xk2Kao9J8Jj25aHR3T4H6aLt5h34=";
    const PSK: &str = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("trident-wgcfg-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        for (name, text) in [("a.key", KEY), ("p.psk", PSK)] {
            std::fs::write(d.join(name), text).unwrap();
            let private = std::os::unix::fs::PermissionsExt::from_mode(0o600);
            std::fs::set_permissions(d.join(name), private).unwrap();
        }
        d
    }

    fn load_text(d: &Path, text: &str) -> Result<super::super::Loaded, String> {
        let path = d.join("a.toml");
        std::fs::write(&path, text).unwrap();
        load(&path).map_err(|e| e.to_string())
    }

    fn external(extra_interface: &str, extra_peer: &str) -> String {
        format!(
            "[interface]\nname = \"trA\"\nprivate_key_file = \"a.key\"\nlisten_port = 51821\n\
             wireguard = \"wg0\"\n{extra_interface}\n[[peer]]\npublic_key = \"{PEER}\"\n\
             endpoint = \"203.0.113.2:51821\"\n{extra_peer}"
        )
    }

    #[test]
    fn external_mode_selects_the_interface() {
        let d = dir("ext");
        let loaded = load_text(&d, &external("", "")).unwrap();
        assert_eq!(loaded.settings.wireguard.as_deref(), Some("wg0"));
        assert_eq!(loaded.settings.listen_port, 51821);
        assert!(loaded.settings.peers[0].classic.is_none());
    }

    #[test]
    fn external_mode_refuses_what_belongs_to_wireguard() {
        let d = dir("refuse");
        for (iface, peer, key, line) in [
            (
                "address = [\"10.0.0.1/24\"]",
                "",
                "interface.address",
                "line 6",
            ),
            ("mtu = 1400", "", "interface.mtu", "line 6"),
            (
                "",
                "allowed_ips = [\"10.0.0.2/32\"]",
                "peer.allowed_ips",
                "line 10",
            ),
            (
                "",
                "persistent_keepalive = 25",
                "peer.persistent_keepalive",
                "line 10",
            ),
            ("", "keymix = \"off\"", "peer.keymix", "line 10"),
        ] {
            let e = load_text(&d, &external(iface, peer))
                .err()
                .unwrap_or_default();
            assert!(e.contains(key) && e.contains(line), "{key}: {e}");
            assert!(!e.contains('\n'), "one line: {e}");
        }
    }

    fn builtin(extra_peer: &str) -> String {
        format!(
            "[interface]\nname = \"trA\"\nprivate_key_file = \"a.key\"\nlisten_port = 51820\n\
             address = [\"10.99.0.1/24\"]\n[[peer]]\npublic_key = \"{PEER}\"\n\
             allowed_ips = [\"10.99.0.3/32\"]\n{extra_peer}"
        )
    }

    #[test]
    fn plain_peer_with_and_without_psk_warns() {
        let d = dir("plain");
        let loaded = load_text(
            &d,
            &builtin("keymix = \"off\"\npreshared_key_file = \"p.psk\""),
        )
        .unwrap();
        let classic = loaded.settings.peers[0].classic.as_ref().unwrap();
        assert_eq!(classic.preshared_key.as_deref().map(|k| k[0]), Some(1));
        assert!(loaded
            .warnings
            .iter()
            .any(|w| w.contains("classic WireGuard (static PSK)")));
        let loaded = load_text(&d, &builtin("keymix = \"off\"")).unwrap();
        assert!(loaded.settings.peers[0]
            .classic
            .as_ref()
            .unwrap()
            .preshared_key
            .is_none());
        let loaded = load_text(&d, &builtin("keymix = \"on\"")).unwrap();
        assert!(loaded.settings.peers[0].classic.is_none());
    }

    #[test]
    fn plain_peer_options_are_checked() {
        let d = dir("plainbad");
        for (peer, key) in [
            ("keymix = \"maybe\"", "peer.keymix"),
            ("preshared_key_file = \"p.psk\"", "peer.preshared_key_file"),
            ("keymix = \"off\"\nsae_id = \"SAE_B\"", "peer.sae_id"),
            (
                "keymix = \"off\"\npreshared_key_file = \"missing.psk\"",
                "peer.preshared_key_file",
            ),
        ] {
            let e = load_text(&d, &builtin(peer)).err().unwrap_or_default();
            assert!(e.contains(key), "{peer}: {e}");
        }
    }
}
