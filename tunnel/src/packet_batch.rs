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
//!
//! The TUN side (`tun`) and the UDP side (`udp`) share only the sizes below, which tie
//! them together: a whole TUN batch must fit one UDP send batch.

use tun_rs::{IDEAL_BATCH_SIZE, VIRTIO_NET_HDR_LEN};

mod tun;
mod udp;

pub use tun::{NotQueued, TunRx, TunTx};
pub use udp::{UdpRx, UdpTx};

/// Room in front of every TUN packet for the virtio-net header (offload mode).
pub const TUN_OFFSET: usize = VIRTIO_NET_HDR_LEN;
/// Largest IP packet (and largest UDP datagram).
pub const MAX_PACKET: usize = 65_535;
/// Segment buffers for TUN reads: one super-packet splits into at most
/// `IDEAL_BATCH_SIZE` segments, and we read again only while that much room is left.
const TUN_RX_BUFS: usize = 2 * IDEAL_BATCH_SIZE;
/// Decrypted packets per batched TUN write. Each buffer can become the head of a coalesced
/// (GRO) super-packet, so each has room for 64 KiB; a turn ([`TURN_BYTES`]) of full-sized
/// packets needs about 46.
const TUN_TX_BUFS: usize = 64;
/// Datagrams (or GRO trains of datagrams) per recvmmsg.
const UDP_RX_BUFS: usize = 16;
/// Bytes of one GSO send: the kernel takes at most 64 KiB minus headers.
const GSO_MAX_BYTES: usize = 64_000;
/// Bytes of decrypted packets written to the TUN device at a time: one coalesced (GRO)
/// super-packet. Writing the rest of a large UDP batch in such steps costs no system call
/// (the kernel takes one super-packet per write either way) and lets the first packets of
/// the batch leave before the last are decrypted.
///
/// The reading side keeps its batches (a TUN read while a super-packet fits, 16 GRO trains
/// per recvmmsg): capping those at 64 KiB as well made no difference to the ping under load
/// in paired runs on the 2-core VM (the queue there is in the kernel, see README) and cost
/// 5-35% more CPU per GB, so it was taken back.
pub const TURN_BYTES: usize = 64 * 1024;
/// A zeroed buffer of `len` bytes whose pages are all resident from the start.
///
/// `vec![0; len]` maps zero pages that become resident only when a packet first reaches
/// them, so the process grew for as long as bursts reached deeper into the batch buffers
/// (gateway B: 12 -> 22 MB over a 30-minute soak, toward the ~19 MB the buffers span).
/// Touched once here, the footprint is at its final size after start-up.
pub(crate) fn resident(len: usize) -> Vec<u8> {
    // Opaque, so the compiler cannot turn allocation plus zero-fill into a lazily zeroed
    // allocation (alloc_zeroed), which would leave the pages untouched again.
    let mut v: Vec<u8> = std::hint::black_box(Vec::with_capacity(len));
    v.resize(len, 0);
    v
}

/// WireGuard data overhead (header 16 + tag 16) plus padding to 16 bytes.
const WG_OVERHEAD: usize = 32 + 16;
