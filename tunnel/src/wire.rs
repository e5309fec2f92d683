//! The few WireGuard header fields the tunnel reads itself to route a datagram to a Tunn,
//! before boringtun parses and authenticates it. Layouts from the WireGuard paper, §5.4:
//! every message starts with a 4-byte little-endian type (1..=4).

/// What an incoming datagram is, as far as routing needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireKind {
    /// Type 1; carries the initiator's sender index at bytes 4..8.
    HandshakeInit { sender_idx: u32 },
    /// Types 2, 3, 4: carry our own index as receiver index.
    ToIndex { receiver_idx: u32, data: bool },
}

const HANDSHAKE_INIT_LEN: usize = 148;
const HANDSHAKE_RESP_LEN: usize = 92;
const COOKIE_REPLY_LEN: usize = 64;
const DATA_MIN_LEN: usize = 32;

fn le_u32(datagram: &[u8], at: usize) -> Option<u32> {
    let bytes: [u8; 4] = datagram.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_le_bytes(bytes))
}

/// Classifies a WireGuard datagram; `None` for anything of a wrong type or length.
pub fn classify(datagram: &[u8]) -> Option<WireKind> {
    match (le_u32(datagram, 0)?, datagram.len()) {
        (1, HANDSHAKE_INIT_LEN) => Some(WireKind::HandshakeInit {
            sender_idx: le_u32(datagram, 4)?,
        }),
        (2, HANDSHAKE_RESP_LEN) => Some(WireKind::ToIndex {
            receiver_idx: le_u32(datagram, 8)?,
            data: false,
        }),
        (3, COOKIE_REPLY_LEN) => Some(WireKind::ToIndex {
            receiver_idx: le_u32(datagram, 4)?,
            data: false,
        }),
        (4, n) if n >= DATA_MIN_LEN => Some(WireKind::ToIndex {
            receiver_idx: le_u32(datagram, 4)?,
            data: true,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_by_type_and_length() {
        let mut init = vec![0u8; 148];
        init[0] = 1;
        init[4..8].copy_from_slice(&0x1234_5678u32.to_le_bytes());
        assert_eq!(
            classify(&init),
            Some(WireKind::HandshakeInit {
                sender_idx: 0x1234_5678
            })
        );
        let mut data = vec![0u8; 32];
        data[0] = 4;
        data[4..8].copy_from_slice(&7u32.to_le_bytes());
        assert_eq!(
            classify(&data),
            Some(WireKind::ToIndex {
                receiver_idx: 7,
                data: true
            })
        );
        assert_eq!(classify(&init[..100]), None);
        assert_eq!(classify(&[4, 0, 0]), None);
        assert_eq!(classify(&[9u8; 64]), None);
    }
}
