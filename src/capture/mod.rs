//! Reading a WAN capture for `trident audit`: pcap/pcapng records read as a stream
//! (`stream`, `container`), link and IP layers with bounded reassembly (`packet`,
//! `defrag`), out come UDP datagrams, of which the keymix Inits and Resps are kept for
//! keymix's pure audit core (`keymix_messages`). Memory is bounded whatever the capture's
//! size: one record, the reassembly, and the kept messages. Nothing is skipped silently:
//! every frame that yields no datagram is counted under why, and the audit prints the
//! counts.

mod container;
mod defrag;
pub(crate) mod keymix_messages;
mod packet;
mod stream;
#[cfg(test)]
mod streaming_tests;
#[cfg(test)]
mod tests;

use std::io::Read;
use std::net::SocketAddr;

use keymix::audit::Datagram;

pub use keymix_messages::MAX_KEPT_BYTES;

/// What the reader made of the capture's frames.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Packet records in the file.
    pub frames: u64,
    /// UDP datagrams handed to the audit (including reassembled ones).
    pub udp: u64,
    /// Of those, datagrams rebuilt from IP fragments.
    pub reassembled: u64,
    /// IP fragments read (each is part of some datagram).
    pub fragments: u64,
    /// Frames that are IP but not UDP (TCP, ICMP, ...): not the audit's business.
    pub not_udp: u64,
    /// Frames without IP (ARP, LLDP, ...).
    pub not_ip: u64,
    /// Frames of a link type the reader does not know.
    pub unsupported_link: u64,
    /// Frames whose headers do not parse.
    pub malformed: u64,
    /// Frames cut by the capture's snap length before their end.
    pub truncated: u64,
    /// Fragments that contradict their packet's other fragments (the packet is dropped).
    pub fragments_invalid: u64,
    /// Fragmented packets never completed (missing fragments, timed out or evicted).
    pub fragments_unfinished: u64,
    /// Distinct keymix Inits and Resps kept for the audit.
    pub keymix_kept: u64,
    /// Keymix Inits and Resps not kept: the kept ones reached [`MAX_KEPT_BYTES`].
    pub keymix_not_kept: u64,
}

impl Stats {
    /// Frames or packets that may have held a datagram the audit did not get.
    pub fn unreadable(&self) -> u64 {
        self.unsupported_link
            + self.malformed
            + self.truncated
            + self.fragments_invalid
            + self.fragments_unfinished
            + self.keymix_not_kept
    }
}

/// One UDP datagram as read, borrowing the capture's bytes.
pub struct Udp<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub payload: &'a [u8],
}

pub struct Capture {
    pub datagrams: Vec<Datagram>,
    pub stats: Stats,
}

/// Calls `each` for every UDP datagram of a pcap or pcapng capture read from `reader`, in
/// capture order (a reassembled one at its last fragment), and returns the counts of what
/// was not one.
fn read_with(reader: impl Read, mut each: impl FnMut(Udp<'_>)) -> anyhow::Result<Stats> {
    let mut stats = Stats::default();
    let mut reassembly = defrag::Defrag::default();
    container::frames(reader, |frame| {
        stats.frames += 1;
        packet::decode(&frame, &mut reassembly, &mut stats, &mut each);
    })?;
    reassembly.finish();
    stats.fragments_unfinished = reassembly.given_up;
    Ok(stats)
}

/// What the audit needs of a capture: its keymix Inits and Resps (each distinct message
/// once, in capture order), with the counts of the whole capture.
pub fn keymix_messages(reader: impl Read) -> anyhow::Result<Capture> {
    let mut keep = keymix_messages::KeymixMessages::default();
    let mut stats = read_with(reader, |d| keep.offer(d))?;
    stats.keymix_kept = keep.kept.len() as u64;
    stats.keymix_not_kept = keep.not_kept;
    Ok(Capture {
        datagrams: keep.kept,
        stats,
    })
}

/// Every UDP datagram of an in-memory capture (tests).
#[cfg(test)]
pub fn read(file: &[u8]) -> anyhow::Result<Capture> {
    let mut datagrams = Vec::new();
    let stats = read_with(file, |d| {
        datagrams.push(Datagram {
            src: d.src,
            dst: d.dst,
            payload: d.payload.to_vec(),
        })
    })?;
    Ok(Capture { datagrams, stats })
}
