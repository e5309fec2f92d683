//! The `[[peer]] allowed_ips` checks, on the file's own tree so every line is an
//! element's line. Errors: a default route with `table = "auto"` (it would carry the
//! tunnel's own UDP and cut the gateway off its WAN), a prefix on two peers (whose packets
//! would go to whichever was listed last), host bits set (`192.168.120.5/24`: the network
//! or the host? wg drops the bits silently), this gateway's own address as a peer's.
//! Warnings: overlapping prefixes inside one peer (harmless, but not what was meant), a
//! peer prefix that contains this gateway's own address.

use std::ops::Range;
use std::str::FromStr;

use ip_network::IpNetwork;
use toml::de::DeTable;
use tunnel::settings::RouteTable;
use tunnel::InterfaceAddress;

use super::build::Problems;
use super::source::Source;
use super::validate::{warning, Whole};

/// One `[[peer]]` as written: where its key is and its allowed IPs with their spans.
struct Peer {
    at: Range<usize>,
    key: String,
    nets: Vec<(IpNetwork, InterfaceAddress, Range<usize>)>,
}

fn peers(doc: &DeTable) -> Vec<Peer> {
    let Some(array) = doc.get("peer").and_then(|p| p.get_ref().as_array()) else {
        return Vec::new();
    };
    array
        .iter()
        .map(|peer| {
            let table = peer.get_ref().as_table();
            let field = |k: &str| table.and_then(|t| t.get(k));
            let nets = field("allowed_ips")
                .and_then(|a| a.get_ref().as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|ip| {
                            let written =
                                InterfaceAddress::from_str(ip.get_ref().as_str()?).ok()?;
                            Some((written.network(), written, ip.span()))
                        })
                        .collect()
                })
                .unwrap_or_default();
            let public_key = field("public_key");
            Peer {
                at: public_key.map_or(peer.span(), |k| k.span()),
                key: public_key
                    .and_then(|k| k.get_ref().as_str())
                    .unwrap_or("?")
                    .to_owned(),
                nets,
            }
        })
        .collect()
}

fn overlaps(a: &IpNetwork, b: &IpNetwork) -> bool {
    a.is_ipv4() == b.is_ipv4()
        && (a.contains(b.network_address()) || b.contains(a.network_address()))
}

fn host_len(net: &IpNetwork) -> u8 {
    if net.is_ipv4() {
        32
    } else {
        128
    }
}

pub(super) fn check(src: &Source, doc: &DeTable, whole: &Whole, p: &mut Problems) {
    if whole.external {
        return; // allowed_ips are refused outright there (config/wireguard.rs).
    }
    let peers = peers(doc);
    let err = |span: &Range<usize>, message: String| {
        src.error(Some(span.clone()), "peer.allowed_ips", message)
    };
    for peer in &peers {
        for (i, (net, written, span)) in peer.nets.iter().enumerate() {
            // A default route through the tunnel also captures the tunnel's own UDP. With
            // table = "off" or a number the operator's policy routing decides (wg-quick).
            if net.netmask() == 0 && whole.table == RouteTable::Auto {
                p.errors.push(err(
                    span,
                    format!(
                        "{net} is a default route: Trident routes allowed_ips into the main \
                     table, so it would also capture the encrypted UDP to the peers and cut \
                     this gateway off its WAN; list the remote site's prefixes instead, or \
                     set [interface] table = \"off\" or a table number (with fwmark) and \
                     route it with your own policy rules"
                    ),
                ));
            }
            if written.ip != net.network_address() {
                p.errors.push(err(
                    span,
                    format!(
                        "{written} has host bits set: write the network {net} or the host {}/{}",
                        written.ip,
                        host_len(net)
                    ),
                ));
            }
            for own in whole.addresses {
                if !net.contains(own.ip) {
                    continue;
                }
                if net.netmask() == host_len(net) {
                    p.errors.push(err(
                        span,
                        format!(
                            "{net} is this gateway's own address (address = {own}): list the \
                         peer's tunnel address and its site's prefixes"
                        ),
                    ));
                } else {
                    p.warnings.push(warning(
                        src,
                        Some(span.clone()),
                        "peer.allowed_ips",
                        format!(
                            "{net} contains this gateway's own address {}: the peer may send \
                         packets from it; list the peer's own address (e.g. a /32) instead",
                            own.ip
                        ),
                    ));
                }
            }
            if let Some((earlier, ..)) = peer.nets.iter().take(i).find(|(e, ..)| overlaps(e, net)) {
                p.warnings.push(warning(
                    src,
                    Some(span.clone()),
                    "peer.allowed_ips",
                    format!(
                        "{net} {} {earlier} of the same peer: one of them is redundant",
                        if earlier == net {
                            "repeats"
                        } else {
                            "overlaps"
                        }
                    ),
                ));
            }
        }
    }
    // A prefix belongs to one peer.
    for (i, earlier) in peers.iter().enumerate() {
        for later in peers.iter().skip(i + 1) {
            for (b, _, span) in &later.nets {
                if b.netmask() == 0 && whole.table == RouteTable::Auto {
                    continue; // refused above already; it overlaps everything.
                }
                let Some((a, ..)) = earlier.nets.iter().find(|(a, ..)| overlaps(a, b)) else {
                    continue;
                };
                let what = if a == b { "is also" } else { "overlaps" };
                p.errors.push(err(
                    span,
                    format!(
                    "{b} {what} {a} of peer {} (line {}): an address must belong to one peer, or \
                     its packets go to whichever was listed last; give {} and {} disjoint \
                     prefixes",
                    earlier.key,
                    src.line_at(earlier.at.start),
                    earlier.key,
                    later.key,
                ),
                ));
            }
        }
    }
}
