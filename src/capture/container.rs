//! The capture container: classic pcap (either byte order, µs or ns timestamps) and pcapng
//! (several sections and interfaces, each with its own link type), read with `pcap-parser`.
//! Yields each packet record with its interface's link type and its capture time; the
//! packet bytes are the next layer's business.

use anyhow::{anyhow, bail};
use pcap_parser::nom;
use pcap_parser::pcapng::Block;
use pcap_parser::traits::PcapNGPacketBlock as _;
use pcap_parser::{
    parse_block_be, parse_block_le, parse_pcap_frame, parse_pcap_frame_be, parse_pcap_header,
    parse_sectionheaderblock, Linktype, PcapError,
};

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

/// Names the byte where a record could not be read. `Incomplete` is a file that ends
/// inside a record (a capture cut short); anything else is not a capture this reader can
/// trust past that point, so it is an error rather than a silent stop.
fn record_error(file: &[u8], rest: &[u8], e: &nom::Err<PcapError<&[u8]>>) -> anyhow::Error {
    let at = file.len() - rest.len();
    match e {
        nom::Err::Incomplete(_) => {
            anyhow!("truncated at byte {at} (the file ends inside a record)")
        }
        _ => anyhow!("malformed record at byte {at}"),
    }
}

/// Calls `each` for every packet record of `file`, in file order.
pub fn frames(file: &[u8], mut each: impl FnMut(Frame<'_>)) -> anyhow::Result<()> {
    match file.get(..4) {
        Some([0x0a, 0x0d, 0x0d, 0x0a]) => pcapng(file, &mut each),
        Some([0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1])
        | Some([0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d]) => pcap(file, &mut each),
        _ => bail!("not a pcap or pcapng file"),
    }
}

fn pcap(file: &[u8], each: &mut dyn FnMut(Frame<'_>)) -> anyhow::Result<()> {
    let (mut rest, header) = parse_pcap_header(file)
        .map_err(|e| record_error(file, file, &e).context("pcap file header"))?;
    let parse: fn(&[u8]) -> NomResult<'_, pcap_parser::LegacyPcapBlock<'_>> =
        if header.is_bigendian() {
            parse_pcap_frame_be
        } else {
            parse_pcap_frame
        };
    while !rest.is_empty() {
        let (next, rec) = parse(rest).map_err(|e| record_error(file, rest, &e))?;
        each(Frame {
            linktype: header.network,
            interface: 0,
            time: u64::from(rec.ts_sec),
            data: rec.data,
            truncated: rec.origlen > rec.caplen,
        });
        rest = next;
    }
    Ok(())
}

/// An interface of the current pcapng section.
struct Interface {
    linktype: Linktype,
    resolution: u64,
    offset: i64,
}

fn pcapng(file: &[u8], each: &mut dyn FnMut(Frame<'_>)) -> anyhow::Result<()> {
    parse_sectionheaderblock(file).map_err(|e| record_error(file, file, &e))?;
    let mut big_endian = false;
    let mut interfaces: Vec<Interface> = Vec::new();
    // Simple packet blocks carry no timestamp: they get the last one seen.
    let mut time = 0u64;
    let mut rest = file;
    while !rest.is_empty() {
        let parse = if big_endian {
            parse_block_be
        } else {
            parse_block_le
        };
        let (next, block) = parse(rest).map_err(|e| record_error(file, rest, &e))?;
        let at = file.len() - rest.len();
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
        rest = next;
    }
    Ok(())
}
