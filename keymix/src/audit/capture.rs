//! A bounded reader for pcap and pcapng captures that yields the UDP datagrams inside
//! (IPv4 and IPv6 over Ethernet, Linux cooked v1/v2, raw IP or BSD loopback). Anything it
//! does not understand is skipped; anything truncated or inconsistent is an error, never a
//! panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Largest packet record accepted (libpcap's own maximum snap length).
const MAX_RECORD: usize = 262_144;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaptureError {
    #[error("not a pcap or pcapng file")]
    NotACapture,
    #[error("truncated at byte {0}")]
    Truncated(usize),
    #[error("record at byte {0} is larger than {MAX_RECORD} bytes")]
    Oversized(usize),
    #[error("malformed pcapng block at byte {0}")]
    BadBlock(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub payload: Vec<u8>,
}

#[derive(Clone, Copy)]
enum Endian {
    Little,
    Big,
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    endian: Endian,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CaptureError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(CaptureError::Truncated(self.pos))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32, CaptureError> {
        let b: [u8; 4] = self
            .take(4)?
            .try_into()
            .map_err(|_| CaptureError::Truncated(self.pos))?;
        Ok(match self.endian {
            Endian::Little => u32::from_le_bytes(b),
            Endian::Big => u32::from_be_bytes(b),
        })
    }
    fn u16(&mut self) -> Result<u16, CaptureError> {
        let b: [u8; 2] = self
            .take(2)?
            .try_into()
            .map_err(|_| CaptureError::Truncated(self.pos))?;
        Ok(match self.endian {
            Endian::Little => u16::from_le_bytes(b),
            Endian::Big => u16::from_be_bytes(b),
        })
    }
}

/// All UDP datagrams of a pcap or pcapng capture, in file order.
pub fn udp_datagrams(file: &[u8]) -> Result<Vec<Datagram>, CaptureError> {
    let magic = file.get(..4).ok_or(CaptureError::NotACapture)?;
    match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => pcap(file, Endian::Little),
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => pcap(file, Endian::Big),
        [0x0a, 0x0d, 0x0d, 0x0a] => pcapng(file),
        _ => Err(CaptureError::NotACapture),
    }
}

fn pcap(file: &[u8], endian: Endian) -> Result<Vec<Datagram>, CaptureError> {
    let mut c = Cursor {
        buf: file,
        pos: 0,
        endian,
    };
    c.take(20)?; // magic, version, thiszone, sigfigs, snaplen
    let linktype = c.u32()?;
    let mut out = Vec::new();
    while c.pos < file.len() {
        let at = c.pos;
        c.take(8)?; // timestamp
        let incl = c.u32()? as usize;
        c.u32()?; // original length
        if incl > MAX_RECORD {
            return Err(CaptureError::Oversized(at));
        }
        let data = c.take(incl)?;
        out.extend(link_layer(linktype, data));
    }
    Ok(out)
}

fn pcapng(file: &[u8]) -> Result<Vec<Datagram>, CaptureError> {
    let mut endian = Endian::Little;
    let mut linktypes: Vec<u32> = Vec::new();
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < file.len() {
        let block = file.get(pos..).ok_or(CaptureError::Truncated(pos))?;
        if block.get(..4) == Some(&[0x0a, 0x0d, 0x0d, 0x0a]) {
            // Section header: its byte-order magic decides the endianness of the section.
            endian = match block.get(8..12) {
                Some([0x4d, 0x3c, 0x2b, 0x1a]) => Endian::Little,
                Some([0x1a, 0x2b, 0x3c, 0x4d]) => Endian::Big,
                _ => return Err(CaptureError::BadBlock(pos)),
            };
            linktypes.clear();
        }
        let mut c = Cursor {
            buf: block,
            pos: 0,
            endian,
        };
        let block_type = c.u32()?;
        let total = c.u32()? as usize;
        if total < 12 || !total.is_multiple_of(4) || total > MAX_RECORD + 64 {
            return Err(CaptureError::BadBlock(pos));
        }
        let body = block
            .get(8..total - 4)
            .ok_or(CaptureError::Truncated(pos))?;
        let mut b = Cursor {
            buf: body,
            pos: 0,
            endian,
        };
        match block_type {
            1 => {
                linktypes.push(u32::from(b.u16()?));
            }
            6 => {
                let iface = b.u32()? as usize;
                b.take(8)?; // timestamp
                let cap = b.u32()? as usize;
                b.u32()?; // original length
                let data = b.take(cap)?;
                let lt = *linktypes.get(iface).ok_or(CaptureError::BadBlock(pos))?;
                out.extend(link_layer(lt, data));
            }
            3 => {
                let orig = b.u32()? as usize;
                let data = body.get(4..).ok_or(CaptureError::Truncated(pos))?;
                let data = &data[..orig.min(data.len())];
                let lt = *linktypes.first().ok_or(CaptureError::BadBlock(pos))?;
                out.extend(link_layer(lt, data));
            }
            _ => {}
        }
        pos += total;
    }
    Ok(out)
}

/// Strips the link layer; `None` for anything that is not IPv4/IPv6 UDP.
fn link_layer(linktype: u32, frame: &[u8]) -> Option<Datagram> {
    let (ethertype, ip) = match linktype {
        // Ethernet, with at most one 802.1Q tag.
        1 => {
            let et = u16::from_be_bytes(frame.get(12..14)?.try_into().ok()?);
            if et == 0x8100 {
                (
                    u16::from_be_bytes(frame.get(16..18)?.try_into().ok()?),
                    frame.get(18..)?,
                )
            } else {
                (et, frame.get(14..)?)
            }
        }
        // Linux cooked capture v1 (tcpdump -i any).
        113 => (
            u16::from_be_bytes(frame.get(14..16)?.try_into().ok()?),
            frame.get(16..)?,
        ),
        // Linux cooked capture v2.
        276 => (
            u16::from_be_bytes(frame.get(0..2)?.try_into().ok()?),
            frame.get(20..)?,
        ),
        // Raw IP.
        101 | 12 | 14 => (0, frame),
        228 => (0x0800, frame),
        229 => (0x86dd, frame),
        // BSD loopback: 4-byte address family in host order.
        0 => (0, frame.get(4..)?),
        _ => return None,
    };
    match (ethertype, ip.first().map(|b| b >> 4)) {
        (0x0800, _) | (0, Some(4)) => ipv4(ip),
        (0x86dd, _) | (0, Some(6)) => ipv6(ip),
        _ => None,
    }
}

fn ipv4(p: &[u8]) -> Option<Datagram> {
    let ihl = usize::from(p.first()? & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes(p.get(2..4)?.try_into().ok()?));
    let frag = u16::from_be_bytes(p.get(6..8)?.try_into().ok()?);
    // Skip fragments: keymix messages fit one packet and are never fragmented.
    if *p.get(9)? != 17 || frag & 0x3fff != 0 || ihl < 20 {
        return None;
    }
    let src = IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(p.get(12..16)?).ok()?));
    let dst = IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(p.get(16..20)?).ok()?));
    udp(src, dst, p.get(ihl..total.min(p.len()))?)
}

fn ipv6(p: &[u8]) -> Option<Datagram> {
    if *p.get(6)? != 17 {
        return None;
    }
    let src = IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(p.get(8..24)?).ok()?));
    let dst = IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(p.get(24..40)?).ok()?));
    udp(src, dst, p.get(40..)?)
}

fn udp(src: IpAddr, dst: IpAddr, seg: &[u8]) -> Option<Datagram> {
    let sport = u16::from_be_bytes(seg.get(0..2)?.try_into().ok()?);
    let dport = u16::from_be_bytes(seg.get(2..4)?.try_into().ok()?);
    let len = usize::from(u16::from_be_bytes(seg.get(4..6)?.try_into().ok()?));
    let payload = seg.get(8..len.max(8).min(seg.len()))?;
    Some(Datagram {
        src: SocketAddr::new(src, sport),
        dst: SocketAddr::new(dst, dport),
        payload: payload.to_vec(),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An Ethernet/IPv4/UDP frame carrying `payload` (checksums zero: not checked).
    pub fn frame(payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 14];
        f[12] = 0x08;
        let total = 20 + 8 + payload.len();
        let mut ip = vec![
            0x45,
            0,
            (total >> 8) as u8,
            total as u8,
            0,
            0,
            0x40,
            0,
            64,
            17,
            0,
            0,
        ];
        ip.extend([10, 0, 0, 1, 10, 0, 0, 2]);
        f.extend(ip);
        let ulen = 8 + payload.len();
        f.extend([0xca, 0x6c, 0xca, 0x6c, (ulen >> 8) as u8, ulen as u8, 0, 0]);
        f.extend(payload);
        f
    }

    /// A little-endian classic pcap of Ethernet frames.
    pub fn pcap_file(frames: &[Vec<u8>]) -> Vec<u8> {
        let mut f = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
        f.extend([0u8; 8]);
        f.extend(65535u32.to_le_bytes());
        f.extend(1u32.to_le_bytes());
        for fr in frames {
            f.extend([0u8; 8]);
            f.extend((fr.len() as u32).to_le_bytes());
            f.extend((fr.len() as u32).to_le_bytes());
            f.extend(fr);
        }
        f
    }

    fn pcapng_file(frames: &[Vec<u8>]) -> Vec<u8> {
        let mut f = Vec::new();
        // Section header block.
        f.extend(0x0a0d0d0au32.to_le_bytes());
        f.extend(28u32.to_le_bytes());
        f.extend(0x1a2b3c4du32.to_le_bytes());
        f.extend([1, 0, 0, 0]);
        f.extend((-1i64).to_le_bytes());
        f.extend(28u32.to_le_bytes());
        // Interface description block, Ethernet.
        f.extend(1u32.to_le_bytes());
        f.extend(20u32.to_le_bytes());
        f.extend(1u16.to_le_bytes());
        f.extend(0u16.to_le_bytes());
        f.extend(0u32.to_le_bytes());
        f.extend(20u32.to_le_bytes());
        for fr in frames {
            let padded = fr.len().div_ceil(4) * 4;
            let total = (32 + padded) as u32;
            f.extend(6u32.to_le_bytes());
            f.extend(total.to_le_bytes());
            f.extend(0u32.to_le_bytes());
            f.extend([0u8; 8]);
            f.extend((fr.len() as u32).to_le_bytes());
            f.extend((fr.len() as u32).to_le_bytes());
            f.extend(fr);
            f.extend(vec![0u8; padded - fr.len()]);
            f.extend(total.to_le_bytes());
        }
        f
    }

    #[test]
    fn pcap_and_pcapng_yield_the_udp_payloads() {
        let frames = vec![frame(b"hello"), frame(&[0x81; 1395])];
        for file in [pcap_file(&frames), pcapng_file(&frames)] {
            let d = udp_datagrams(&file).unwrap();
            assert_eq!(d.len(), 2);
            assert_eq!(d[0].payload, b"hello");
            assert_eq!(d[1].payload.len(), 1395);
            assert_eq!(d[0].src, "10.0.0.1:51820".parse().unwrap());
        }
    }

    #[test]
    fn truncated_or_garbage_captures_are_errors_not_panics() {
        let file = pcap_file(&[frame(b"hello world")]);
        for len in 0..file.len() {
            let r = udp_datagrams(&file[..len]);
            assert!(r.is_err() || len >= 24, "len {len}");
        }
        assert!(udp_datagrams(&file[..file.len() - 1]).is_err());
        assert_eq!(udp_datagrams(b"GIF89a"), Err(CaptureError::NotACapture));
        let ng = pcapng_file(&[frame(b"x")]);
        for len in 1..ng.len() {
            let _ = udp_datagrams(&ng[..len]);
        }
        let mut bad = ng.clone();
        bad[4] = 3; // block length not a multiple of 4
        assert!(udp_datagrams(&bad).is_err());
    }
}
