//! Addresses, MTU, link state and routes of the TUN device, set with iproute2's `ip`
//! (present on every Linux gateway; keeps netlink details out of the data plane). The
//! guard undoes the routes on drop; the addresses go with the device itself.

use std::process::Command;

use ip_network::IpNetwork;

use crate::error::TunnelError;
use crate::settings::InterfaceAddress;

fn ip(args: &[&str]) -> Result<(), TunnelError> {
    let command = format!("ip {}", args.join(" "));
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| TunnelError::NetConfig {
            command: command.clone(),
            detail: format!("cannot run ip (install iproute2): {e}"),
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(TunnelError::NetConfig {
            command,
            detail: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// Routes added for allowed IPs; deleted on drop.
pub struct InterfaceConfig {
    name: String,
    routes: Vec<IpNetwork>,
}

impl InterfaceConfig {
    /// Assigns addresses and MTU, brings the link up, and routes every allowed IP that no
    /// interface address already covers.
    pub fn apply(
        name: &str,
        addresses: &[InterfaceAddress],
        mtu: u16,
        allowed_ips: &[IpNetwork],
    ) -> Result<Self, TunnelError> {
        let mut config = Self {
            name: name.to_owned(),
            routes: Vec::new(),
        };
        for a in addresses {
            ip(&["address", "add", &a.to_string(), "dev", name])?;
        }
        ip(&["link", "set", "dev", name, "mtu", &mtu.to_string(), "up"])?;
        for net in allowed_ips {
            if addresses.iter().any(|a| a.covers(net)) || config.routes.contains(net) {
                continue;
            }
            ip(&["route", "add", &net.to_string(), "dev", name])?;
            config.routes.push(*net);
        }
        Ok(config)
    }
}

impl Drop for InterfaceConfig {
    fn drop(&mut self) {
        for net in &self.routes {
            if let Err(e) = ip(&["route", "del", &net.to_string(), "dev", &self.name]) {
                tracing::debug!("route cleanup: {e}");
            }
        }
    }
}
