"""The chart of scripts/bench.sh (bench/chart.png): grouped bars of the median iperf3
throughput per scenario and contender, with the min-max over rounds. matplotlib only here,
so the rest of bench_report.py runs on the standard library."""

SCENARIOS = [
    ("tcp1_fwd", "TCP 1 stream A→B"),
    ("tcp1_rev", "TCP 1 stream B→A"),
    ("tcp4_fwd", "TCP 4 streams A→B"),
    ("tcp4_rev", "TCP 4 streams B→A"),
]


def chart(med, contenders, meta, path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib missing: no chart"
    n = len(contenders)
    width = 0.8 / max(n, 1)
    fig, ax = plt.subplots(figsize=(10, 5.5), dpi=110)
    colors = {
        "trident": "#1b9e77",
        "trident-baseline": "#66a61e",
        "trident-unpadded": "#a6d854",
        "gotatun": "#e7298a",
        "boringtun-cli": "#d95f02",
        "wireguard-go": "#7570b3",
    }
    for i, c in enumerate(contenders):
        xs, ys, lo, hi = [], [], [], []
        for j, (key, _label) in enumerate(SCENARIOS):
            m = med[c][key]
            y = m["gbps_median"] or 0.0
            xs.append(j + (i - (n - 1) / 2) * width)
            ys.append(y)
            lo.append(max(0.0, y - (m["gbps_min"] if m["gbps_min"] is not None else y)))
            hi.append(max(0.0, (m["gbps_max"] if m["gbps_max"] is not None else y) - y))
        bars = ax.bar(xs, ys, width, label=c, color=colors.get(c), yerr=[lo, hi], capsize=3)
        for b, y, h in zip(bars, ys, hi):
            ax.annotate(
                f"{y:.2f}",
                (b.get_x() + b.get_width() / 2, y + h),
                xytext=(0, 3),
                textcoords="offset points",
                ha="center",
                fontsize=8,
            )
    ax.set_xticks(range(len(SCENARIOS)))
    ax.set_xticklabels([label for _k, label in SCENARIOS])
    ax.set_ylabel("iperf3 TCP throughput, Gbit/s (median; bars: min–max)")
    m = meta.get("machine", {})
    cfg = meta.get("config", {})
    ax.set_title(
        f"Site-to-site tunnel throughput, MTU 1420, {cfg.get('rounds')} round(s) × {cfg.get('seconds')} s\n"
        f"{m.get('nproc')} cores, {m.get('cpu_model')}, kernel {m.get('kernel')}",
        fontsize=10,
    )
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return None
