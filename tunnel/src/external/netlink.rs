//! Kernel WireGuard through its generic-netlink family "wireguard" (the API `wg(8)` uses):
//! resolve the family id, `WG_CMD_GET_DEVICE` (a dump) and `WG_CMD_SET_DEVICE` with one
//! peer. Messages come from the maintained `netlink-packet-wireguard` crate; this file only
//! builds and reads them, and the building and reading are plain functions so they are
//! unit-tested without the kernel module (this machine has none: the path is untested
//! against a live kernel, see README).
//!
//! Secrets: a GET answer carries the private key and every PSK. The parsed copies are
//! overwritten before they are dropped and the receive buffer is zeroized.

use netlink_packet_core::{
    NetlinkBuffer, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_generic::ctrl::nlas::GenlCtrlAttrs;
use netlink_packet_generic::ctrl::{GenlCtrl, GenlCtrlCmd};
use netlink_packet_generic::GenlMessage;
use netlink_packet_wireguard::{
    WireguardAddressFamily, WireguardAllowedIp, WireguardAllowedIpAttr, WireguardAttribute,
    WireguardCmd, WireguardMessage, WireguardPeer, WireguardPeerAttribute, WireguardPeerFlags,
};
use netlink_sys::{protocols::NETLINK_GENERIC, Socket, SocketAddr};
use zeroize::{Zeroize, Zeroizing};

use super::{DeviceInfo, PeerInfo, WgError};

/// Largest datagram read from the socket (the kernel splits dumps into messages below it).
const RECV_BUFFER: usize = 64 << 10;
/// Datagrams read for one request before giving up (a dump of a huge device).
const MAX_DATAGRAMS: usize = 4096;

pub struct KernelClient {
    socket: Socket,
    family: u16,
    interface: String,
    seq: u32,
}

impl KernelClient {
    /// Opens a generic-netlink socket and resolves the "wireguard" family (fails when the
    /// module is not loaded).
    pub fn open(interface: &str) -> Result<Self, WgError> {
        let io = |e: std::io::Error| WgError::Io(format!("netlink: {e}"));
        let mut socket = Socket::new(NETLINK_GENERIC).map_err(io)?;
        socket.bind_auto().map_err(io)?;
        socket.connect(&SocketAddr::new(0, 0)).map_err(io)?;
        let mut client = Self {
            socket,
            family: 0,
            interface: interface.to_owned(),
            seq: 0,
        };
        let request = family_request(client.next_seq());
        let answers = client.exchange(&request)?;
        client.family = parse_family_reply(&answers)?;
        Ok(client)
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Sends one request and reads datagrams until DONE, an error/ack, or a message that
    /// is not multi-part. Returns the datagrams (zeroized on drop).
    fn exchange(&mut self, request: &[u8]) -> Result<Vec<Zeroizing<Vec<u8>>>, WgError> {
        let io = |e: std::io::Error| WgError::Io(format!("netlink: {e}"));
        self.socket.send(request, 0).map_err(io)?;
        let mut datagrams = Vec::new();
        for _ in 0..MAX_DATAGRAMS {
            let mut buf = Zeroizing::new(Vec::with_capacity(RECV_BUFFER));
            self.socket.recv(&mut *buf, 0).map_err(io)?;
            let last = ends_exchange(&buf)?;
            datagrams.push(buf);
            if last {
                return Ok(datagrams);
            }
        }
        Err(WgError::Protocol("netlink answer without end".into()))
    }

    pub fn device(&mut self) -> Result<DeviceInfo, WgError> {
        let request = get_device_request(self.family, self.next_seq(), &self.interface);
        let answers = self.exchange(&request)?;
        let mut device = DeviceInfo::default();
        for datagram in &answers {
            parse_device_datagram(datagram, &mut device)?;
        }
        Ok(device)
    }

    pub fn set_psk(&mut self, peer: &[u8; 32], psk: &[u8; 32]) -> Result<(), WgError> {
        let request = set_psk_request(self.family, self.next_seq(), &self.interface, peer, psk);
        let answers = self.exchange(&request)?;
        check_ack(&answers)
    }

    pub fn recreate_peer(&mut self, peer: &PeerInfo, psk: &[u8; 32]) -> Result<(), WgError> {
        let request = recreate_request(self.family, self.next_seq(), &self.interface, peer, psk);
        let answers = self.exchange(&request)?;
        check_ack(&answers)
    }
}

fn serialize<I>(message: &mut NetlinkMessage<I>) -> Zeroizing<Vec<u8>>
where
    I: netlink_packet_core::NetlinkSerializable,
{
    message.finalize();
    let mut buf = Zeroizing::new(vec![0u8; message.buffer_len()]);
    message.serialize(&mut buf);
    buf
}

/// CTRL_CMD_GETFAMILY "wireguard".
pub fn family_request(seq: u32) -> Zeroizing<Vec<u8>> {
    let genl = GenlMessage::from_payload(GenlCtrl {
        cmd: GenlCtrlCmd::GetFamily,
        nlas: vec![GenlCtrlAttrs::FamilyName("wireguard".to_owned())],
    });
    let mut msg = NetlinkMessage::from(genl);
    msg.header.flags = NLM_F_REQUEST | NLM_F_ACK;
    msg.header.sequence_number = seq;
    serialize(&mut msg)
}

/// The netlink messages of one datagram.
fn messages(datagram: &[u8]) -> Result<Vec<&[u8]>, WgError> {
    let mut out = Vec::new();
    let mut rest = datagram;
    while !rest.is_empty() {
        let buf = NetlinkBuffer::new_checked(rest)
            .map_err(|e| WgError::Protocol(format!("netlink header: {e}")))?;
        let len = buf.length() as usize;
        // Messages are 4-byte aligned; the last one may end without padding.
        let step = len.div_ceil(4) * 4;
        let (msg, tail) = rest.split_at(len.min(rest.len()));
        out.push(msg);
        rest = tail.get(step.saturating_sub(len)..).unwrap_or_default();
    }
    Ok(out)
}

/// Whether a datagram ends the answer: DONE, an error or ack, or a single message without
/// NLM_F_MULTIPART.
fn ends_exchange(datagram: &[u8]) -> Result<bool, WgError> {
    const NLMSG_ERROR: u16 = 2;
    const NLMSG_DONE: u16 = 3;
    const NLM_F_MULTI: u16 = 2;
    for msg in messages(datagram)? {
        let buf = NetlinkBuffer::new_checked(msg)
            .map_err(|e| WgError::Protocol(format!("netlink header: {e}")))?;
        let kind = buf.message_type();
        if kind == NLMSG_DONE || kind == NLMSG_ERROR || buf.flags() & NLM_F_MULTI == 0 {
            return Ok(true);
        }
    }
    Ok(false)
}

fn error_of(code: i32) -> WgError {
    WgError::Io(format!(
        "netlink: {}",
        std::io::Error::from_raw_os_error(code.saturating_abs())
    ))
}

/// The family id from the controller's answer.
pub fn parse_family_reply(datagrams: &[Zeroizing<Vec<u8>>]) -> Result<u16, WgError> {
    for datagram in datagrams {
        for msg in messages(datagram)? {
            let parsed = NetlinkMessage::<GenlMessage<GenlCtrl>>::deserialize(msg)
                .map_err(|e| WgError::Protocol(format!("nlctrl answer: {e}")))?;
            match parsed.payload {
                NetlinkPayload::InnerMessage(genl) => {
                    if let Some(id) = genl.payload.nlas.iter().find_map(|a| match a {
                        GenlCtrlAttrs::FamilyId(id) => Some(*id),
                        _ => None,
                    }) {
                        return Ok(id);
                    }
                }
                NetlinkPayload::Error(e) if e.raw_code() != 0 => {
                    return Err(error_of(e.raw_code()));
                }
                _ => {}
            }
        }
    }
    Err(WgError::Protocol(
        "generic netlink has no \"wireguard\" family".into(),
    ))
}

/// WG_CMD_GET_DEVICE for `interface`, as a dump (the kernel requires NLM_F_DUMP).
pub fn get_device_request(family: u16, seq: u32, interface: &str) -> Zeroizing<Vec<u8>> {
    let mut genl = GenlMessage::from_payload(WireguardMessage {
        cmd: WireguardCmd::GetDevice,
        attributes: vec![WireguardAttribute::IfName(interface.to_owned())],
    });
    genl.set_resolved_family_id(family);
    let mut msg = NetlinkMessage::from(genl);
    msg.header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    msg.header.sequence_number = seq;
    serialize(&mut msg)
}

/// Reads one datagram of a GET_DEVICE dump into `device` (a large device spans several
/// messages, each repeating the device attributes and carrying some peers).
pub fn parse_device_datagram(datagram: &[u8], device: &mut DeviceInfo) -> Result<(), WgError> {
    for msg in messages(datagram)? {
        let parsed = NetlinkMessage::<GenlMessage<WireguardMessage>>::deserialize(msg)
            .map_err(|e| WgError::Protocol(format!("wireguard answer: {e}")))?;
        match parsed.payload {
            NetlinkPayload::InnerMessage(genl) => {
                let mut attributes = genl.payload.attributes;
                read_device(&attributes, device);
                scrub(&mut attributes);
            }
            NetlinkPayload::Error(e) if e.raw_code() != 0 => return Err(error_of(e.raw_code())),
            _ => {}
        }
    }
    Ok(())
}

fn read_device(attributes: &[WireguardAttribute], device: &mut DeviceInfo) {
    for attr in attributes {
        match attr {
            WireguardAttribute::PublicKey(k) => device.public_key = Some(*k),
            WireguardAttribute::Peers(peers) => {
                for peer in peers {
                    read_peer(&peer.0, device);
                }
            }
            _ => {}
        }
    }
}

fn read_peer(attributes: &[WireguardPeerAttribute], device: &mut DeviceInfo) {
    let Some(public_key) = attributes.iter().find_map(|a| match a {
        WireguardPeerAttribute::PublicKey(k) => Some(*k),
        _ => None,
    }) else {
        return;
    };
    // A peer with many allowed IPs continues in the next message under the same key.
    let index = match device.peers.iter().position(|p| p.public_key == public_key) {
        Some(i) => i,
        None => {
            device.peers.push(PeerInfo {
                public_key,
                ..PeerInfo::default()
            });
            device.peers.len() - 1
        }
    };
    let Some(peer) = device.peers.get_mut(index) else {
        return;
    };
    for attr in attributes {
        match attr {
            WireguardPeerAttribute::PresharedKey(k) => peer.psk_set = k.iter().any(|b| *b != 0),
            WireguardPeerAttribute::Endpoint(e) => peer.endpoint = Some(*e),
            WireguardPeerAttribute::PersistentKeepalive(k) => {
                peer.persistent_keepalive = Some(*k).filter(|k| *k > 0)
            }
            WireguardPeerAttribute::LastHandshake(t) if t.seconds > 0 => {
                peer.last_handshake = u64::try_from(t.seconds).ok().and_then(|s| {
                    std::time::SystemTime::UNIX_EPOCH.checked_add(std::time::Duration::from_secs(s))
                });
            }
            WireguardPeerAttribute::RxBytes(n) => peer.rx_bytes = *n,
            WireguardPeerAttribute::TxBytes(n) => peer.tx_bytes = *n,
            WireguardPeerAttribute::AllowedIps(ips) => {
                for ip in ips {
                    let addr = ip.0.iter().find_map(|a| match a {
                        WireguardAllowedIpAttr::IpAddr(a) => Some(*a),
                        _ => None,
                    });
                    let cidr = ip.0.iter().find_map(|a| match a {
                        WireguardAllowedIpAttr::Cidr(c) => Some(*c),
                        _ => None,
                    });
                    if let (Some(a), Some(c)) = (addr, cidr) {
                        peer.allowed_ips.push((a, c));
                    }
                }
            }
            _ => {}
        }
    }
}

/// Overwrites the private key and PSKs of parsed attributes before they are dropped.
fn scrub(attributes: &mut [WireguardAttribute]) {
    for attr in attributes {
        match attr {
            WireguardAttribute::PrivateKey(k) => k.zeroize(),
            WireguardAttribute::Peers(peers) => {
                for peer in peers {
                    for a in &mut peer.0 {
                        if let WireguardPeerAttribute::PresharedKey(k) = a {
                            k.zeroize();
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

fn set_device_request(
    family: u16,
    seq: u32,
    interface: &str,
    peers: Vec<WireguardPeer>,
) -> Zeroizing<Vec<u8>> {
    let mut genl = GenlMessage::from_payload(WireguardMessage {
        cmd: WireguardCmd::SetDevice,
        attributes: vec![
            WireguardAttribute::IfName(interface.to_owned()),
            WireguardAttribute::Peers(peers),
        ],
    });
    genl.set_resolved_family_id(family);
    let mut msg = NetlinkMessage::from(genl);
    msg.header.flags = NLM_F_REQUEST | NLM_F_ACK;
    msg.header.sequence_number = seq;
    let out = serialize(&mut msg);
    if let NetlinkPayload::InnerMessage(g) = &mut msg.payload {
        scrub(&mut g.payload.attributes);
    }
    out
}

/// WG_CMD_SET_DEVICE with one peer: its PSK, WGPEER_F_UPDATE_ONLY (never creates a peer).
/// No device attribute but the name: the private key, port and other peers are untouched.
pub fn set_psk_request(
    family: u16,
    seq: u32,
    interface: &str,
    peer: &[u8; 32],
    psk: &[u8; 32],
) -> Zeroizing<Vec<u8>> {
    let peer = WireguardPeer(vec![
        WireguardPeerAttribute::PublicKey(*peer),
        WireguardPeerAttribute::Flags(WireguardPeerFlags::UpdateOnly),
        WireguardPeerAttribute::PresharedKey(*psk),
    ]);
    set_device_request(family, seq, interface, vec![peer])
}

/// One SET_DEVICE that removes the peer and adds it back with the settings read from the
/// kernel and `psk`: the kernel drops the peer's sessions (fail closed at once).
pub fn recreate_request(
    family: u16,
    seq: u32,
    interface: &str,
    info: &PeerInfo,
    psk: &[u8; 32],
) -> Zeroizing<Vec<u8>> {
    let remove = WireguardPeer(vec![
        WireguardPeerAttribute::PublicKey(info.public_key),
        WireguardPeerAttribute::Flags(
            WireguardPeerFlags::RemoveMe | WireguardPeerFlags::UpdateOnly,
        ),
    ]);
    let mut add = vec![
        WireguardPeerAttribute::PublicKey(info.public_key),
        WireguardPeerAttribute::PresharedKey(*psk),
        WireguardPeerAttribute::Flags(WireguardPeerFlags::ReplaceAllowedIps),
    ];
    if let Some(e) = info.endpoint {
        add.push(WireguardPeerAttribute::Endpoint(e));
    }
    if let Some(k) = info.persistent_keepalive {
        add.push(WireguardPeerAttribute::PersistentKeepalive(k));
    }
    let ips = info
        .allowed_ips
        .iter()
        .map(|(ip, cidr)| {
            let family = if ip.is_ipv4() {
                WireguardAddressFamily::Ipv4
            } else {
                WireguardAddressFamily::Ipv6
            };
            WireguardAllowedIp(vec![
                WireguardAllowedIpAttr::Family(family),
                WireguardAllowedIpAttr::IpAddr(*ip),
                WireguardAllowedIpAttr::Cidr(*cidr),
            ])
        })
        .collect();
    add.push(WireguardPeerAttribute::AllowedIps(ips));
    set_device_request(family, seq, interface, vec![remove, WireguardPeer(add)])
}

/// The kernel's answer to a SET: an ack (error code 0) or an errno.
pub fn check_ack(datagrams: &[Zeroizing<Vec<u8>>]) -> Result<(), WgError> {
    for datagram in datagrams {
        for msg in messages(datagram)? {
            let parsed = NetlinkMessage::<GenlMessage<WireguardMessage>>::deserialize(msg)
                .map_err(|e| WgError::Protocol(format!("wireguard answer: {e}")))?;
            if let NetlinkPayload::Error(e) = parsed.payload {
                return match e.raw_code() {
                    0 => Ok(()),
                    code => Err(error_of(code)),
                };
            }
        }
    }
    Err(WgError::Protocol("no acknowledgement".into()))
}

#[cfg(test)]
#[path = "netlink_tests.rs"]
mod tests;
