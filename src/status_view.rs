//! `trident status [NAME] [--json]`: read an interface's control socket and print it as
//! JSON or in the layout of `wg show`, plus the key sources of the current epoch.

use std::fmt::Write as _;

use anyhow::{bail, Context, Result};
use tunnel::control::{list_interfaces, query_status, socket_path};
use tunnel::process_control::{probe, Liveness};
use tunnel::{InterfaceStatus, PeerReport};

pub fn status(name: Option<&str>, json: bool) -> Result<()> {
    let dir = &crate::cli_extra::control_dir();
    let name = match name {
        Some(n) => n.to_owned(),
        None => match running_interfaces(dir).as_slice() {
            [only] => only.clone(),
            [] => bail!(
                "no trident interface is running (no live control socket in {})",
                dir.display()
            ),
            many => bail!("several interfaces run ({}); name one", many.join(", ")),
        },
    };
    let path = crate::cli_extra::running_socket(&name)?;
    let status = query_status(&path).with_context(|| format!("interface {name}"))?;
    if json {
        let text = serde_json::to_string_pretty(&status)?;
        crate::output::print(&format!("{text}\n"))
    } else {
        crate::output::print(&render(&status))
    }
}

/// The interfaces whose control socket answers; a socket left by a crash is not one.
fn running_interfaces(dir: &std::path::Path) -> Vec<String> {
    list_interfaces(dir)
        .into_iter()
        .filter(|name| probe(&socket_path(dir, name)) == Liveness::Running)
        .collect()
}

fn ago(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut parts = Vec::new();
    if h > 0 {
        parts.push(format!("{h} hour{}", if h == 1 { "" } else { "s" }));
    }
    if m > 0 {
        parts.push(format!("{m} minute{}", if m == 1 { "" } else { "s" }));
    }
    if s > 0 || parts.is_empty() {
        parts.push(format!("{s} second{}", if s == 1 { "" } else { "s" }));
    }
    format!("{} ago", parts.join(", "))
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.2} {}", UNITS.get(unit).unwrap_or(&"TiB"))
}

fn sources(peer: &PeerReport) -> String {
    if peer.classic {
        return "none (classic WireGuard)".to_owned();
    }
    let s = peer.sources;
    let names: Vec<&str> = [
        (s.x25519, "x25519"),
        (s.mlkem, "ml-kem-768"),
        (s.qkd, "qkd"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect();
    if names.is_empty() {
        "none (no epoch yet)".to_owned()
    } else {
        names.join(" + ")
    }
}

/// The `wg show`-like text.
pub fn render(status: &InterfaceStatus) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "interface: {}", status.interface);
    let _ = writeln!(out, "  public key: {}", status.public_key);
    let _ = writeln!(out, "  listening port: {}", status.listen_port);
    match &status.wireguard {
        Some(wg) => {
            let _ = writeln!(
                out,
                "  data plane: {} ({}, {})",
                status.data_plane, wg.interface, wg.implementation
            );
        }
        None => {
            let _ = writeln!(out, "  data plane: {}", status.data_plane);
        }
    }
    if let Some(protocol) = &status.qkd_protocol {
        let _ = writeln!(out, "  qkd key delivery: {protocol}");
    }
    if let Some(path) = &status.keylog {
        let _ = writeln!(out, "  keylog: {path} (secrets on disk!)");
    }
    let _ = writeln!(out, "  dropped: {}", status.dropped_total);
    for (reason, n) in status.dropped.iter().filter(|(_, n)| **n > 0) {
        let _ = writeln!(out, "    {reason}: {n}");
    }
    for peer in &status.peers {
        let _ = writeln!(out);
        let _ = writeln!(out, "peer: {}", peer.public_key);
        if let Some(e) = &peer.endpoint {
            let _ = writeln!(out, "  endpoint: {e}");
        }
        let _ = writeln!(out, "  allowed ips: {}", peer.allowed_ips.join(", "));
        let _ = writeln!(out, "  state: {}", peer.state);
        if let Some(reason) = &peer.reason {
            let _ = writeln!(out, "  reason: {reason}");
        }
        // Advice comes only from local facts or authenticated messages (keymix decides).
        if let Some(hint) = &peer.hint {
            let _ = writeln!(out, "  hint: {hint}");
        }
        if peer.unverified > 0 {
            let last = peer.last_unverified.as_deref().unwrap_or("");
            let _ = writeln!(
                out,
                "  unverified: {} datagrams claiming to be this peer did not authenticate \
                 (counted, not acted on); last: {last}",
                peer.unverified
            );
        }
        if peer.static_only_reset {
            let _ = writeln!(
                out,
                "  warning: operator reset with --static-only: the next first contact rests on \
                 the static keys alone until the chain has grown again"
            );
        }
        if let Some(w) = &peer.warning {
            let _ = writeln!(out, "  warning: {w}");
        }
        if peer.psk_rotation {
            let _ = writeln!(
                out,
                "  bootstrap psk: rotating (the old one is accepted until the peer uses the new one)"
            );
        }
        if let Some(epoch) = peer.epoch {
            let age = peer.epoch_age_secs.map(ago).unwrap_or_default();
            let _ = writeln!(out, "  epoch: {epoch} (established {age})");
        }
        if peer.chain_epoch != 0 && peer.epoch != Some(peer.chain_epoch) {
            let _ = writeln!(out, "  chain epoch: {} (saved chain)", peer.chain_epoch);
        }
        if let Some(auth) = &peer.auth {
            let _ = writeln!(out, "  authenticated by: {auth}");
            if auth == "static-only" {
                let _ = writeln!(
                    out,
                    "  warning: first contact without a bootstrap PSK: authenticated by the static keys alone"
                );
            }
        }
        let _ = writeln!(out, "  sources: {}", sources(peer));
        match (peer.version, peer.pinned_version) {
            (Some(v), Some(p)) => {
                let _ = writeln!(out, "  keymix version: {v} (pinned: {p} or later only)");
            }
            (Some(v), None) => {
                let _ = writeln!(out, "  keymix version: {v}");
            }
            (None, Some(p)) => {
                let _ = writeln!(out, "  keymix version: pinned to {p} or later");
            }
            (None, None) => {}
        }
        if peer.classic {
            let _ = writeln!(
                out,
                "  warning: plain WireGuard peer (keymix = \"off\"): no ML-KEM, no QKD, no epochs"
            );
        }
        if let Some(psk) = &peer.installed_psk {
            let _ = writeln!(out, "  wireguard psk: {psk}");
        }
        if !peer.qkd_policy.is_empty() && peer.qkd_policy != "off" {
            let _ = writeln!(
                out,
                "  qkd: {} (policy {})",
                peer.sources.qkd, peer.qkd_policy
            );
        }
        if let Some(id) = &peer.qkd_key_id {
            let _ = writeln!(out, "  qkd key id: {id}");
        }
        if let Some(h) = peer.last_handshake_secs {
            let _ = writeln!(out, "  latest handshake: {}", ago(h));
        }
        let _ = writeln!(
            out,
            "  transfer: {} received, {} sent",
            bytes(peer.rx_bytes),
            bytes(peer.tx_bytes)
        );
        if let Some(k) = peer.persistent_keepalive {
            let _ = writeln!(out, "  persistent keepalive: every {k} seconds");
        }
        let _ = writeln!(out, "  keymix exchanges: {}", peer.keymix_exchanges);
        if let Some(e) = &peer.last_kme_error {
            let _ = writeln!(out, "  last kme error: {e}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(
        auth: Option<&str>,
        reason: Option<&str>,
        epoch: Option<u64>,
        chain: u64,
    ) -> PeerReport {
        PeerReport {
            public_key: "PK".into(),
            endpoint: None,
            state: if reason.is_some() { "blocked" } else { "up" }.into(),
            epoch,
            epoch_age_secs: Some(3),
            sources: Default::default(),
            qkd_key_id: None,
            last_handshake_secs: None,
            rx_bytes: 0,
            tx_bytes: 0,
            last_kme_error: None,
            keymix_exchanges: 1,
            allowed_ips: Vec::new(),
            persistent_keepalive: None,
            tunnel_epochs: Vec::new(),
            qkd_policy: "off".into(),
            auth: auth.map(str::to_owned),
            reason: reason.map(str::to_owned),
            hint: None,
            unverified: 0,
            last_unverified: None,
            static_only_reset: false,
            psk_rotation: false,
            warning: None,
            chain_epoch: chain,
            classic: false,
            installed_psk: None,
            version: None,
            pinned_version: None,
        }
    }

    fn view(peers: Vec<PeerReport>) -> String {
        render(&InterfaceStatus {
            interface: "trA".into(),
            public_key: "K".into(),
            listen_port: 51820,
            peers,
            dropped: Default::default(),
            dropped_total: 0,
            keylog: None,
            data_plane: "built-in".into(),
            wireguard: None,
            qkd_protocol: None,
        })
    }

    #[test]
    fn auth_reason_and_chain_epoch_are_shown() {
        let out = view(vec![peer(Some("chain"), None, Some(7), 7)]);
        assert!(out.contains("authenticated by: chain"), "{out}");
        assert!(
            !out.contains("chain epoch") && !out.contains("warning"),
            "{out}"
        );

        let out = view(vec![peer(Some("static-only"), None, Some(1), 1)]);
        assert!(out.contains("authenticated by: static-only"), "{out}");
        assert!(
            out.contains("warning: first contact without a bootstrap PSK"),
            "{out}"
        );

        let reason = "key past its reject age";
        let mut p = peer(None, Some(reason), None, 9);
        p.hint = Some("this side holds no chain ...".into());
        p.unverified = 4;
        p.last_unverified = Some("an Init for epoch 2 ..., 3 s ago".into());
        p.static_only_reset = true;
        let out = view(vec![p]);
        assert!(out.contains(&format!("reason: {reason}")), "{out}");
        assert!(out.contains("hint: this side holds no chain"), "{out}");
        assert!(out.contains("unverified: 4 datagrams"), "{out}");
        assert!(out.contains("last: an Init for epoch 2"), "{out}");
        assert!(
            out.contains("warning: operator reset with --static-only"),
            "{out}"
        );
        assert!(out.contains("chain epoch: 9"), "{out}");
    }

    #[test]
    fn external_mode_and_classic_peers_are_named() {
        let mut classic = peer(None, None, None, 0);
        classic.classic = true;
        let mut hybrid = peer(Some("chain"), None, Some(4), 4);
        hybrid.installed_psk = Some("epoch 4".into());
        let out = render(&InterfaceStatus {
            interface: "trA".into(),
            public_key: "K".into(),
            listen_port: 51821,
            peers: vec![hybrid, classic],
            dropped: Default::default(),
            dropped_total: 0,
            keylog: None,
            data_plane: "external".into(),
            wireguard: Some(tunnel::status::ExternalReport {
                interface: "wg0".into(),
                implementation: "wireguard-go".into(),
            }),
            qkd_protocol: Some("skip".into()),
        });
        assert!(
            out.contains("data plane: external (wg0, wireguard-go)")
                && out.contains("qkd key delivery: skip"),
            "{out}"
        );
        assert!(out.contains("wireguard psk: epoch 4"), "{out}");
        assert!(out.contains("sources: none (classic WireGuard)"), "{out}");
        assert!(out.contains("warning: plain WireGuard peer"), "{out}");
    }
}
