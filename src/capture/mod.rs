//! Reading a WAN capture for `trident audit`: pcap/pcapng records (`container`), link and
//! IP layers with bounded reassembly (`packet`, `defrag`), out come UDP datagrams for
//! keymix's pure audit core. Nothing is skipped silently: every frame that yields no
//! datagram is counted under why, and the audit prints the counts.

mod container;
mod defrag;
mod packet;
#[cfg(test)]
mod tests;

use keymix::audit::Datagram;

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
}

impl Stats {
    /// Frames or packets that may have held a datagram the audit did not get.
    pub fn unreadable(&self) -> u64 {
        self.unsupported_link
            + self.malformed
            + self.truncated
            + self.fragments_invalid
            + self.fragments_unfinished
    }
}

pub struct Capture {
    pub datagrams: Vec<Datagram>,
    pub stats: Stats,
}

/// All UDP datagrams of a pcap or pcapng capture, in capture order (a reassembled one at
/// its last fragment), with the counts of what was not one.
pub fn read(file: &[u8]) -> anyhow::Result<Capture> {
    let mut stats = Stats::default();
    let mut datagrams = Vec::new();
    let mut reassembly = defrag::Defrag::default();
    container::frames(file, |frame| {
        stats.frames += 1;
        packet::decode(&frame, &mut reassembly, &mut stats, &mut datagrams);
    })?;
    reassembly.finish();
    stats.fragments_unfinished = reassembly.given_up;
    Ok(Capture { datagrams, stats })
}
