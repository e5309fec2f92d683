//! The collector: milestones of every spoke, the phases (boot storm, pings, drain, stop)
//! and the JSON report.

use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use serde_json::{json, Value};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, watch};

use crate::run::RunArgs;
use crate::spoke_report::{Note, SpokeReport};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Every spoke brings its tunnel up (probes until the first echo reply).
    Boot,
    /// The sampled spokes ping the hub.
    Ping,
    /// No new pings; replies still count.
    Drain,
    Stop,
}

/// Percentiles of seconds, for the report.
fn spread(mut secs: Vec<f64>) -> Value {
    if secs.is_empty() {
        return Value::Null;
    }
    secs.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let i = ((secs.len() - 1) as f64 * q).round() as usize;
        secs.get(i).copied().map(round3)
    };
    json!({"p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "max": at(1.0)})
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn unix_ms() -> u128 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// Writes `value` to `path` atomically (the caller polls for the file).
fn write_ready(path: &std::path::Path, value: &Value) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(value)?)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))
}

struct Milestones {
    start: Instant,
    keymix: Vec<Option<f64>>,
    data: Vec<Option<f64>>,
    n_keymix: usize,
    n_data: usize,
    epochs: u64,
    finals: Vec<SpokeReport>,
    start_unix_ms: u128,
    ping_secs: f64,
    epochs_while_pinging: u64,
}

impl Milestones {
    fn note(&mut self, note: Note) {
        match note {
            Note::Epoch { spoke, at, .. } => {
                self.epochs += 1;
                if let Some(slot @ None) = self.keymix.get_mut(spoke) {
                    *slot = Some(at.saturating_duration_since(self.start).as_secs_f64());
                    self.n_keymix += 1;
                }
            }
            Note::Data { spoke, at } => {
                if let Some(slot @ None) = self.data.get_mut(spoke) {
                    *slot = Some(at.saturating_duration_since(self.start).as_secs_f64());
                    self.n_data += 1;
                }
            }
            Note::Final(r) => self.finals.push(*r),
        }
    }

    fn boot(&self) -> Value {
        let last = |v: &[Option<f64>], n: usize| {
            (n == v.len()).then(|| round3(v.iter().flatten().copied().fold(0.0, f64::max)))
        };
        let not_up: Vec<usize> = (0..self.data.len())
            .filter(|i| self.data.get(*i).is_some_and(Option::is_none))
            .collect();
        json!({
            "all_keymix_s": last(&self.keymix, self.n_keymix),
            "all_data_s": last(&self.data, self.n_data),
            "keymix_up": self.n_keymix,
            "data_up": self.n_data,
            "keymix_s": spread(self.keymix.iter().flatten().copied().collect()),
            "data_s": spread(self.data.iter().flatten().copied().collect()),
            "not_up": not_up,
        })
    }
}

pub async fn collect(
    n: usize,
    sampled: Vec<usize>,
    mut notes: mpsc::UnboundedReceiver<Note>,
    phase: watch::Sender<Phase>,
    args: &RunArgs,
    start: Instant,
    threads: usize,
) -> Result<Value> {
    let mut m = Milestones {
        start,
        keymix: vec![None; n],
        data: vec![None; n],
        n_keymix: 0,
        n_data: 0,
        epochs: 0,
        finals: Vec::new(),
        start_unix_ms: unix_ms(),
        ping_secs: 0.0,
        epochs_while_pinging: 0,
    };
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let up_deadline = start + args.up_timeout;
    let mut progress = tokio::time::interval(Duration::from_secs(5));
    let mut stopped = false;
    // Phase 1: the boot storm.
    while m.n_data < n && !stopped {
        tokio::select! {
            // Closed: every spoke thread ended (a bind failed); waiting on is pointless.
            note = notes.recv() => match note {
                Some(note) => m.note(note),
                None => break,
            },
            () = tokio::time::sleep_until(up_deadline.into()) => break,
            _ = progress.tick() => eprintln!(
                "hub_load: {:.1} s: keymix up {}/{n}, data up {}/{n}",
                start.elapsed().as_secs_f64(), m.n_keymix, m.n_data
            ),
            _ = interrupt.recv() => stopped = true,
            _ = terminate.recv() => stopped = true,
        }
    }
    let boot = m.boot();
    eprintln!("hub_load: boot storm done: {boot}");
    if let Some(path) = &args.ready_file {
        write_ready(path, &boot)?;
    }
    // Phase 2: pings from the sample until stopped (signal or --hold).
    let _ = phase.send(Phase::Ping);
    let ping_start = Instant::now();
    let epochs_at_ping = m.epochs;
    let hold = async {
        match args.hold {
            Some(h) => tokio::time::sleep(h).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(hold);
    if !stopped {
        loop {
            tokio::select! {
                note = notes.recv() => match note {
                    Some(note) => m.note(note),
                    None => break,
                },
                () = &mut hold => break,
                _ = interrupt.recv() => break,
                _ = terminate.recv() => break,
            }
        }
    }
    m.ping_secs = ping_start.elapsed().as_secs_f64();
    m.epochs_while_pinging = m.epochs - epochs_at_ping;
    // Phase 3: replies in flight still count, then every spoke reports.
    let _ = phase.send(Phase::Drain);
    let grace = tokio::time::sleep(args.grace);
    tokio::pin!(grace);
    loop {
        tokio::select! {
            Some(note) = notes.recv() => m.note(note),
            () = &mut grace => break,
        }
    }
    let _ = phase.send(Phase::Stop);
    let finals_deadline = tokio::time::sleep(Duration::from_secs(10));
    tokio::pin!(finals_deadline);
    while m.finals.len() < n {
        tokio::select! {
            note = notes.recv() => match note {
                Some(note) => m.note(note),
                None => break,
            },
            () = &mut finals_deadline => break,
        }
    }
    Ok(report(&m, &sampled, args, threads))
}

/// Every spoke's KME errors by kind, added up.
fn error_kinds(finals: &[SpokeReport]) -> std::collections::BTreeMap<&str, u64> {
    let mut all = std::collections::BTreeMap::new();
    for (kind, n) in finals.iter().flat_map(|r| &r.kme_error_kinds) {
        *all.entry(kind.as_str()).or_default() += n;
    }
    all
}

fn report(m: &Milestones, sampled: &[usize], args: &RunArgs, threads: usize) -> Value {
    let sum = |f: fn(&SpokeReport) -> u64| m.finals.iter().map(f).sum::<u64>();
    let samples: Vec<&SpokeReport> = m
        .finals
        .iter()
        .filter(|r| sampled.contains(&r.spoke))
        .collect();
    let per_spoke: Vec<Value> = samples
        .iter()
        .map(|r| {
            json!({"spoke": r.spoke, "sent": r.pings_sent, "received": r.pings_received,
                   "lost": r.pings_lost, "epoch_switches": r.epochs_while_pinging,
                   "max_rtt_ms": round3(r.max_rtt_ms)})
        })
        .collect();
    json!({
        "spokes": m.data.len(),
        "threads": threads,
        "start_unix_ms": m.start_unix_ms,
        "boot": m.boot(),
        "ping": {
            "sampled": sampled.len(),
            "interval_ms": args.ping_interval.as_millis(),
            "seconds": round3(m.ping_secs),
            "sent": samples.iter().map(|r| r.pings_sent).sum::<u64>(),
            "received": samples.iter().map(|r| r.pings_received).sum::<u64>(),
            "lost": samples.iter().map(|r| r.pings_lost).sum::<u64>(),
            "min_epoch_switches": samples.iter().map(|r| r.epochs_while_pinging).min(),
            "per_spoke": per_spoke,
        },
        "spoke_side": {
            "reported": m.finals.len(),
            "epochs": sum(|r| r.epochs),
            "epochs_while_pinging": m.epochs_while_pinging,
            "keymix_cookies": sum(|r| r.keymix_cookies),
            "wireguard_cookies": sum(|r| r.wireguard_cookies),
            "kme_requests": sum(|r| r.kme_requests),
            "kme_errors": sum(|r| r.kme_errors),
            "kme_error_kinds": error_kinds(&m.finals),
            "send_errors": sum(|r| r.send_errors),
            "wireguard_rejected": sum(|r| r.wireguard_rejected),
        },
    })
}
