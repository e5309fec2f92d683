//! Checks that see the whole config at once (issues 11 and 21), run by `load` after
//! parsing, so `trident check` and `trident up` refuse and warn about exactly the same
//! things, every problem on its own line:
//!
//! * errors: a bootstrap or static PSK that is the private key (same file or same bytes),
//!   and the allowed-IP checks of config/allowed_ips.rs;
//! * warnings: a peer `sae_id` while QKD is off;
//! * better parse messages: a wg-quick INI file, the element line inside a multi-line array,
//!   an endpoint whose host does not resolve or whose port is 0.
//!
//! Files readable or writable by others are refused when they are read (config/files.rs).
//! Spans come from toml's own parse tree (`DeTable`), so every line names its element.

use std::net::{SocketAddr, ToSocketAddrs};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use keymix::{QkdPolicy, StaticSecret};
use toml::de::{DeTable, DeValue};
use toml::Spanned;
use tunnel::settings::{parse_allowed_ip, RouteTable};
use tunnel::{InterfaceAddress, PeerSettings};
use zeroize::Zeroizing;

use super::build::Problems;
use super::source::Source;
use super::ConfigError;

/// What an INI file from wg-quick gets instead of a bare TOML error.
pub(super) const WG_QUICK_HINT: &str = "this looks like a wg-quick INI file; Trident's config is \
     TOML: see README (\"Configuration\": lower-case keys, quoted strings, [[peer]] tables)";

/// wg-quick's `[Interface]`/`[Peer]` sections or its CamelCase keys.
pub(super) fn looks_like_wg_quick(text: &str) -> bool {
    const KEYS: [&str; 7] = [
        "PrivateKey",
        "PublicKey",
        "ListenPort",
        "AllowedIPs",
        "Endpoint",
        "PresharedKey",
        "PersistentKeepalive",
    ];
    text.lines().map(str::trim).any(|l| {
        l == "[Interface]"
            || l == "[Peer]"
            || l.split_once('=')
                .is_some_and(|(k, _)| KEYS.contains(&k.trim()))
    })
}

/// A parse error spanning a whole multi-line array: the span of the element that fails,
/// for the arrays of strings Trident parses itself (toml reports the array, not the item).
pub(super) fn element_span(text: &str, span: &Range<usize>, key: &str) -> Option<Range<usize>> {
    let slice = text.get(span.clone())?;
    if !slice.starts_with('[') || !slice.contains('\n') {
        return None;
    }
    let parse: fn(&str) -> bool = if key.ends_with("allowed_ips") {
        |s| parse_allowed_ip(s).is_err()
    } else if key.ends_with("address") {
        |s| InterfaceAddress::from_str(s).is_err()
    } else {
        return None;
    };
    let value = DeValue::parse(slice).ok()?;
    let array = value.get_ref().as_array()?;
    array.iter().find_map(|item| {
        let bad = item.get_ref().as_str().is_some_and(parse);
        bad.then(|| span.start + item.span().start..span.start + item.span().end)
    })
}

/// HOST:PORT or [V6]:PORT, resolved now; the message says which part is wrong.
pub(super) fn resolve_endpoint(
    src: &Source,
    value: &Spanned<String>,
    key: &str,
) -> Result<SocketAddr, ConfigError> {
    let text = value.get_ref();
    let err = |message: String| src.error(Some(value.span()), key, message);
    let addr = match text.parse::<SocketAddr>() {
        Ok(addr) => addr,
        Err(_) => {
            let Some((host, port)) = text.rsplit_once(':') else {
                return Err(err(format!(
                    "{text:?} is not HOST:PORT (e.g. \"203.0.113.2:51820\")"
                )));
            };
            let Ok(port) = port.parse::<u16>() else {
                return Err(err(format!("{text:?}: {port:?} is not a port number")));
            };
            if host.is_empty() || host.contains(':') {
                return Err(err(format!(
                    "{text:?} is not HOST:PORT (an IPv6 address goes in brackets: \"[2001:db8::2]:51820\")"
                )));
            }
            match (host, port).to_socket_addrs() {
                Ok(mut addrs) => addrs.next().ok_or_else(|| {
                    err(format!(
                        "resolving {host:?} gave no address (from {text:?})"
                    ))
                })?,
                Err(e) => return Err(err(format!("cannot resolve host {host:?}: {e}"))),
            }
        }
    };
    if addr.port() == 0 {
        return Err(err(format!(
            "{text:?}: port 0 is nobody's listen port; give the peer's listen_port (e.g. 51820)"
        )));
    }
    Ok(addr)
}

/// What the whole-config checks need besides the file's own tree.
pub(super) struct Whole<'a> {
    /// The external data plane (`[interface] wireguard`): no routes, no allowed IPs.
    pub(super) external: bool,
    pub(super) table: RouteTable,
    pub(super) addresses: &'a [InterfaceAddress],
    pub(super) private_key: Option<&'a StaticSecret>,
    pub(super) policy: QkdPolicy,
    /// The peers' settings, in file order; None when a peer had an error (then the checks
    /// that compare a peer's PSK bytes are left out: that peer's line says what is wrong).
    pub(super) peers: Option<&'a [PeerSettings]>,
}

/// A warning line in the format of [`ConfigError`].
pub(super) fn warning(
    src: &Source,
    span: Option<Range<usize>>,
    key: &str,
    message: String,
) -> String {
    src.error(span, key, message)
        .to_string()
        .replacen("config error in", "config warning in", 1)
}

/// A file path value with its span and dotted key.
fn path_at(
    src: &Source,
    table: Option<&DeTable>,
    field: &str,
    key: &str,
) -> Option<(PathBuf, Range<usize>, String)> {
    let value = table?.get(field)?;
    let path = src.resolve(Path::new(value.get_ref().as_str()?));
    Some((path, value.span(), key.to_owned()))
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// The whole-config checks; every error and warning goes into `p`.
pub(super) fn check_whole(src: &Source, whole: &Whole, p: &mut Problems) {
    let Ok(doc) = DeTable::parse(src.text) else {
        return; // `load` parsed it already; nothing to add.
    };
    let doc = doc.get_ref();
    let table = |name: &str| doc.get(name).and_then(|t| t.get_ref().as_table());
    let peers: Vec<Option<&DeTable>> = doc
        .get("peer")
        .and_then(|v| v.get_ref().as_array())
        .map(|a| a.iter().map(|t| t.get_ref().as_table()).collect())
        .unwrap_or_default();
    super::allowed_ips::check(src, doc, whole, p);

    // A PSK must not be the private key: not the same file, not the same bytes.
    let interface = table("interface");
    let private = path_at(
        src,
        interface,
        "private_key_file",
        "interface.private_key_file",
    );
    let mut psk_files: Vec<_> = path_at(
        src,
        table("keymix"),
        "bootstrap_psk_file",
        "keymix.bootstrap_psk_file",
    )
    .into_iter()
    .collect();
    for peer in &peers {
        for field in ["bootstrap_psk_file", "preshared_key_file"] {
            psk_files.extend(path_at(src, *peer, field, &format!("peer.{field}")));
        }
    }
    let mut same_path = false;
    if let Some((private_path, ..)) = &private {
        for (path, span, key) in &psk_files {
            if same_file(path, private_path) {
                same_path = true;
                p.errors.push(src.error(
                    Some(span.clone()),
                    key,
                    format!(
                        "{} is the private key file: a PSK must be a separate secret \
                         (`trident genpsk`), or knowing one key gives away both",
                        path.display()
                    ),
                ));
            }
        }
    }
    if let (Some(private_key), Some(settings), false) = (whole.private_key, whole.peers, same_path)
    {
        let private_bytes = Zeroizing::new(private_key.to_bytes());
        let mut reported = Vec::new();
        for (i, peer) in settings.iter().enumerate() {
            let psks = [
                (peer.keymix.bootstrap_psk.as_ref(), "bootstrap_psk_file"),
                (
                    peer.classic.as_ref().and_then(|c| c.preshared_key.as_ref()),
                    "preshared_key_file",
                ),
            ];
            for (psk, field) in psks {
                if psk.is_none_or(|k| **k != *private_bytes) {
                    continue;
                }
                let own = peers.get(i).copied().flatten().and_then(|t| t.get(field));
                let (span, key) = match own {
                    Some(v) => (Some(v.span()), format!("peer.{field}")),
                    None => (
                        table("keymix")
                            .and_then(|t| t.get(field))
                            .map(Spanned::span),
                        format!("keymix.{field}"),
                    ),
                };
                // The interface's file is one problem however many peers use it.
                if reported.contains(&key) && key.starts_with("keymix") {
                    continue;
                }
                reported.push(key.clone());
                p.errors.push(src.error(
                    span,
                    &key,
                    "holds the same key as private_key_file: a PSK must be a separate secret \
                     (`trident genpsk`)",
                ));
            }
        }
    }

    if whole.policy == QkdPolicy::Off {
        for peer in peers.iter().flatten() {
            if let Some(sae) = peer.get("sae_id") {
                p.warnings.push(warning(
                    src,
                    Some(sae.span()),
                    "peer.sae_id",
                    "is set but QKD is off (no [qkd] table, or [keymix] qkd = \"off\"): it is \
                     ignored and this peer's keys use no QKD"
                        .to_owned(),
                ));
            }
        }
    }
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
