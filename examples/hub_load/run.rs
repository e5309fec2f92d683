//! `hub_load run`: starts every spoke of a plan (each on its own UDP source address and
//! port, with its own static key and bootstrap PSK), waits until all are up, then pings
//! from a sample of spokes across epoch switches until stopped, and prints one JSON report.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use keymix::qkd::{QkdError, QkdKeySource};
use keymix::{KmeRequest, KmeRequestKind, PeerConfig, PublicKey, QkdPolicy, StaticSecret};
use tokio::sync::{mpsc, watch};

use crate::collect::{self, Phase};
use crate::gen::{key32, LoadPlan};
use crate::spoke::{Spoke, SpokeSetup, PING_IDENT, PROBE_IDENT};
use crate::spoke_report::Note;

pub struct RunArgs {
    pub dir: PathBuf,
    pub threads: usize,
    pub ping_sample: usize,
    pub ping_interval: Duration,
    pub up_timeout: Duration,
    pub hold: Option<Duration>,
    pub ready_file: Option<PathBuf>,
    pub grace: Duration,
}

type KmeAnswer = (
    keymix::KmeRequestId,
    Result<Vec<keymix::qkd::QkdKey>, QkdError>,
);

fn load_plan(dir: &Path) -> Result<LoadPlan> {
    let path = dir.join("spokes.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

fn kme_source(plan: &LoadPlan) -> Result<Option<Arc<dyn QkdKeySource>>> {
    let Some(k) = &plan.kme else {
        return Ok(None);
    };
    let client = qkd::Etsi014Client::new(&qkd::Etsi014ClientConfig {
        kme_url: k.url.clone(),
        ca_file: k.ca_file.clone().into(),
        cert_file: k.cert_file.clone().into(),
        key_file: k.key_file.clone().into(),
        timeout: Duration::from_secs(5),
    })
    .context("the spokes' ETSI 014 client")?;
    Ok(Some(Arc::new(client)))
}

fn setups(plan: &LoadPlan) -> Result<Vec<SpokeSetup>> {
    let hub_public = PublicKey::from(key32(&plan.hub_public).context("hub_public")?);
    let qkd: QkdPolicy = plan.qkd.parse().map_err(|e: String| anyhow::anyhow!(e))?;
    plan.spokes
        .iter()
        .enumerate()
        .map(|(id, s)| {
            let mut keymix = PeerConfig::new(hub_public);
            keymix.epoch = Duration::from_secs(plan.epoch_secs);
            keymix.reject_after = Duration::from_secs(plan.reject_after_secs);
            keymix.qkd = qkd;
            keymix.peer_sae_id = plan.kme.as_ref().map(|k| k.hub_sae.clone());
            Ok(SpokeSetup {
                id,
                private: StaticSecret::from(key32(&s.private_key).context("private_key")?),
                psk: key32(&s.psk).context("psk")?,
                src: s.src,
                inner: s.inner,
                hub: plan.hub,
                hub_public,
                hub_inner: plan.hub_inner,
                keymix,
                local_sae: plan.kme.as_ref().map(|k| k.spoke_sae.clone()),
                keepalive: plan.keepalive,
            })
        })
        .collect()
}

pub fn run(args: &RunArgs) -> Result<()> {
    let plan = load_plan(&args.dir)?;
    let kme = kme_source(&plan)?;
    let n = plan.spokes.len();
    let sample = args.ping_sample.min(n);
    // Evenly spread over the plan, so the sample covers every source address range.
    let sampled: Vec<usize> = (0..sample).map(|k| k * n / sample.max(1)).collect();
    let (notes_tx, notes_rx) = mpsc::unbounded_channel::<Note>();
    let (phase_tx, phase_rx) = watch::channel(Phase::Boot);
    let threads = args.threads.max(1);
    let mut per_thread: Vec<Vec<(SpokeSetup, bool)>> = (0..threads).map(|_| Vec::new()).collect();
    for s in setups(&plan)? {
        let is_sampled = sampled.contains(&s.id);
        if let Some(bucket) = per_thread.get_mut(s.id % threads) {
            bucket.push((s, is_sampled));
        }
    }
    let start = Instant::now();
    let mut handles = Vec::new();
    for (t, spokes) in per_thread.into_iter().enumerate() {
        let (notes, phase, kme) = (notes_tx.clone(), phase_rx.clone(), kme.clone());
        let ping = args.ping_interval;
        handles.push(
            std::thread::Builder::new()
                .name(format!("spokes-{t}"))
                .spawn(move || spoke_thread(spokes, notes, phase, kme, ping))?,
        );
    }
    drop(notes_tx);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = rt.block_on(collect::collect(
        n, sampled, notes_rx, phase_tx, args, start, threads,
    ))?;
    for h in handles {
        match h.join() {
            Ok(Err(e)) => eprintln!("hub_load: {e:#}"),
            Err(_) => eprintln!("hub_load: a spoke thread panicked"),
            Ok(Ok(())) => {}
        }
    }
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// One OS thread's spokes, each a task on this thread's runtime.
fn spoke_thread(
    spokes: Vec<(SpokeSetup, bool)>,
    notes: mpsc::UnboundedSender<Note>,
    phase: watch::Receiver<Phase>,
    kme: Option<Arc<dyn QkdKeySource>>,
    ping: Duration,
) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let mut tasks = Vec::new();
        for (setup, sampled) in spokes {
            let src = setup.src;
            let socket = tokio::net::UdpSocket::bind(src)
                .await
                .with_context(|| format!("binding {src} (is the address on this host?)"))?;
            let spoke = Spoke::new(setup, socket).map_err(anyhow::Error::msg)?;
            tasks.push(tokio::task::spawn_local(drive(
                spoke,
                phase.clone(),
                kme.clone(),
                notes.clone(),
                sampled,
                ping,
            )));
        }
        for t in tasks {
            let _ = t.await;
        }
        Ok(())
    })
}

async fn kme_call(
    source: Option<Arc<dyn QkdKeySource>>,
    request: KmeRequest,
    answers: mpsc::UnboundedSender<KmeAnswer>,
) {
    let result = match source {
        None => Err(QkdError::Unavailable("no KME in this plan".to_owned())),
        Some(s) => match request.kind {
            KmeRequestKind::EncKeys {
                slave_sae_id,
                number,
                size_bits,
            } => s.enc_keys(&slave_sae_id, number, size_bits).await,
            KmeRequestKind::DecKeys {
                master_sae_id,
                key_ids,
            } => s.dec_keys(&master_sae_id, &key_ids).await,
        },
    };
    let _ = answers.send((request.id, result));
}

/// One spoke's loop: datagrams, keymix's deadline, KME answers, the 250 ms tick, probes
/// until the first echo reply, and the sampled pings while the phase is `Ping`.
async fn drive(
    mut spoke: Spoke,
    mut phase: watch::Receiver<Phase>,
    kme: Option<Arc<dyn QkdKeySource>>,
    notes: mpsc::UnboundedSender<Note>,
    sampled: bool,
    ping_interval: Duration,
) {
    use tokio::time::{interval, MissedTickBehavior};
    let (kme_tx, mut kme_rx) = mpsc::unbounded_channel::<KmeAnswer>();
    let mut buf = vec![0u8; 65536];
    let mut tick = interval(Duration::from_millis(250));
    let mut probe = interval(Duration::from_secs(1));
    let mut ping = interval(ping_interval);
    for t in [&mut tick, &mut probe, &mut ping] {
        t.set_missed_tick_behavior(MissedTickBehavior::Skip);
    }
    spoke.drain_keymix();
    loop {
        for r in spoke.kme_requests.drain(..) {
            tokio::task::spawn_local(kme_call(kme.clone(), r, kme_tx.clone()));
        }
        for n in spoke.notes.drain(..) {
            let _ = notes.send(n);
        }
        let now_phase = *phase.borrow();
        if now_phase == Phase::Stop {
            break;
        }
        spoke.pinging = sampled && now_phase == Phase::Ping;
        let deadline = spoke.endpoint.poll_timeout();
        let keymix_timer = async move {
            match deadline {
                Some(t) => tokio::time::sleep_until(t.into()).await,
                None => std::future::pending().await,
            }
        };
        let probing = !spoke.data_up && spoke.has_epoch();
        tokio::select! {
            r = spoke.socket.recv_from(&mut buf) => {
                if let Ok((n, src)) = r {
                    if let Some(d) = buf.get(..n) {
                        spoke.on_datagram(d, src);
                    }
                }
            }
            () = keymix_timer => spoke.on_keymix_timer(),
            Some((id, result)) = kme_rx.recv() => spoke.on_kme_result(id, result),
            _ = tick.tick() => spoke.on_tick(),
            _ = probe.tick(), if probing => spoke.send_echo(PROBE_IDENT),
            _ = ping.tick(), if spoke.pinging => spoke.send_echo(PING_IDENT),
            r = phase.changed() => if r.is_err() { break },
        }
    }
    let _ = notes.send(Note::Final(Box::new(spoke.finish())));
}
