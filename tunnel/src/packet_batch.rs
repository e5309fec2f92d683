//! Reused packet buffers, filled and drained in batches, so the packet handlers see whole
//! batches and the kernel sees few system calls:
//!
//! * [`TunRx`]: TUN reads through tun-rs `recv_multiple`. With offload (IFF_VNET_HDR) one
//!   read returns a TSO super-packet of up to 64 KiB, split here into MTU-sized segments.
//! * [`TunTx`]: decrypted packets, written with tun-rs `send_multiple`, which coalesces TCP
//!   and UDP flows (GRO) into super-packets when offload is on.
//! * [`UdpRx`]: recvmmsg through quinn-udp, with UDP GRO (one buffer can hold many
//!   datagrams of one flow, `stride` bytes apart).
//! * [`UdpTx`]: encrypted datagrams laid out back to back in one buffer; runs of equal-sized
//!   datagrams to one destination go out in one `sendmsg` with UDP GSO.
//!
//! GSO/GRO support is probed at run time (tun-rs and quinn-udp); without it every path
//! falls back to one packet per buffer. All buffers are allocated once, at start.

use std::io::{self, IoSliceMut};
use std::net::SocketAddr;

use quinn_udp::{RecvMeta, Transmit, UdpSockRef, UdpSocketState};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tun_rs::{AsyncDevice, DeviceImpl, GROTable, IDEAL_BATCH_SIZE, VIRTIO_NET_HDR_LEN};

use crate::udp_socket::canonical;

/// Room in front of every TUN packet for the virtio-net header (offload mode).
pub const TUN_OFFSET: usize = VIRTIO_NET_HDR_LEN;
/// Largest IP packet (and largest UDP datagram).
pub const MAX_PACKET: usize = 65_535;
/// Segment buffers for TUN reads: one super-packet splits into at most
/// `IDEAL_BATCH_SIZE` segments, and we read again only while that much room is left.
const TUN_RX_BUFS: usize = 2 * IDEAL_BATCH_SIZE;
/// Datagrams (or GRO trains of datagrams) per recvmmsg.
const UDP_RX_BUFS: usize = 16;
/// Bytes of one GSO send: the kernel takes at most 64 KiB minus headers.
const GSO_MAX_BYTES: usize = 64_000;
/// WireGuard data overhead (header 16 + tag 16) plus padding to 16 bytes.
const WG_OVERHEAD: usize = 32 + 16;

/// Packets read from the TUN device.
pub struct TunRx {
    original: Box<[u8]>,
    bufs: Vec<Box<[u8]>>,
    sizes: Vec<usize>,
    count: usize,
    /// Packets of the last fill that were read but could not be split (counted, lost).
    dropped: u64,
}

impl TunRx {
    pub fn new(mtu: usize) -> Self {
        let size = mtu.max(1280) + 64;
        Self {
            original: vec![0u8; VIRTIO_NET_HDR_LEN + MAX_PACKET].into_boxed_slice(),
            bufs: (0..TUN_RX_BUFS)
                .map(|_| vec![0u8; size].into_boxed_slice())
                .collect(),
            sizes: vec![0; TUN_RX_BUFS],
            count: 0,
            dropped: 0,
        }
    }

    /// Packets the last fill read from the device but had to drop.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The packets of the last fill.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.bufs
            .iter()
            .zip(self.sizes.iter())
            .take(self.count)
            .map(|(buf, len)| buf.get(..*len).unwrap_or_default())
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Waits for the TUN device, then reads what is queued while a whole super-packet still
    /// fits (cancel safe: nothing is consumed before the first read returns).
    ///
    /// A packet tun-rs cannot split (more segments than buffers are left, which any local
    /// user gets with a tiny MSS, or a malformed virtio header) has already been read when
    /// the error comes back: it is dropped and counted in [`Self::dropped`], and the batch
    /// goes on. Only an error of the read itself (the device is gone) is returned.
    pub async fn fill(&mut self, tun: &AsyncDevice) -> io::Result<usize> {
        self.count = 0;
        self.dropped = 0;
        match tun
            .recv_multiple(&mut self.original, &mut self.bufs, &mut self.sizes, 0)
            .await
        {
            Ok(n) => self.count = n.min(self.bufs.len()),
            Err(e) if is_packet_error(&e) => {
                // Back to the event loop (an empty batch): never a busy loop in here.
                tracing::debug!("TUN packet dropped: {e}");
                self.dropped += 1;
                return Ok(0);
            }
            Err(e) => return Err(e),
        }
        // Bounded: every round reads one packet or stops.
        for _ in 0..TUN_RX_BUFS {
            if self.bufs.len().saturating_sub(self.count) < IDEAL_BATCH_SIZE {
                break;
            }
            let (Some(bufs), Some(sizes)) = (
                self.bufs.get_mut(self.count..),
                self.sizes.get_mut(self.count..),
            ) else {
                break;
            };
            match tun.try_recv_multiple(&mut self.original, bufs, sizes, 0) {
                Ok(n) => self.count = (self.count + n).min(self.bufs.len()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if is_packet_error(&e) => {
                    tracing::debug!("TUN packet dropped: {e}");
                    self.dropped += 1;
                }
                // The batch so far is good; a persistent error shows on the next fill.
                Err(e) => {
                    tracing::debug!("TUN read: {e}");
                    break;
                }
            }
        }
        Ok(self.count)
    }
}

/// Whether a tun-rs receive error is about one packet (already consumed) rather than the
/// device: tun-rs's own checks after the read (segment count, virtio header, lengths)
/// build errors without an OS error code; a failing read(2) always has one.
fn is_packet_error(e: &io::Error) -> bool {
    e.raw_os_error().is_none() && e.kind() != io::ErrorKind::WouldBlock
}

/// Decrypted packets waiting for one batched TUN write.
pub struct TunTx {
    bufs: Vec<Vec<u8>>,
    count: usize,
    gro: GROTable,
    /// Lengths of the queued buffers, to undo what a failed GRO pass appended to them.
    lens: Vec<usize>,
}

/// Why a packet was not queued for the TUN device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotQueued {
    /// The batch is full (flush first).
    Full,
    /// Not a well-formed IP packet ([`crate::inner_packet`]).
    Malformed,
}

impl Default for TunTx {
    fn default() -> Self {
        Self::new()
    }
}

impl TunTx {
    pub fn new() -> Self {
        Self {
            // Capacity for a whole coalesced super-packet, so GRO never reallocates.
            bufs: (0..TUN_RX_BUFS)
                .map(|_| Vec::with_capacity(TUN_OFFSET + MAX_PACKET + 64))
                .collect(),
            count: 0,
            gro: GROTable::default(),
            lens: Vec::with_capacity(TUN_RX_BUFS),
        }
    }

    /// A buffer of at least `len` bytes to decrypt the next packet into, or None when the
    /// batch is full (flush first).
    pub fn slot(&mut self, len: usize) -> Option<&mut [u8]> {
        let buf = self.bufs.get_mut(self.count)?;
        // Only grows by the difference to the previous use: no large memset per packet.
        buf.resize(TUN_OFFSET + len.min(MAX_PACKET), 0);
        buf.get_mut(TUN_OFFSET..)
    }

    /// Keeps the first `len` bytes written into the last `slot`, if they are a well-formed
    /// IP packet: a malformed one would make tun-rs reject the whole batch.
    pub fn commit(&mut self, len: usize) -> Result<(), NotQueued> {
        let buf = self.bufs.get_mut(self.count).ok_or(NotQueued::Full)?;
        buf.truncate(TUN_OFFSET + len);
        if !buf
            .get(TUN_OFFSET..)
            .is_some_and(crate::inner_packet::is_well_formed)
        {
            return Err(NotQueued::Malformed);
        }
        self.count += 1;
        Ok(())
    }

    /// Copies a packet in (slow path: packets that did not come through `slot`).
    pub fn push(&mut self, packet: &[u8]) -> Result<(), NotQueued> {
        let slot = self.slot(packet.len()).ok_or(NotQueued::Full)?;
        slot.get_mut(..packet.len())
            .ok_or(NotQueued::Full)?
            .copy_from_slice(packet);
        self.commit(packet.len())
    }

    pub fn is_full(&self) -> bool {
        self.count >= self.bufs.len()
    }

    /// Writes the batch (coalesced where offload allows); returns how many packets were
    /// (at least) lost.
    pub fn flush(&mut self, tun: &AsyncDevice) -> usize {
        if self.count == 0 {
            return 0;
        }
        let count = self.count;
        self.count = 0;
        let Some(bufs) = self.bufs.get_mut(..count) else {
            return count;
        };
        self.lens.clear();
        self.lens.extend(bufs.iter().map(Vec::len));
        // The synchronous send: TUN writes do not block (the kernel queues or drops).
        let device: &DeviceImpl = tun;
        match device.send_multiple(&mut self.gro, bufs, TUN_OFFSET) {
            Ok(_) => 0,
            // write(2) refused a packet; tun-rs wrote the others of the batch.
            Err(e) if e.raw_os_error().is_some() => {
                tracing::trace!("TUN write: {e}");
                1
            }
            // tun-rs refused the batch before writing anything (its GRO pass): write the
            // packets one at a time, so only the one it cannot take is lost. Coalescing
            // only appends to a buffer, so truncating restores the packets.
            Err(e) => {
                tracing::debug!("TUN batch refused ({e}); writing packets one by one");
                let mut lost = 0;
                for (buf, len) in bufs.iter_mut().zip(self.lens.iter()) {
                    buf.truncate(*len);
                    let one = std::slice::from_mut(buf);
                    if let Err(e) = device.send_multiple(&mut self.gro, one, TUN_OFFSET) {
                        tracing::trace!("TUN write: {e}");
                        lost += 1;
                    }
                }
                lost
            }
        }
    }
}

/// Datagrams read from the UDP socket.
pub struct UdpRx {
    bufs: [Box<[u8]>; UDP_RX_BUFS],
    meta: [RecvMeta; UDP_RX_BUFS],
    count: usize,
}

impl Default for UdpRx {
    fn default() -> Self {
        Self::new()
    }
}

impl UdpRx {
    pub fn new() -> Self {
        Self {
            bufs: std::array::from_fn(|_| vec![0u8; MAX_PACKET].into_boxed_slice()),
            meta: std::array::from_fn(|_| RecvMeta::default()),
            count: 0,
        }
    }

    /// Waits for the socket, then receives up to a batch with one recvmmsg (cancel safe:
    /// nothing is consumed before readiness).
    pub async fn fill(&mut self, udp: &UdpSocket, state: &UdpSocketState) -> io::Result<usize> {
        self.count = 0;
        loop {
            udp.readable().await?;
            let mut slices = self.bufs.each_mut().map(|b| IoSliceMut::new(b.as_mut()));
            match udp.try_io(Interest::READABLE, || {
                state.recv(UdpSockRef::from(udp), &mut slices, &mut self.meta)
            }) {
                Ok(n) => {
                    self.count = n.min(UDP_RX_BUFS);
                    return Ok(self.count);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Every datagram of the last fill (GRO trains split by stride), with its source.
    pub fn datagrams(&self) -> impl Iterator<Item = (&[u8], SocketAddr)> + '_ {
        self.bufs
            .iter()
            .zip(self.meta.iter())
            .take(self.count)
            .flat_map(|(buf, meta)| {
                let data = buf.get(..meta.len).unwrap_or_default();
                let addr = canonical(meta.addr);
                data.chunks(meta.stride.max(1)).map(move |d| (d, addr))
            })
    }
}

/// A run of datagrams in [`UdpTx`]: `seg`-byte datagrams to `dst`, the last maybe shorter.
#[derive(Clone, Copy)]
struct Run {
    start: usize,
    end: usize,
    seg: usize,
    count: usize,
    closed: bool,
    dst: SocketAddr,
}

/// Encrypted datagrams waiting to be sent, back to back in one buffer.
pub struct UdpTx {
    buf: Box<[u8]>,
    len: usize,
    runs: Vec<Run>,
    /// Room reserved per datagram: a whole TUN batch (one datagram per packet) always fits.
    slot: usize,
    /// Runs (sends) per batch; with GSO one run holds many datagrams.
    max_datagrams: usize,
}

impl UdpTx {
    pub fn new(mtu: usize) -> Self {
        let slot = mtu.max(1280) + 64 + WG_OVERHEAD;
        let max_datagrams = TUN_RX_BUFS;
        Self {
            buf: vec![0u8; slot * (max_datagrams + 1) + MAX_PACKET].into_boxed_slice(),
            len: 0,
            runs: Vec::with_capacity(max_datagrams + 1),
            slot,
            max_datagrams,
        }
    }

    /// Room for the next datagram (a packet of `packet_len` bytes plus WireGuard overhead),
    /// or None when the batch is full (flush first).
    pub fn space(&mut self, packet_len: usize) -> Option<&mut [u8]> {
        let need = packet_len.saturating_add(WG_OVERHEAD);
        if self.runs.len() >= self.max_datagrams
            || self.buf.len().saturating_sub(self.len) < need.max(self.slot)
        {
            return None;
        }
        self.buf.get_mut(self.len..)
    }

    /// Appends the `len` bytes written at the start of the last `space` as a datagram to
    /// `dst`, joining the current GSO run when it can (`max_segments` from the probe).
    pub fn commit(&mut self, len: usize, dst: SocketAddr, max_segments: usize) {
        let start = self.len;
        self.len += len;
        if let Some(r) = self.runs.last_mut() {
            if !r.closed
                && r.dst == dst
                && r.end == start
                && len <= r.seg
                && r.count < max_segments
                && r.end - r.start + len <= GSO_MAX_BYTES
            {
                r.end += len;
                r.count += 1;
                r.closed = len < r.seg;
                return;
            }
        }
        self.runs.push(Run {
            start,
            end: start + len,
            seg: len,
            count: 1,
            closed: false,
            dst,
        });
    }

    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// Sends every run (waiting for socket space rather than dropping); returns the number
    /// of datagrams that could not be sent.
    pub async fn flush(&mut self, udp: &UdpSocket, state: &UdpSocketState, map_v4: bool) -> usize {
        let mut failed = 0;
        for r in &self.runs {
            let Some(contents) = self.buf.get(r.start..r.end) else {
                continue;
            };
            let destination = crate::udp_socket::for_family(map_v4, r.dst);
            let transmit = Transmit {
                destination,
                ecn: None,
                contents,
                segment_size: (r.count > 1).then_some(r.seg),
                src_ip: None,
            };
            if send(udp, state, &transmit).await.is_ok() {
                continue;
            }
            if r.count == 1 {
                failed += 1;
                continue;
            }
            // GSO refused (quinn-udp turns it off for later sends): one datagram at a time.
            for d in contents.chunks(r.seg.max(1)) {
                let single = Transmit {
                    destination,
                    ecn: None,
                    contents: d,
                    segment_size: None,
                    src_ip: None,
                };
                if send(udp, state, &single).await.is_err() {
                    failed += 1;
                }
            }
        }
        self.runs.clear();
        self.len = 0;
        failed
    }
}

async fn send(udp: &UdpSocket, state: &UdpSocketState, transmit: &Transmit<'_>) -> io::Result<()> {
    let result = udp
        .async_io(Interest::WRITABLE, || {
            state.try_send(UdpSockRef::from(udp), transmit)
        })
        .await;
    if let Err(e) = &result {
        tracing::trace!("UDP send to {}: {e}", transmit.destination);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(tx: &mut UdpTx, len: usize, dst: SocketAddr, max_segments: usize) {
        let space = tx.space(len).unwrap_or_else(|| panic!("batch full"));
        space[..len].fill(len as u8);
        tx.commit(len, dst, max_segments);
    }

    #[test]
    fn gso_runs_join_equal_datagrams_to_one_destination() {
        let a: SocketAddr = "192.0.2.1:51820".parse().unwrap_or_else(|e| panic!("{e}"));
        let b: SocketAddr = "192.0.2.2:51820".parse().unwrap_or_else(|e| panic!("{e}"));
        let mut tx = UdpTx::new(1420);
        for _ in 0..3 {
            add(&mut tx, 1452, a, 64);
        }
        add(&mut tx, 100, a, 64); // shorter: ends the run
        add(&mut tx, 100, a, 64); // new run
        add(&mut tx, 100, b, 64); // other destination: new run
        let runs: Vec<(usize, usize, usize)> = tx
            .runs
            .iter()
            .map(|r| (r.seg, r.count, r.end - r.start))
            .collect();
        assert_eq!(
            runs,
            vec![(1452, 4, 3 * 1452 + 100), (100, 1, 100), (100, 1, 100)]
        );
        // Without GSO every datagram is its own run.
        let mut plain = UdpTx::new(1420);
        for _ in 0..3 {
            add(&mut plain, 1452, a, 1);
        }
        assert_eq!(plain.runs.len(), 3);
    }

    #[test]
    fn gso_runs_respect_the_size_limit_and_batch_capacity() {
        let a: SocketAddr = "192.0.2.1:51820".parse().unwrap_or_else(|e| panic!("{e}"));
        let mut tx = UdpTx::new(1420);
        let mut n = 0;
        while tx.space(1420).is_some() {
            add(&mut tx, 1452, a, 64);
            n += 1;
        }
        // A whole TUN batch always fits; the run list never outgrows its allocation.
        assert!(n >= TUN_RX_BUFS);
        assert!(tx.runs.len() <= TUN_RX_BUFS);
        assert!(tx.runs.iter().all(|r| r.end - r.start <= GSO_MAX_BYTES));
        assert_eq!(tx.runs.iter().map(|r| r.count).sum::<usize>(), n);
    }

    #[test]
    fn tun_tx_slots_keep_what_was_committed() {
        let mut tx = TunTx::new();
        let slot = tx.slot(200).unwrap_or_else(|| panic!("no slot"));
        assert!(slot.len() >= 200);
        slot[..60].copy_from_slice(&ipv4(60));
        assert_eq!(tx.commit(60), Ok(()));
        assert_eq!(tx.push(&ipv4(28)), Ok(()));
        assert_eq!(tx.count, 2);
        assert_eq!(tx.bufs[0].len(), TUN_OFFSET + 60);
        assert_eq!(&tx.bufs[1][TUN_OFFSET..], &ipv4(28)[..]);
    }

    fn ipv4(len: u16) -> Vec<u8> {
        let mut p = vec![7u8; usize::from(len)];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&len.to_be_bytes());
        p
    }

    #[test]
    fn tun_tx_never_queues_a_malformed_packet() {
        let mut tx = TunTx::new();
        assert_eq!(tx.push(&ipv4(40)), Ok(()));
        // An inner IPv4 packet with total length 0, as boringtun hands it over (empty).
        assert_eq!(tx.push(&[]), Err(NotQueued::Malformed));
        let mut zero_len = ipv4(40);
        zero_len[2..4].fill(0);
        assert_eq!(tx.push(&zero_len), Err(NotQueued::Malformed));
        let slot = tx.slot(100).unwrap_or_else(|| panic!("no slot"));
        slot[..20].copy_from_slice(&ipv4(40)[..20]);
        assert_eq!(tx.commit(20), Err(NotQueued::Malformed));
        assert_eq!(tx.push(&ipv4(20)), Ok(()));
        assert_eq!(tx.count, 2, "only the well-formed packets are queued");
    }
}
