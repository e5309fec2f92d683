//! Addresses, MTU, link state and routes of the TUN device, set with iproute2's `ip`
//! (present on every Linux gateway; keeps netlink details out of the data plane). The
//! guard undoes the routes on drop; the addresses go with the device itself.

use std::path::Path;
use std::process::Command;

use ip_network::IpNetwork;

use crate::error::TunnelError;
use crate::settings::InterfaceAddress;

/// Where distributions install iproute2's `ip`. A root process never searches PATH: an
/// inherited PATH (sudo -E, a service manager) could name another `ip`.
const IP_CANDIDATES: [&str; 4] = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"];

fn ip_binary() -> Option<&'static Path> {
    IP_CANDIDATES
        .iter()
        .map(Path::new)
        .find(|p| p.metadata().is_ok_and(|m| m.is_file()))
}

fn ip(args: &[&str]) -> Result<(), TunnelError> {
    let command = format!("ip {}", args.join(" "));
    let binary = ip_binary().ok_or_else(|| TunnelError::NetConfig {
        command: command.clone(),
        detail: format!(
            "iproute2's ip is in none of {} (install iproute2)",
            IP_CANDIDATES.join(", ")
        ),
    })?;
    let out = Command::new(binary)
        .args(args)
        .env_clear()
        .output()
        .map_err(|e| TunnelError::NetConfig {
            command: command.clone(),
            detail: format!("cannot run {}: {e}", binary.display()),
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

/// Routes `net` to the device (a reloaded peer's new allowed IP).
pub fn add_route(name: &str, net: &IpNetwork) -> Result<(), TunnelError> {
    ip(&["route", "add", &net.to_string(), "dev", name])
}

/// Removes the route of `net` through the device (a reloaded peer lost that allowed IP).
pub fn del_route(name: &str, net: &IpNetwork) -> Result<(), TunnelError> {
    ip(&["route", "del", &net.to_string(), "dev", name])
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
        if crate::privileges::is_confined() {
            // The packet thread's seccomp filter forbids starting `ip`; the routes go with
            // the TUN device, which is closed right after this.
            tracing::debug!("routes are removed with the device");
            return;
        }
        for net in &self.routes {
            if let Err(e) = ip(&["route", "del", &net.to_string(), "dev", &self.name]) {
                tracing::debug!("route cleanup: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_is_found_at_an_absolute_path_or_not_at_all() {
        if let Some(p) = ip_binary() {
            assert!(p.is_absolute());
        }
        // Even with a PATH that names a directory holding a fake `ip`.
        assert!(IP_CANDIDATES.iter().all(|c| c.starts_with('/')));
    }
}
