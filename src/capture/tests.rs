//! Crafted captures: fragments, extension headers, QinQ, several interfaces, and frames
//! that must be counted rather than skipped.

use super::*;

const PAYLOAD_LEN: usize = 1395; // the largest keymix Init

fn keymix_payload() -> Vec<u8> {
    let mut p: Vec<u8> = (0..PAYLOAD_LEN).map(|i| (i % 251) as u8).collect();
    p[0] = 0x81;
    p
}

pub(super) fn udp(payload: &[u8]) -> Vec<u8> {
    let len = (8 + payload.len()) as u16;
    let mut u = vec![0xca, 0x6c, 0xca, 0x6c];
    u.extend(len.to_be_bytes());
    u.extend([0, 0]);
    u.extend(payload);
    u
}

/// An IPv4 packet; `offset` in bytes (a multiple of 8).
pub(super) fn ipv4(proto: u8, id: u16, offset: usize, more: bool, body: &[u8]) -> Vec<u8> {
    let total = (20 + body.len()) as u16;
    let frag = (offset / 8) as u16 | if more { 0x2000 } else { 0 };
    let mut p = vec![0x45, 0];
    p.extend(total.to_be_bytes());
    p.extend(id.to_be_bytes());
    p.extend(frag.to_be_bytes());
    p.extend([64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
    p.extend(body);
    p
}

/// An IPv6 packet whose payload is behind hop-by-hop and destination options headers and,
/// when `frag` is set, a fragment header (offset in bytes, more flag, id).
fn ipv6(body: &[u8], frag: Option<(usize, bool, u32)>) -> Vec<u8> {
    let mut ext = vec![60, 0, 1, 4, 0, 0, 0, 0]; // hop-by-hop: PadN, next = dest opts
    let next = if frag.is_some() { 44 } else { 17 };
    ext.extend([next, 0, 1, 4, 0, 0, 0, 0]); // destination options
    if let Some((offset, more, id)) = frag {
        let off = ((offset / 8) as u16) << 3 | u16::from(more);
        ext.extend([17, 0]);
        ext.extend(off.to_be_bytes());
        ext.extend(id.to_be_bytes());
    }
    let plen = (ext.len() + body.len()) as u16;
    let mut p = vec![0x60, 0, 0, 0];
    p.extend(plen.to_be_bytes());
    p.extend([0, 64]); // next = hop-by-hop
    p.extend([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    p.extend([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    p.extend(ext);
    p.extend(body);
    p
}

/// Ethernet with the given tags (TPID, VLAN id), outermost first.
pub(super) fn eth(ethertype: u16, tags: &[(u16, u16)], ip: &[u8]) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
    for (tpid, vid) in tags {
        f.extend(tpid.to_be_bytes());
        f.extend(vid.to_be_bytes());
    }
    f.extend(ethertype.to_be_bytes());
    f.extend(ip);
    f
}

/// A classic little-endian pcap; each record (time, bytes, original length).
pub(super) fn pcap(linktype: u32, records: &[(u32, Vec<u8>, usize)]) -> Vec<u8> {
    let mut f = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
    f.extend([0u8; 8]);
    f.extend(65535u32.to_le_bytes());
    f.extend(linktype.to_le_bytes());
    for (t, r, orig) in records {
        f.extend(t.to_le_bytes());
        f.extend(0u32.to_le_bytes());
        f.extend((r.len() as u32).to_le_bytes());
        f.extend((*orig as u32).to_le_bytes());
        f.extend(r);
    }
    f
}

fn simple(linktype: u32, frames: &[Vec<u8>]) -> Vec<u8> {
    let recs: Vec<_> = frames.iter().map(|f| (0, f.clone(), f.len())).collect();
    pcap(linktype, &recs)
}

/// A little-endian pcapng with one interface per link type; packets (interface, bytes).
fn pcapng(linktypes: &[u16], packets: &[(u32, Vec<u8>)]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend(0x0a0d0d0au32.to_le_bytes());
    f.extend(28u32.to_le_bytes());
    f.extend(0x1a2b3c4du32.to_le_bytes());
    f.extend([1, 0, 0, 0]);
    f.extend((-1i64).to_le_bytes());
    f.extend(28u32.to_le_bytes());
    for lt in linktypes {
        f.extend(1u32.to_le_bytes());
        f.extend(20u32.to_le_bytes());
        f.extend(lt.to_le_bytes());
        f.extend(0u16.to_le_bytes());
        f.extend(0u32.to_le_bytes());
        f.extend(20u32.to_le_bytes());
    }
    for (iface, p) in packets {
        let padded = p.len().div_ceil(4) * 4;
        let total = (32 + padded) as u32;
        f.extend(6u32.to_le_bytes());
        f.extend(total.to_le_bytes());
        f.extend(iface.to_le_bytes());
        f.extend([0u8; 8]);
        f.extend((p.len() as u32).to_le_bytes());
        f.extend((p.len() as u32).to_le_bytes());
        f.extend(p);
        f.extend(vec![0u8; padded - p.len()]);
        f.extend(total.to_le_bytes());
    }
    f
}

/// The IPv4 fragments of a keymix Init over a 1280-byte MTU, as Linux sends them.
fn v4_fragments(id: u16) -> Vec<Vec<u8>> {
    let whole = udp(&keymix_payload());
    let cut = 1256; // 1280 - 20-byte header, rounded down to a multiple of 8
    vec![
        eth(0x0800, &[], &ipv4(17, id, 0, true, &whole[..cut])),
        eth(0x0800, &[], &ipv4(17, id, cut, false, &whole[cut..])),
    ]
}

#[test]
fn ipv4_fragments_are_reassembled_in_any_order() {
    let mut frames = v4_fragments(7);
    let mut reversed = v4_fragments(8);
    reversed.reverse();
    frames.extend(reversed);
    let cap = read(&simple(1, &frames)).unwrap();
    assert_eq!(cap.datagrams.len(), 2);
    for d in &cap.datagrams {
        assert_eq!(d.payload, keymix_payload());
        assert_eq!(d.src, "10.0.0.1:51820".parse().unwrap());
    }
    assert_eq!((cap.stats.fragments, cap.stats.reassembled), (4, 2));
    assert_eq!(cap.stats.unreadable(), 0, "{:?}", cap.stats);
}

#[test]
fn ipv6_fragments_behind_extension_headers_under_qinq() {
    let whole = udp(&keymix_payload());
    let cut = 1208; // 1280 - 40 - 24 bytes of extension headers, multiple of 8
    let qinq = [(0x88a8, 100), (0x8100, 200)];
    let frames = vec![
        eth(0x86dd, &qinq, &ipv6(&whole[..cut], Some((0, true, 99)))),
        eth(0x86dd, &qinq, &ipv6(&whole[cut..], Some((cut, false, 99)))),
        // Unfragmented, still behind two extension headers and one tag.
        eth(0x86dd, &[(0x8100, 5)], &ipv6(&udp(b"small"), None)),
    ];
    let cap = read(&simple(1, &frames)).unwrap();
    assert_eq!(cap.datagrams.len(), 2, "{:?}", cap.stats);
    assert_eq!(cap.datagrams[0].payload, keymix_payload());
    assert_eq!(cap.datagrams[0].src, "[fd00::1]:51820".parse().unwrap());
    assert_eq!(cap.datagrams[1].payload, b"small");
    assert_eq!(cap.stats.reassembled, 1);
}

#[test]
fn pcapng_with_two_interfaces_of_different_link_types() {
    let raw = ipv4(17, 1, 0, false, &udp(b"raw ip"));
    let ether = eth(
        0x0800,
        &[(0x8100, 7)],
        &ipv4(17, 2, 0, false, &udp(b"ethernet")),
    );
    let cap = read(&pcapng(&[101, 1], &[(1, ether), (0, raw.clone())])).unwrap();
    let payloads: Vec<&[u8]> = cap.datagrams.iter().map(|d| &d.payload[..]).collect();
    assert_eq!(payloads, [&b"ethernet"[..], &b"raw ip"[..]]);
    // A packet naming an interface the section does not have is an error.
    let err = read(&pcapng(&[1], &[(3, eth(0x0800, &[], &raw))]))
        .err()
        .unwrap();
    assert!(format!("{err:#}").contains("interface 3"), "{err:#}");
}

fn tcp_header() -> [u8; 20] {
    let mut t = [0u8; 20];
    t[12] = 0x50; // data offset: 5 words
    t
}

#[test]
fn frames_without_a_datagram_are_counted_by_reason() {
    let [first, _]: [Vec<u8>; 2] = v4_fragments(3).try_into().unwrap();
    let mut bad_ihl = ipv4(17, 4, 0, false, &udp(b"x"));
    bad_ihl[0] = 0x41;
    let whole = eth(0x0800, &[], &ipv4(17, 5, 0, false, &udp(&[0x82; 600])));
    let recs = vec![
        (0, first, 1294),                                               // never completed
        (0, eth(0x0800, &[], &bad_ihl), 0),                             // malformed
        (0, whole[..100].to_vec(), whole.len()),                        // snap length cut it
        (0, eth(0x0800, &[], &ipv4(6, 6, 0, false, &tcp_header())), 0), // TCP
        (0, eth(0x0806, &[], &[0; 28]), 0),                             // ARP
    ];
    let recs: Vec<_> = recs
        .into_iter()
        .map(|(t, f, o)| {
            let o = if o == 0 { f.len() } else { o };
            (t, f, o)
        })
        .collect();
    let cap = read(&pcap(1, &recs)).unwrap();
    let s = &cap.stats;
    assert!(cap.datagrams.is_empty());
    assert_eq!(s.frames, 5);
    assert_eq!(
        (
            s.fragments_unfinished,
            s.malformed,
            s.truncated,
            s.not_udp,
            s.not_ip
        ),
        (1, 1, 1, 1, 1),
        "{s:?}"
    );
    assert_eq!(s.unreadable(), 3);
    let other_link = read(&simple(147, &[vec![1, 2, 3]])).unwrap();
    assert_eq!(other_link.stats.unsupported_link, 1);
}

#[test]
fn reassembly_is_bounded_in_count_and_capture_time() {
    // A flood of first fragments that never complete.
    let flood: Vec<Vec<u8>> = (0..1000u16).map(|id| v4_fragments(id)[0].clone()).collect();
    let cap = read(&simple(1, &flood)).unwrap();
    assert_eq!(cap.stats.fragments_unfinished, 1000);
    // A second fragment after the timeout does not complete the packet.
    let [a, b]: [Vec<u8>; 2] = v4_fragments(9).try_into().unwrap();
    let late = defrag::TIMEOUT_SECS as u32 + 1;
    let (la, lb) = (a.len(), b.len());
    let cap = read(&pcap(1, &[(0, a, la), (late, b, lb)])).unwrap();
    assert!(cap.datagrams.is_empty());
    assert_eq!(cap.stats.fragments_unfinished, 2);
}

#[test]
fn cooked_and_big_endian_captures() {
    let ip = ipv4(17, 1, 0, false, &udp(b"cooked"));
    let mut sll2 = vec![0x08, 0x00];
    sll2.extend([0u8; 18]);
    sll2.extend(&ip);
    let cap = read(&simple(276, &[sll2])).unwrap();
    assert_eq!(cap.datagrams[0].payload, b"cooked");
    let mut be = vec![0xa1, 0xb2, 0xc3, 0xd4, 0, 2, 0, 4];
    be.extend([0u8; 8]);
    be.extend(65535u32.to_be_bytes());
    be.extend(101u32.to_be_bytes());
    be.extend([0u8; 8]);
    be.extend((ip.len() as u32).to_be_bytes());
    be.extend((ip.len() as u32).to_be_bytes());
    be.extend(&ip);
    assert_eq!(read(&be).unwrap().datagrams.len(), 1);
}

#[test]
fn truncated_or_garbage_captures_are_errors_not_panics() {
    let frames = v4_fragments(1);
    let file = simple(1, &frames);
    // The ends of the header and of the first record are valid ends of a file.
    let boundaries = [24, 24 + 16 + frames[0].len()];
    for len in 0..file.len() {
        let r = read(&file[..len]);
        assert!(r.is_err() || boundaries.contains(&len), "len {len}");
    }
    let err = read(&file[..100]).err().unwrap();
    assert!(format!("{err:#}").contains("truncated"), "{err:#}");
    assert!(read(b"GIF89a").is_err());
    let ng = pcapng(&[1], &[(0, v4_fragments(2)[1].clone())]);
    for len in 1..ng.len() {
        let _ = read(&ng[..len]);
    }
    let mut bad = ng.clone();
    bad[4] = 3; // block length not a multiple of 4
    assert!(read(&bad).is_err());
}
