//! Checks that see the whole config at once (issue 11), run by `load` after parsing, so
//! `trident check` and `trident up` refuse and warn about exactly the same things:
//!
//! * errors: a prefix on two peers (or overlapping prefixes), a default route (it would
//!   carry the tunnel's own UDP and cut the gateway off its WAN), a bootstrap or static
//!   PSK that is the private key (same file or same bytes);
//! * warnings: key files every user can read, a peer `sae_id` while QKD is off;
//! * better parse messages: a wg-quick INI file, the element line inside a multi-line array,
//!   an endpoint whose host does not resolve or whose port is 0.
//!
//! Spans come from toml's own parse tree (`DeTable`), so every line names its element.

use std::net::{SocketAddr, ToSocketAddrs};
use std::ops::Range;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use base64::Engine;
use ip_network::IpNetwork;
use keymix::QkdPolicy;
use toml::de::{DeTable, DeValue};
use toml::Spanned;
use tunnel::settings::parse_allowed_ip;
use tunnel::settings::RouteTable;
use tunnel::{InterfaceAddress, TunnelSettings};
use zeroize::Zeroizing;

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

/// One `[[peer]]` as written: its spans and the key files it names.
struct PeerSpans<'a> {
    at: Range<usize>,
    allowed_ips: Vec<(IpNetwork, Range<usize>)>,
    sae_id: Option<Range<usize>>,
    table: Option<&'a DeTable<'a>>,
}

fn peers<'a>(doc: &'a DeTable<'a>) -> Vec<PeerSpans<'a>> {
    let Some(array) = doc.get("peer").and_then(|p| p.get_ref().as_array()) else {
        return Vec::new();
    };
    array
        .iter()
        .map(|peer| {
            let table = peer.get_ref().as_table();
            let field = |k: &str| table.and_then(|t| t.get(k));
            let allowed_ips = field("allowed_ips")
                .and_then(|a| a.get_ref().as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|ip| {
                            let net = parse_allowed_ip(ip.get_ref().as_str()?).ok()?;
                            Some((net, ip.span()))
                        })
                        .collect()
                })
                .unwrap_or_default();
            PeerSpans {
                at: field("public_key").map_or(peer.span(), Spanned::span),
                allowed_ips,
                sae_id: field("sae_id").map(Spanned::span),
                table,
            }
        })
        .collect()
}

fn overlaps(a: &IpNetwork, b: &IpNetwork) -> bool {
    a.is_ipv4() == b.is_ipv4()
        && (a.contains(b.network_address()) || b.contains(a.network_address()))
}

fn key_b64(settings: &TunnelSettings, index: usize) -> String {
    settings.peers.get(index).map_or_else(String::new, |p| {
        base64::engine::general_purpose::STANDARD.encode(p.keymix.public_key.as_bytes())
    })
}

/// A warning line in the format of [`ConfigError`].
fn warning(src: &Source, span: Option<Range<usize>>, key: &str, message: String) -> String {
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

/// The whole-config checks; warnings are appended, the first error is returned.
pub(super) fn check_loaded(
    src: &Source,
    settings: &TunnelSettings,
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
    let Ok(doc) = DeTable::parse(src.text) else {
        return Ok(()); // `load` parsed it already; nothing to add.
    };
    let doc = doc.get_ref();
    let table = |name: &str| doc.get(name).and_then(|t| t.get_ref().as_table());
    let peers = peers(doc);

    // Routes: a default route through the tunnel also captures the tunnel's own UDP.
    // With table = "off" or a number the operator's policy routing decides (wg-quick style).
    if settings.wireguard.is_none() && settings.table == RouteTable::Auto {
        for (net, span) in peers.iter().flat_map(|p| &p.allowed_ips) {
            if net.netmask() == 0 {
                return Err(src.error(
                    Some(span.clone()),
                    "peer.allowed_ips",
                    format!(
                        "{net} is a default route: Trident routes allowed_ips into the main \
                         table, so it would also capture the encrypted UDP to the peers and cut \
                         this gateway off its WAN; list the remote site's prefixes instead, or \
                         set [interface] table = \"off\" or a table number (with fwmark) and \
                         route it with your own policy rules"
                    ),
                ));
            }
        }
    }
    for (i, earlier) in peers.iter().enumerate() {
        for (j, later) in peers.iter().enumerate().skip(i + 1) {
            for (b, span) in &later.allowed_ips {
                if let Some((a, _)) = earlier.allowed_ips.iter().find(|(a, _)| overlaps(a, b)) {
                    let what = if a == b { "is also" } else { "overlaps" };
                    return Err(src.error(
                        Some(span.clone()),
                        "peer.allowed_ips",
                        format!(
                            "{b} {what} {a} of peer {} (line {}): an address must belong to one \
                             peer, or its packets go to whichever was listed last; give {} \
                             and {} disjoint prefixes",
                            key_b64(settings, i),
                            src.error(Some(earlier.at.clone()), "", "")
                                .line
                                .unwrap_or(0),
                            key_b64(settings, i),
                            key_b64(settings, j),
                        ),
                    ));
                }
            }
        }
    }

    // Secret files: a PSK must not be the private key; nobody else may read either.
    let interface = table("interface");
    let private = path_at(
        src,
        interface,
        "private_key_file",
        "interface.private_key_file",
    );
    let mut secrets: Vec<_> = private.iter().cloned().collect();
    secrets.extend(path_at(
        src,
        table("keymix"),
        "bootstrap_psk_file",
        "keymix.bootstrap_psk_file",
    ));
    for peer in &peers {
        secrets.extend(path_at(
            src,
            peer.table,
            "bootstrap_psk_file",
            "peer.bootstrap_psk_file",
        ));
        secrets.extend(path_at(
            src,
            peer.table,
            "preshared_key_file",
            "peer.preshared_key_file",
        ));
    }
    if let Some((private_path, ..)) = &private {
        for (path, span, key) in secrets.iter().skip(1) {
            if same_file(path, private_path) {
                return Err(src.error(
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
    let private_bytes = Zeroizing::new(settings.private_key.to_bytes());
    for (i, peer) in settings.peers.iter().enumerate() {
        let psks = [
            (peer.keymix.bootstrap_psk.as_ref(), "bootstrap_psk_file"),
            (
                peer.classic.as_ref().and_then(|c| c.preshared_key.as_ref()),
                "preshared_key_file",
            ),
        ];
        for (psk, field) in psks {
            if psk.is_some_and(|k| **k == *private_bytes) {
                let own = peers
                    .get(i)
                    .and_then(|p| p.table)
                    .and_then(|t| t.get(field));
                let (span, key) = match own {
                    Some(v) => (Some(v.span()), format!("peer.{field}")),
                    None => (
                        table("keymix")
                            .and_then(|t| t.get(field))
                            .map(Spanned::span),
                        format!("keymix.{field}"),
                    ),
                };
                return Err(src.error(
                    span,
                    &key,
                    "holds the same key as private_key_file: a PSK must be a separate secret \
                     (`trident genpsk`)",
                ));
            }
        }
    }
    secrets.extend(path_at(src, table("qkd"), "key_file", "qkd.key_file"));
    for (path, span, key) in &secrets {
        let Ok(meta) = std::fs::metadata(path) else {
            continue;
        };
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o004 != 0 {
            warnings.push(warning(
                src,
                Some(span.clone()),
                key,
                format!(
                    "{} is readable by every user (mode {mode:04o}) but holds a secret key: \
                     chmod 600 {}",
                    path.display(),
                    path.display()
                ),
            ));
        }
    }

    for (i, peer) in peers.iter().enumerate() {
        let off = settings
            .peers
            .get(i)
            .is_some_and(|p| p.keymix.qkd == QkdPolicy::Off);
        if let (Some(span), true) = (&peer.sae_id, off) {
            warnings.push(warning(
                src,
                Some(span.clone()),
                "peer.sae_id",
                "is set but QKD is off (no [qkd] table, or [keymix] qkd = \"off\"): it is \
                 ignored and this peer's keys use no QKD"
                    .to_owned(),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
