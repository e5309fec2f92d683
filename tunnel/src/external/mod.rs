//! The external data plane (`[interface] wireguard = "wg0"`): Trident runs keymix only, on
//! its own UDP port, and installs each epoch's PSK on the matching peer of an existing
//! WireGuard interface, which keeps carrying the traffic.
//!
//! Two ways in, chosen at start: the UAPI socket `/var/run/wireguard/NAME.sock` of a
//! userspace implementation (wireguard-go, boringtun-cli; [`uapi`]), else the kernel's
//! generic-netlink family "wireguard" ([`netlink`]). Trident never writes the interface's
//! private key, listen port, addresses, routes or any peer it is not configured for; it
//! matches peers by public key and sets `preshared_key` only, except when it fails closed
//! (see [`driver`]).

pub mod driver;
pub mod netlink;
pub mod psk;
pub mod uapi;

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::SystemTime;

pub use driver::run;

/// What Trident reads back from the WireGuard interface. No secrets: the private key and
/// the PSKs are dropped while parsing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceInfo {
    /// The interface's public key; None while it has no private key.
    pub public_key: Option<[u8; 32]>,
    pub peers: Vec<PeerInfo>,
}

/// One peer as the WireGuard interface has it: enough to re-create it unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerInfo {
    pub public_key: [u8; 32],
    pub endpoint: Option<SocketAddr>,
    pub persistent_keepalive: Option<u16>,
    pub allowed_ips: Vec<(IpAddr, u8)>,
    pub last_handshake: Option<SystemTime>,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    /// Whether a non-zero PSK is set (its value is never kept).
    pub psk_set: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum WgError {
    #[error("{0}")]
    Io(String),
    #[error("unexpected answer: {0}")]
    Protocol(String),
    #[error("WireGuard refused the request (errno {0})")]
    Errno(i64),
}

/// The WireGuard interface behind the external data plane.
pub enum WireGuard {
    Uapi(uapi::UapiClient),
    Kernel(netlink::KernelClient),
}

impl WireGuard {
    /// The UAPI socket when one exists for `interface` (userspace implementation), else
    /// kernel WireGuard over generic netlink.
    pub fn open(interface: &str, uapi_dir: &Path) -> Result<Self, WgError> {
        let path = uapi::UapiClient::socket_path(uapi_dir, interface);
        if path.exists() {
            return Ok(Self::Uapi(uapi::UapiClient::new(path)));
        }
        netlink::KernelClient::open(interface)
            .map(Self::Kernel)
            .map_err(|e| {
                WgError::Io(format!(
                    "no WireGuard interface {interface}: no UAPI socket at {} and kernel \
                     WireGuard: {e}",
                    path.display()
                ))
            })
    }

    /// For status: "kernel", or the userspace program's name ("wireguard-go").
    pub fn implementation(&self) -> String {
        match self {
            Self::Uapi(c) => c.implementation().unwrap_or_else(|| "userspace".to_owned()),
            Self::Kernel(_) => "kernel".to_owned(),
        }
    }

    pub fn device(&mut self) -> Result<DeviceInfo, WgError> {
        match self {
            Self::Uapi(c) => c.device(),
            Self::Kernel(c) => c.device(),
        }
    }

    pub fn set_psk(&mut self, peer: &[u8; 32], psk: &[u8; 32]) -> Result<(), WgError> {
        match self {
            Self::Uapi(c) => c.set_psk(peer, psk),
            Self::Kernel(c) => c.set_psk(peer, psk),
        }
    }

    pub fn recreate_peer(&mut self, peer: &PeerInfo, psk: &[u8; 32]) -> Result<(), WgError> {
        match self {
            Self::Uapi(c) => c.recreate_peer(peer, psk),
            Self::Kernel(c) => c.recreate_peer(peer, psk),
        }
    }
}
