//! Issue 21, finding 9: the audit reads a capture as a stream. A capture far larger than
//! what the tests may allocate passes through a buffer of about one read, and only the
//! keymix Inits and Resps are kept, each distinct one once and within a limit.

use std::io::Read;

use keymix::message::{Init, Resp, MLKEM_CT_LEN, MLKEM_EK_LEN};
use keymix::SourceMask;

use super::keymix_messages::KeymixMessages;
use super::stream::{Stream, MAX_RECORD};
use super::tests::{eth, ipv4, pcap, udp};
use super::*;

fn init(sender_index: u32) -> Vec<u8> {
    Init {
        proposed: SourceMask::BASE,
        sender_index,
        epoch: 1,
        timestamp: 0,
        s_init: [1; 32],
        e_init: [2; 32],
        ek: Box::new([3; MLKEM_EK_LEN]),
        key_ids: Vec::new(),
        auth: [4; 16],
        mac1: [5; 16],
        mac2: [0; 16],
    }
    .to_bytes()
}

fn resp(receiver_index: u32) -> Vec<u8> {
    Resp {
        sources: SourceMask::BASE,
        sender_index: 9,
        receiver_index,
        epoch: 1,
        e_resp: [6; 32],
        ct: Box::new([7; MLKEM_CT_LEN]),
        confirm: [8; 16],
        auth: [9; 16],
        mac1: [10; 16],
    }
    .to_bytes()
}

/// An Ethernet frame of one UDP datagram.
fn frame(payload: &[u8]) -> Vec<u8> {
    eth(0x0800, &[], &ipv4(17, 1, 0, false, &udp(payload)))
}

/// A pcap made up as it is read: its header and `count` records, record `n` being
/// `record(n)`; never in memory as a whole.
struct Synthetic<F> {
    record: F,
    count: usize,
    next: usize,
    pending: Vec<u8>,
    at: usize,
}

impl<F: FnMut(usize) -> Vec<u8>> Read for Synthetic<F> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.pending.len() {
            if self.next == self.count {
                return Ok(0);
            }
            let f = (self.record)(self.next);
            self.next += 1;
            // One record of a pcap, without the file header.
            self.pending = pcap(1, &[(0, f.clone(), f.len())]).split_off(24);
            self.at = 0;
        }
        let n = buf.len().min(self.pending.len() - self.at);
        buf[..n].copy_from_slice(&self.pending[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

fn synthetic<F: FnMut(usize) -> Vec<u8>>(count: usize, record: F) -> impl Read {
    std::io::Read::chain(
        std::io::Cursor::new(pcap(1, &[])),
        Synthetic {
            record,
            count,
            next: 0,
            pending: Vec::new(),
            at: 0,
        },
    )
}

#[test]
fn a_large_capture_keeps_only_its_distinct_keymix_messages() {
    // About 150 MB of WireGuard data around one exchange, its Init sent three times.
    let data = frame(&[4u8; 1400]);
    let (i, r) = (frame(&init(77)), frame(&resp(77)));
    let count = 100_000;
    let cap = keymix_messages(synthetic(count, |n| match n {
        10 | 500 | 90_000 => i.clone(),
        50_000 => r.clone(),
        _ => data.clone(),
    }))
    .unwrap();
    let payloads: Vec<Vec<u8>> = cap.datagrams.iter().map(|d| d.payload.clone()).collect();
    assert_eq!(payloads, [init(77), resp(77)]);
    let s = cap.stats;
    assert_eq!((s.frames, s.udp), (count as u64, count as u64));
    assert_eq!(
        (s.keymix_kept, s.keymix_not_kept, s.unreadable()),
        (2, 0, 0)
    );
}

#[test]
fn the_stream_buffer_holds_a_record_not_the_file() {
    let record = 1500;
    let mut s = Stream::new(synthetic(20_000, |_| vec![0u8; record - 16]));
    s.peek(24).unwrap();
    s.consume(24);
    let mut records = 0;
    while !s.at_end().unwrap() {
        assert_eq!(s.record(record).unwrap().len(), record);
        s.consume(record);
        records += 1;
    }
    assert_eq!(records, 20_000);
    // 30 MB read through a buffer of about one 1 MiB read.
    assert!(s.capacity() <= 4 << 20, "{}", s.capacity());
    // A length field beyond any record is an error before anything is allocated for it.
    let err = Stream::new(&[0u8; 8][..]).peek(MAX_RECORD + 1).unwrap_err();
    assert!(format!("{err}").contains("more than"), "{err}");
}

#[test]
fn a_record_length_past_the_limit_is_an_error_not_an_allocation() {
    let mut file = pcap(1, &[(0, vec![0u8; 40], 40)]);
    file[24 + 8..24 + 12].copy_from_slice(&u32::MAX.to_le_bytes());
    let err = read(&file).err().unwrap();
    assert!(format!("{err:#}").contains("more than"), "{err:#}");
}

#[test]
fn kept_messages_are_bounded_and_the_rest_counted() {
    let mut keep = KeymixMessages::with_limit(3 * init(0).len());
    fn udp(payload: &[u8]) -> Udp<'_> {
        Udp {
            src: "10.0.0.1:51820".parse().unwrap(),
            dst: "10.0.0.2:51820".parse().unwrap(),
            payload,
        }
    }
    for n in 0..5 {
        keep.offer(udp(&init(n)));
        keep.offer(udp(&init(n))); // a retransmission costs nothing
    }
    // Junk that looks like keymix, and other message types: not kept, not counted.
    let mut junk = init(9);
    junk.push(0);
    keep.offer(udp(&junk));
    keep.offer(udp(&[0x83; 64]));
    assert_eq!(keep.kept.len(), 3);
    assert_eq!(keep.not_kept, 4);
}

/// The framing reads each block's length in its section's byte order, a section header's
/// from its own byte-order magic.
#[test]
fn a_big_endian_pcapng_section_after_a_little_endian_one() {
    fn section(big: bool, packet: &[u8]) -> Vec<u8> {
        let w = |v: u32| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let h = |v: u16| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut f = Vec::new();
        f.extend(w(0x0a0d0d0a));
        f.extend(w(28));
        f.extend(w(0x1a2b3c4d));
        f.extend(h(1));
        f.extend(h(0));
        f.extend((-1i64).to_le_bytes());
        f.extend(w(28));
        f.extend(w(1)); // interface description: Ethernet
        f.extend(w(20));
        f.extend(h(1));
        f.extend(h(0));
        f.extend(w(0));
        f.extend(w(20));
        let padded = packet.len().div_ceil(4) * 4;
        let total = (32 + padded) as u32;
        f.extend(w(6)); // enhanced packet
        f.extend(w(total));
        f.extend(w(0));
        f.extend([0u8; 8]);
        f.extend(w(packet.len() as u32));
        f.extend(w(packet.len() as u32));
        f.extend(packet);
        f.extend(vec![0u8; padded - packet.len()]);
        f.extend(w(total));
        f
    }
    let mut file = section(false, &frame(b"little"));
    file.extend(section(true, &frame(b"big")));
    let cap = read(&file).unwrap();
    let payloads: Vec<&[u8]> = cap.datagrams.iter().map(|d| &d.payload[..]).collect();
    assert_eq!(payloads, [&b"little"[..], &b"big"[..]]);
    // A section header whose byte-order magic is neither is malformed, not misread.
    let mut bad = section(true, &frame(b"x"));
    bad[8] = 0;
    let err = read(&bad).err().unwrap();
    assert!(
        format!("{err:#}").contains("malformed record at byte 0"),
        "{err:#}"
    );
}
