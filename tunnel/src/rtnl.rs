//! Addresses, MTU, link state and routes of the TUN device over rtnetlink (the kernel API
//! `ip` itself uses), so a gateway needs no iproute2 at run time. Messages come from the
//! maintained `netlink-packet-route` crate; this file builds requests, sends them on a
//! NETLINK_ROUTE socket and reads the kernel's acknowledgement. Building and reading are
//! plain functions, unit-tested without a kernel.

use std::net::IpAddr;

use ip_network::IpNetwork;
use netlink_packet_core::{
    NetlinkBuffer, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use crate::settings::InterfaceAddress;

/// Largest acknowledgement read (an error echoes the request, which is small).
const RECV_BUFFER: usize = 8 << 10;
/// Datagrams read while waiting for the acknowledgement of our sequence number.
const MAX_DATAGRAMS: usize = 64;

/// One rtnetlink socket for a device's configuration.
pub struct Rtnl {
    socket: Socket,
    seq: u32,
}

impl Rtnl {
    pub fn open() -> std::io::Result<Self> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        Ok(Self { socket, seq: 0 })
    }

    /// Sends `request` (flags and sequence number set here) and waits for its ack.
    fn request(&mut self, message: RouteNetlinkMessage, flags: u16) -> std::io::Result<()> {
        self.seq = self.seq.wrapping_add(1);
        let bytes = serialize(message, flags | NLM_F_REQUEST | NLM_F_ACK, self.seq);
        self.socket.send(&bytes, 0)?;
        for _ in 0..MAX_DATAGRAMS {
            let mut buf = Vec::with_capacity(RECV_BUFFER);
            self.socket.recv(&mut buf, 0)?;
            if let Some(result) = ack_of(&buf, self.seq) {
                return result;
            }
        }
        Err(std::io::Error::other("no netlink acknowledgement"))
    }

    /// `ip address add ADDR/PREFIX dev INDEX`.
    pub fn add_address(&mut self, index: u32, address: &InterfaceAddress) -> std::io::Result<()> {
        self.request(
            RouteNetlinkMessage::NewAddress(address_message(index, address)),
            NLM_F_CREATE | NLM_F_EXCL,
        )
    }

    /// `ip link set dev INDEX mtu MTU up`.
    pub fn set_link_up(&mut self, index: u32, mtu: u16) -> std::io::Result<()> {
        self.request(RouteNetlinkMessage::SetLink(link_message(index, mtu)), 0)
    }

    /// `ip route add NET dev INDEX table TABLE`.
    pub fn add_route(&mut self, index: u32, net: &IpNetwork, table: u32) -> std::io::Result<()> {
        self.request(
            RouteNetlinkMessage::NewRoute(route_message(index, net, table)),
            NLM_F_CREATE | NLM_F_EXCL,
        )
    }

    /// `ip route del NET dev INDEX table TABLE`.
    pub fn del_route(&mut self, index: u32, net: &IpNetwork, table: u32) -> std::io::Result<()> {
        let mut message = route_message(index, net, table);
        // Any scope matches on delete, as with `ip route del`.
        message.header.scope = RouteScope::NoWhere;
        self.request(RouteNetlinkMessage::DelRoute(message), 0)
    }
}

fn family(ip: IpAddr) -> AddressFamily {
    match ip {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

fn serialize(message: RouteNetlinkMessage, flags: u16, seq: u32) -> Vec<u8> {
    let mut msg = NetlinkMessage::from(message);
    msg.header.flags = flags;
    msg.header.sequence_number = seq;
    msg.finalize();
    let mut buf = vec![0u8; msg.buffer_len()];
    msg.serialize(&mut buf);
    buf
}

pub fn address_message(index: u32, address: &InterfaceAddress) -> AddressMessage {
    let mut m = AddressMessage::default();
    m.header.family = family(address.ip);
    m.header.prefix_len = address.prefix_len;
    m.header.index = index;
    // As `ip address add`: IPv4 gets IFA_LOCAL and IFA_ADDRESS, IPv6 IFA_ADDRESS.
    if address.ip.is_ipv4() {
        m.attributes.push(AddressAttribute::Local(address.ip));
    }
    m.attributes.push(AddressAttribute::Address(address.ip));
    m
}

pub fn link_message(index: u32, mtu: u16) -> LinkMessage {
    let mut m = LinkMessage::default();
    m.header.index = index;
    m.header.flags = LinkFlags::Up;
    m.header.change_mask = LinkFlags::Up;
    m.attributes.push(LinkAttribute::Mtu(u32::from(mtu)));
    m
}

pub fn route_message(index: u32, net: &IpNetwork, table: u32) -> RouteMessage {
    let mut m = RouteMessage::default();
    m.header.address_family = family(net.network_address());
    m.header.destination_prefix_length = net.netmask();
    // The header holds 8 bits; RTA_TABLE carries any table (RT_TABLE_UNSPEC in the header).
    m.header.table = u8::try_from(table).unwrap_or(RouteHeader::RT_TABLE_UNSPEC);
    m.attributes.push(RouteAttribute::Table(table));
    m.header.protocol = RouteProtocol::Boot;
    m.header.scope = RouteScope::Link;
    m.header.kind = RouteType::Unicast;
    let dst = match net.network_address() {
        IpAddr::V4(a) => RouteAddress::Inet(a),
        IpAddr::V6(a) => RouteAddress::Inet6(a),
    };
    m.attributes.push(RouteAttribute::Destination(dst));
    m.attributes.push(RouteAttribute::Oif(index));
    m
}

/// The outcome carried by a datagram for request `seq`: `None` when the datagram holds no
/// acknowledgement of it (another message, or garbage, is skipped).
pub fn ack_of(datagram: &[u8], seq: u32) -> Option<std::io::Result<()>> {
    let mut rest = datagram;
    while !rest.is_empty() {
        let len = NetlinkBuffer::new_checked(rest).ok()?.length() as usize;
        let (msg, tail) = rest.split_at(len.min(rest.len()));
        rest = tail.get(len.div_ceil(4) * 4 - len..).unwrap_or_default();
        let Ok(parsed) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(msg) else {
            continue;
        };
        if parsed.header.sequence_number != seq {
            continue;
        }
        if let NetlinkPayload::Error(e) = parsed.payload {
            return Some(match e.code {
                None => Ok(()),
                Some(code) => Err(std::io::Error::from_raw_os_error(
                    code.get().saturating_abs(),
                )),
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use netlink_packet_core::ErrorMessage;

    use super::*;

    #[test]
    fn requests_round_trip() {
        let a: InterfaceAddress = "10.99.0.1/24".parse().unwrap();
        let bytes = serialize(
            RouteNetlinkMessage::NewAddress(address_message(7, &a)),
            NLM_F_REQUEST,
            1,
        );
        let back = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&bytes).unwrap();
        let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewAddress(m)) = back.payload else {
            panic!("not an address message");
        };
        assert_eq!((m.header.index, m.header.prefix_len), (7, 24));
        let net: IpNetwork = "2001:db8::/64".parse().unwrap();
        let r = route_message(3, &net, 254);
        assert_eq!(r.header.destination_prefix_length, 64);
        assert_eq!(r.header.table, RouteHeader::RT_TABLE_MAIN);
        let high = route_message(3, &net, 1000);
        assert_eq!(high.header.table, RouteHeader::RT_TABLE_UNSPEC);
        assert!(high.attributes.contains(&RouteAttribute::Table(1000)));
        assert!(r.attributes.contains(&RouteAttribute::Oif(3)));
        let l = link_message(3, 1420);
        assert!(l.attributes.contains(&LinkAttribute::Mtu(1420)));
    }

    fn error_datagram(seq: u32, code: i32) -> Vec<u8> {
        let mut e = ErrorMessage::default();
        e.code = std::num::NonZeroI32::new(code);
        let mut msg = NetlinkMessage::<RouteNetlinkMessage>::new(
            netlink_packet_core::NetlinkHeader::default(),
            NetlinkPayload::Error(e),
        );
        msg.header.sequence_number = seq;
        msg.finalize();
        let mut buf = vec![0u8; msg.buffer_len()];
        msg.serialize(&mut buf);
        buf
    }

    #[test]
    fn acks_and_errors_are_matched_by_sequence() {
        assert!(matches!(ack_of(&error_datagram(5, 0), 5), Some(Ok(()))));
        let err = ack_of(&error_datagram(5, -17), 5).and_then(Result::err);
        assert_eq!(err.and_then(|e| e.raw_os_error()), Some(17));
        assert!(ack_of(&error_datagram(4, 0), 5).is_none());
        assert!(ack_of(&[1, 2, 3], 5).is_none());
        assert!(ack_of(&[], 5).is_none());
    }
}
