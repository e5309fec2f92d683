//! Live reconfiguration (`trident reload NAME`, SIGHUP): re-read the config, refuse what
//! only a restart can change, hand the new peer list to the packet loop and add or remove
//! the routes of changed allowed IPs.
//!
//! The reload task runs on the caller's runtime, not on the packet thread: reading the
//! config file and running `ip` are exactly what the packet thread's seccomp filter
//! forbids ([`crate::privileges`]). The packet loop only swaps its peer state.

use std::collections::BTreeSet;
use std::path::PathBuf;

use ip_network::IpNetwork;
use keymix::PublicKey;
use tokio::sync::{mpsc, oneshot};

use crate::control::ControlReply;
use crate::netconfig;
use crate::settings::{Hooks, InterfaceAddress, PeerSettings, RouteTable, TunnelSettings};

/// Reads and validates the config again (the CLI's loader; errors are one line).
pub type Loader = Box<dyn FnMut() -> Result<TunnelSettings, String> + Send>;

/// One reload: from the control socket (with a reply) or a signal (without).
pub struct ReloadRequest {
    pub reply: Option<oneshot::Sender<ControlReply>>,
}

/// Sends reload requests to a running interface's reload task.
pub type ReloadTrigger = mpsc::Sender<ReloadRequest>;

/// The new peers for the packet loop; it answers with a summary or why it refused.
pub struct Apply {
    pub peers: Vec<PeerSettings>,
    pub reply: oneshot::Sender<Result<String, String>>,
}

/// What `up` gives the tunnel to make it reloadable.
pub struct Reloader {
    load: Loader,
    tx: ReloadTrigger,
    rx: mpsc::Receiver<ReloadRequest>,
}

impl Reloader {
    pub fn new(load: Loader) -> Self {
        let (tx, rx) = mpsc::channel(4);
        Self { load, tx, rx }
    }

    /// A sender for SIGHUP or the control socket.
    pub fn trigger(&self) -> ReloadTrigger {
        self.tx.clone()
    }
}

/// The settings a running interface cannot change; a reload that changes one is refused.
#[derive(PartialEq, Eq)]
pub struct RestartOnly {
    name: String,
    public_key: [u8; 32],
    listen_port: u16,
    listen_address: Option<std::net::IpAddr>,
    addresses: Vec<InterfaceAddress>,
    mtu: u16,
    local_sae_id: Option<String>,
    keylog_file: Option<PathBuf>,
    control_dir: PathBuf,
    state_dir: Option<PathBuf>,
    wireguard: Option<String>,
    metrics_listen: Option<std::net::SocketAddr>,
    table: RouteTable,
    fwmark: Option<u32>,
    hooks: Hooks,
}

impl RestartOnly {
    pub fn of(s: &TunnelSettings) -> Self {
        Self {
            name: s.name.clone(),
            public_key: *PublicKey::from(&s.private_key).as_bytes(),
            listen_port: s.listen_port,
            listen_address: s.listen_address,
            addresses: s.addresses.clone(),
            mtu: s.mtu,
            local_sae_id: s.local_sae_id.clone(),
            keylog_file: s.keylog_file.clone(),
            control_dir: s.control_dir.clone(),
            state_dir: s.state_dir.clone(),
            wireguard: s.wireguard.clone(),
            metrics_listen: s.metrics_listen,
            table: s.table,
            fwmark: s.fwmark,
            hooks: s.hooks.clone(),
        }
    }

    /// The names of the settings that differ between `self` (running) and `new`.
    pub fn changed(&self, new: &Self) -> Vec<&'static str> {
        let mut changed = Vec::new();
        let mut check = |differs: bool, what: &'static str| {
            if differs {
                changed.push(what);
            }
        };
        check(self.name != new.name, "interface name");
        check(self.public_key != new.public_key, "private key");
        check(self.listen_port != new.listen_port, "listen_port");
        check(self.listen_address != new.listen_address, "listen_address");
        check(self.addresses != new.addresses, "address");
        check(self.mtu != new.mtu, "mtu");
        check(self.local_sae_id != new.local_sae_id, "[qkd] sae_id");
        check(self.keylog_file != new.keylog_file, "keylog_file");
        check(self.control_dir != new.control_dir, "control directory");
        check(self.state_dir != new.state_dir, "state_dir");
        check(
            self.wireguard != new.wireguard,
            "wireguard (external data plane)",
        );
        check(self.table != new.table, "table");
        check(self.fwmark != new.fwmark, "fwmark");
        check(self.hooks != new.hooks, "pre_up/post_up/pre_down/post_down");
        check(self.metrics_listen != new.metrics_listen, "metrics_listen");
        changed
    }
}

/// The routes the interface needs for `peers`: every allowed IP no address covers (none
/// with table = "off").
pub fn routes_for(
    table: RouteTable,
    addresses: &[InterfaceAddress],
    peers: &[PeerSettings],
) -> BTreeSet<IpNetwork> {
    if table.id().is_none() {
        return BTreeSet::new();
    }
    peers
        .iter()
        .flat_map(|p| p.allowed_ips.iter())
        .filter(|net| !addresses.iter().any(|a| a.covers(net)))
        .copied()
        .collect()
}

/// Serves reloads until `apply` closes (the packet loop ended).
pub async fn serve(
    mut reloader: Reloader,
    running: RestartOnly,
    mut routes: BTreeSet<IpNetwork>,
    apply: mpsc::Sender<Apply>,
) {
    while let Some(request) = reloader.rx.recv().await {
        let answer = match reload_once(&mut reloader.load, &running, &mut routes, &apply).await {
            Ok(summary) => {
                tracing::info!(interface = %running.name, "reloaded: {summary}");
                ControlReply::ok(format!("{}: reloaded: {summary}", running.name))
            }
            Err(why) => {
                tracing::warn!(interface = %running.name, "reload refused, running config kept: {why}");
                ControlReply::error(format!(
                    "{}: reload refused, running config kept: {why}",
                    running.name
                ))
            }
        };
        if let Some(reply) = request.reply {
            let _ = reply.send(answer);
        }
        if apply.is_closed() {
            break;
        }
    }
}

async fn reload_once(
    load: &mut Loader,
    running: &RestartOnly,
    routes: &mut BTreeSet<IpNetwork>,
    apply: &mpsc::Sender<Apply>,
) -> Result<String, String> {
    // Reading files and resolving endpoints blocks: off the runtime's worker.
    let mut taken: Loader = std::mem::replace(load, Box::new(|| Err(String::new())));
    let (taken, loaded) = tokio::task::spawn_blocking(move || {
        let loaded = taken();
        (taken, loaded)
    })
    .await
    .map_err(|e| format!("config loader failed: {e}"))?;
    *load = taken;
    let settings = loaded?;
    let changed = running.changed(&RestartOnly::of(&settings));
    if !changed.is_empty() {
        return Err(format!(
            "changing {} needs a restart of the interface (stop and start `trident up`, or systemctl restart)",
            changed.join(", ")
        ));
    }
    let new_routes = routes_for(running.table, &running.addresses, &settings.peers);
    let table = running.table.id().unwrap_or(crate::settings::MAIN_TABLE);
    let (reply, answer) = oneshot::channel();
    apply
        .send(Apply {
            peers: settings.peers,
            reply,
        })
        .await
        .map_err(|_| "the interface is shutting down".to_owned())?;
    let summary = answer
        .await
        .map_err(|_| "the interface is shutting down".to_owned())??;
    // Peers are in place; now the kernel routes (new ones to the device, old ones away).
    let add: Vec<IpNetwork> = new_routes.difference(routes).copied().collect();
    let del: Vec<IpNetwork> = routes.difference(&new_routes).copied().collect();
    let name = running.name.clone();
    let (a, d) = (add.clone(), del.clone());
    let failed = tokio::task::spawn_blocking(move || {
        let (add, del) = (a, d);
        let mut failed = Vec::new();
        for net in &add {
            if let Err(e) = netconfig::add_route(&name, net, table) {
                failed.push(e.to_string());
            }
        }
        for net in &del {
            if let Err(e) = netconfig::del_route(&name, net, table) {
                failed.push(e.to_string());
            }
        }
        failed
    })
    .await
    .unwrap_or_else(|e| vec![format!("route task failed: {e}")]);
    *routes = new_routes;
    let mut summary = summary;
    if !add.is_empty() || !del.is_empty() {
        summary.push_str(&format!("; routes +{} -{}", add.len(), del.len()));
    }
    if !failed.is_empty() {
        return Err(format!(
            "peers applied but routes failed: {}",
            failed.join("; ")
        ));
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(key: u8, port: u16) -> TunnelSettings {
        TunnelSettings {
            name: "t0".into(),
            private_key: keymix::StaticSecret::from([key; 32]),
            listen_port: port,
            listen_address: None,
            addresses: vec!["10.0.0.1/24".parse().unwrap()],
            mtu: 1420,
            peers: Vec::new(),
            local_sae_id: None,
            qkd_source: None,
            keylog_file: None,
            control_dir: "/run/trident".into(),
            state_dir: None,
            wireguard: None,
            metrics_listen: None,
            table: RouteTable::Auto,
            fwmark: None,
            hooks: Hooks::default(),
            on_up: None,
        }
    }

    #[test]
    fn restart_only_changes_are_named() {
        let a = RestartOnly::of(&settings(1, 51820));
        assert!(a.changed(&RestartOnly::of(&settings(1, 51820))).is_empty());
        assert_eq!(
            a.changed(&RestartOnly::of(&settings(2, 51821))),
            vec!["private key", "listen_port"]
        );
        let mut hooked = settings(1, 51820);
        hooked.table = RouteTable::Id(100);
        hooked.fwmark = Some(0x1234);
        hooked.hooks.post_up.push("true".into());
        hooked.metrics_listen = "127.0.0.1:9586".parse().ok();
        assert_eq!(
            a.changed(&RestartOnly::of(&hooked)),
            vec![
                "table",
                "fwmark",
                "pre_up/post_up/pre_down/post_down",
                "metrics_listen"
            ]
        );
    }

    #[test]
    fn covered_allowed_ips_get_no_route() {
        let addresses: Vec<InterfaceAddress> = vec!["10.0.0.1/24".parse().unwrap()];
        let peer = |nets: &[&str]| PeerSettings {
            endpoint: None,
            allowed_ips: nets.iter().map(|n| n.parse().unwrap()).collect(),
            persistent_keepalive: None,
            keymix: keymix::PeerConfig::new(PublicKey::from([9u8; 32])),
            classic: None,
        };
        let off = routes_for(RouteTable::Off, &addresses, &[peer(&["10.1.0.0/16"])]);
        assert!(off.is_empty());
        let routes = routes_for(
            RouteTable::Auto,
            &addresses,
            &[
                peer(&["10.0.0.2/32", "10.1.0.0/16"]),
                peer(&["10.1.0.0/16"]),
            ],
        );
        assert_eq!(
            routes
                .into_iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>(),
            vec!["10.1.0.0/16"]
        );
    }
}
