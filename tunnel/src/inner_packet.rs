//! The sanity check every decrypted inner packet passes before it joins a TUN write batch.
//!
//! boringtun truncates a decrypted packet to the length its IP header claims but accepts
//! any claim up to the buffer size, including an IPv4 total length of 0 (an empty packet)
//! or one shorter than the header itself. tun-rs rejects a whole `send_multiple` batch
//! because of one such packet (and its GRO code parses the headers), so a peer could make
//! other peers' packets disappear. Checked here, one packet is dropped and counted.

const IPV4_MIN_HEADER: usize = 20;
const IPV6_HEADER: usize = 40;

/// Whether `packet` is an IPv4 or IPv6 packet whose header length fields match its size.
pub fn is_well_formed(packet: &[u8]) -> bool {
    let Some(first) = packet.first() else {
        return false;
    };
    match first >> 4 {
        4 => {
            let header = usize::from(first & 0x0f) * 4;
            let Some(total) = be_u16(packet, 2) else {
                return false;
            };
            header >= IPV4_MIN_HEADER && total >= header && total == packet.len()
        }
        6 => be_u16(packet, 4).is_some_and(|payload| payload + IPV6_HEADER == packet.len()),
        _ => false,
    }
}

fn be_u16(packet: &[u8], at: usize) -> Option<usize> {
    let bytes: [u8; 2] = packet.get(at..at + 2)?.try_into().ok()?;
    Some(usize::from(u16::from_be_bytes(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv4(total_len: u16, buffer: usize) -> Vec<u8> {
        let mut p = vec![0u8; buffer];
        if let Some(b) = p.get_mut(0) {
            *b = 0x45;
        }
        if let Some(len) = p.get_mut(2..4) {
            len.copy_from_slice(&total_len.to_be_bytes());
        }
        p
    }

    #[test]
    fn accepts_consistent_packets() {
        assert!(is_well_formed(&ipv4(20, 20)));
        assert!(is_well_formed(&ipv4(84, 84)));
        let mut v6 = vec![0u8; 48];
        v6[0] = 0x60;
        v6[4..6].copy_from_slice(&8u16.to_be_bytes());
        assert!(is_well_formed(&v6));
    }

    #[test]
    fn rejects_inconsistent_lengths() {
        // What boringtun hands over for an inner IPv4 total length of 0.
        assert!(!is_well_formed(&[]));
        assert!(!is_well_formed(&ipv4(0, 20)));
        assert!(!is_well_formed(&ipv4(12, 12)));
        assert!(!is_well_formed(&ipv4(19, 20)));
        assert!(!is_well_formed(&ipv4(40, 20)));
        assert!(!is_well_formed(&ipv4(20, 40)));
        let mut bad_ihl = ipv4(40, 40);
        bad_ihl[0] = 0x44;
        assert!(!is_well_formed(&bad_ihl));
        let mut long_ihl = ipv4(40, 40);
        long_ihl[0] = 0x4f; // 60-byte header in a 40-byte packet
        assert!(!is_well_formed(&long_ihl));
        let mut v6 = vec![0u8; 48];
        v6[0] = 0x60;
        assert!(!is_well_formed(&v6));
        assert!(!is_well_formed(&[0x60; 20]));
        assert!(!is_well_formed(&[0x10; 40]));
    }
}
