//! The TUN side of the packet batches: [`TunRx`] reads (and splits TSO super-packets),
//! [`TunTx`] queues decrypted packets and writes them with GRO coalescing.

use std::io;

use tun_rs::{AsyncDevice, DeviceImpl, GROTable, IDEAL_BATCH_SIZE, VIRTIO_NET_HDR_LEN};

use super::{resident, MAX_PACKET, TUN_OFFSET, TUN_RX_BUFS, TUN_TX_BUFS, TURN_BYTES};

/// Packets read from the TUN device.
pub struct TunRx {
    original: Box<[u8]>,
    bufs: Vec<Box<[u8]>>,
    sizes: Vec<usize>,
    count: usize,
    /// Packets of the last fill that were read but could not be split (counted, lost).
    dropped: u64,
    /// Pad every packet with zeros to a multiple of 16 bytes, at most this MTU (as
    /// WireGuard's paper and kernel module do): the encrypted length then shows only the
    /// packet's size class. None: no padding (benchmarks of its cost).
    pad_within: Option<usize>,
}

impl TunRx {
    pub fn new(mtu: usize) -> Self {
        Self::with_padding(mtu, true)
    }

    pub fn with_padding(mtu: usize, pad: bool) -> Self {
        let size = mtu.max(1280) + 64;
        Self {
            pad_within: pad.then_some(mtu),
            original: resident(VIRTIO_NET_HDR_LEN + MAX_PACKET).into_boxed_slice(),
            bufs: (0..TUN_RX_BUFS)
                .map(|_| resident(size).into_boxed_slice())
                .collect(),
            sizes: vec![0; TUN_RX_BUFS],
            count: 0,
            dropped: 0,
        }
    }

    /// Pads the packets of the last fill (see `pad_within`). The receiver reads the length
    /// from the IP header, so the zeros never reach its TUN device.
    fn pad(&mut self) {
        let Some(mtu) = self.pad_within else {
            return;
        };
        for (buf, len) in self
            .bufs
            .iter_mut()
            .zip(self.sizes.iter_mut())
            .take(self.count)
        {
            let padded = padded_len(*len, mtu).min(buf.len());
            if let Some(tail) = buf.get_mut(*len..padded) {
                tail.fill(0);
                *len = padded;
            }
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
        self.pad();
        Ok(self.count)
    }
}

/// `len` rounded up to a multiple of 16, but never above `mtu` (nor below `len`).
pub fn padded_len(len: usize, mtu: usize) -> usize {
    len.div_ceil(16).saturating_mul(16).min(mtu).max(len)
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
    /// Bytes of the queued packets.
    queued: usize,
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
            // Capacity for a whole coalesced super-packet, so GRO never reallocates; resident
            // (then emptied), as packet memory must not grow while the tunnel runs.
            bufs: (0..TUN_TX_BUFS)
                .map(|_| {
                    let mut buf = resident(TUN_OFFSET + MAX_PACKET + 64);
                    buf.clear();
                    buf
                })
                .collect(),
            count: 0,
            gro: GROTable::default(),
            lens: Vec::with_capacity(TUN_TX_BUFS),
            queued: 0,
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
        self.queued += len;
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

    /// Forgets the queued packets without writing them (benchmarks of the decryption path).
    pub fn clear(&mut self) {
        self.count = 0;
        self.queued = 0;
    }

    /// Whether the queued packets make a turn ([`TURN_BYTES`]): time to write them.
    pub fn turn_done(&self) -> bool {
        self.queued >= TURN_BYTES
    }

    /// Writes the batch (coalesced where offload allows); returns how many packets were
    /// (at least) lost.
    pub fn flush(&mut self, tun: &AsyncDevice) -> usize {
        if self.count == 0 {
            return 0;
        }
        let count = self.count;
        self.count = 0;
        self.queued = 0;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_rounds_up_to_16_within_the_mtu() {
        assert_eq!(padded_len(0, 1420), 0);
        assert_eq!(padded_len(1, 1420), 16);
        assert_eq!(padded_len(16, 1420), 16);
        assert_eq!(padded_len(84, 1420), 96);
        assert_eq!(padded_len(1419, 1420), 1420);
        assert_eq!(padded_len(1420, 1420), 1420);
        // Never below the packet (an MTU smaller than the packet does not cut it).
        assert_eq!(padded_len(1500, 1420), 1500);
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
