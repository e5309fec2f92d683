#!/usr/bin/python3
"""Renders OUT/hub-*.json (scripts/hub-load.sh) as a Markdown table on stdout.

Usage: hub_report.py OUT_DIR COMMAND_LINE
"""

import glob
import json
import statistics
import sys


def med(xs):
    return statistics.median(xs) if xs else None


def fmt(x, digits=1):
    if x is None:
        return "n/a"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def main():
    out, command = sys.argv[1], sys.argv[2]
    runs = []
    for path in glob.glob(f"{out}/hub-*.json"):
        with open(path) as f:
            runs.append(json.load(f))
    runs.sort(key=lambda r: r["spokes"])
    if not runs:
        print("no results")
        return
    h0 = runs[0]["hub"]
    rev = h0.get("trident", "unknown")
    print("# Hub load: one `trident up` hub, N emulated spokes\n")
    print(f"`{command}` (trident {rev}; {h0['nproc']} CPUs; epoch {h0['epoch_secs']} s, "
          f"reject {h0['reject_after_secs']} s, qkd {h0['qkd']}, spokes' keepalive "
          f"{h0['keepalive']} s, {h0['spoke_threads']} generator thread(s)).\n")
    print("| spokes | all up after cold start, s | keymix p50 / max, s | data p50 / max, s "
          "| hub CPU in the storm, s | hub RSS, MB | RSS / peer, kB | CPU / peer-epoch, ms "
          "| KME requests / exchange | status, ms | status --json, ms | scrape, ms "
          "| pings sent / lost | epoch switches while pinging (min) | load avg start / end |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in runs:
        h, g = r["hub"], r["generator"]
        boot = g["boot"]
        all_up = boot["all_data_s"]
        cold = None if all_up is None else all_up + h["generator_started_after_hub_s"]
        k, d = boot["keymix_s"] or {}, boot["data_s"] or {}
        kme = h["kme_requests_per_exchange"] if h["qkd"] != "off" else None
        print(f"| {r['spokes']} | {fmt(cold)}"
              f"{'' if not boot['not_up'] else ' (' + str(len(boot['not_up'])) + ' not up)'} "
              f"| {fmt(k.get('p50'))} / {fmt(k.get('max'))} | {fmt(d.get('p50'))} / {fmt(d.get('max'))} "
              f"| {fmt(h['hub_cpu_boot_s'])} | {fmt(h['rss_kb'] / 1024 if h['rss_kb'] else None)} "
              f"| {fmt(h['rss_kb_per_peer'])} "
              f"| {fmt(h['cpu_ms_per_peer_epoch'], 2)} | {fmt(kme, 2)} "
              f"| {fmt(med(h['status_ms']))} / {fmt(max(h['status_ms']))} "
              f"| {fmt(med(h['status_json_ms']))} / {fmt(max(h['status_json_ms']))} "
              f"| {fmt(med(h['scrape_ms']))} / {fmt(max(h['scrape_ms']))} "
              f"| {g['ping']['sent']} / {g['ping']['lost']} | {fmt(g['ping']['min_epoch_switches'])} "
              f"| {h['loadavg_start']} / {h['loadavg_end']} |")
    if len(runs) > 1:
        a, b = runs[0], runs[-1]
        if a["hub"]["rss_kb"] and b["hub"]["rss_kb"]:
            slope = (b["hub"]["rss_kb"] - a["hub"]["rss_kb"]) / (b["spokes"] - a["spokes"])
            print(f"\nRSS per additional peer between {a['spokes']} and {b['spokes']} "
                  f"spokes: {slope:.1f} kB.")
    print("\nTimes are medians / maxima of 5 runs (status, status --json: the whole CLI "
          "process; scrape: curl in the hub's namespace). Cold start: from launching "
          "`trident up` (its routes and PSK files and all) until the last spoke's echo reply "
          "came back through its WireGuard session. CPU / peer-epoch: the hub's utime+stime "
          "over whole epochs divided by the keymix exchanges completed in them.")
    for r in runs:
        h, g = r["hub"], r["generator"]
        print(f"\n{r['spokes']} spokes: hub states {h['hub_states']}; hub drops "
              f"{h['hub_dropped']}; spoke side {g['spoke_side']}; generator CPU in the storm "
              f"{h['generator_cpu_boot_s']} s.")


if __name__ == "__main__":
    main()
