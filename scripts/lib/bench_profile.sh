# Profile mode of scripts/bench.sh (--profile): syscalls per packet for every contender and a
# perf record -g CPU profile of both trident gateways. Sourced by bench.sh, which provides
# setup/teardown, started/stop_one/finish_one, cpu_ticks, gw_pid, tunnel_ifc, WORK, OUT, SECS, PY.
# shellcheck shell=bash

SYSCALLS=(read write readv writev sendto recvfrom sendmsg recvmsg sendmmsg recvmmsg
    epoll_wait epoll_pwait futex sched_yield getsockname ioctl)

udp_counters() { # NS -> "InDatagrams RcvbufErrors SndbufErrors" from /proc/net/snmp
    ip netns exec "$1" awk '/^Udp:/ { n++; if (n == 2) print $2, $6, $7 }' /proc/net/snmp
}

tun_tx_dropped() { # NS IFC -> packets the kernel dropped on their way into the gateway's TUN queue
    ip netns exec "$1" cat "/sys/class/net/$2/statistics/tx_dropped" 2>/dev/null || echo 0
}

# queue_sampler NS: every 0.2 s, the bytes waiting in all UDP receive queues of NS (Recv-Q).
queue_sampler() {
    while :; do
        ip netns exec "$1" ss -Huamn 2>/dev/null | awk '{ q += $2 } END { print q + 0 }'
        sleep 0.2
    done
}

netdev_packets() { # NS IFC -> "rx_packets tx_packets"
    ip netns exec "$1" cat /proc/net/dev | awk -v i="$2:" '$1 == i { print $3, $11 }'
}

# iperf_summary FILE: "X Gbit/s, Y GB" from an iperf3 -J file.
iperf_summary() {
    "$PY" -c 'import json,sys
try:
    r = json.load(open(sys.argv[1]))["end"]["sum_received"]
    print("%.3f Gbit/s, %.3f GB" % (r["bits_per_second"] / 1e9, r["bytes"] / 1e9))
except Exception as e:
    print("iperf3 failed: %s" % e)' "$1"
}

# profile_contender CONTENDER: (1) syscalls per TUN packet on both gateways (perf stat on
# syscall tracepoints) under a 1-stream A->B transfer; (2) for trident, a second transfer
# under `perf record -g` (cpu-clock: this VM has no PMU) of both gateways, summarised by
# bench_perf_categories.py. Separate runs, so the tracepoints do not weigh on the profile.
profile_contender() {
    local c=$1 dir=$OUT/profile side evs=(-e raw_syscalls:sys_enter) s
    for s in "${SYSCALLS[@]}"; do evs+=(-e "syscalls:sys_enter_$s"); done
    setup "$c"
    local before_a before_b after_a after_b a0 b0 a1 b1 udp_b0 udp_b1 drop_a0 drop_a1
    before_a=$(netdev_packets trd-gwa "$(tunnel_ifc "$c" a)")
    before_b=$(netdev_packets trd-gwb "$(tunnel_ifc "$c" b)")
    udp_b0=$(udp_counters trd-gwb)
    drop_a0=$(tun_tx_dropped trd-gwa "$(tunnel_ifc "$c" a)")
    queue_sampler trd-gwb >"$WORK/raw/udpq-$c.txt" &
    started udpq $!
    for side in a b; do
        perf stat -x, "${evs[@]}" -p "$(gw_pid "$side")" -o "$WORK/raw/perfstat-$c-$side.csv" &
        started "perfstat-$side" $!
    done
    sleep 0.5
    a0=$(cpu_ticks "$(gw_pid a)")
    b0=$(cpu_ticks "$(gw_pid b)")
    ip netns exec trd-lana timeout $((SECS + 20)) \
        iperf3 -c 192.168.20.2 -p 5201 -t "$SECS" -J >"$WORK/raw/profile-$c.json" 2>&1 || true
    a1=$(cpu_ticks "$(gw_pid a)")
    b1=$(cpu_ticks "$(gw_pid b)")
    for side in a b; do finish_one "perfstat-$side"; done
    stop_one udpq
    after_a=$(netdev_packets trd-gwa "$(tunnel_ifc "$c" a)")
    after_b=$(netdev_packets trd-gwb "$(tunnel_ifc "$c" b)")
    udp_b1=$(udp_counters trd-gwb)
    drop_a1=$(tun_tx_dropped trd-gwa "$(tunnel_ifc "$c" a)")
    {
        echo "## $c: 1-stream A->B, ${SECS} s, syscall tracepoints counted"
        echo "throughput while counted: $(iperf_summary "$WORK/raw/profile-$c.json")"
        for side in a b; do
            local bef aft cpu
            if [[ $side == a ]]; then bef=$before_a aft=$after_a cpu=$((a1 - a0)); else bef=$before_b aft=$after_b cpu=$((b1 - b0)); fi
            "$PY" - "$side" "$bef" "$aft" "$WORK/raw/perfstat-$c-$side.csv" "$cpu" "$WORK/raw/profile-$c.json" <<'PY'
import json, os, sys
side, bef, aft, csv, ticks = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), sys.argv[4], int(sys.argv[5])
try:
    mb = json.load(open(sys.argv[6]))["end"]["sum_received"]["bytes"] / 1e6
except Exception:
    mb = 0
rx = int(aft[0]) - int(bef[0])  # packets the gateway wrote into its TUN (decrypted)
tx = int(aft[1]) - int(bef[1])  # packets the gateway read from its TUN (to encrypt)
pk = rx + tx
cpu = ticks / os.sysconf("SC_CLK_TCK")
counts = {}
for line in open(csv):
    parts = line.strip().split(",")
    if len(parts) >= 3 and parts[0].replace(".", "").isdigit():
        counts[parts[2]] = int(float(parts[0]))
total = counts.get("raw_syscalls:sys_enter", 0)
per = lambda n: n / pk if pk else float("nan")
print(f"gateway {side.upper()}: TUN packets read {tx}, written {rx}; CPU {cpu:.2f} s = {1e6 * cpu / pk if pk else 0:.1f} us per TUN packet; "
      f"syscalls {total} = {per(total):.2f} per TUN packet")
if mb:
    # With TUN offload a "TUN packet" can be a 64 KB super-packet: per MB compares across designs.
    print(f"    per MB received by iperf3 ({mb:.0f} MB): {total / mb:.0f} syscalls, {cpu / mb * 1e3:.2f} CPU ms")
for ev, n in sorted(counts.items(), key=lambda kv: -kv[1]):
    if ev != "raw_syscalls:sys_enter" and n:
        print(f"    {ev.split('sys_enter_')[-1]:12s} {n:10d}  {per(n):.3f}/packet")
PY
        done
        "$PY" - "$udp_b0" "$udp_b1" "$drop_a0" "$drop_a1" "$WORK/raw/udpq-$c.txt" <<'PY'
import statistics, sys
u0, u1 = [int(x) for x in sys.argv[1].split()], [int(x) for x in sys.argv[2].split()]
d = [b - a for a, b in zip(u0, u1)]
q = [int(x) for x in open(sys.argv[5]).read().split() if x.strip().isdigit()]
print(f"queues: gateway B UDP datagrams in {d[0]}, dropped for a full receive buffer (RcvbufErrors) {d[1]}; "
      f"gateway A TUN tx_dropped {int(sys.argv[4]) - int(sys.argv[3])}")
if q:
    print(f"        gateway B UDP receive queues (Recv-Q bytes, sampled every 0.2 s): median {statistics.median(q):.0f}, max {max(q)}")
PY
        echo
    } | tee -a "$dir/syscalls.txt"
    if [[ $c == trident ]]; then
        for side in a b; do
            perf record -q -e cpu-clock -F 999 -g -p "$(gw_pid "$side")" -o "$WORK/raw/perf-$side.data" \
                >/dev/null 2>&1 &
            started "perfrec-$side" $!
        done
        sleep 0.5
        ip netns exec trd-lana timeout $((SECS + 20)) \
            iperf3 -c 192.168.20.2 -p 5201 -t "$SECS" -J >"$WORK/raw/profile-rec-$c.json" 2>&1 || true
        for side in a b; do finish_one "perfrec-$side"; done
        echo "trident under perf record: $(iperf_summary "$WORK/raw/profile-rec-$c.json")" | tee -a "$dir/syscalls.txt"
        for side in a b; do
            "$PY" "$ROOT/scripts/lib/bench_perf_categories.py" "$WORK/raw/perf-$side.data" \
                "trident gateway ${side^^}, perf record -e cpu-clock -F 999 -g, 1-stream A->B, ${SECS} s" |
                tee "$dir/trident-gw$side-summary.txt"
            perf report -i "$WORK/raw/perf-$side.data" --stdio --no-children --sort dso,sym -g none \
                --percent-limit 0.2 2>/dev/null >"$dir/trident-gw$side-flat.txt" || true
            perf report -i "$WORK/raw/perf-$side.data" --stdio --no-children --sort sym \
                -g caller,0.5,callee,function,percent --percent-limit 2 2>/dev/null \
                >"$dir/trident-gw$side-callgraph.txt" || true
            if [[ -n ${PERF_KEEP_DIR:-} ]]; then
                mkdir -p "$PERF_KEEP_DIR"
                cp "$WORK/raw/perf-$side.data" "$PERF_KEEP_DIR/trident-gw$side.perf.data"
            fi
        done
    fi
    teardown
}

