#!/usr/bin/python3
"""The run's description for bench/results.json, from the environment scripts/bench.sh
exports (machine, load, CPU time split, AEAD floor, versions, configuration). Prints JSON."""

import json, os, platform, time
env = os.environ
cpu = "unknown"
with open("/proc/cpuinfo") as f:
    for line in f:
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
# Whole-machine CPU time split over the run (/proc/stat): steal is time the hypervisor
# gave this VM's vCPUs to someone else.
a = [int(x) for x in env["CPUSTAT_START"].split()[1:]]
b = [int(x) for x in env["CPUSTAT_END"].split()[1:]]
d = [y - x for x, y in zip(a, b)]
names = "user nice system idle iowait irq softirq steal".split()
cpu_split = {n: round(100 * v / max(sum(d[:8]), 1), 1) for n, v in zip(names, d)}
print(json.dumps({
    "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    "cpu_time_split_percent": cpu_split,
    "duration_s": int(time.time()) - int(env["START_TIME"]),
    "loadavg_start": env["LOAD_START"],
    "loadavg_end": env["LOAD_END"],
    "machine": {
        "nproc": os.cpu_count(),
        "cpu_model": cpu,
        "kernel": platform.release(),
        "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
    },
    # openssl speed -evp chacha20-poly1305 -bytes 1420: seconds per GB on one core.
    "aead_floor": {
        "openssl_bytes_per_s": [int(env["AEAD_BPS_START"] or 0), int(env["AEAD_BPS_END"] or 0)],
        "s_per_gb": (lambda v: 2e9 / sum(v) if all(v) else None)(
            [int(env["AEAD_BPS_START"] or 0), int(env["AEAD_BPS_END"] or 0)]),
    },
    "versions": {
        "trident": env["V_TRIDENT"],
        # Only in a run that compares two trident builds.
        **({"trident-baseline": env["V_TRIDENT_BASELINE"]} if env.get("V_TRIDENT_BASELINE") else {}),
        **({"trident-unpadded": env["V_TRIDENT_UNPADDED"]} if env.get("V_TRIDENT_UNPADDED") else {}),
        "gotatun": env["V_GOTATUN"],
        "boringtun-cli": env["V_BT"],
        "wireguard-go": env["V_WGGO"],
        "iperf3": env["V_IPERF"],
    },
    "config": {
        "command": env["BENCH_CMD"],
        "contenders": env["BENCH_CONTENDERS"].split(),
        "rounds": int(env["ROUNDS"]),
        "seconds": int(env["SECS"]),
        "quick": env["QUICK"] == "1",
        "idle_pings": int(env["IDLE_PINGS"]),
        "mtu": 1420,
        "epoch_secs": int(env["EPOCH_SECS"]),
        "epoch_reject_secs": int(env["EPOCH_REJECT"]),
        "epoch_run_s": int(env["EPOCH_RUN"]),
        "trident_default_epoch_secs_in_main_runs": 120,
    },
}))
