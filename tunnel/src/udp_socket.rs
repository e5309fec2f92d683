//! The interface's one UDP socket: dual-stack when the host has IPv6, IPv4 otherwise, with
//! large buffers so bursts from the TUN batch are not dropped by the kernel. With
//! `listen_address` it is bound to that address only, with IP_FREEBIND: in an HA pair the
//! standby binds the site's virtual address before it holds it, receives nothing and cannot
//! send from it (the kernel refuses a source address the host does not have) until the
//! address moves to it, and then sends from the address the peer expects.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use quinn_udp::{UdpSockRef, UdpSocketState};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;

use crate::error::TunnelError;

const SOCKET_BUFFER_BYTES: usize = 4 << 20;

fn bind_one(
    domain: Domain,
    listen: Option<IpAddr>,
    port: u16,
    fwmark: Option<u32>,
) -> std::io::Result<Socket> {
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    if let Some(mark) = fwmark {
        // SO_MARK needs CAP_NET_ADMIN, which `up` keeps.
        socket.set_mark(mark)?;
    }
    let addr: SocketAddr = match (listen, domain == Domain::IPV6) {
        (Some(ip @ IpAddr::V6(_)), _) => {
            socket.set_freebind_v6(true)?;
            (ip, port).into()
        }
        (Some(ip @ IpAddr::V4(_)), _) => {
            socket.set_freebind_v4(true)?;
            (ip, port).into()
        }
        (None, true) => {
            socket.set_only_v6(false)?;
            (Ipv6Addr::UNSPECIFIED, port).into()
        }
        (None, false) => (Ipv4Addr::UNSPECIFIED, port).into(),
    };
    // Best effort: the kernel caps these at net.core.[rw]mem_max.
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER_BYTES);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER_BYTES);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket)
}

/// Binds `port` on all addresses (or on `listen` only) and probes batch I/O (UDP GSO/GRO
/// through quinn-udp, which falls back to plain datagrams when the kernel lacks them).
/// `fwmark` (`[interface] fwmark`) marks every packet the socket sends. Must run inside a
/// tokio runtime.
pub fn bind(
    listen: Option<IpAddr>,
    port: u16,
    fwmark: Option<u32>,
) -> Result<(UdpSocket, UdpSocketState), TunnelError> {
    let socket = match listen {
        Some(IpAddr::V4(_)) => bind_one(Domain::IPV4, listen, port, fwmark),
        Some(IpAddr::V6(_)) => bind_one(Domain::IPV6, listen, port, fwmark),
        None => bind_one(Domain::IPV6, None, port, fwmark)
            .or_else(|_| bind_one(Domain::IPV4, None, port, fwmark)),
    }
    .map_err(|source| TunnelError::Udp { port, source })?;
    let state = UdpSocketState::new(UdpSockRef::from(&socket))
        .map_err(|source| TunnelError::Udp { port, source })?;
    tracing::debug!(
        gso_segments = state.max_gso_segments(),
        gro_segments = state.gro_segments(),
        "UDP offload probe"
    );
    let socket =
        UdpSocket::from_std(socket.into()).map_err(|source| TunnelError::Udp { port, source })?;
    Ok((socket, state))
}

/// Whether IPv4 destinations must be written as IPv4-mapped IPv6 on `socket`.
pub fn maps_v4(socket: &UdpSocket) -> bool {
    matches!(socket.local_addr(), Ok(SocketAddr::V6(_)))
}

/// The address to send to: IPv4 mapped when `map_v4` (the socket is IPv6).
pub fn for_family(map_v4: bool, addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V4(v4) if map_v4 => {
            SocketAddr::new(IpAddr::V6(v4.ip().to_ipv6_mapped()), v4.port())
        }
        _ => addr,
    }
}

/// IPv4-mapped IPv6 addresses (from the dual-stack socket) as plain IPv4, so one peer has
/// one spelling of its endpoint.
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => addr,
        },
        SocketAddr::V4(_) => addr,
    }
}
