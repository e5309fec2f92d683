//! Addresses, MTU, link state and routes of the TUN device, set over rtnetlink
//! ([`crate::rtnl`]; no iproute2 needed at run time). The guard undoes the routes on drop;
//! the addresses go with the device itself. Errors name the equivalent `ip` command.

use ip_network::IpNetwork;

use crate::error::TunnelError;
use crate::rtnl::Rtnl;
use crate::settings::InterfaceAddress;

/// An rtnetlink socket and the device's index, or the error naming `command`.
fn open(name: &str, command: &str) -> Result<(Rtnl, u32), TunnelError> {
    let err = |detail: String| TunnelError::NetConfig {
        command: command.to_owned(),
        detail,
    };
    let index =
        nix::net::if_::if_nametoindex(name).map_err(|e| err(format!("no device {name}: {e}")))?;
    let rtnl = Rtnl::open().map_err(|e| err(format!("netlink socket: {e}")))?;
    Ok((rtnl, index))
}

fn failed(command: String) -> impl FnOnce(std::io::Error) -> TunnelError {
    move |e| TunnelError::NetConfig {
        command,
        detail: e.to_string(),
    }
}

/// Routes `net` to the device in `table` (a reloaded peer's new allowed IP).
pub fn add_route(name: &str, net: &IpNetwork, table: u32) -> Result<(), TunnelError> {
    let command = format!("ip route add {net} dev {name} table {table}");
    let (mut rtnl, index) = open(name, &command)?;
    rtnl.add_route(index, net, table).map_err(failed(command))
}

/// Removes the route of `net` through the device (a reloaded peer lost that allowed IP).
pub fn del_route(name: &str, net: &IpNetwork, table: u32) -> Result<(), TunnelError> {
    let command = format!("ip route del {net} dev {name} table {table}");
    let (mut rtnl, index) = open(name, &command)?;
    rtnl.del_route(index, net, table).map_err(failed(command))
}

/// Routes added for allowed IPs; deleted on drop.
pub struct InterfaceConfig {
    name: String,
    table: u32,
    routes: Vec<IpNetwork>,
}

impl InterfaceConfig {
    /// Assigns addresses and MTU, brings the link up, and routes every allowed IP that no
    /// interface address already covers into `table` (`None`: no routes, table = "off").
    pub fn apply(
        name: &str,
        addresses: &[InterfaceAddress],
        mtu: u16,
        allowed_ips: &[IpNetwork],
        table: Option<u32>,
    ) -> Result<Self, TunnelError> {
        let mut config = Self {
            name: name.to_owned(),
            table: table.unwrap_or(crate::settings::MAIN_TABLE),
            routes: Vec::new(),
        };
        let allowed_ips = if table.is_some() { allowed_ips } else { &[] };
        let (mut rtnl, index) = open(name, &format!("ip link show {name}"))?;
        for a in addresses {
            rtnl.add_address(index, a)
                .map_err(failed(format!("ip address add {a} dev {name}")))?;
        }
        rtnl.set_link_up(index, mtu)
            .map_err(failed(format!("ip link set dev {name} mtu {mtu} up")))?;
        for net in allowed_ips {
            if addresses.iter().any(|a| a.covers(net)) || config.routes.contains(net) {
                continue;
            }
            rtnl.add_route(index, net, config.table)
                .map_err(failed(format!(
                    "ip route add {net} dev {name} table {}",
                    config.table
                )))?;
            config.routes.push(*net);
        }
        Ok(config)
    }
}

impl Drop for InterfaceConfig {
    fn drop(&mut self) {
        if crate::privileges::is_confined() {
            // The packet thread's seccomp filter forbids opening a netlink socket; the
            // routes go with the TUN device, which is closed right after this.
            tracing::debug!("routes are removed with the device");
            return;
        }
        for net in &self.routes {
            if let Err(e) = del_route(&self.name, net, self.table) {
                tracing::debug!("route cleanup: {e}");
            }
        }
    }
}
