//! Reused packet buffers filled in batches: one readiness wait, then non-blocking reads
//! until the batch is full or the queue is empty. The pipeline handles whole batches, so
//! recvmmsg/sendmmsg and TUN offload (`recv_multiple`) can later replace the fill loop
//! without touching the packet handlers.

use std::io;
use std::net::SocketAddr;

use tokio::net::UdpSocket;
use tun_rs::AsyncDevice;

use crate::udp_socket::canonical;

/// Packets per batch.
pub const BATCH_SIZE: usize = 32;

pub struct PacketBatch {
    bufs: Vec<Box<[u8]>>,
    lens: Vec<usize>,
    /// Source address per packet (UDP only).
    addrs: Vec<Option<SocketAddr>>,
    count: usize,
}

impl PacketBatch {
    pub fn new(packets: usize, packet_size: usize) -> Self {
        Self {
            bufs: (0..packets)
                .map(|_| vec![0u8; packet_size].into_boxed_slice())
                .collect(),
            lens: vec![0; packets],
            addrs: vec![None; packets],
            count: 0,
        }
    }

    /// The packets of the last fill, with their source (None for TUN packets).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], Option<SocketAddr>)> + '_ {
        self.bufs
            .iter()
            .zip(self.lens.iter())
            .zip(self.addrs.iter())
            .take(self.count)
            .map(|((buf, len), addr)| (buf.get(..*len).unwrap_or_default(), *addr))
    }

    /// Waits for the TUN device, then reads what is queued (cancel safe: nothing is consumed
    /// before the first read returns).
    pub async fn fill_from_tun(&mut self, tun: &AsyncDevice) -> io::Result<usize> {
        self.count = 0;
        let Some(first) = self.bufs.first_mut() else {
            return Ok(0);
        };
        let n = tun.recv(first).await?;
        self.push(n, None);
        while self.count < self.bufs.len() {
            let Some(buf) = self.bufs.get_mut(self.count) else {
                break;
            };
            match tun.try_recv(buf) {
                Ok(n) => self.push(n, None),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        Ok(self.count)
    }

    /// Waits for the UDP socket, then reads what is queued (cancel safe, as above).
    pub async fn fill_from_udp(&mut self, udp: &UdpSocket) -> io::Result<usize> {
        self.count = 0;
        let Some(first) = self.bufs.first_mut() else {
            return Ok(0);
        };
        let (n, src) = udp.recv_from(first).await?;
        self.push(n, Some(canonical(src)));
        while self.count < self.bufs.len() {
            let Some(buf) = self.bufs.get_mut(self.count) else {
                break;
            };
            match udp.try_recv_from(buf) {
                Ok((n, src)) => self.push(n, Some(canonical(src))),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // One bad datagram (e.g. an ICMP error surfaced here) must not lose the batch.
                Err(_) => break,
            }
        }
        Ok(self.count)
    }

    fn push(&mut self, len: usize, addr: Option<SocketAddr>) {
        if let (Some(l), Some(a)) = (
            self.lens.get_mut(self.count),
            self.addrs.get_mut(self.count),
        ) {
            *l = len;
            *a = addr;
            self.count += 1;
        }
    }
}
