//! One captured frame to UDP datagrams, with etherparse: the link layer (Ethernet with up
//! to three 802.1Q/QinQ tags, Linux cooked v1/v2, raw IP, BSD loopback), IPv4 and IPv6
//! with extension headers, fragments through the bounded reassembly, then UDP.

use std::net::{IpAddr, SocketAddr};

use super::container::Frame;
use super::defrag::{Added, Defrag, FragKey, Fragment};
use super::{Stats, Udp};
use etherparse::{EtherType, Ipv6ExtensionSlice, NetSlice, SlicedPacket, TransportSlice, UdpSlice};

/// Linux cooked capture v2's header length (etherparse reads v1 only).
const SLL2_HEADER: usize = 20;

/// Hands the frame's UDP datagram (if it completes one) to `out`, or counts why not.
pub fn decode(
    frame: &Frame<'_>,
    defrag: &mut Defrag,
    stats: &mut Stats,
    out: &mut dyn FnMut(Udp<'_>),
) {
    let data = frame.data;
    let sliced = match frame.linktype.0 {
        1 => SlicedPacket::from_ethernet(data),
        113 => SlicedPacket::from_linux_sll(data),
        276 => match (data.get(..2), data.get(SLL2_HEADER..)) {
            (Some(&[hi, lo]), Some(rest)) => {
                SlicedPacket::from_ether_type(EtherType(u16::from_be_bytes([hi, lo])), rest)
            }
            _ => {
                malformed(frame, stats);
                return;
            }
        },
        // Raw IP (several numbers for the same thing), IPv4, IPv6.
        101 | 12 | 14 | 228 | 229 => SlicedPacket::from_ip(data),
        // BSD loopback: a 4-byte address family, then IP.
        0 | 108 => match data.get(4..) {
            Some(ip) => SlicedPacket::from_ip(ip),
            None => {
                malformed(frame, stats);
                return;
            }
        },
        _ => {
            stats.unsupported_link += 1;
            return;
        }
    };
    let Ok(p) = sliced else {
        malformed(frame, stats);
        return;
    };
    let Some(net) = &p.net else {
        stats.not_ip += 1;
        return;
    };
    let (src, dst) = match net {
        NetSlice::Ipv4(v4) => (
            IpAddr::V4(v4.header().source_addr()),
            IpAddr::V4(v4.header().destination_addr()),
        ),
        NetSlice::Ipv6(v6) => (
            IpAddr::V6(v6.header().source_addr()),
            IpAddr::V6(v6.header().destination_addr()),
        ),
        NetSlice::Arp(_) => {
            stats.not_ip += 1;
            return;
        }
    };
    let Some(ip) = net.ip_payload_ref() else {
        stats.not_ip += 1;
        return;
    };
    if ip.ip_number.0 != 17 {
        stats.not_udp += 1;
        return;
    }
    if !ip.fragmented {
        match &p.transport {
            Some(TransportSlice::Udp(u)) => push(out, stats, src, dst, u),
            _ => malformed(frame, stats),
        }
        return;
    }
    stats.fragments += 1;
    let Some((id, frag)) = fragment(net) else {
        malformed(frame, stats);
        return;
    };
    let key = FragKey {
        interface: frame.interface,
        vlans: p.vlan_ids().iter().map(|v| v.value()).collect(),
        src,
        dst,
        id,
        proto: ip.ip_number.0,
    };
    match defrag.add(key, frame.time, frag) {
        Added::Pending => {}
        Added::Invalid => stats.fragments_invalid += 1,
        Added::Complete(whole) => match UdpSlice::from_slice(&whole) {
            Ok(u) => {
                stats.reassembled += 1;
                push(out, stats, src, dst, &u);
            }
            Err(_) => stats.malformed += 1,
        },
    }
}

/// The identification and position of a fragment.
fn fragment<'a>(net: &NetSlice<'a>) -> Option<(u32, Fragment<'a>)> {
    match net {
        NetSlice::Ipv4(v4) => {
            let h = v4.header();
            Some((
                u32::from(h.identification()),
                Fragment {
                    offset: h.fragments_offset(),
                    more: h.more_fragments(),
                    payload: v4.payload().payload,
                },
            ))
        }
        NetSlice::Ipv6(v6) => {
            let f = v6.extensions().clone().into_iter().find_map(|e| match e {
                Ipv6ExtensionSlice::Fragment(f) => Some(f),
                _ => None,
            })?;
            Some((
                f.identification(),
                Fragment {
                    offset: f.fragment_offset(),
                    more: f.more_fragments(),
                    payload: v6.payload().payload,
                },
            ))
        }
        NetSlice::Arp(_) => None,
    }
}

fn push(
    out: &mut dyn FnMut(Udp<'_>),
    stats: &mut Stats,
    src: IpAddr,
    dst: IpAddr,
    u: &UdpSlice<'_>,
) {
    stats.udp += 1;
    out(Udp {
        src: SocketAddr::new(src, u.source_port()),
        dst: SocketAddr::new(dst, u.destination_port()),
        payload: u.payload(),
    });
}

/// A frame the parser rejects: cut by the snap length, or not what its headers claim.
fn malformed(frame: &Frame<'_>, stats: &mut Stats) {
    if frame.truncated {
        stats.truncated += 1;
    } else {
        stats.malformed += 1;
    }
}
