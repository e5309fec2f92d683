//! The interface's one UDP socket: dual-stack when the host has IPv6, IPv4 otherwise, with
//! large buffers so bursts from the TUN batch are not dropped by the kernel.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;

use crate::error::TunnelError;

const SOCKET_BUFFER_BYTES: usize = 4 << 20;

fn bind_one(domain: Domain, port: u16) -> std::io::Result<Socket> {
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    let addr: SocketAddr = if domain == Domain::IPV6 {
        socket.set_only_v6(false)?;
        (Ipv6Addr::UNSPECIFIED, port).into()
    } else {
        (Ipv4Addr::UNSPECIFIED, port).into()
    };
    // Best effort: the kernel caps these at net.core.[rw]mem_max.
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER_BYTES);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER_BYTES);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket)
}

/// Binds `port` on all addresses. Must run inside a tokio runtime.
pub fn bind(port: u16) -> Result<UdpSocket, TunnelError> {
    let socket = bind_one(Domain::IPV6, port)
        .or_else(|_| bind_one(Domain::IPV4, port))
        .map_err(|source| TunnelError::Udp { port, source })?;
    UdpSocket::from_std(socket.into()).map_err(|source| TunnelError::Udp { port, source })
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

/// The address to pass to `send_to` on `socket`: IPv4 destinations are mapped when the
/// socket is IPv6.
pub fn for_socket(socket: &UdpSocket, addr: SocketAddr) -> SocketAddr {
    match (socket.local_addr(), addr) {
        (Ok(SocketAddr::V6(_)), SocketAddr::V4(v4)) => {
            SocketAddr::new(IpAddr::V6(v4.ip().to_ipv6_mapped()), v4.port())
        }
        _ => addr,
    }
}
