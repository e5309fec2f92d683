#!/usr/bin/python3
"""The report of `scripts/bench.sh --soak MINUTES`: resident memory of both gateways over the
run, from the samples lib/bench_soak.sh took, with the ping and iperf3 that ran alongside.

  bench_soak.py --out DIR --minutes M --sample S --epoch E --rate R --load-start L
                --load-end L --command CMD --trident-version V --run NAME PREFIX [--run ...]

PREFIX.rss: "t rss_a anon_a rss_b anon_b epoch_a epoch_b" per line (kB, `-` for no epoch);
PREFIX.ping: `ping -q` output; PREFIX.json: iperf3 -J. Writes DIR/soak.json, DIR/soak.md and
DIR/soak.png (matplotlib, skipped with a note if missing). The growth figure is the spread
(max - min) of VmRSS from the first minute on: the first minute is start-up (buffers, the
first epochs, the allocator's arenas filling)."""

import argparse
import json
import os
import re
import time

WARMUP_S = 60


def read_rss(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            p = line.split()
            if len(p) < 5:
                continue
            epochs = [int(x) if x.isdigit() else None for x in p[5:7]]
            rows.append(
                {
                    "t_s": int(p[0]),
                    "rss_kb": [int(p[1]), int(p[3])],
                    "anon_kb": [int(p[2]), int(p[4])],
                    "epoch": epochs + [None] * (2 - len(epochs)),
                }
            )
    return rows


def read_ping(path):
    out = {}
    try:
        text = open(path, encoding="utf-8", errors="replace").read()
    except OSError:
        return out
    m = re.search(r"(\d+) packets transmitted, (\d+) received", text)
    if m:
        out["sent"], out["received"] = int(m.group(1)), int(m.group(2))
        out["loss_percent"] = round(100 * (1 - out["received"] / out["sent"]), 3) if out["sent"] else None
    m = re.search(r"= ([0-9.]+)/([0-9.]+)/([0-9.]+)/([0-9.]+) ms", text)
    if m:
        out["rtt_min_ms"], out["rtt_avg_ms"], out["rtt_max_ms"] = (float(m.group(i)) for i in (1, 2, 3))
    return out


def read_iperf(path):
    try:
        data = json.load(open(path, encoding="utf-8"))
        recv = data["end"]["sum_received"]
        return {
            "mbps": recv["bits_per_second"] / 1e6,
            "gb": recv["bytes"] / 1e9,
            "retransmits": data["end"].get("sum_sent", {}).get("retransmits"),
        }
    except (OSError, ValueError, KeyError) as e:
        return {"error": str(e)}


def growth(rows, side):
    """Spread of VmRSS (MB) from WARMUP_S on, and the change from the first to the last sample."""
    after = [r["rss_kb"][side] for r in rows if r["t_s"] >= WARMUP_S and r["rss_kb"][side]]
    if not after:
        return None, None
    return (max(after) - min(after)) / 1024, (after[-1] - after[0]) / 1024


def chart(runs, path, title):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib missing: no chart"
    fig, ax = plt.subplots(figsize=(10, 5), dpi=110)
    for name, run in runs.items():
        t = [r["t_s"] / 60 for r in run["rss"]]
        for side, style in ((0, "-"), (1, "--")):
            ax.plot(t, [r["rss_kb"][side] / 1024 for r in run["rss"]], style, marker=".",
                    label=f"{name} gateway {'AB'[side]}")
    ax.set_xlabel("minutes")
    ax.set_ylabel("VmRSS, MB")
    ax.set_ylim(bottom=0)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return None


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    for k in ("minutes", "sample", "epoch"):
        p.add_argument(f"--{k}", type=int, required=True)
    for k in ("rate", "load-start", "load-end", "command", "trident-version"):
        p.add_argument(f"--{k}", default="")
    p.add_argument("--run", nargs=2, action="append", metavar=("NAME", "PREFIX"), required=True)
    a = p.parse_args()
    runs = {}
    for name, prefix in a.run:
        rss = read_rss(prefix + ".rss")
        ga, da = growth(rss, 0)
        gb, db = growth(rss, 1)
        runs[name] = {
            "rss": rss,
            "growth_after_first_minute_mb": {"spread_a": ga, "spread_b": gb,
                                              "first_to_last_a": da, "first_to_last_b": db},
            "ping": read_ping(prefix + ".ping"),
            "iperf": read_iperf(prefix + ".json"),
        }
    title = (f"Soak: {a.minutes} min, ping every 50 ms, iperf3 {a.rate} A→B, epoch_secs {a.epoch}; "
             f"VmRSS every {a.sample} s")
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "command": a.command,
        "trident": a.trident_version,
        "minutes": a.minutes,
        "sample_s": a.sample,
        "epoch_secs": a.epoch,
        "rate": a.rate,
        "loadavg_start": a.load_start,
        "loadavg_end": a.load_end,
        "machine": {"nproc": os.cpu_count(), "kernel": os.uname().release},
    }
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "soak.json"), "w", encoding="utf-8") as f:
        json.dump({**meta, "runs": runs}, f, indent=1)
        f.write("\n")
    note = chart(runs, os.path.join(a.out, "soak.png"), title)
    md = ["# Soak\n", f"Generated by `{a.command}` on {meta['date']} (trident {a.trident_version}), "
          f"{meta['machine']['nproc']} cores, kernel {meta['machine']['kernel']}. {title}. Load average "
          f"before/after: {a.load_start} / {a.load_end}. Goal: VmRSS flat within 1 MB after the first minute.\n",
          "| contender | VmRSS A first → last, MB | spread A after 1 min | VmRSS B first → last, MB "
          "| spread B after 1 min | ping lost | iperf3 Mbit/s | epochs (A) |",
          "|---|---:|---:|---:|---:|---:|---:|---:|"]

    def f1(v):
        return "n/a" if v is None else f"{v:.2f}"

    for name, run in runs.items():
        rss = run["rss"]
        first, last = (rss[0], rss[-1]) if rss else (None, None)
        g = run["growth_after_first_minute_mb"]
        ping, ip = run["ping"], run["iperf"]
        ea = [r["epoch"][0] for r in rss if r["epoch"][0] is not None]
        md.append(
            f"| {name} | {f1(first and first['rss_kb'][0] / 1024)} → {f1(last and last['rss_kb'][0] / 1024)} "
            f"| {f1(g['spread_a'])} | {f1(first and first['rss_kb'][1] / 1024)} → "
            f"{f1(last and last['rss_kb'][1] / 1024)} | {f1(g['spread_b'])} "
            f"| {ping.get('sent', 0) - ping.get('received', 0)} of {ping.get('sent', 'n/a')} "
            f"| {f1(ip.get('mbps'))} | {f'{ea[0]} → {ea[-1]}' if ea else 'n/a'} |"
        )
    md.append("\nSamples (minute: VmRSS A / B, MB):\n")
    for name, run in runs.items():
        md.append(f"- {name}: " + ", ".join(
            f"{r['t_s'] / 60:.1f}: {r['rss_kb'][0] / 1024:.1f} / {r['rss_kb'][1] / 1024:.1f}" for r in run["rss"]))
    md.append(f"\n({note})\n" if note else "\n![soak](soak.png)\n")
    text = "\n".join(md)
    with open(os.path.join(a.out, "soak.md"), "w", encoding="utf-8") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
