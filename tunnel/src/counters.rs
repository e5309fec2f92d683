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
    /// Handshake initiation whose TAI64N timestamp is not newer than the last one the peer
    /// had accepted (a replay, possibly into a fresh epoch's Tunn).
    ReplayedInitiation,
    /// Decrypted inner packet whose IP header length fields disagree with its size (IPv4
    /// total length 0, ...): never queued for the TUN device.
    MalformedInner,
    /// Packet from the TUN device that could not be read or split (a super-packet with
    /// more segments than fit, a bad virtio header): that one packet is lost.
    TunReadDropped,
    /// The keymix chain could not be saved to the state directory (logged as an error).
    StateWriteFailed,
    /// A keymix datagram the kernel refused as too big even with fragmentation allowed:
    /// no exchange can complete until the path or the socket allows it.
    KeymixEmsgsize,
    /// Handshake initiation stamped more than ten minutes ahead of our clock.
    FutureInitiation,
}

impl TunnelDrop {
    pub const ALL: [TunnelDrop; 15] = [
        Self::UnknownType,
        Self::UnknownIndex,
        Self::BadInitiation,
        Self::WireguardRejected,
        Self::SourceNotAllowed,
        Self::NoRoute,
        Self::NoEpoch,
        Self::NoEndpoint,
        Self::IoError,
        Self::ReplayedInitiation,
        Self::MalformedInner,
        Self::TunReadDropped,
        Self::StateWriteFailed,
        Self::KeymixEmsgsize,
        Self::FutureInitiation,
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
            Self::ReplayedInitiation => "replayed_initiation",
            Self::MalformedInner => "malformed_inner",
            Self::TunReadDropped => "tun_read_dropped",
            Self::StateWriteFailed => "state_write_failed",
            Self::KeymixEmsgsize => "keymix_emsgsize",
            Self::FutureInitiation => "future_initiation",
        }
    }
}

#[derive(Debug, Default, Clone)]
pub struct TunnelCounters {
    counts: [u64; TunnelDrop::ALL.len()],
}

impl TunnelCounters {
    pub fn count(&mut self, reason: TunnelDrop) {
        self.add(reason, 1);
    }

    pub fn add(&mut self, reason: TunnelDrop, n: u64) {
        if let Some(c) = self.counts.get_mut(reason as usize) {
            *c = c.saturating_add(n);
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (TunnelDrop, u64)> + '_ {
        TunnelDrop::ALL
            .iter()
            .copied()
            .zip(self.counts.iter().copied())
    }
}
