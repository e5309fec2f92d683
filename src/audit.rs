//! `trident audit`: the RNDL audit of a WAN capture. Reads the files and prints; the
//! analysis itself is `keymix::audit`.

use std::path::PathBuf;

use anyhow::{bail, Context};
use keymix::audit::{analyse, udp_datagrams, Broken};
use keymix::keylog::KeyLogEntry;
use zeroize::Zeroizing;

/// Largest capture or key log read into memory.
const MAX_FILE: u64 = 1 << 30;

#[derive(clap::Args)]
pub struct AuditArgs {
    /// pcap or pcapng capture of the WAN traffic (e.g. `tcpdump -w`).
    #[arg(long)]
    pcap: PathBuf,
    /// The key log written by a gateway with `[keymix] keylog_file` or TRIDENT_KEYLOG.
    #[arg(long)]
    keylog: PathBuf,
    /// Sources the attacker has broken: a comma-separated subset of x25519,mlkem,qkd, or all.
    #[arg(long)]
    broken: String,
    /// Also give the attacker the bootstrap PSK (a leaked PSK file, base64).
    #[arg(long)]
    bootstrap_psk_file: Option<PathBuf>,
    /// Print JSON: {"epochs":[{"epoch":N,"sources":[...],"recovered":bool}]}.
    #[arg(long)]
    json: bool,
}

fn read_bounded(path: &PathBuf, what: &str) -> anyhow::Result<Vec<u8>> {
    let meta = std::fs::metadata(path).with_context(|| format!("{what} {}", path.display()))?;
    if meta.len() > MAX_FILE {
        bail!("{what} {} is larger than {MAX_FILE} bytes", path.display());
    }
    std::fs::read(path).with_context(|| format!("reading {what} {}", path.display()))
}

fn read_psk(path: &PathBuf) -> anyhow::Result<Zeroizing<[u8; 32]>> {
    use base64::Engine as _;
    let text = Zeroizing::new(read_bounded(path, "bootstrap PSK file")?);
    let trimmed = std::str::from_utf8(&text)
        .map(str::trim)
        .context("bootstrap PSK file is not text")?;
    let raw = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(trimmed)
            .context("bootstrap PSK file is not base64")?,
    );
    let mut psk = Zeroizing::new([0u8; 32]);
    if raw.len() != 32 {
        bail!("bootstrap PSK must be 32 bytes, got {}", raw.len());
    }
    psk.copy_from_slice(&raw);
    Ok(psk)
}

pub fn run(args: AuditArgs) -> anyhow::Result<()> {
    let broken = Broken::parse(&args.broken)?;
    let capture = read_bounded(&args.pcap, "capture")?;
    let datagrams =
        udp_datagrams(&capture).with_context(|| format!("capture {}", args.pcap.display()))?;
    let keylog_text = Zeroizing::new(read_bounded(&args.keylog, "key log")?);
    let keylog_text = std::str::from_utf8(&keylog_text).context("the key log is not UTF-8 text")?;
    let keylog = KeyLogEntry::parse_file(keylog_text)
        .with_context(|| format!("key log {}", args.keylog.display()))?;
    let psk = args.bootstrap_psk_file.as_ref().map(read_psk).transpose()?;
    let report = analyse(&datagrams, &keylog, broken, psk.as_deref());

    if args.json {
        let epochs: Vec<serde_json::Value> = report
            .epochs
            .iter()
            .map(|e| {
                serde_json::json!({
                    "epoch": e.epoch,
                    "sources": e.sources.names(),
                    "recovered": e.recovered,
                })
            })
            .collect();
        let out = serde_json::json!({
            "broken": broken.names(),
            "epochs": epochs,
            "unmatched_exchanges": report.unmatched_exchanges,
        });
        println!("{out}");
        return Ok(());
    }
    println!(
        "capture: {} UDP datagrams; key log: {} epochs; attacker holds: {}",
        report.datagrams,
        keylog.len(),
        if broken.names().is_empty() {
            "nothing".to_string()
        } else {
            broken.names().join(", ")
        }
    );
    if report.epochs.is_empty() {
        println!("no completed keymix exchange with a key-log entry found in the capture");
    }
    for e in &report.epochs {
        println!(
            "epoch {:>4}  sources {:<20} {}",
            e.epoch,
            e.sources.names().join("+"),
            if e.recovered {
                "PSK RECOVERED"
            } else {
                "not recovered"
            }
        );
    }
    if report.unmatched_exchanges > 0 {
        println!(
            "{} exchange(s) in the capture have no key-log entry (not completed, or logged by the other gateway)",
            report.unmatched_exchanges
        );
    }
    let recovered = report.epochs.iter().filter(|e| e.recovered).count();
    println!("{recovered} of {} epochs recovered", report.epochs.len());
    Ok(())
}
