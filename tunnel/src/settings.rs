//! Typed settings for one interface, as the CLI hands them over after parsing its config.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use ip_network::IpNetwork;
use keymix::qkd::QkdKeySource;
use keymix::{PeerConfig, StaticSecret};

/// Default directory of the control sockets (`NAME.sock`).
pub const CONTROL_DIR: &str = "/run/trident";

/// Everything `run` needs for one interface.
pub struct TunnelSettings {
    pub name: String,
    /// Zeroized on drop by x25519-dalek.
    pub private_key: StaticSecret,
    pub listen_port: u16,
    /// `[interface] listen_address`: the UDP socket is bound to this address only, with
    /// IP_FREEBIND so it may be absent for now (the virtual address of an HA pair: the
    /// standby neither receives nor can send until it holds the address).
    pub listen_address: Option<IpAddr>,
    pub addresses: Vec<InterfaceAddress>,
    pub mtu: u16,
    pub peers: Vec<PeerSettings>,
    /// This site's SAE ID towards its KME (ETSI GS QKD 014), when QKD is configured.
    pub local_sae_id: Option<String>,
    /// Answers keymix's KME requests; `None` answers every request with an error, which
    /// keymix turns into "degraded" (qkd = preferred) or "blocked" (qkd = required).
    pub qkd_source: Option<Arc<dyn QkdKeySource>>,
    /// The opt-in RNDL key log (holds secrets); `None` keeps it off.
    pub keylog_file: Option<PathBuf>,
    pub control_dir: PathBuf,
    /// Where each peer's keymix chain is persisted (`[interface] state_dir`); `None` keeps
    /// it in memory only, so a restart needs a bootstrap PSK or an operator reset.
    pub state_dir: Option<PathBuf>,
    /// `[interface] wireguard = "wg0"`: run keymix only and set the PSKs of this existing
    /// WireGuard interface ([`crate::external`]); `None` is the built-in data plane.
    pub wireguard: Option<String>,
    /// `[interface] metrics_listen`: serve Prometheus metrics on GET /metrics there.
    pub metrics_listen: Option<SocketAddr>,
    /// `[interface] table`: where the allowed IPs are routed.
    pub table: RouteTable,
    /// `[interface] fwmark`: SO_MARK of the UDP socket (policy routing of tunnel packets).
    pub fwmark: Option<u32>,
    /// wg-quick's PreUp/PostUp/PreDown/PostDown; the CLI runs them, reload compares them.
    pub hooks: Hooks,
    /// Sent once the device, its addresses and routes and keymix are up (the sd_notify
    /// point), so the caller runs post_up on its own runtime: the packet thread may not
    /// start programs.
    pub on_up: Option<tokio::sync::oneshot::Sender<()>>,
}

/// `[interface] table`, as wg-quick's Table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RouteTable {
    /// Routes for the allowed IPs in the main table.
    #[default]
    Auto,
    /// No routes at all: the operator routes.
    Off,
    /// Routes for the allowed IPs in this routing table.
    Id(u32),
}

/// The kernel's main routing table (RT_TABLE_MAIN).
pub const MAIN_TABLE: u32 = 254;

impl RouteTable {
    /// The table the allowed IPs are routed into; `None` adds no routes.
    pub fn id(self) -> Option<u32> {
        match self {
            Self::Auto => Some(MAIN_TABLE),
            Self::Off => None,
            Self::Id(n) => Some(n),
        }
    }
}

/// Shell commands run around the interface's life, each through `/bin/sh -c` with `%i`
/// replaced by the interface name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hooks {
    pub pre_up: Vec<String>,
    pub post_up: Vec<String>,
    pub pre_down: Vec<String>,
    pub post_down: Vec<String>,
}

impl Hooks {
    pub fn is_empty(&self) -> bool {
        self.pre_up.is_empty()
            && self.post_up.is_empty()
            && self.pre_down.is_empty()
            && self.post_down.is_empty()
    }
}

/// One `[[peer]]`.
pub struct PeerSettings {
    pub endpoint: Option<SocketAddr>,
    pub allowed_ips: Vec<IpNetwork>,
    pub persistent_keepalive: Option<u16>,
    /// The peer's public key, PSK epoch schedule and QKD policy.
    pub keymix: PeerConfig,
    /// `keymix = "off"`: plain WireGuard with a stock peer (built-in data plane only).
    pub classic: Option<ClassicPeer>,
}

/// A plain WireGuard peer: one Tunn for the peer's life, keyed with a static PSK or none.
/// No keymix, so no ML-KEM, no QKD and no epochs (status warns).
pub struct ClassicPeer {
    pub preshared_key: Option<zeroize::Zeroizing<[u8; 32]>>,
}

/// An interface address with its prefix length, e.g. `10.99.0.1/24` (host bits kept,
/// unlike [`IpNetwork`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterfaceAddress {
    pub ip: IpAddr,
    pub prefix_len: u8,
}

impl InterfaceAddress {
    /// The network the kernel routes to the interface for this address.
    pub fn network(&self) -> IpNetwork {
        // new_truncate only fails for a prefix longer than the address, which FromStr rejects.
        IpNetwork::new_truncate(self.ip, self.prefix_len)
            .unwrap_or_else(|_| IpNetwork::from(self.ip))
    }

    /// Whether the kernel already routes all of `net` to the interface through this address.
    pub fn covers(&self, net: &IpNetwork) -> bool {
        let own = self.network();
        own.netmask() <= net.netmask() && own.contains(net.network_address())
    }
}

impl FromStr for InterfaceAddress {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (ip, prefix) = match s.split_once('/') {
            Some((ip, prefix)) => (ip, Some(prefix)),
            None => (s, None),
        };
        let ip: IpAddr = ip
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address with optional /prefix"))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let prefix_len = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?} has an invalid prefix length (0..={max})"))?,
        };
        Ok(Self { ip, prefix_len })
    }
}

impl fmt::Display for InterfaceAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.ip, self.prefix_len)
    }
}

/// Parses an allowed-IPs entry like `wg` does: `A.B.C.D/N`, host bits dropped; a bare
/// address is a /32 or /128.
pub fn parse_allowed_ip(s: &str) -> Result<IpNetwork, String> {
    let a = InterfaceAddress::from_str(s)?;
    Ok(a.network())
}
