//! The UDP side of the packet batches: [`UdpRx`] receives with recvmmsg (and GRO),
//! [`UdpTx`] lays encrypted datagrams out back to back and sends them in GSO runs.

use std::io::{self, IoSliceMut};
use std::net::SocketAddr;

use quinn_udp::{RecvMeta, Transmit, UdpSockRef, UdpSocketState};
use tokio::io::Interest;
use tokio::net::UdpSocket;

use super::{resident, GSO_MAX_BYTES, MAX_PACKET, TUN_RX_BUFS, UDP_RX_BUFS, WG_OVERHEAD};
use crate::udp_socket::canonical;

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
            bufs: std::array::from_fn(|_| resident(MAX_PACKET).into_boxed_slice()),
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
            buf: resident(slot * (max_datagrams + 1) + MAX_PACKET).into_boxed_slice(),
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

    /// Forgets the batch without sending it (benchmarks of the encryption path).
    pub fn clear(&mut self) {
        self.runs.clear();
        self.len = 0;
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
}
