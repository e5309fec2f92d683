#!/usr/bin/env bash
# Hub benchmark (issue 23, "a hub for 1,000 sites"): one `trident up` hub with N peers in a
# network namespace against N spokes emulated by examples/hub_load (each its own static key,
# bootstrap PSK and UDP source address), for each N given. Per N it measures:
#   - the boot storm: hub and spokes started together (cold start), the time until every
#     spoke has a keymix epoch and an echo reply through its WireGuard session;
#   - hub RSS once every peer holds two epochs (idle: only the sampled pings and keepalives);
#   - hub CPU seconds per peer-epoch over a window of whole epochs (utime+stime of the hub
#     process / keymix exchanges completed in the window, summed over peers), and KME
#     requests per exchange from the hub's metrics (with --qkd preferred|required);
#   - how long `trident status`, `trident status --json` and a metrics scrape take;
#   - lost pings of a sample of spokes (every 100 ms) across the epoch switches.
# Writes OUT/hub-N.json per N (the generator's report and the hub's figures) and OUT/results.md.
# A benchmark only: nothing here fails on a figure.
#
# Usage: scripts/hub-load.sh [--spokes 100,300,1000] [--epoch 20] [--reject 40]
#          [--qkd off|preferred|required] [--window-epochs 3] [--ping-sample 10]
#          [--threads 1] [--keepalive 25] [--perf] [--out DIR]
#   --perf   also `perf record -g` the hub during the boot storm and the window
#            (OUT/profile-N-boot.txt, OUT/profile-N-steady.txt)
# Env: TRIDENT, HUB_LOAD: binaries to use (default: release builds of this tree, built here);
#      TRIDENT_LABEL: how the results name that trident (default: this tree's git revision);
#      KEEP_WORK=1 keeps the work directory (configs, keys, full logs) in /tmp.
# Needs root. Creates the namespaces trl-hub and trl-spk (removed on exit, also on failure)
# and talks only inside them: run it under the shared lock, like the e2e tests:
#   flock /tmp/trident-e2e.lock scripts/hub-load.sh
set -euo pipefail

if [[ $(id -u) -ne 0 ]]; then
    exec sudo -E "$0" "$@"
fi

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SPOKES=100,300,1000
EPOCH=20
REJECT=40
QKD=off
WINDOW_EPOCHS=3
PING_SAMPLE=10
THREADS=1
KEEPALIVE=25
PERF=0
OUT=$ROOT/bench/hub
while (($#)); do
    case "$1" in
        --spokes) SPOKES=${2:?}; shift ;;
        --epoch) EPOCH=${2:?}; shift ;;
        --reject) REJECT=${2:?}; shift ;;
        --qkd) QKD=${2:?}; shift ;;
        --window-epochs) WINDOW_EPOCHS=${2:?}; shift ;;
        --ping-sample) PING_SAMPLE=${2:?}; shift ;;
        --threads) THREADS=${2:?}; shift ;;
        --keepalive) KEEPALIVE=${2:?}; shift ;;
        --perf) PERF=1 ;;
        --out) OUT=${2:?}; shift ;;
        -h | --help) sed -n "2,28p" "$0"; exit 0 ;;
        *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

if [[ -z ${TRIDENT:-} || -z ${HUB_LOAD:-} ]]; then
    cargo build --locked --release --quiet --manifest-path "$ROOT/Cargo.toml" --bin trident --example hub_load
fi
LABEL=${TRIDENT_LABEL:-$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)}
TRIDENT=${TRIDENT:-$ROOT/target/release/trident}
HUB_LOAD=${HUB_LOAD:-$ROOT/target/release/examples/hub_load}
# shellcheck source=lib/hub_load.sh
. "$ROOT/scripts/lib/hub_load.sh"

WORK=$(mktemp -d /tmp/trident-hubload.XXXXXX)
PERF_PID=
cleanup() {
    trap - EXIT INT TERM
    [[ -n $PERF_PID ]] && hl_stop "$PERF_PID"
    hl_down
    [[ -n ${KEEP_WORK:-} ]] || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ms_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", (b - a) * 1000 }'; }

# times_ms N CMD...: N runs of CMD (output discarded), their wall times in ms, space-separated.
times_ms() {
    local n=$1 i t out=()
    shift
    for ((i = 0; i < n; i++)); do
        t=$EPOCHREALTIME
        "$@" >/dev/null 2>&1 || true
        out+=("$(ms_since "$t")")
    done
    echo "${out[*]}"
}

scrape() { ip netns exec "$HL_HUB_NS" curl -s --max-time 10 "http://$HL_METRICS/metrics"; }

# exchanges: keymix exchanges completed, summed over the hub's peers.
exchanges() {
    hl_status_json | python3 -c "import json,sys; print(sum(p['keymix_exchanges'] for p in json.load(sys.stdin)['peers']))"
}

# kme_requests: the hub's KME requests so far (all kinds).
kme_requests() {
    scrape | awk '/^trident_kme_requests_total/ { n += $NF } END { print n + 0 }'
}

perf_start() {
    ((PERF)) || return 0
    perf record -q -F 499 -g -p "$HL_HUB_PID" -o "$1" >/dev/null 2>&1 &
    PERF_PID=$!
}

perf_stop() {
    ((PERF)) || return 0
    kill -INT "$PERF_PID" 2>/dev/null
    wait "$PERF_PID" 2>/dev/null || true
    PERF_PID=
    # Flat: where the hub's threads spent their samples, by shared object and symbol.
    perf report -i "$1" --no-children --percent-limit 0.3 --stdio --sort dso,symbol -g none \
        2>/dev/null | grep -v '^$' | head -n 120 >"$2" || true
}

measure() {
    local n=$1 dir=$WORK/n$1 gen_args=() qkd_args=()
    echo "== $n spokes (epoch $EPOCH s, reject $REJECT s, qkd $QKD): $(uptime)" >&2
    hl_netns_up "$n" || return 1
    [[ $QKD != off ]] && qkd_args=(--qkd "$QKD" --kme-dir "$dir/kme")
    hl_gen "$dir" "$n" "$EPOCH" "$REJECT" --keepalive "$KEEPALIVE" "${qkd_args[@]}" >/dev/null || return 1
    if [[ $QKD != off ]]; then
        # Keys for every exchange of the run: 1,000 keys/s, a pool of 100,000.
        hl_kme_up "$dir" --key-rate-bps 256000 --max-key-count 100000 || return 1
    fi
    gen_args=(--ping-sample "$PING_SAMPLE" --threads "$THREADS" --up-timeout-secs 300)
    local load_start t0 ready_ms cpu_boot gen_cpu_boot
    load_start=$(cut -d' ' -f1-3 /proc/loadavg)
    t0=$EPOCHREALTIME
    hl_hub_start "$dir"
    hl_gen_start "$dir" "${gen_args[@]}"
    perf_start "$dir/perf-boot.data"
    hl_wait_file "$dir/ready.json" 320 || { echo "not every spoke came up; see $dir" >&2; }
    ready_ms=$(ms_since "$t0")
    cpu_boot=$(hl_cpu_secs "$HL_HUB_PID")
    gen_cpu_boot=$(hl_cpu_secs "$HL_GEN_PID")
    perf_stop "$dir/perf-boot.data" "$OUT/profile-$n-boot.txt"
    # One whole epoch first, so every peer holds the Tunns of two epochs, then the window.
    sleep "$EPOCH"
    local ex_a kme_a cpu_a t_a ex_b kme_b cpu_b window_s rss hwm
    ex_a=$(exchanges)
    kme_a=$(kme_requests)
    cpu_a=$(hl_cpu_secs "$HL_HUB_PID")
    t_a=$EPOCHREALTIME
    perf_start "$dir/perf-steady.data"
    sleep $((WINDOW_EPOCHS * EPOCH))
    cpu_b=$(hl_cpu_secs "$HL_HUB_PID")
    window_s=$(ms_since "$t_a")
    perf_stop "$dir/perf-steady.data" "$OUT/profile-$n-steady.txt"
    rss=$(hl_rss_kb "$HL_HUB_PID")
    hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$HL_HUB_PID/status")
    ex_b=$(exchanges)
    kme_b=$(kme_requests)
    local t_status t_json t_scrape scrape_http status_bytes json_bytes scrape_bytes
    t_status=$(times_ms 5 "$TRIDENT" status "$HL_NAME")
    t_json=$(times_ms 5 "$TRIDENT" status "$HL_NAME" --json)
    t_scrape=$(times_ms 5 scrape)
    scrape_http=$(for _ in 1 2 3 4 5; do
        ip netns exec "$HL_HUB_NS" curl -s -o /dev/null -w '%{time_total} ' "http://$HL_METRICS/metrics"
    done)
    status_bytes=$("$TRIDENT" status "$HL_NAME" | wc -c)
    json_bytes=$(hl_status_json | wc -c)
    scrape_bytes=$(scrape | wc -c)
    hl_status_json >"$dir/status.json"
    hl_gen_finish 60
    local load_end
    load_end=$(cut -d' ' -f1-3 /proc/loadavg)
    python3 - "$dir" "$OUT/hub-$n.json" <<PY
import json, sys
d, out = sys.argv[1], sys.argv[2]
gen = json.load(open(f"{d}/report.json"))
try:
    status = json.load(open(f"{d}/status.json"))
except ValueError:
    status = {"peers": [], "dropped": {}}
ms = lambda s: [float(x) for x in s.split()]
def num(s):
    """A figure read from the hub, or None when the hub did not answer."""
    try:
        return float(s)
    except ValueError:
        return None
def diff(b, a):
    return None if num(b) is None or num(a) is None else num(b) - num(a)
n = $n
ex, kme, cpu = diff("$ex_b", "$ex_a"), diff("$kme_b", "$kme_a"), diff("$cpu_b", "$cpu_a")
hub = {
    "trident": "$LABEL",
    "epoch_secs": $EPOCH, "reject_after_secs": $REJECT, "qkd": "$QKD", "keepalive": $KEEPALIVE,
    "spoke_threads": $THREADS,
    "ready_after_hub_start_s": round($ready_ms / 1000, 2),
    "generator_started_after_hub_s": round(gen["start_unix_ms"] / 1000 - $t0, 3),
    "hub_cpu_boot_s": num("$cpu_boot"), "generator_cpu_boot_s": num("$gen_cpu_boot"),
    "window_s": round($window_s / 1000, 1), "window_cpu_s": cpu,
    "window_exchanges": ex, "window_kme_requests": kme,
    "cpu_ms_per_peer_epoch": round(cpu * 1000 / ex, 3) if ex and cpu is not None else None,
    "kme_requests_per_exchange": round(kme / ex, 3) if ex and kme is not None else None,
    "rss_kb": num("$rss"), "rss_hwm_kb": num("$hwm"),
    "rss_kb_per_peer": round(num("$rss") / n, 1) if num("$rss") else None,
    "status_ms": ms("$t_status"), "status_json_ms": ms("$t_json"),
    "scrape_ms": ms("$t_scrape"), "scrape_http_s": ms("$scrape_http"),
    "status_bytes": num("$status_bytes"), "status_json_bytes": num("$json_bytes"),
    "scrape_bytes": num("$scrape_bytes"),
    "hub_states": {s: sum(p["state"] == s for p in status["peers"]) for s in {p["state"] for p in status["peers"]}},
    "hub_dropped": {k: v for k, v in status["dropped"].items() if v},
    "loadavg_start": "$load_start", "loadavg_end": "$load_end", "nproc": $(nproc),
}
json.dump({"spokes": n, "hub": hub, "generator": gen}, open(out, "w"), indent=1)
print(json.dumps({"spokes": n, **{k: hub[k] for k in ("ready_after_hub_start_s", "rss_kb_per_peer", "cpu_ms_per_peer_epoch", "kme_requests_per_exchange")}, "lost": gen["ping"]["lost"], "sent": gen["ping"]["sent"]}))
PY
    # What explains a figure: the generator's progress and the end of the hub's log. (Its
    # report is in hub-N.json; the hub's status, a megabyte at 1,000 peers, is summed up
    # there as states and drops; KEEP_WORK=1 keeps both.)
    mkdir -p "$OUT/logs-$n"
    cp "$dir/gen.log" "$OUT/logs-$n/" 2>/dev/null || true
    tail -n 300 "$dir/hub.log" >"$OUT/logs-$n/hub-tail.log" 2>/dev/null || true
    hl_down
}

IFS=, read -r -a NS <<<"$SPOKES"
for n in "${NS[@]}"; do
    measure "$n" || echo "== $n spokes: failed (kept nothing)" >&2
done
python3 "$ROOT/scripts/lib/hub_report.py" "$OUT" "scripts/hub-load.sh --spokes $SPOKES --epoch $EPOCH --reject $REJECT --qkd $QKD" \
    >"$OUT/results.md"
cat "$OUT/results.md"
