# One trident hub against the load generator's spokes (examples/hub_load), for
# scripts/hub-load.sh and the e2e group hub_load.sh. Two namespaces and a veth pair:
#
#   trl-hub   wan0 10.95.0.1/30, route to 10.96.0.0/16 via 10.95.0.2; trident `up`
#             (tunnel trlHub 10.200.0.1/16), KME A
#   trl-spk   wan0 10.95.0.2/30, one /32 on lo per spoke from 10.96.1.1 on; the spokes (one
#             process, each spoke its own UDP socket on its own address), KME B
#
# The spokes' addresses sit behind a route, as branches behind the Internet do: the hub's
# neighbour table holds one entry, not one per spoke (the default limit is 1024).
#
# Traffic stays inside the two namespaces. Source it; expects TRIDENT and HUB_LOAD (paths of
# the binaries) and calls nothing at load time. hl_down stops every process it started and
# deletes the namespaces; callers run it from their EXIT trap (e2e: CLEANUP_HOOKS). Every
# function is safe under `set -e` (scripts/hub-load.sh) as well as without it (e2e.sh).

HL_HUB_NS=trl-hub
HL_SPK_NS=trl-spk
HL_HUB_ADDR=10.95.0.1
HL_SPK_ADDR=10.95.0.2
HL_SRC_BASE=10.96.1.1
HL_NAME=trlHub
HL_METRICS=127.0.0.1:9586
HL_HUB_PID=
HL_GEN_PID=
HL_KME_PIDS=()

# hl_stop PID [SECONDS]: SIGTERM, SIGKILL after SECONDS (5), reap.
hl_stop() {
    local pid=$1 secs=${2:-5} i
    [[ -n $pid ]] || return 0
    {
        kill -TERM "$pid" || return 0
        for ((i = 0; i < secs * 10; i++)); do
            kill -0 "$pid" || break
            sleep 0.1
        done
        kill -KILL "$pid" || true
        wait "$pid" || true
    } 2>/dev/null
    return 0
}

# hl_down: stop the generator, the hub and the KMEs; delete the namespaces (idempotent).
hl_down() {
    local pid
    hl_stop "$HL_GEN_PID"
    hl_stop "$HL_HUB_PID" 10
    for pid in "${HL_KME_PIDS[@]}"; do hl_stop "$pid"; done
    HL_GEN_PID= HL_HUB_PID= HL_KME_PIDS=()
    ip netns del "$HL_HUB_NS" 2>/dev/null || true
    ip netns del "$HL_SPK_NS" 2>/dev/null || true
    return 0
}

# hl_netns_up N: both namespaces, the veth pair, and N spoke source addresses.
hl_netns_up() {
    local n=$1
    ip netns del "$HL_HUB_NS" 2>/dev/null || true
    ip netns del "$HL_SPK_NS" 2>/dev/null || true
    ip netns add "$HL_HUB_NS" && ip netns add "$HL_SPK_NS" || return 1
    ip -n "$HL_HUB_NS" link set lo up
    ip -n "$HL_SPK_NS" link set lo up
    ip -n "$HL_HUB_NS" link add wan0 type veth peer name wan0 netns "$HL_SPK_NS" || return 1
    ip -n "$HL_HUB_NS" addr add "$HL_HUB_ADDR/30" dev wan0
    ip -n "$HL_SPK_NS" addr add "$HL_SPK_ADDR/30" dev wan0
    ip -n "$HL_HUB_NS" link set wan0 up
    ip -n "$HL_SPK_NS" link set wan0 up
    ip -n "$HL_HUB_NS" route add 10.96.0.0/16 via "$HL_SPK_ADDR"
    # 10.96.1.1, 10.96.1.2, ... (the generator's --src-base, one address per spoke).
    python3 - "$HL_SRC_BASE" "$n" <<'PY' | ip -n "$HL_SPK_NS" -batch - || return 1
import ipaddress, sys
base, n = ipaddress.ip_address(sys.argv[1]), int(sys.argv[2])
for i in range(n):
    print(f"addr add {base + i}/32 dev lo")
PY
}

# hl_gen DIR N EPOCH REJECT [generator gen options...]: DIR/hub.toml, keys, PSKs, spokes.json.
hl_gen() {
    local dir=$1 n=$2 epoch=$3 reject=$4
    shift 4
    "$HUB_LOAD" gen --dir "$dir" --spokes "$n" --name "$HL_NAME" --hub "$HL_HUB_ADDR:51820" \
        --src-base "$HL_SRC_BASE" --epoch-secs "$epoch" --reject-after-secs "$reject" \
        --metrics "$HL_METRICS" "$@"
}

# hl_kme_up DIR [kme-sim init options...]: the simulator pair in DIR/kme, KME A in the hub's
# namespace, KME B in the spokes'; the key link crosses the veth. Waits until both answer.
hl_kme_up() {
    local dir=$1 side ns i
    shift
    "$TRIDENT" kme-sim init "$dir/kme" --sae SAE_A --sae SAE_B \
        --listen-a 127.0.0.1:8443 --listen-b 127.0.0.1:8444 \
        --link-a "$HL_HUB_ADDR:8445" --link-b "$HL_SPK_ADDR:8446" "$@" >/dev/null || return 1
    for side in a b; do
        ns=$HL_HUB_NS
        [[ $side == b ]] && ns=$HL_SPK_NS
        RUST_LOG=warn ip netns exec "$ns" "$TRIDENT" kme-sim run "$dir/kme/kme-$side.toml" \
            >>"$dir/kme-$side.log" 2>&1 &
        HL_KME_PIDS+=($!)
        for ((i = 0; i < 100; i++)); do
            ip netns exec "$ns" "$TRIDENT" kme-sim status "$dir/kme/kme-$side.toml" >/dev/null 2>&1 && break
            sleep 0.1
        done
        ((i < 100)) || { echo "KME $side did not start" >&2; return 1; }
    done
}

# hl_hub_start DIR: `trident up DIR/hub.toml` in the hub's namespace (log DIR/hub.log).
hl_hub_start() {
    RUST_LOG=${HUB_LOG:-info} ip netns exec "$HL_HUB_NS" "$TRIDENT" up "$1/hub.toml" \
        >>"$1/hub.log" 2>&1 &
    HL_HUB_PID=$!
}

# hl_gen_start DIR [generator run options...]: the spokes (report DIR/report.json, progress
# DIR/gen.log; DIR/ready.json appears when every spoke is up).
hl_gen_start() {
    local dir=$1
    shift
    (
        # One socket per spoke: as many descriptors as allowed.
        ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
        exec ip netns exec "$HL_SPK_NS" "$HUB_LOAD" run --dir "$dir" --ready-file "$dir/ready.json" "$@"
    ) >"$dir/report.json" 2>>"$dir/gen.log" &
    HL_GEN_PID=$!
}

# hl_gen_finish [SECONDS]: SIGINT the generator (it drains its pings and prints the report)
# and wait for it (default 30 s).
hl_gen_finish() {
    local secs=${1:-30} i
    [[ -n $HL_GEN_PID ]] || return 1
    kill -INT "$HL_GEN_PID" 2>/dev/null || true
    for ((i = 0; i < secs * 10; i++)); do
        kill -0 "$HL_GEN_PID" 2>/dev/null || break
        sleep 0.1
    done
    hl_stop "$HL_GEN_PID"
    HL_GEN_PID=
}

# hl_wait_file FILE SECONDS: until FILE exists (1 if it does not in time).
hl_wait_file() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        [[ -e $1 ]] && return 0
        sleep 0.1
    done
    return 1
}

# hl_cpu_secs PID: utime + stime of the process (all threads), in seconds.
hl_cpu_secs() {
    awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f\n", ($12 + $13) / hz }' "/proc/$1/stat"
}

# hl_rss_kb PID: resident set size in kB (VmRSS).
hl_rss_kb() {
    awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

# hl_status_json: the hub's `trident status --json`.
hl_status_json() {
    "$TRIDENT" status "$HL_NAME" --json
}
