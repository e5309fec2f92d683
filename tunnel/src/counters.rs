//! Datagrams and packets the tunnel itself dropped, by reason (keymix counts its own).

/// Why the tunnel dropped a packet. Fixed set, so counting never allocates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelDrop {
    /// UDP datagram that is neither WireGuard nor keymix, or has a wrong length.
    UnknownType,
    /// WireGuard message for an index no live Tunn owns.
    UnknownIndex,
    /// Handshake initiation that fails mac1 or does not come from a configured peer.
    BadInitiation,
    /// boringtun rejected a message (bad tag, replay, ...).
    WireguardRejected,
    /// Inner packet whose source address is not in the sending peer's allowed IPs.
    SourceNotAllowed,
    /// Packet from the TUN device to an address no peer's allowed IPs cover.
    NoRoute,
    /// Fail closed: the peer has no live PSK epoch (none yet, or expired).
    NoEpoch,
    /// We do not know where the peer is yet.
    NoEndpoint,
    /// Sending on the UDP socket or writing to the TUN device failed.
    IoError,
}

impl TunnelDrop {
    pub const ALL: [TunnelDrop; 9] = [
        Self::UnknownType,
        Self::UnknownIndex,
        Self::BadInitiation,
        Self::WireguardRejected,
        Self::SourceNotAllowed,
        Self::NoRoute,
        Self::NoEpoch,
        Self::NoEndpoint,
        Self::IoError,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnknownType => "unknown_type",
            Self::UnknownIndex => "unknown_index",
            Self::BadInitiation => "bad_initiation",
            Self::WireguardRejected => "wireguard_rejected",
            Self::SourceNotAllowed => "source_not_allowed",
            Self::NoRoute => "no_route",
            Self::NoEpoch => "no_epoch",
            Self::NoEndpoint => "no_endpoint",
            Self::IoError => "io_error",
        }
    }
}

#[derive(Debug, Default, Clone)]
pub struct TunnelCounters {
    counts: [u64; TunnelDrop::ALL.len()],
}

impl TunnelCounters {
    pub fn count(&mut self, reason: TunnelDrop) {
        if let Some(c) = self.counts.get_mut(reason as usize) {
            *c = c.saturating_add(1);
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (TunnelDrop, u64)> + '_ {
        TunnelDrop::ALL
            .iter()
            .copied()
            .zip(self.counts.iter().copied())
    }
}
