//! Letting the IP layer fragment keymix messages, and only those. quinn-udp sets the
//! socket to never fragment (IPv4 DF with `IP_PMTUDISC_PROBE`, `IPV6_DONTFRAG`), which is
//! right for WireGuard data (the tunnel MTU keeps it under the path MTU) but makes a
//! 1,395-byte keymix Init fail with EMSGSIZE on a 1280-byte link. Around each keymix send
//! the socket is switched to "fragment if needed" and back; every send happens on the one
//! packet thread, so no data datagram is ever sent in between. See docs/PROTOCOL.md,
//! "Crossing a small-MTU path", for why IP fragmentation and not keymix-level fragments.

use std::io;
use std::net::SocketAddr;

use nix::libc;
use nix::sys::socket::setsockopt;
use nix::sys::socket::sockopt::Ipv6DontFrag;
use nix::{getsockopt_impl, setsockopt_impl, sockopt_impl};
use tokio::net::UdpSocket;

sockopt_impl!(
    IpMtuDiscover,
    Both,
    libc::IPPROTO_IP,
    libc::IP_MTU_DISCOVER,
    usize
);
sockopt_impl!(
    Ipv6MtuDiscover,
    Both,
    libc::IPPROTO_IPV6,
    libc::IPV6_MTU_DISCOVER,
    usize
);
sockopt_impl!(Ipv6Mtu, Both, libc::IPPROTO_IPV6, libc::IPV6_MTU, usize);

/// The IPv6 minimum MTU: fragments of this size cross every IPv6 path, so a keymix message
/// gets through even where ICMPv6 "packet too big" is filtered (a PMTU black hole).
const IPV6_MIN_MTU: usize = 1280;

/// Sends `payload` with fragmentation allowed, then restores quinn-udp's settings.
/// `v6_socket`: the socket is IPv6 (dual stack), so the IPv6 options apply as well.
pub fn send_fragmentable(
    socket: &UdpSocket,
    v6_socket: bool,
    payload: &[u8],
    to: SocketAddr,
) -> io::Result<usize> {
    allow(socket, v6_socket, true);
    let sent = socket.try_send_to(payload, to);
    allow(socket, v6_socket, false);
    sent
}

/// Switches fragmentation on (`true`: IPv4 without DF, IPv6 fragments of at most 1280
/// bytes) or back to quinn-udp's never-fragment settings (`false`). A failure is logged
/// and the send goes ahead: at worst it fails with EMSGSIZE, which is counted.
fn allow(socket: &UdpSocket, v6_socket: bool, on: bool) {
    let v4_mode = if on {
        libc::IP_PMTUDISC_DONT
    } else {
        libc::IP_PMTUDISC_PROBE
    };
    let mut result = setsockopt(socket, IpMtuDiscover, &(v4_mode as usize));
    if v6_socket {
        let v6_mode = if on {
            libc::IPV6_PMTUDISC_DONT
        } else {
            libc::IPV6_PMTUDISC_PROBE
        };
        let frag_size = if on { IPV6_MIN_MTU } else { 0 };
        result = result
            .and_then(|()| setsockopt(socket, Ipv6MtuDiscover, &(v6_mode as usize)))
            .and_then(|()| setsockopt(socket, Ipv6DontFrag, &!on))
            .and_then(|()| setsockopt(socket, Ipv6Mtu, &frag_size));
    }
    if let Err(e) = result {
        tracing::warn!("UDP socket: setting fragmentation to {on}: {e}");
    }
}

/// Whether a send failed because the datagram is larger than the socket lets through.
pub fn is_too_big(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EMSGSIZE)
}
