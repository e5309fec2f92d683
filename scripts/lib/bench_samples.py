"""The sample commands of bench_report.py (iperf-sample, ping-sample, epoch-sample): raw
iperf3, ping and CPU files of one transfer turned into one JSON line each, and the
percentile/median helpers the report shares with them. Standard library only."""

import json
import math
import os
import re
import statistics


def percentile(values, p):
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return None
    s = sorted(values)
    k = (len(s) - 1) * p / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


RTT_RE = re.compile(r"time[=<]([0-9.]+) ms")


def parse_ping(path):
    """RTTs in ms of every reply, and the transmitted/received counts."""
    rtts, sent, recv = [], None, None
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                m = RTT_RE.search(line)
                if m and "bytes from" in line:
                    rtts.append(float(m.group(1)))
                m = re.search(r"(\d+) packets transmitted, (\d+) received", line)
                if m:
                    sent, recv = int(m.group(1)), int(m.group(2))
    except FileNotFoundError:
        pass
    return {"rtts_ms": rtts, "sent": sent, "received": recv}


def load_iperf(path):
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        return None, f"unreadable iperf3 output: {e}"
    if data.get("error"):
        return data, data["error"]
    return data, None


def cmd_iperf_sample(a):
    clk = os.sysconf("SC_CLK_TCK")
    sample = {
        "kind": "iperf",
        "contender": a.contender,
        "round": a.round,
        "scenario": a.scenario,
        "streams": a.streams,
        "reverse": bool(a.reverse),
        "loadavg_1min": a.loadavg,
    }
    data, err = load_iperf(a.iperf)
    if err:
        sample["error"] = err
    else:
        end = data["end"]
        recv = end["sum_received"]
        sent = end.get("sum_sent", {})
        gb = recv["bytes"] / 1e9
        sample.update(
            gbps=recv["bits_per_second"] / 1e9,
            bytes=recv["bytes"],
            seconds=recv["seconds"],
            retransmits=sent.get("retransmits"),
        )
        cpu_a = a.cpu_a / clk
        cpu_b = a.cpu_b / clk
        sample.update(
            cpu_a_s=cpu_a,
            cpu_b_s=cpu_b,
            cpu_a_s_per_gb=cpu_a / gb if gb > 0 else None,
            cpu_b_s_per_gb=cpu_b / gb if gb > 0 else None,
        )
    if a.ping:
        p = parse_ping(a.ping)
        sample["loaded_ping"] = p
    print(json.dumps(sample))


def cmd_ping_sample(a):
    p = parse_ping(a.ping)
    print(json.dumps({"kind": "ping_idle", "contender": a.contender, "round": a.round, **p}))


def analyse_epoch(intervals, polls):
    """The epoch-switch figures from iperf3's 1-second intervals and the status polls
    ((seconds after the iperf3 start, epoch), in order)."""
    # Only switches during the transfer: the polls of the second run (CUBIC) begin with the
    # harness's, before its iperf3 starts.
    end = max((iv["end"] for iv in intervals), default=0.0)
    switches = []
    for (t_prev, e_prev), (t, e) in zip(polls, polls[1:]):
        if e != e_prev and t > 0 and t_prev < end:
            switches.append({"epoch": e, "after_s": round(t_prev, 2), "by_s": round(t, 2)})
    # Only whole 1-second intervals count (iperf3's last one can be a fraction).
    full = [iv for iv in intervals if iv["end"] - iv["start"] > 0.9]
    rates = [iv["gbps"] for iv in full]
    med = median(rates)
    worst = min(full, key=lambda iv: iv["gbps"]) if full else None
    # The intervals a switch can have touched: those overlapping the window between the two
    # status polls that saw it. The worst of the others shows what else dips (BBR, the
    # machine's default congestion control here, drains to 4 packets for 200 ms every 10 s
    # to measure the path's RTT: its ProbeRTT costs about a fifth of that second).
    touched = [
        iv for iv in full
        if any(iv["start"] < sw["by_s"] and sw["after_s"] < iv["end"] for sw in switches)
    ]
    others = [iv for iv in full if iv not in touched]
    worst_sw = min(touched, key=lambda iv: iv["gbps"]) if touched else None
    worst_other = min(others, key=lambda iv: iv["gbps"]) if others else None
    out = dict(
        switch_intervals=len(touched),
        min_switch_gbps=worst_sw["gbps"] if worst_sw else None,
        min_switch_interval_start_s=worst_sw["start"] if worst_sw else None,
        min_switch_over_median=(worst_sw["gbps"] / med) if worst_sw and med else None,
        min_other_over_median=(worst_other["gbps"] / med) if worst_other and med else None,
    )
    out.update(
        intervals=intervals,
        epoch_polls=polls,
        switches=switches,
        median_gbps=med,
        min_gbps=worst["gbps"] if worst else None,
        min_interval_start_s=worst["start"] if worst else None,
        min_over_median=(worst["gbps"] / med) if worst and med else None,
        intervals_below_half=sum(1 for r in rates if med and r < 0.5 * med),
    )
    return out


def cmd_epoch_sample(a):
    data, err = load_iperf(a.iperf)
    out = {"kind": "epoch_switch"}
    if err:
        out["error"] = err
        print(json.dumps(out))
        return
    intervals = []
    for iv in data.get("intervals", []):
        s = iv["sum"]
        if s.get("omitted"):
            continue
        intervals.append(
            {"start": s["start"], "end": s["end"], "gbps": s["bits_per_second"] / 1e9}
        )
    # Epoch polls: "unix_time epoch tunnel_epochs" per line, from `trident status --json`.
    polls = []
    try:
        with open(a.epochs, encoding="utf-8") as f:
            for line in f:
                parts = line.split(maxsplit=2)
                if len(parts) >= 2 and parts[1] not in ("None", "null", ""):
                    polls.append((float(parts[0]) - a.t0, int(parts[1])))
    except (OSError, ValueError):
        pass
    out.update(analyse_epoch(intervals, polls))
    out.update(
        retransmits=data["end"].get("sum_sent", {}).get("retransmits"),
    )
    print(json.dumps(out))
