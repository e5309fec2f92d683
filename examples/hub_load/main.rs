//! Load generator for one `trident up` hub: N emulated spokes, each with its own static
//! key, bootstrap PSK and UDP source address (or port), speaking Trident's protocol through
//! the project's own keymix `Endpoint` and the data plane's per-peer state (boringtun
//! `Tunn`s by epoch). Not part of Trident; `scripts/hub-load.sh` runs it against a hub in a
//! network namespace and measures the hub (bench/hub/).
//!
//! ```text
//! hub_load gen --dir DIR --spokes N --hub IP:PORT --src-base IP [options]   # hub.toml, keys, PSKs
//! hub_load run --dir DIR [--ping-sample K] [--hold SECS] [--ready-file F]  # the spokes; JSON on stdout
//! ```
//! `run` prints progress on stderr and, when every spoke is up (its keymix epoch committed
//! and an echo reply came back through its WireGuard session), writes the boot-storm
//! figures to `--ready-file`; then the sampled spokes ping every `--ping-interval-ms` until
//! SIGINT/SIGTERM or `--hold` ends, and the report (boot storm, ping loss, epochs, cookies)
//! goes to stdout.

mod collect;
mod gen;
mod icmp;
mod run;
mod spoke;
mod spoke_report;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "hub_load", about = "N emulated spokes against one trident hub")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write DIR (new, 0700): hub.toml with N peers, hub.key, psk/, spokes.json.
    Gen {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        spokes: usize,
        /// The hub's interface name.
        #[arg(long, default_value = "trlHub")]
        name: String,
        /// The hub's UDP address as the spokes reach it (its port is the hub's listen_port).
        #[arg(long)]
        hub: SocketAddr,
        /// Spoke i sends from address src_base + (i mod src_count) ...
        #[arg(long)]
        src_base: Ipv4Addr,
        /// ... (default: one address per spoke) ...
        #[arg(long)]
        src_count: Option<usize>,
        /// ... and port src_port + (i div src_count).
        #[arg(long, default_value_t = 51820)]
        src_port: u16,
        /// Tunnel network: the hub is its .1, spoke i gets the address 2 + i in it.
        #[arg(long, default_value = "10.200.0.0/16")]
        tunnel_net: String,
        #[arg(long, default_value_t = 20)]
        epoch_secs: u64,
        #[arg(long, default_value_t = 40)]
        reject_after_secs: u64,
        /// off | preferred | required (the latter two need --kme-dir).
        #[arg(long, default_value = "off")]
        qkd: String,
        /// The spokes' persistent_keepalive (branches behind NAT keep one).
        #[arg(long)]
        keepalive: Option<u16>,
        /// The hub's metrics_listen.
        #[arg(long)]
        metrics: Option<SocketAddr>,
        /// A `trident kme-sim init` directory: KME A serves the hub, KME B the spokes.
        #[arg(long)]
        kme_dir: Option<PathBuf>,
        #[arg(long, default_value = "https://127.0.0.1:8443")]
        kme_hub_url: String,
        #[arg(long, default_value = "https://127.0.0.1:8444")]
        kme_spoke_url: String,
    },
    /// Run the spokes of DIR/spokes.json against the hub; JSON report on stdout.
    Run {
        #[arg(long)]
        dir: PathBuf,
        /// OS threads for the spokes (each a current-thread runtime).
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Spokes that ping the hub after the boot storm (spread evenly over the plan).
        #[arg(long, default_value_t = 10)]
        ping_sample: usize,
        #[arg(long, default_value_t = 100)]
        ping_interval_ms: u64,
        /// Give up waiting for the boot storm after this long (the report lists who is not up).
        #[arg(long, default_value_t = 180)]
        up_timeout_secs: u64,
        /// Stop this long after the boot storm (default: at SIGINT/SIGTERM).
        #[arg(long)]
        hold_secs: Option<u64>,
        /// Where to write the boot-storm figures once every spoke is up.
        #[arg(long)]
        ready_file: Option<PathBuf>,
        /// After the pings stop, how long replies still count.
        #[arg(long, default_value_t = 2)]
        grace_secs: u64,
    },
}

fn parse_net(s: &str) -> Result<(Ipv4Addr, u8)> {
    let (addr, prefix) = s.split_once('/').context("expected ADDRESS/PREFIX")?;
    let addr: Ipv4Addr = addr.parse().context("address")?;
    let prefix: u8 = prefix.parse().context("prefix")?;
    if !(8..=30).contains(&prefix) {
        bail!("prefix /{prefix}: expected /8 to /30");
    }
    Ok((addr, prefix))
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Gen {
            dir,
            spokes,
            name,
            hub,
            src_base,
            src_count,
            src_port,
            tunnel_net,
            epoch_secs,
            reject_after_secs,
            qkd,
            keepalive,
            metrics,
            kme_dir,
            kme_hub_url,
            kme_spoke_url,
        } => {
            let (net, prefix) = parse_net(&tunnel_net)?;
            gen::generate(&gen::GenArgs {
                dir: &dir,
                spokes,
                name: &name,
                hub,
                src_base,
                src_count: src_count.unwrap_or(spokes),
                src_port,
                tunnel_net: net,
                tunnel_prefix: prefix,
                epoch_secs,
                reject_after_secs,
                qkd: &qkd,
                keepalive,
                metrics,
                kme_dir: kme_dir.as_deref(),
                kme_hub_url: &kme_hub_url,
                kme_spoke_url: &kme_spoke_url,
            })
        }
        Command::Run {
            dir,
            threads,
            ping_sample,
            ping_interval_ms,
            up_timeout_secs,
            hold_secs,
            ready_file,
            grace_secs,
        } => run::run(&run::RunArgs {
            dir,
            threads,
            ping_sample,
            ping_interval: Duration::from_millis(ping_interval_ms.max(1)),
            up_timeout: Duration::from_secs(up_timeout_secs),
            hold: hold_secs.map(Duration::from_secs),
            ready_file,
            grace: Duration::from_secs(grace_secs),
        }),
    }
}
