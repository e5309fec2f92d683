//! `trident kme-sim`: a pair of simulated ETSI GS QKD 014 KMEs that are also SKIP Key
//! Providers (qkd::sim), so the whole system runs without QKD hardware. `init` writes the certificates and the two KME
//! configs, `run` serves one KME, `status` asks a KME for its ETSI 014 Status as an SAE.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use qkd::sim::{
    self, KmeConfig, DEFAULT_LINK_A, DEFAULT_LINK_B, DEFAULT_LISTEN_A, DEFAULT_LISTEN_B,
};
use qkd::{Etsi014Client, Etsi014ClientConfig};

#[derive(Subcommand)]
pub enum KmeSimCommand {
    /// Write DIR/ca.pem, the KME and SAE certificates, DIR/kme-a.toml and DIR/kme-b.toml.
    Init(InitArgs),
    /// Serve one KME (ETSI 014 over HTTPS with mutual TLS, and SKIP in certificate and PSK
    /// mode) until SIGINT/SIGTERM. Its key_rate_bps and qber are re-read on SIGHUP or when
    /// the file changes.
    Run {
        /// DIR/kme-a.toml or DIR/kme-b.toml.
        config: PathBuf,
    },
    /// Print a KME's ETSI 014 Status (JSON), asking as the SAE the KME serves.
    Status {
        /// DIR/kme-a.toml or DIR/kme-b.toml; the SAE's certificate is DIR/SAE_ID.pem.
        config: PathBuf,
    },
}

#[derive(Args)]
pub struct InitArgs {
    /// Directory to create the setup in (files already there are never overwritten).
    dir: PathBuf,
    /// The SAE IDs: the first is served by KME A, the second by KME B.
    #[arg(long = "sae", required = true, num_args = 1, value_name = "SAE_ID")]
    sae: Vec<String>,
    /// KME A's ETSI 014 address for its SAE.
    #[arg(long, default_value_t = DEFAULT_LISTEN_A)]
    listen_a: SocketAddr,
    /// KME B's ETSI 014 address for its SAE.
    #[arg(long, default_value_t = DEFAULT_LISTEN_B)]
    listen_b: SocketAddr,
    /// Where KME A accepts the key link from KME B (and where KME B connects).
    #[arg(long, default_value_t = DEFAULT_LINK_A)]
    link_a: SocketAddr,
    /// Where KME B accepts the key link from KME A.
    #[arg(long, default_value_t = DEFAULT_LINK_B)]
    link_b: SocketAddr,
    /// Secret key rate of the simulated QKD link in bit/s (both KMEs; default 2560, i.e.
    /// ten 256-bit keys per second). Editable later in the two tomls, also at run time.
    #[arg(long)]
    key_rate_bps: Option<f64>,
    /// Pool capacity in keys of 256 bits (both KMEs; default 1000). The pool starts full.
    #[arg(long)]
    max_key_count: Option<u64>,
}

pub fn run(command: KmeSimCommand) -> Result<()> {
    match command {
        KmeSimCommand::Init(args) => init(&args),
        KmeSimCommand::Run { config } => serve(&config),
        KmeSimCommand::Status { config } => status(&config),
    }
}

fn init(args: &InitArgs) -> Result<()> {
    let [sae_a, sae_b] = args.sae.as_slice() else {
        bail!("give exactly two SAE IDs: --sae SAE_A --sae SAE_B");
    };
    let out = sim::init(
        &args.dir,
        sae_a,
        sae_b,
        args.listen_a,
        args.listen_b,
        args.link_a,
        args.link_b,
    )
    .with_context(|| format!("kme-sim init {}", args.dir.display()))?;
    if args.key_rate_bps.is_some() || args.max_key_count.is_some() {
        for path in [&out.config_a, &out.config_b] {
            set_rate(path, args.key_rate_bps, args.max_key_count)?;
        }
    }
    println!("KME A: {} (serves {sae_a})", out.config_a.display());
    println!("KME B: {} (serves {sae_b})", out.config_b.display());
    println!("CA for the SAEs: {}", out.ca_file.display());
    for (sae, files) in [(sae_a, &out.sae_a), (sae_b, &out.sae_b)] {
        println!(
            "SAE {sae}: cert_file {} key_file {}",
            files.cert_file.display(),
            files.key_file.display()
        );
    }
    // The same KMEs as SKIP Key Providers (system ID = KME ID).
    for (path, sae) in [(&out.config_a, sae_a), (&out.config_b, sae_b)] {
        let config = KmeConfig::load(path).with_context(|| format!("{}", path.display()))?;
        let url =
            |addr: Option<SocketAddr>| addr.map_or("-".to_owned(), |a| format!("https://{a}"));
        println!(
            "SKIP KP {}: certificate mode {}, PSK mode {} (psk_identity_file {}, psk_file {})",
            config.kme_id,
            url(config.skip_listen),
            url(config.skip_psk_listen),
            args.dir.join(format!("{sae}.skip-psk-id")).display(),
            args.dir.join(format!("{sae}.skip-psk")).display(),
        );
    }
    Ok(())
}

/// Rewrites the rate model of a config `init` just wrote. The file is parsed as it is (not
/// with `KmeConfig::load`, which makes paths absolute) so the directory stays movable.
fn set_rate(path: &Path, key_rate_bps: Option<f64>, max_key_count: Option<u64>) -> Result<()> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    let mut config: KmeConfig =
        toml::from_str(&text).with_context(|| format!("{}", path.display()))?;
    if let Some(rate) = key_rate_bps {
        config.key_rate_bps = rate;
    }
    if let Some(count) = max_key_count {
        config.max_key_count = count;
    }
    config
        .validate()
        .map_err(|e| anyhow::anyhow!("--key-rate-bps/--max-key-count: {e}"))?;
    // Keep the comments `init` appended (the qber hint) after the values.
    let comments: String = text
        .lines()
        .skip_while(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    let mut new = toml::to_string_pretty(&config).context("encoding the KME config")?;
    if !comments.is_empty() {
        new.push('\n');
        new.push_str(&comments);
    }
    std::fs::write(path, new).with_context(|| format!("writing {}", path.display()))
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")
}

fn serve(config: &Path) -> Result<()> {
    runtime()?
        .block_on(sim::run(config))
        .with_context(|| format!("kme-sim run {}", config.display()))
}

/// Calls Get status as the KME's own SAE, with the files `init` wrote next to the config.
fn status(config_path: &Path) -> Result<()> {
    let config = KmeConfig::load(config_path)
        .with_context(|| format!("kme-sim status {}", config_path.display()))?;
    let dir = config_path.parent().unwrap_or(Path::new("."));
    let mut addr = config.listen;
    if addr.ip().is_unspecified() {
        // A wildcard listener's certificate is valid for loopback.
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let client = Etsi014Client::new(&Etsi014ClientConfig {
        kme_url: format!("https://{addr}"),
        ca_file: config.ca_file.clone(),
        cert_file: dir.join(format!("{}.pem", config.sae_id)),
        key_file: dir.join(format!("{}.key", config.sae_id)),
        timeout: Duration::from_secs(5),
    })
    .context("setting up the ETSI 014 client")?;
    let status = runtime()?
        .block_on(client.status(&config.peer_sae_id))
        .with_context(|| format!("Get status from {addr}"))?;
    println!("{}", serde_json::to_string_pretty(&status)?);
    Ok(())
}
