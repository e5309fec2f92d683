//! The probe traffic: ICMP echo requests from a spoke's tunnel address to the hub's, as a
//! host behind the spoke would send them, and the hub kernel's echo replies. IPv4 only.

use std::net::Ipv4Addr;

const IPV4_HEADER: usize = 20;
const ICMP_HEADER: usize = 8;
const PAYLOAD: usize = 56;
const PROTO_ICMP: u8 = 1;
const ECHO_REPLY: u8 = 0;
const ECHO_REQUEST: u8 = 8;

/// The Internet checksum (RFC 1071) of `bytes`.
fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An IPv4 ICMP echo request, 84 bytes (as `ping` sends by default).
pub fn echo_request(src: Ipv4Addr, dst: Ipv4Addr, ident: u16, seq: u16) -> Vec<u8> {
    let total = IPV4_HEADER + ICMP_HEADER + PAYLOAD;
    let mut p = vec![0u8; total];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[6] = 0x40; // don't fragment
    p[8] = 64;
    p[9] = PROTO_ICMP;
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    let sum = checksum(&p[..IPV4_HEADER]);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    let icmp = &mut p[IPV4_HEADER..];
    icmp[0] = ECHO_REQUEST;
    icmp[4..6].copy_from_slice(&ident.to_be_bytes());
    icmp[6..8].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in icmp[ICMP_HEADER..].iter_mut().enumerate() {
        *b = i as u8;
    }
    let sum = checksum(icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    p
}

/// (identifier, sequence) of an echo reply from `from`; `None` for anything else.
pub fn echo_reply(packet: &[u8], from: Ipv4Addr) -> Option<(u16, u16)> {
    let version_ihl = *packet.first()?;
    if version_ihl >> 4 != 4 || *packet.get(9)? != PROTO_ICMP {
        return None;
    }
    if packet.get(12..16)? != from.octets() {
        return None;
    }
    let icmp = packet.get(usize::from(version_ihl & 0x0f) * 4..)?;
    if *icmp.first()? != ECHO_REPLY {
        return None;
    }
    let ident = u16::from_be_bytes([*icmp.get(4)?, *icmp.get(5)?]);
    let seq = u16::from_be_bytes([*icmp.get(6)?, *icmp.get(7)?]);
    Some((ident, seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_checksums_verify_and_a_reply_parses() {
        let a = Ipv4Addr::new(10, 200, 0, 2);
        let b = Ipv4Addr::new(10, 200, 0, 1);
        let mut p = echo_request(a, b, 7, 300);
        assert_eq!(checksum(&p[..IPV4_HEADER]), 0);
        assert_eq!(checksum(&p[IPV4_HEADER..]), 0);
        // What the hub's kernel sends back: addresses swapped, type 0.
        p[12..16].copy_from_slice(&b.octets());
        p[16..20].copy_from_slice(&a.octets());
        p[IPV4_HEADER] = ECHO_REPLY;
        assert_eq!(echo_reply(&p, b), Some((7, 300)));
        assert_eq!(echo_reply(&p, a), None);
        assert_eq!(echo_reply(&p[..10], b), None);
    }
}
