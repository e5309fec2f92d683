//! The capture container: classic pcap (either byte order, µs or ns timestamps) and pcapng
//! (several sections and interfaces, each with its own link type), read with `pcap-parser`.
//! Yields each packet record with its interface's link type and its capture time; the
//! packet bytes are the next layer's business. The file is read as a stream (`stream`).

use std::io::Read;

use anyhow::{anyhow, bail};
use pcap_parser::nom;
use pcap_parser::pcapng::Block;
use pcap_parser::traits::PcapNGPacketBlock as _;
use pcap_parser::{
    parse_block_be, parse_block_le, parse_pcap_frame, parse_pcap_frame_be, parse_pcap_header,
    Linktype, PcapError,
};

use super::stream::Stream;

/// One packet record.
pub struct Frame<'a> {
    pub linktype: Linktype,
    /// The interface it was captured on (0 for classic pcap).
    pub interface: u32,
    /// Capture time in whole seconds: the clock that expires unfinished IP reassemblies.
    pub time: u64,
    /// The captured bytes, possibly fewer than were on the wire (`truncated`).
    pub data: &'a [u8],
    pub truncated: bool,
}

type NomResult<'a, T> = Result<(&'a [u8], T), nom::Err<PcapError<&'a [u8]>>>;

/// A record that does not parse although the file holds all the bytes its length field
/// claims: it contradicts itself, so nothing past it can be trusted; an error rather than
/// a silent stop.
fn malformed(at: u64) -> anyhow::Error {
    anyhow!("malformed record at byte {at}")
}

/// A record's 32-bit length field.
fn length(field: Option<&[u8]>, big_endian: bool) -> Option<usize> {
    let bytes: [u8; 4] = field?.try_into().ok()?;
    let n = if big_endian {
        u32::from_be_bytes(bytes)
    } else {
        u32::from_le_bytes(bytes)
    };
    usize::try_from(n).ok()
}

/// Calls `each` for every packet record read from `reader`, in file order; only the
/// record at hand is in memory.
pub fn frames(reader: impl Read, mut each: impl FnMut(Frame<'_>)) -> anyhow::Result<()> {
    let mut s = Stream::new(reader);
    match s.peek(4)? {
        [0x0a, 0x0d, 0x0d, 0x0a] => pcapng(&mut s, &mut each),
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => pcap(&mut s, &mut each),
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => pcap(&mut s, &mut each),
        _ => bail!("not a pcap or pcapng file"),
    }
}

/// A classic pcap file header's length.
const PCAP_HEADER: usize = 24;
/// A classic pcap record header's length; the captured length is at bytes 8..12.
const PCAP_RECORD_HEADER: usize = 16;

fn pcap<R: Read>(s: &mut Stream<R>, each: &mut dyn FnMut(Frame<'_>)) -> anyhow::Result<()> {
    let (_, header) = parse_pcap_header(s.peek(PCAP_HEADER)?).map_err(|e| {
        match e {
            nom::Err::Incomplete(_) => {
                anyhow!("truncated at byte 0 (the file ends inside a record)")
            }
            _ => malformed(0),
        }
        .context("pcap file header")
    })?;
    s.consume(PCAP_HEADER);
    let big_endian = header.is_bigendian();
    let parse: fn(&[u8]) -> NomResult<'_, pcap_parser::LegacyPcapBlock<'_>> = if big_endian {
        parse_pcap_frame_be
    } else {
        parse_pcap_frame
    };
    while !s.at_end()? {
        let at = s.offset();
        let caplen = length(s.record(PCAP_RECORD_HEADER)?.get(8..12), big_endian)
            .ok_or_else(|| malformed(at))?;
        let len = PCAP_RECORD_HEADER.saturating_add(caplen);
        let (_, rec) = parse(s.record(len)?).map_err(|_| malformed(at))?;
        each(Frame {
            linktype: header.network,
            interface: 0,
            time: u64::from(rec.ts_sec),
            data: rec.data,
            truncated: rec.origlen > rec.caplen,
        });
        s.consume(len);
    }
    Ok(())
}

/// An interface of the current pcapng section.
struct Interface {
    linktype: Linktype,
    resolution: u64,
    offset: i64,
}

/// The block type of a section header, the same in either byte order.
const SHB: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

/// The length of the pcapng block at the stream's position: in the byte order of its
/// section, or for a section header in the one its byte-order magic gives.
fn block_length<R: Read>(s: &mut Stream<R>, big_endian: bool) -> anyhow::Result<usize> {
    let at = s.offset();
    let head = s.record(8)?;
    let big_endian = if head.get(..4) == Some(&SHB[..]) {
        match s.record(12)?.get(8..12) {
            Some([0x1a, 0x2b, 0x3c, 0x4d]) => true,
            Some([0x4d, 0x3c, 0x2b, 0x1a]) => false,
            _ => return Err(malformed(at)),
        }
    } else {
        big_endian
    };
    let len = length(s.record(8)?.get(4..8), big_endian).ok_or_else(|| malformed(at))?;
    if len < 12 || len % 4 != 0 {
        return Err(malformed(at));
    }
    Ok(len)
}

fn pcapng<R: Read>(s: &mut Stream<R>, each: &mut dyn FnMut(Frame<'_>)) -> anyhow::Result<()> {
    let mut big_endian = false;
    let mut interfaces: Vec<Interface> = Vec::new();
    // Simple packet blocks carry no timestamp: they get the last one seen.
    let mut time = 0u64;
    while !s.at_end()? {
        let parse = if big_endian {
            parse_block_be
        } else {
            parse_block_le
        };
        let at = s.offset();
        let len = block_length(s, big_endian)?;
        let (_, block) = parse(s.record(len)?).map_err(|_| malformed(at))?;
        match block {
            Block::SectionHeader(shb) => {
                big_endian = shb.big_endian();
                interfaces.clear();
            }
            Block::InterfaceDescription(idb) => interfaces.push(Interface {
                linktype: idb.linktype,
                // An unknown resolution (bad option) falls back to pcapng's default, µs.
                resolution: idb.ts_resolution().unwrap_or(1_000_000),
                offset: idb.ts_offset(),
            }),
            Block::EnhancedPacket(epb) => {
                let iface = usize::try_from(epb.if_id)
                    .ok()
                    .and_then(|i| interfaces.get(i))
                    .ok_or_else(|| {
                        anyhow!("packet block at byte {at} names interface {} which the section does not describe", epb.if_id)
                    })?;
                // Not `decode_ts`: its offset addition overflows on hostile values.
                let ticks = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                time = (ticks / iface.resolution.max(1)).saturating_add_signed(iface.offset);
                each(Frame {
                    linktype: iface.linktype,
                    interface: epb.if_id,
                    time,
                    data: epb.packet_data(),
                    truncated: epb.origlen > epb.caplen,
                });
            }
            Block::SimplePacket(spb) => {
                let iface = interfaces.first().ok_or_else(|| {
                    anyhow!("simple packet block at byte {at} before any interface")
                })?;
                let data = spb.packet_data();
                each(Frame {
                    linktype: iface.linktype,
                    interface: 0,
                    time,
                    data,
                    truncated: usize::try_from(spb.origlen).is_ok_and(|o| o > data.len()),
                });
            }
            // Statistics, name resolution, secrets, custom blocks: no packets in them.
            _ => {}
        }
        s.consume(len);
    }
    Ok(())
}
