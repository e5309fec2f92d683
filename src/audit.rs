//! `trident audit`: the RNDL audit of a WAN capture. Reads the files and prints; the
//! analysis itself is `keymix::audit`.

use std::path::PathBuf;

use anyhow::{bail, Context};
use keymix::audit::{analyse, AuditError, AuditReport, Broken, EpochResult, Outcome};

use crate::capture::{self, Stats};
use keymix::keylog::KeyLogEntry;
use zeroize::Zeroizing;

/// Largest key log (or PSK file) read into memory. The capture is read as a stream, of any
/// size (`capture`).
const MAX_FILE: u64 = 1 << 30;

#[derive(clap::Args)]
pub struct AuditArgs {
    /// pcap or pcapng capture of the WAN traffic (e.g. `tcpdump -w`).
    #[arg(long)]
    pcap: PathBuf,
    /// The key log written by a gateway with `[keymix] keylog_file` or TRIDENT_KEYLOG.
    #[arg(long)]
    keylog: PathBuf,
    /// Sources the attacker has broken: a comma-separated subset of the names `trident
    /// status` prints (x25519, ml-kem-768 or mlkem, qkd), or all, or none.
    #[arg(long)]
    broken: String,
    /// Also give the attacker the bootstrap PSK (a leaked PSK file, base64).
    #[arg(long)]
    bootstrap_psk_file: Option<PathBuf>,
    /// Print JSON: {"epochs":[{"epoch":N,"sources":[...],"result":"recovered"|"not
    /// recovered"|"unknown","recovered":true|false|null,"reason":"..."}],...}.
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
    let file = std::fs::File::open(&args.pcap)
        .with_context(|| format!("capture {}", args.pcap.display()))?;
    let capture = capture::keymix_messages(file)
        .with_context(|| format!("capture {}", args.pcap.display()))?;
    let datagrams = capture.datagrams;
    // The audit sees only the keymix messages; its counts are of the whole capture.
    let udp = usize::try_from(capture.stats.udp).unwrap_or(usize::MAX);
    let keylog_text = Zeroizing::new(read_bounded(&args.keylog, "key log")?);
    let keylog_text = std::str::from_utf8(&keylog_text).context("the key log is not UTF-8 text")?;
    let keylog = KeyLogEntry::parse_file(keylog_text)
        .with_context(|| format!("key log {}", args.keylog.display()))?;
    let protocols = qkd_protocols(keylog_text);
    let psk = args.bootstrap_psk_file.as_ref().map(read_psk).transpose()?;
    let report = match analyse(&datagrams, &keylog, broken, psk.as_deref()) {
        Ok(r) => Ok(AuditReport {
            datagrams: udp,
            ..r
        }),
        Err(AuditError::NoExchanges { .. }) => Err(AuditError::NoExchanges { datagrams: udp }),
        Err(e) => Err(e),
    }
    .with_context(|| {
        format!(
            "capture {} with key log {}",
            args.pcap.display(),
            args.keylog.display()
        )
    })?;
    if args.json {
        let mut v = render_json(&report, broken);
        if let Some(obj) = v.as_object_mut() {
            obj.insert("capture".into(), serde_json::to_value(&capture.stats)?);
            obj.insert("qkd_protocols".into(), serde_json::to_value(&protocols)?);
        }
        println!("{v}");
    } else {
        print!("{}", render_capture(&capture.stats));
        print!("{}", render_human(&report, broken, keylog.len()));
        if !protocols.is_empty() {
            println!("QKD keys delivered over: {}", protocols.join(", "));
        }
    }
    Ok(())
}

/// The QKD key-delivery protocols the key log's writer noted (`# qkd_protocol=NAME`
/// comments, one per start of the gateway), in order, without repeats.
fn qkd_protocols(keylog: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in keylog
        .lines()
        .filter_map(|l| l.trim().strip_prefix("# qkd_protocol="))
        .map(|n| n.trim().chars().take(32).collect::<String>())
    {
        if !name.is_empty() && !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

fn reason(e: &EpochResult) -> Option<String> {
    match &e.outcome {
        Outcome::Unknown(why) => Some(why.to_string()),
        _ => None,
    }
}

/// `recovered` is null for an epoch the audit could not rebuild (`reason` says why), so a
/// consumer reading it as a boolean cannot take such an epoch for a safe one.
fn render_json(report: &AuditReport, broken: Broken) -> serde_json::Value {
    let epochs: Vec<serde_json::Value> = report
        .epochs
        .iter()
        .map(|e| {
            let mut v = serde_json::json!({
                "epoch": e.epoch,
                "sources": e.sources.names(),
                "result": e.outcome.word(),
                "recovered": match e.outcome {
                    Outcome::Recovered => Some(true),
                    Outcome::NotRecovered => Some(false),
                    Outcome::Unknown(_) => None,
                },
            });
            if let (Some(r), Some(obj)) = (reason(e), v.as_object_mut()) {
                obj.insert("reason".into(), r.into());
            }
            v
        })
        .collect();
    let count = |w: &str| {
        report
            .epochs
            .iter()
            .filter(|e| e.outcome.word() == w)
            .count()
    };
    serde_json::json!({
        "broken": broken.names(),
        "epochs": epochs,
        "recovered": count("recovered"),
        "not_recovered": count("not recovered"),
        "unknown": count("unknown"),
        "exchanges": report.exchanges,
        "unmatched_exchanges": report.unmatched_exchanges,
    })
}

/// What the capture reader could not turn into datagrams: an audit that silently saw
/// fewer exchanges than were on the wire would understate what an attacker holds.
fn render_capture(s: &Stats) -> String {
    let mut out = format!(
        "capture: {} frames, {} UDP datagrams ({} reassembled from {} IP fragments), {} not UDP\n",
        s.frames,
        s.udp,
        s.reassembled,
        s.fragments,
        s.not_udp + s.not_ip
    );
    let unreadable = s.unreadable().saturating_sub(s.keymix_not_kept);
    if unreadable > 0 {
        out.push_str(&format!(
            "capture: {} unreadable (may hide keymix messages): {} malformed, {} cut by the \
             snap length, {} of an unknown link type, {} invalid fragments, {} packets with \
             fragments missing\n",
            unreadable,
            s.malformed,
            s.truncated,
            s.unsupported_link,
            s.fragments_invalid,
            s.fragments_unfinished
        ));
    }
    if s.keymix_not_kept > 0 {
        out.push_str(&format!(
            "capture: {} keymix messages not kept: the audit holds at most {} MiB of them; \
             epochs whose messages were not kept come out unknown\n",
            s.keymix_not_kept,
            capture::MAX_KEPT_BYTES >> 20
        ));
    }
    out
}

fn render_human(report: &AuditReport, broken: Broken, keylog_lines: usize) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let holds = if broken.names().is_empty() {
        "nothing".to_string()
    } else {
        broken.names().join(", ")
    };
    let _ = writeln!(
        out,
        "capture: {} UDP datagrams, {} keymix exchanges; key log: {keylog_lines} epochs; attacker holds: {holds}",
        report.datagrams, report.exchanges
    );
    for e in &report.epochs {
        let verdict = match &e.outcome {
            Outcome::Recovered => "PSK RECOVERED".to_string(),
            Outcome::NotRecovered => "not recovered".to_string(),
            Outcome::Unknown(why) => format!("unknown: {why}"),
        };
        let _ = writeln!(
            out,
            "epoch {:>4}  sources {:<20} {verdict}",
            e.epoch,
            e.sources.names().join("+"),
        );
    }
    if report.unmatched_exchanges > 0 {
        let _ = writeln!(
            out,
            "{} exchange(s) in the capture belong to no logged epoch (not completed, cut off by \
             the end of the capture, or between peers this key log does not cover)",
            report.unmatched_exchanges
        );
    }
    let count = |w: &str| {
        report
            .epochs
            .iter()
            .filter(|e| e.outcome.word() == w)
            .count()
    };
    let _ = writeln!(
        out,
        "{} of {} epochs recovered, {} not recovered, {} unknown",
        count("recovered"),
        report.epochs.len(),
        count("not recovered"),
        count("unknown"),
    );
    if count("unknown") > 0 {
        let _ = writeln!(
            out,
            "unknown: the audit could not rebuild those epochs, so it says nothing about them"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use keymix::audit::Unknown;
    use keymix::SourceMask;

    fn report() -> AuditReport {
        let epoch = |epoch, outcome| EpochResult {
            epoch,
            sources: SourceMask::ALL,
            outcome,
        };
        AuditReport {
            epochs: vec![
                epoch(1, Outcome::NotRecovered),
                epoch(2, Outcome::Unknown(Unknown::NoKeyLogLine)),
                epoch(3, Outcome::Unknown(Unknown::PreviousUnknown { epoch: 2 })),
                epoch(1, Outcome::Recovered),
            ],
            exchanges: 4,
            unmatched_exchanges: 0,
            datagrams: 12,
        }
    }

    #[test]
    fn unknown_epochs_are_unknown_with_a_reason_in_both_outputs() {
        let broken = Broken::parse("x25519").unwrap();
        let v = render_json(&report(), broken);
        let epochs = v["epochs"].as_array().unwrap();
        let recovered: Vec<_> = epochs.iter().map(|e| e["recovered"].clone()).collect();
        assert_eq!(
            recovered,
            [
                false.into(),
                serde_json::Value::Null,
                serde_json::Value::Null,
                true.into()
            ]
        );
        assert_eq!(epochs[1]["result"], "unknown");
        assert_eq!(epochs[1]["reason"], "the key log has no line for it");
        assert!(epochs[2]["reason"].as_str().unwrap().contains("epoch 2"));
        assert!(epochs[0].get("reason").is_none());
        assert_eq!(
            (v["recovered"].clone(), v["unknown"].clone()),
            (1.into(), 2.into())
        );

        let text = render_human(&report(), broken, 3);
        let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("epoch")).collect();
        assert!(lines[0].ends_with("not recovered"), "{text}");
        assert!(
            lines[1].ends_with("unknown: the key log has no line for it"),
            "{text}"
        );
        assert!(lines[2].contains("unknown: ") && !lines[2].contains("not recovered"));
        assert!(
            text.contains("1 of 4 epochs recovered, 1 not recovered, 2 unknown"),
            "{text}"
        );
    }

    /// Messages the audit could not keep are reported apart from unreadable frames.
    #[test]
    fn keymix_messages_not_kept_are_reported() {
        let s = Stats {
            frames: 10,
            udp: 10,
            keymix_kept: 4,
            keymix_not_kept: 2,
            ..Stats::default()
        };
        let text = render_capture(&s);
        assert!(!text.contains("unreadable"), "{text}");
        assert!(text.contains("2 keymix messages not kept"), "{text}");
        assert!(text.contains("come out unknown"), "{text}");
    }

    /// A capture without keymix exchanges is an error that names both files.
    #[test]
    fn a_capture_without_exchanges_fails_naming_the_files() {
        let dir = std::env::temp_dir().join(format!("trident-audit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (pcap, keylog) = (dir.join("empty.pcap"), dir.join("a.keylog"));
        let mut header = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
        header.extend([0u8; 8]);
        header.extend(65535u32.to_le_bytes());
        header.extend(1u32.to_le_bytes());
        std::fs::write(&pcap, header).unwrap();
        std::fs::write(&keylog, "").unwrap();
        let err = run(AuditArgs {
            pcap: pcap.clone(),
            keylog: keylog.clone(),
            broken: "all".into(),
            bootstrap_psk_file: None,
            json: false,
        })
        .unwrap_err();
        let msg = format!("{err:#}");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(msg.contains(&*pcap.to_string_lossy()), "{msg}");
        assert!(msg.contains(&*keylog.to_string_lossy()), "{msg}");
        assert!(msg.contains("no keymix exchange"), "{msg}");
    }
}

#[cfg(test)]
mod protocol_tests {
    #[test]
    fn the_key_logs_protocol_notes_are_read_in_order() {
        let log = "# qkd_protocol=skip\ntrident-keylog-v1 epoch=1\n# other\n# qkd_protocol=etsi014\n# qkd_protocol=skip\n";
        assert_eq!(super::qkd_protocols(log), ["skip", "etsi014"]);
        assert!(super::qkd_protocols("").is_empty());
    }
}
