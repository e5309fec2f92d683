# Soak mode of scripts/bench.sh (--soak MINUTES): memory over time under steady traffic and
# fast epoch switches. Per contender (default trident only): one harness, epoch_secs
# SOAK_EPOCH (trident), a ping from LAN A to LAN B every 50 ms and an iperf3 at SOAK_RATE
# A->B for the whole run, and the resident memory (VmRSS, RssAnon) of both gateway processes
# sampled every SOAK_SAMPLE seconds (60 by default: once a minute). Results: OUT/soak.md,
# OUT/soak.json, OUT/soak.png (bench_soak.py). Sourced by bench.sh, which provides setup,
# teardown, started, stop_one, gw_pid, say, WORK, OUT, PY, TRIDENT.
# shellcheck shell=bash

SOAK_EPOCH=2
SOAK_REJECT=6
SOAK_RATE=200M
SOAK_SAMPLE=${SOAK_SAMPLE:-60} # seconds between memory samples (env: shorter for a quick look)

# rss_of PID -> "VmRSS_kB RssAnon_kB" (0 0 once the process is gone)
rss_of() {
    awk '/^VmRSS:/ { r = $2 } /^RssAnon:/ { a = $2 } END { print r + 0, a + 0 }' \
        "/proc/$1/status" 2>/dev/null || echo "0 0"
}

# epoch_of IFACE -> the current epoch in `trident status --json` (empty if none)
epoch_of() {
    "$TRIDENT" status "$1" --json 2>/dev/null | grep -o '"epoch": *[0-9]*' | head -1 | tr -dc 0-9
}

soak_contender() { # CONTENDER MINUTES
    local c=$1 minutes=$2 secs=$(($2 * 60)) f=$WORK/raw/soak-$1 t0 now next i
    say "soak: $c, $minutes min, ping every 50 ms, iperf3 at $SOAK_RATE A->B, RSS every $SOAK_SAMPLE s$([[ $c == trident* ]] && echo ", epoch_secs=$SOAK_EPOCH")"
    setup "$c" "$SOAK_EPOCH" "$SOAK_REJECT"
    (exec ip netns exec trd-lana ping -q -i 0.05 -w "$secs" 192.168.20.2) >"$f.ping" 2>&1 &
    started soak-ping $!
    ip netns exec trd-lana timeout $((secs + 30)) \
        iperf3 -c 192.168.20.2 -p 5201 -t "$secs" -b "$SOAK_RATE" -i 60 -J >"$f.json" 2>"$f.err" &
    started soak-iperf $!
    t0=$(date +%s)
    : >"$f.rss"
    # t rss_a anon_a rss_b anon_b epoch_a epoch_b, from t = 0 to the end, every SOAK_SAMPLE s.
    for ((i = 0; i * SOAK_SAMPLE <= secs; i++)); do
        next=$((t0 + i * SOAK_SAMPLE))
        now=$(date +%s)
        ((next > now)) && sleep $((next - now))
        local ea="" eb=""
        if [[ $c == trident* ]]; then
            ea=$(epoch_of trdA)
            eb=$(epoch_of trdB)
        fi
        echo "$(($(date +%s) - t0)) $(rss_of "$(gw_pid a)") $(rss_of "$(gw_pid b)") ${ea:--} ${eb:--}" >>"$f.rss"
    done
    trd_wait_exit "$(cat "$WORK/pids/soak-iperf.pid")" 40 || true
    trd_wait_exit "$(cat "$WORK/pids/soak-ping.pid")" 10 || true
    stop_one soak-iperf
    stop_one soak-ping
    teardown
}

soak_run() { # MINUTES
    local c
    for c in "${CONTENDERS[@]}"; do
        soak_contender "$c" "$1"
    done
    mkdir -p "$OUT"
    local args=()
    for c in "${CONTENDERS[@]}"; do
        args+=(--run "$c" "$WORK/raw/soak-$c")
    done
    "$PY" "$ROOT/scripts/lib/bench_soak.py" --out "$OUT" --minutes "$1" --sample "$SOAK_SAMPLE" \
        --epoch "$SOAK_EPOCH" --rate "$SOAK_RATE" --load-start "$LOAD_START" \
        --load-end "$(cut -d' ' -f1-3 /proc/loadavg)" --command "$BENCH_CMD" \
        --trident-version "$(version_of trident)" "${args[@]}"
}
