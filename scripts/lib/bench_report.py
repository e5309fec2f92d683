#!/usr/bin/python3
"""Helpers of scripts/bench.sh: turn raw iperf3/ping/CPU files into sample lines, and the
sample lines into bench/results.json, bench/results.md and bench/chart.png.

  bench_report.py iperf-sample --contender C --round R --scenario S --streams N
                  --reverse 0|1 --iperf FILE --cpu-a TICKS --cpu-b TICKS [--ping FILE]
      prints one JSON sample line (throughput, bytes, CPU seconds per GB per gateway,
      and the RTTs of a ping that ran during the transfer).
  bench_report.py ping-sample --contender C --round R --ping FILE
      prints one JSON sample line with the idle RTTs.
  bench_report.py epoch-sample --iperf FILE --epochs FILE --t0 UNIX_SECS
      prints the epoch-switch check as one JSON object.
  bench_report.py report --samples FILE --meta FILE --out DIR [--epoch FILE]
      writes results.json, results.md and chart.png in DIR and prints the table.
  bench_report.py report --from-results bench/results.json --out DIR
      the same from an earlier results.json (after a change to this script).

Only the standard library, except for the chart (matplotlib; skipped with a note if it is
missing). Run it with Debian's /usr/bin/python3, which has python3-matplotlib.
"""

import argparse
import json
import os
import sys

from bench_chart import SCENARIOS, chart
from bench_samples import (
    analyse_epoch,
    cmd_epoch_sample,
    cmd_iperf_sample,
    cmd_ping_sample,
    median,
    percentile,
)

BASELINE = "boringtun-cli"
TRIDENT = "trident"
GOTATUN = "gotatun"
UNPADDED = "trident-unpadded"


def fmt(v, digits=2):
    if v is None:
        return "n/a"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.{digits}f}"


def summarise(samples, contenders):
    """Medians per contender and metric (plus the per-round values they come from)."""
    med = {}
    for c in contenders:
        m = {}
        for key, _label in SCENARIOS:
            rows = [
                s
                for s in samples
                if s["kind"] == "iperf" and s["contender"] == c and s["scenario"] == key
            ]
            ok = [s for s in rows if "error" not in s]
            gbps = [s["gbps"] for s in ok]
            cpu_a = [s["cpu_a_s_per_gb"] for s in ok if s.get("cpu_a_s_per_gb") is not None]
            cpu_b = [s["cpu_b_s_per_gb"] for s in ok if s.get("cpu_b_s_per_gb") is not None]
            cpu_sum = [
                s["cpu_a_s_per_gb"] + s["cpu_b_s_per_gb"]
                for s in ok
                if s.get("cpu_a_s_per_gb") is not None and s.get("cpu_b_s_per_gb") is not None
            ]
            m[key] = {
                "gbps_median": median(gbps),
                "gbps_samples": gbps,
                "gbps_min": min(gbps) if gbps else None,
                "gbps_max": max(gbps) if gbps else None,
                "cpu_s_per_gb_gwa_median": median(cpu_a),
                "cpu_s_per_gb_gwb_median": median(cpu_b),
                "cpu_s_per_gb_both_median": median(cpu_sum),
                "retransmits_median": median([s.get("retransmits") for s in ok]),
                "errors": len(rows) - len(ok),
            }
        idle = [
            r
            for s in samples
            if s["kind"] == "ping_idle" and s["contender"] == c
            for r in s["rtts_ms"]
        ]
        loaded = [
            r
            for s in samples
            if s["kind"] == "iperf" and s["contender"] == c and s.get("loaded_ping")
            for r in s["loaded_ping"]["rtts_ms"]
        ]
        m["ping_idle"] = {
            "p50_ms": percentile(idle, 50),
            "p99_ms": percentile(idle, 99),
            "replies": len(idle),
        }
        m["ping_loaded"] = {
            "p50_ms": percentile(loaded, 50),
            "p99_ms": percentile(loaded, 99),
            "replies": len(loaded),
        }
        med[c] = m
    return med


def table_rows(med):
    """(label, better, {contender: value}) for the main table."""
    rows = []
    for key, label in SCENARIOS:
        rows.append((f"{label}, Gbit/s", "higher", {c: m[key]["gbps_median"] for c, m in med.items()}))
    for which, label in (("ping_idle", "idle"), ("ping_loaded", "under 1-stream load")):
        for p in ("p50", "p99"):
            rows.append(
                (f"ping RTT {p} {label}, ms", "lower", {c: m[which][f"{p}_ms"] for c, m in med.items()})
            )
    for key, label in SCENARIOS[:1] + SCENARIOS[2:3]:
        rows.append(
            (
                f"TCP retransmits per {label} transfer",
                "lower",
                {c: m[key]["retransmits_median"] for c, m in med.items()},
            )
        )
    for key, label in SCENARIOS:
        rows.append(
            (
                f"CPU s/GB both gateways, {label}",
                "lower",
                {c: m[key]["cpu_s_per_gb_both_median"] for c, m in med.items()},
            )
        )
    return rows


def ratio_base(contenders):
    """What ratios are to: boringtun-cli when it ran, else the first contender (a run that
    compares two trident builds, e.g. trident,trident-baseline)."""
    if BASELINE in contenders:
        return BASELINE
    return contenders[0] if contenders else None


def ratio_base_note(contenders):
    base = ratio_base(contenders)
    if base is None or base == BASELINE:
        return f"Ratios are to {BASELINE}."
    return f"Ratios are to {base}, the first contender ({BASELINE} is not one in this run)."


def pair_columns(contenders):
    """(ours, theirs) for the extra columns of the table: trident against GotaTun, the
    closest contender (a Rust userspace WireGuard built for speed), and against itself
    without the WireGuard padding (what the padding costs), for each pair that ran."""
    return [
        (ours, theirs)
        for ours, theirs in ((TRIDENT, GOTATUN), (TRIDENT, UNPADDED))
        if ours in contenders and theirs in contenders
    ]


def markdown_table(med, contenders):
    base_name = ratio_base(contenders)
    pairs = pair_columns(contenders)
    head = "| metric (median) | " + " | ".join(contenders) + " |"
    sep = "|---|" + "---:|" * len(contenders)
    for pair in pairs:
        head += f" {pair[0]} ÷ {pair[1]} |"
        sep += "---:|"
    lines = [head, sep]
    rows = table_rows(med)
    for label, better, vals in rows:
        base = vals.get(base_name) if base_name else None
        cells = []
        for c in contenders:
            v = vals.get(c)
            cell = fmt(v)
            if base and v is not None:
                cell += f" ({v / base:.2f}×)"
            cells.append(cell)
        for pair in pairs:
            ours, theirs = vals.get(pair[0]), vals.get(pair[1])
            cells.append(f"{ours / theirs:.2f}×" if ours is not None and theirs else "–")
        lines.append(f"| {label} ({better} is better) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def cpu_detail_table(med, contenders):
    lines = [
        "| CPU s/GB, median (gateway A / gateway B) | " + " | ".join(contenders) + " |",
        "|---|" + "---:|" * len(contenders),
    ]
    for key, label in SCENARIOS:
        cells = [
            f"{fmt(med[c][key]['cpu_s_per_gb_gwa_median'])} / {fmt(med[c][key]['cpu_s_per_gb_gwb_median'])}"
            for c in contenders
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def floor_table(med, contenders, meta):
    """CPU per GB of each gateway as a multiple of the AEAD floor measured in the same run
    (openssl speed, ChaCha20-Poly1305 on 1420-byte records): what is not encryption."""
    floor = (meta.get("aead_floor") or {}).get("s_per_gb")
    if not floor:
        return None
    lines = [
        f"| CPU s/GB ÷ AEAD floor ({floor:.2f} s/GB), gateway A / B | " + " | ".join(contenders) + " |",
        "|---|" + "---:|" * len(contenders),
    ]
    for key, label in SCENARIOS:
        cells = []
        for c in contenders:
            a, b = med[c][key]["cpu_s_per_gb_gwa_median"], med[c][key]["cpu_s_per_gb_gwb_median"]
            cells.append(f"{a / floor:.1f}× / {b / floor:.1f}×" if a is not None and b is not None else "n/a")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ratios(med, contenders, base_name=BASELINE):
    if base_name not in med:
        return {}
    out = {}
    for label, _better, vals in table_rows(med):
        base = vals.get(base_name)
        out[label] = {
            c: (vals[c] / base if base and vals.get(c) is not None else None) for c in contenders
        }
    return out


META_KEYS = (
    "date",
    "duration_s",
    "cpu_time_split_percent",
    "aead_floor",
    "loadavg_start",
    "loadavg_end",
    "machine",
    "versions",
    "config",
)


def epoch_md(epoch, cfg, what):
    """The epoch-switch check as markdown lines (what: which congestion control)."""
    md = [f"### {what}\n"]
    if epoch.get("error"):
        md.append(f"failed: {epoch['error']}\n")
    else:
        md.append(
            f"epoch_secs = {cfg.get('epoch_secs')}, reject_after_secs = {cfg.get('epoch_reject_secs')}, "
            f"{len(epoch['intervals'])} one-second intervals, {len(epoch['switches'])} epoch switch(es) "
            f"observed in `trident status`. Median {fmt(epoch['median_gbps'])} Gbit/s, minimum "
            f"{fmt(epoch['min_gbps'])} Gbit/s at t = {fmt(epoch['min_interval_start_s'], 0)} s: "
            f"{fmt(epoch['min_over_median'])} of the median; "
            f"{epoch['intervals_below_half']} interval(s) below half the median.\n"
        )
        if epoch.get("min_switch_over_median") is not None:
            md.append(
                f"Across the switches ({epoch['switch_intervals']} one-second intervals overlap the "
                f"windows in which a switch happened): worst {fmt(epoch['min_switch_gbps'])} Gbit/s at "
                f"t = {fmt(epoch['min_switch_interval_start_s'], 0)} s, **{fmt(epoch['min_switch_over_median'])} "
                f"of the median** (target ≥ 0.80). The worst interval without a switch: "
                f"{fmt(epoch['min_other_over_median'])} of the median"
                + (
                    " (BBR, this machine's default, probes the RTT every 10 s by draining to 4 "
                    "packets for 200 ms, so a switch that falls on such a second shows both).\n"
                    if what == "default congestion control"
                    else ".\n"
                )
            )
        md.append(
            "Per-second Gbit/s: "
            + " ".join(fmt(iv["gbps"]) for iv in epoch["intervals"])
            + "\n\nSwitches (seconds after the iperf3 start, between two status polls): "
            + (", ".join(f"epoch {s['epoch']} at {s['after_s']}–{s['by_s']} s" for s in epoch["switches"]) or "none")
            + "\n"
        )
    return md


def cmd_report(a):
    epoch = epoch_cubic = None
    if a.from_results:
        # Re-render results.md/chart.png (and results.json) from an earlier results.json.
        with open(a.from_results, encoding="utf-8") as f:
            old = json.load(f)
        meta = {k: old[k] for k in META_KEYS if k in old}
        all_samples = old["samples"]
        # The figures again from the raw intervals and polls (after a change to the analysis).
        epoch, epoch_cubic = (
            {**e, **analyse_epoch(e["intervals"], [tuple(p) for p in e["epoch_polls"]])}
            if e and "intervals" in e and "epoch_polls" in e
            else e
            for e in (old.get("epoch_switch"), old.get("epoch_switch_cubic"))
        )
    else:
        with open(a.meta, encoding="utf-8") as f:
            meta = json.load(f)
        all_samples = []
        with open(a.samples, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if line:
                    all_samples.append(json.loads(line))
    # Samples of a contender-round that was measured again after a failure stay in the
    # raw data (marked "discarded") but not in the medians.
    samples = [s for s in all_samples if not s.get("discarded")]
    contenders = meta["config"]["contenders"]
    if a.epoch and os.path.exists(a.epoch):
        with open(a.epoch, encoding="utf-8") as f:
            text = f.read().strip()
            epoch = json.loads(text) if text else None
    if a.epoch_cubic and os.path.exists(a.epoch_cubic):
        with open(a.epoch_cubic, encoding="utf-8") as f:
            text = f.read().strip()
            epoch_cubic = json.loads(text) if text else None
    med = summarise(samples, contenders)
    base = ratio_base(contenders)
    result = {
        **meta,
        "medians": med,
        "ratios_to_boringtun_cli": ratios(med, contenders),
        # Without boringtun-cli in the run, the ratios of the table are to the first contender.
        **({"ratio_base": base, "ratios_to_base": ratios(med, contenders, base)} if base != BASELINE else {}),
        **({"ratios_to_gotatun": ratios(med, contenders, GOTATUN)} if GOTATUN in contenders else {}),
        "epoch_switch": epoch,
        "epoch_switch_cubic": epoch_cubic,
        "samples": all_samples,
        "notes": [
            "gbps: iperf3 receiver-side rate (end.sum_received); A→B = client in trd-lana sends, B→A = -R.",
            "ping: RTTs pooled over all rounds, linear-interpolated percentiles; idle = before the transfers, "
            "loaded = during the 1-stream A→B transfer.",
            "cpu_*_s_per_gb: utime+stime of the gateway process (all threads, /proc/PID/stat) over the transfer, "
            "divided by GB received (1e9 bytes). Kernel work done in softirq context on other tasks is not included.",
        ],
    }
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "results.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    chart_note = chart(med, contenders, meta, os.path.join(a.out, "chart.png"))

    m = meta["machine"]
    cfg = meta["config"]
    md = []
    md.append("# Benchmark results\n")
    md.append(
        f"Generated by `{cfg.get('command')}` on {meta.get('date')}: {m.get('nproc')} cores, "
        f"{m.get('cpu_model')}, kernel {m.get('kernel')}. {cfg['rounds']} round(s) × {cfg['seconds']} s "
        f"per transfer, contenders interleaved (order rotated per round), MTU 1420, two-site netns "
        f"harness (scripts/netns.sh). {ratio_base_note(contenders)} Load average before/after: "
        f"{meta.get('loadavg_start')} / {meta.get('loadavg_end')}; machine CPU time during the run "
        f"(/proc/stat): "
        + ", ".join(f"{k} {v}%" for k, v in (meta.get("cpu_time_split_percent") or {}).items() if v)
        + ".\n"
    )
    md.append(markdown_table(med, contenders))
    md.append("")
    md.append(cpu_detail_table(med, contenders))
    md.append("")
    floors = floor_table(med, contenders, meta)
    if floors:
        md.append(floors)
        md.append("")
    md.append("Versions: " + ", ".join(f"{k} {v}" for k, v in meta.get("versions", {}).items()) + "\n")
    for what, ep in (("default congestion control", epoch), ("CUBIC (iperf3 -C cubic)", epoch_cubic)):
        if ep:
            if what.startswith("default"):
                md.append("## Epoch switch during iperf3 (trident)\n")
            md.extend(epoch_md(ep, cfg, what))
    if chart_note:
        md.append(f"\n({chart_note})\n")
    else:
        md.append("\n![throughput](chart.png)\n")
    text = "\n".join(md)
    with open(os.path.join(a.out, "results.md"), "w", encoding="utf-8") as f:
        f.write(text)
    if base != BASELINE:
        print(ratio_base_note(contenders))
    print(markdown_table(med, contenders))
    print()
    print(cpu_detail_table(med, contenders))
    if floors:
        print()
        print(floors)
    if epoch and not epoch.get("error"):
        print(
            f"\nepoch switch: {len(epoch['switches'])} switch(es); min 1-s interval "
            f"{fmt(epoch['min_gbps'])} Gbit/s = {fmt(epoch['min_over_median'])} × median {fmt(epoch['median_gbps'])} Gbit/s; "
            f"across the switches {fmt(epoch.get('min_switch_over_median'))} × median"
        )
    elif epoch:
        print(f"\nepoch switch check failed: {epoch.get('error')}")
    if epoch_cubic and not epoch_cubic.get("error"):
        print(
            f"epoch switch with CUBIC: min 1-s interval {fmt(epoch_cubic['min_over_median'])} × median; "
            f"across the switches {fmt(epoch_cubic.get('min_switch_over_median'))} × median"
        )
    if chart_note:
        print(chart_note)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("iperf-sample")
    s.add_argument("--contender", required=True)
    s.add_argument("--round", type=int, required=True)
    s.add_argument("--scenario", required=True)
    s.add_argument("--streams", type=int, required=True)
    s.add_argument("--reverse", type=int, required=True)
    s.add_argument("--iperf", required=True)
    s.add_argument("--cpu-a", type=int, required=True)
    s.add_argument("--cpu-b", type=int, required=True)
    s.add_argument("--ping")
    s.add_argument("--loadavg", type=float)
    s = sub.add_parser("ping-sample")
    s.add_argument("--contender", required=True)
    s.add_argument("--round", type=int, required=True)
    s.add_argument("--ping", required=True)
    s = sub.add_parser("epoch-sample")
    s.add_argument("--iperf", required=True)
    s.add_argument("--epochs", required=True)
    s.add_argument("--t0", type=float, required=True)
    s = sub.add_parser("report")
    s.add_argument("--samples")
    s.add_argument("--meta")
    s.add_argument("--from-results", help="re-render from an earlier results.json")
    s.add_argument("--out", required=True)
    s.add_argument("--epoch")
    s.add_argument("--epoch-cubic")
    a = p.parse_args()
    {
        "iperf-sample": cmd_iperf_sample,
        "ping-sample": cmd_ping_sample,
        "epoch-sample": cmd_epoch_sample,
        "report": cmd_report,
    }[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
