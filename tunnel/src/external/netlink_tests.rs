//! Kernel path without the kernel: the requests are parsed back with the crate's own
//! decoder, and kernel answers are built with its encoder.

use netlink_packet_core::{ErrorMessage, NetlinkHeader, NLM_F_MULTIPART};
use netlink_packet_wireguard::WireguardTimeSpec;

use super::*;

const FAMILY: u16 = 0x1d;

fn decode(bytes: &[u8]) -> (NetlinkHeader, WireguardMessage) {
    let msg = NetlinkMessage::<GenlMessage<WireguardMessage>>::deserialize(bytes).unwrap();
    let (header, payload) = msg.into_parts();
    match payload {
        NetlinkPayload::InnerMessage(genl) => {
            assert_eq!(genl.resolved_family_id(), FAMILY);
            (header, genl.payload)
        }
        other => panic!("not a wireguard message: {other:?}"),
    }
}

fn peers_of(msg: &WireguardMessage) -> Vec<Vec<WireguardPeerAttribute>> {
    let mut out = Vec::new();
    for a in &msg.attributes {
        if let WireguardAttribute::Peers(p) = a {
            out.extend(p.iter().map(|p| p.0.clone()));
        }
    }
    out
}

#[test]
fn set_psk_touches_one_peer_and_nothing_else() {
    let bytes = set_psk_request(FAMILY, 7, "wg0", &[1; 32], &[2; 32]);
    let (header, msg) = decode(&bytes);
    assert_eq!(header.message_type, FAMILY);
    assert_eq!(header.sequence_number, 7);
    assert_eq!(header.flags, NLM_F_REQUEST | NLM_F_ACK);
    assert_eq!(msg.cmd, WireguardCmd::SetDevice);
    // Only the name and one peer: no private key, port, fwmark or REPLACE_PEERS.
    assert_eq!(msg.attributes.len(), 2);
    assert_eq!(msg.attributes[0], WireguardAttribute::IfName("wg0".into()));
    assert_eq!(
        peers_of(&msg),
        vec![vec![
            WireguardPeerAttribute::PublicKey([1; 32]),
            WireguardPeerAttribute::Flags(WireguardPeerFlags::UpdateOnly),
            WireguardPeerAttribute::PresharedKey([2; 32]),
        ]]
    );
}

#[test]
fn recreate_removes_then_adds_the_same_peer() {
    let info = PeerInfo {
        public_key: [3; 32],
        endpoint: Some("192.0.2.2:51820".parse().unwrap()),
        persistent_keepalive: Some(25),
        allowed_ips: vec![
            ("192.168.20.0".parse().unwrap(), 24),
            ("2001:db8::".parse().unwrap(), 64),
        ],
        ..PeerInfo::default()
    };
    let bytes = recreate_request(FAMILY, 9, "wg0", &info, &[4; 32]);
    let (_, msg) = decode(&bytes);
    let peers = peers_of(&msg);
    assert_eq!(peers.len(), 2);
    assert_eq!(
        peers[0],
        vec![
            WireguardPeerAttribute::PublicKey([3; 32]),
            WireguardPeerAttribute::Flags(
                WireguardPeerFlags::RemoveMe | WireguardPeerFlags::UpdateOnly
            ),
        ]
    );
    let mut back = DeviceInfo::default();
    read_peer(&peers[1], &mut back);
    assert_eq!(back.peers.len(), 1);
    let p = &back.peers[0];
    assert_eq!(
        (
            p.public_key,
            p.endpoint,
            p.persistent_keepalive,
            &p.allowed_ips
        ),
        (
            info.public_key,
            info.endpoint,
            info.persistent_keepalive,
            &info.allowed_ips
        )
    );
    assert!(p.psk_set);
}

#[test]
fn get_device_is_a_dump_by_name() {
    let bytes = get_device_request(FAMILY, 3, "wg0");
    let (header, msg) = decode(&bytes);
    assert_eq!(header.flags, NLM_F_REQUEST | NLM_F_DUMP);
    assert_eq!(msg.cmd, WireguardCmd::GetDevice);
    assert_eq!(
        msg.attributes,
        vec![WireguardAttribute::IfName("wg0".into())]
    );
}

fn kernel_message(attributes: Vec<WireguardAttribute>, multi: bool) -> Vec<u8> {
    let mut genl = GenlMessage::from_payload(WireguardMessage {
        cmd: WireguardCmd::GetDevice,
        attributes,
    });
    genl.set_resolved_family_id(FAMILY);
    let mut msg = NetlinkMessage::from(genl);
    if multi {
        msg.header.flags = NLM_F_MULTIPART;
    }
    serialize(&mut msg).to_vec()
}

fn done() -> Vec<u8> {
    let mut msg: NetlinkMessage<GenlMessage<WireguardMessage>> = NetlinkMessage::new(
        NetlinkHeader::default(),
        NetlinkPayload::Done(Default::default()),
    );
    msg.header.flags = NLM_F_MULTIPART;
    serialize(&mut msg).to_vec()
}

#[test]
fn dump_over_two_messages_is_one_device() {
    let peer = |allowed: &str| {
        WireguardPeer(vec![
            WireguardPeerAttribute::PublicKey([5; 32]),
            WireguardPeerAttribute::PresharedKey([6; 32]),
            WireguardPeerAttribute::LastHandshake(WireguardTimeSpec {
                seconds: 1_700_000_000,
                nano_seconds: 0,
            }),
            WireguardPeerAttribute::RxBytes(10),
            WireguardPeerAttribute::AllowedIps(vec![WireguardAllowedIp(vec![
                WireguardAllowedIpAttr::Family(WireguardAddressFamily::Ipv4),
                WireguardAllowedIpAttr::IpAddr(allowed.parse().unwrap()),
                WireguardAllowedIpAttr::Cidr(24),
            ])]),
        ])
    };
    let device_attrs = |p| {
        vec![
            WireguardAttribute::IfName("wg0".into()),
            WireguardAttribute::PrivateKey([8; 32]),
            WireguardAttribute::PublicKey([9; 32]),
            WireguardAttribute::Peers(vec![p]),
        ]
    };
    // Two messages in one datagram, the DONE in a second one.
    let mut first = kernel_message(device_attrs(peer("10.1.0.0")), true);
    first.extend(kernel_message(device_attrs(peer("10.2.0.0")), true));
    assert!(!ends_exchange(&first).unwrap());
    let second = done();
    assert!(ends_exchange(&second).unwrap());
    let mut device = DeviceInfo::default();
    parse_device_datagram(&first, &mut device).unwrap();
    parse_device_datagram(&second, &mut device).unwrap();
    assert_eq!(device.public_key, Some([9; 32]));
    assert_eq!(
        device.peers.len(),
        1,
        "one peer continued over two messages"
    );
    let p = &device.peers[0];
    assert_eq!(p.allowed_ips.len(), 2);
    assert!(p.psk_set && p.last_handshake.is_some());
    assert_eq!(p.rx_bytes, 10);
}

#[test]
fn kernel_errors_and_acks() {
    let ack = |code: i32| {
        let mut e = ErrorMessage::default();
        e.code = std::num::NonZeroI32::new(code);
        let mut msg: NetlinkMessage<GenlMessage<WireguardMessage>> =
            NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::Error(e));
        Zeroizing::new(serialize(&mut msg).to_vec())
    };
    assert!(check_ack(&[ack(0)]).is_ok());
    let err = check_ack(&[ack(-19)]).unwrap_err().to_string();
    assert!(err.contains("No such device"), "{err}");
    assert!(ends_exchange(&ack(-1)).unwrap());
    assert!(parse_family_reply(&[ack(-2)]).is_err());
}

#[test]
fn family_lookup_request_and_answer() {
    let bytes = family_request(1);
    let msg = NetlinkMessage::<GenlMessage<GenlCtrl>>::deserialize(&bytes).unwrap();
    let NetlinkPayload::InnerMessage(genl) = msg.payload else {
        panic!("not nlctrl");
    };
    assert_eq!(genl.payload.cmd, GenlCtrlCmd::GetFamily);
    assert_eq!(
        genl.payload.nlas,
        vec![GenlCtrlAttrs::FamilyName("wireguard".into())]
    );
    let mut answer = NetlinkMessage::from(GenlMessage::from_payload(GenlCtrl {
        cmd: GenlCtrlCmd::NewFamily,
        nlas: vec![
            GenlCtrlAttrs::FamilyName("wireguard".into()),
            GenlCtrlAttrs::FamilyId(FAMILY),
        ],
    }));
    let answer = serialize(&mut answer);
    assert_eq!(parse_family_reply(&[answer]).unwrap(), FAMILY);
}

#[test]
fn truncated_and_garbage_datagrams_are_errors() {
    let good = kernel_message(vec![WireguardAttribute::IfName("wg0".into())], false);
    for cut in [1, 4, 15, good.len() - 1] {
        let mut device = DeviceInfo::default();
        let bad = &good[..cut];
        assert!(
            parse_device_datagram(bad, &mut device).is_err() || device == DeviceInfo::default(),
            "cut at {cut}"
        );
        let _ = ends_exchange(bad);
    }
    let mut device = DeviceInfo::default();
    assert!(parse_device_datagram(&[0xff; 64], &mut device).is_err());
}
