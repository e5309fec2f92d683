#!/usr/bin/env bash
# Benchmark: trident against boringtun-cli and wireguard-go on the same two-site netns
# harness (scripts/netns.sh), MTU 1420 on every tunnel, iperf3 between the LAN hosts
# (server in trd-lanb, client in trd-lana), the tunnel over the WAN between the gateways.
#
# Per contender and round (contenders interleaved, order rotated every round):
#   - idle ping RTT (LAN A -> LAN B), p50/p99;
#   - iperf3 TCP, 1 stream and 4 streams (-P 4), A->B and B->A (-R), with a ping running
#     during the 1-stream A->B transfer (RTT under load);
#   - CPU seconds per GB on each gateway: utime+stime of the gateway process from
#     /proc/PID/stat before and after each transfer, over the GB received.
# Then, for trident only, an epoch switch during iperf3: epoch_secs=5 (reject 10) under a
# 1-stream transfer with 1-second intervals; reports the worst interval against the median.
#
# Output: a median table with ratios to boringtun-cli, or to the first contender when
# boringtun-cli is not one (stdout and bench/results.md),
# bench/results.json (machine info, every raw sample, medians), bench/chart.png.
# This is a benchmark only: nothing here passes or fails on a speed.
#
# Usage: scripts/bench.sh [--quick] [--rounds N] [--seconds S] [--contenders a,b,c]
#                         [--no-epoch] [--out DIR] [--wait-idle SECS] [--profile]
#   --quick        1 round, 3-second transfers, short epoch check (under 3 minutes)
#   --rounds N     rounds (default 3); --seconds S: length of each transfer (default 10)
#   --contenders   comma list out of trident,boringtun-cli,wireguard-go (default all three)
#                  and trident-baseline (opt-in: a second trident build, see TRIDENT_BASELINE)
#   --no-epoch     skip the trident epoch-switch check
#   --out DIR      where results go (default bench/ in the repository)
#   --wait-idle S  first wait up to S seconds (polling every 30 s) while scripts/e2e.sh,
#                  test.sh or demo.sh runs or the harness namespaces are in use, instead
#                  of refusing to start
#   --profile      instead of the comparison: syscalls per packet for every contender
#                  (perf stat on syscall tracepoints) and a `perf record -g` CPU profile of
#                  both trident gateways, under a 1-stream A->B transfer; text reports go
#                  to OUT/profile/
# Env: TRIDENT=path         use this trident binary instead of building target/release/trident
#      TRIDENT_LABEL=text    how results name that binary (default: git revision, or the path)
#      TRIDENT_BASELINE=path the binary of the trident-baseline contender: measured exactly
#                            like trident (same config and transfers), to compare two builds
#                            in the same run, e.g. TRIDENT_BASELINE=/tmp/old/trident
#                            scripts/bench.sh --quick --contenders trident,trident-baseline
#      TRIDENT_BASELINE_LABEL=text  how results name it (default: its path)
#      PERF_KEEP_DIR=dir     --profile: keep the perf.data files there
#
# Needs root (re-runs itself through sudo otherwise). Installs what is missing: iperf3,
# wireguard-go, wireguard-tools, python3-matplotlib (Debian), boringtun-cli (cargo install
# --locked), linux-perf for --profile. Everything it starts is stopped and the namespaces
# are removed on exit, failure or Ctrl-C. All traffic stays inside the harness namespaces.
set -euo pipefail

if [[ $(id -u) -ne 0 ]]; then
    exec sudo -E "$0" "$@"
fi

ROOT=$(cd "$(dirname "$0")/.." && pwd)
NETNS=$ROOT/scripts/netns.sh
REPORT=$ROOT/scripts/lib/bench_report.py
PY=/usr/bin/python3 # Debian's, which has python3-matplotlib (a pyenv python3 may be first on PATH)
ORIG_ARGS=("$@")

ROUNDS=3
SECS=10
IDLE_PINGS=100
EPOCH_SECS=5
EPOCH_REJECT=10
EPOCH_RUN=25
DO_EPOCH=1
PROFILE=0
WAIT_IDLE=0
QUICK=0
OUT=$ROOT/bench
CONTENDERS=(trident boringtun-cli wireguard-go)

while (($#)); do
    case "$1" in
        --quick) QUICK=1; ROUNDS=1; SECS=3; IDLE_PINGS=30; EPOCH_RUN=12 ;;
        --rounds) ROUNDS=${2:?}; shift ;;
        --seconds) SECS=${2:?}; shift ;;
        --contenders) IFS=, read -r -a CONTENDERS <<<"${2:?}"; shift ;;
        --no-epoch) DO_EPOCH=0 ;;
        --out) OUT=$(mkdir -p "${2:?}" && cd "$2" && pwd); shift ;;
        --wait-idle) WAIT_IDLE=${2:?}; shift ;;
        --profile) PROFILE=1 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
for c in "${CONTENDERS[@]}"; do
    case "$c" in
        trident | boringtun-cli | wireguard-go) ;;
        trident-baseline)
            [[ -n ${TRIDENT_BASELINE:-} && -x ${TRIDENT_BASELINE:-} ]] || {
                echo "bench.sh: trident-baseline needs TRIDENT_BASELINE=path of an executable trident" >&2
                exit 2
            }
            TRIDENT_BASELINE=$(cd "$(dirname "$TRIDENT_BASELINE")" && pwd)/$(basename "$TRIDENT_BASELINE")
            ;;
        *) echo "bench.sh: unknown contender $c" >&2; exit 2 ;;
    esac
done
((SECS >= 2)) || { echo "bench.sh: --seconds must be at least 2" >&2; exit 2; }

# cargo and cargo-installed tools, also when sudo reset PATH.
PATH=$HOME/.cargo/bin:$PATH:/usr/sbin:/sbin
if [[ -n ${SUDO_USER:-} ]]; then
    PATH=$PATH:$(getent passwd "$SUDO_USER" | cut -d: -f6)/.cargo/bin
fi
export PATH

say() { printf '== %s\n' "$*" >&2; }

# ---------------------------------------------------------------- dependencies and build
install_deps() {
    local missing=()
    command -v ip >/dev/null || missing+=(iproute2)
    command -v ping >/dev/null || missing+=(iputils-ping)
    command -v iperf3 >/dev/null || missing+=(iperf3)
    command -v wg >/dev/null || missing+=(wireguard-tools)
    command -v wireguard-go >/dev/null || missing+=(wireguard-go)
    [[ -x $PY ]] || missing+=(python3)
    { [[ -x $PY ]] && "$PY" -c 'import matplotlib' 2>/dev/null; } || missing+=(python3-matplotlib)
    if ((PROFILE)); then
        perf --version >/dev/null 2>&1 || missing+=(linux-perf)
    fi
    if ((${#missing[@]})); then
        say "installing from Debian: ${missing[*]}"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    if [[ " ${CONTENDERS[*]} " == *" boringtun-cli "* ]] && ! command -v boringtun-cli >/dev/null; then
        say "installing boringtun-cli (cargo install boringtun-cli --locked)"
        cargo install boringtun-cli --locked
    fi
}

build_trident() {
    if [[ " ${CONTENDERS[*]} " != *" trident "* ]]; then
        TRIDENT=${TRIDENT:-$ROOT/target/release/trident} # lib/trident.sh wants it set
        return
    fi
    if [[ -n ${TRIDENT:-} ]]; then
        [[ -x $TRIDENT ]] || { echo "bench.sh: TRIDENT=$TRIDENT is not executable" >&2; exit 1; }
        TRIDENT=$(cd "$(dirname "$TRIDENT")" && pwd)/$(basename "$TRIDENT")
        return
    fi
    say "building trident (release)"
    cargo build --locked --release --quiet --manifest-path "$ROOT/Cargo.toml" --bin trident
    TRIDENT=$ROOT/target/release/trident
}

# ---------------------------------------------------------------- harness in use?
harness_busy() { # prints why, exit 0 when busy
    local n pids
    # test.sh runs e2e.sh; e2e.sh and demo.sh bring the same namespaces up and down.
    if pgrep -f '(e2e|demo|test)\.sh' >/dev/null 2>&1; then
        echo "$(pgrep -af '(e2e|demo|test)\.sh' | awk '{print $2, $3}' | sort -u | tr '\n' ' ')is running"
        return 0
    fi
    for n in lana gwa wan gwb lanb; do
        pids=$(ip netns pids "trd-$n" 2>/dev/null || true)
        if [[ -n $pids ]]; then
            echo "namespace trd-$n has processes: $(echo "$pids" | tr '\n' ' ')"
            return 0
        fi
    done
    return 1
}

wait_for_harness() {
    local why waited=0
    while why=$(harness_busy); do
        if ((waited >= WAIT_IDLE)); then
            echo "bench.sh: the netns harness is in use ($why); not touching it." >&2
            echo "          Wait for it to finish, or pass --wait-idle SECONDS." >&2
            exit 1
        fi
        say "harness busy ($why); waiting ($waited/$WAIT_IDLE s)"
        sleep 30
        waited=$((waited + 30))
    done
}

# ---------------------------------------------------------------- process bookkeeping
# Every process the bench starts has a pid file WORK/pids/NAME.pid (lib/trident.sh's layout).
WORK=
started() { echo "$2" >"$WORK/pids/$1.pid"; } # NAME PID

stop_one() { trd_stop "$1" "$WORK/pids" 3; } # NAME: TERM, wait up to 3 s, KILL

finish_one() { # NAME: SIGINT (perf writes its output), wait up to 10 s, then stop_one
    local f=$WORK/pids/$1.pid pid
    [[ -f $f ]] || return 0
    pid=$(cat "$f")
    kill -INT "$pid" 2>/dev/null || true
    trd_wait_exit "$pid" 10 || true
    stop_one "$1"
}

stop_all() {
    local f
    [[ -n $WORK && -d $WORK/pids ]] || return 0
    for f in "$WORK"/pids/*.pid; do
        [[ -e $f ]] || continue
        stop_one "$(basename "$f" .pid)"
    done
    # Our UAPI sockets, if a killed userspace WireGuard left them behind.
    rm -f /var/run/wireguard/wgA0.sock /var/run/wireguard/wgB0.sock
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_all
    "$NETNS" down 2>/dev/null || true
    if [[ -n $WORK && -d $WORK ]]; then
        if ((rc != 0)); then
            say "failed (exit $rc); gateway logs:"
            tail -n 5 "$WORK"/logs/*.log 2>/dev/null >&2 || true
        fi
        rm -rf "$WORK"
    fi
    exit "$rc"
}

# ---------------------------------------------------------------- contenders
# cpu_ticks PID: utime+stime (clock ticks) of the whole process, all threads.
cpu_ticks() {
    local s
    s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
    s=${s##*) }
    # shellcheck disable=SC2086 # split the stat fields
    set -- $s
    echo $((${12} + ${13}))
}

gw_pid() { cat "$WORK/pids/gw$1.pid"; } # a|b

# start_trident CONTENDER EPOCH REJECT: trident (TRIDENT) or trident-baseline
# (TRIDENT_BASELINE), the same config for both: MTU 1420, no QKD, chains in WORK/CONTENDER.
start_trident() {
    local dir=$WORK/$1 side
    # Keys, `up` and `status` all from the binary under test (lib/trident.sh uses TRIDENT).
    local TRIDENT=$TRIDENT
    [[ $1 == trident-baseline ]] && TRIDENT=$TRIDENT_BASELINE
    rm -rf "$dir"
    mkdir -p "$dir"
    # In a subshell: trd_configs leaves umask 077 behind, and the results should stay readable.
    (trd_configs "$dir" "$2" "$3" off 1420)
    for side in a b; do
        # lib/trident.sh: starts `trident up` in gw$side, waits for its control socket.
        trd_start "$side" "$dir"
        started "gw$side" "$(cat "$dir/$side.pid")"
        rm -f "$dir/$side.pid" # ours now (stop_one), not trd_stop's
        ln -sf "$dir/$side.log" "$WORK/logs/trident-$side.log"
    done
    trd_wait_state trdA up 30 && trd_wait_state trdB up 30 || {
        echo "trident: tunnel not up" >&2
        return 1
    }
}

# start_userspace_wg KIND: boringtun-cli or wireguard-go on both gateways, configured with
# wg(8) and ip(8) exactly like trident's interface (addresses, MTU, routes).
start_userspace_wg() {
    local kind=$1 dir=$WORK/$1 side ifc ns i
    rm -rf "$dir"
    mkdir -p "$dir"
    (umask 077 && wg genkey >"$dir/a.key" && wg genkey >"$dir/b.key")
    for side in a b; do
        ifc=wg${side^^}0
        ns=trd-gw$side
        rm -f "/var/run/wireguard/$ifc.sock"
        case "$kind" in
            boringtun-cli)
                ip netns exec "$ns" boringtun-cli --foreground --disable-drop-privileges "$ifc" \
                    >"$WORK/logs/$kind-$side.log" 2>&1 &
                ;;
            wireguard-go)
                ip netns exec "$ns" env WG_PROCESS_FOREGROUND=1 wireguard-go -f "$ifc" \
                    >"$WORK/logs/$kind-$side.log" 2>&1 &
                ;;
        esac
        started "gw$side" $!
        for ((i = 0; i < 100; i++)); do
            [[ -S /var/run/wireguard/$ifc.sock ]] && break
            kill -0 "$(gw_pid "$side")" 2>/dev/null || break
            sleep 0.1
        done
        [[ -S /var/run/wireguard/$ifc.sock ]] || {
            echo "$kind on gw$side did not open its UAPI socket" >&2
            return 1
        }
    done
    local pub_a pub_b
    pub_a=$(wg pubkey <"$dir/a.key")
    pub_b=$(wg pubkey <"$dir/b.key")
    ip netns exec trd-gwa wg set wgA0 private-key "$dir/a.key" listen-port 51820 \
        peer "$pub_b" endpoint 198.51.100.2:51820 allowed-ips 10.99.0.2/32,192.168.20.0/24 \
        persistent-keepalive 25
    ip netns exec trd-gwb wg set wgB0 private-key "$dir/b.key" listen-port 51820 \
        peer "$pub_a" endpoint 192.0.2.2:51820 allowed-ips 10.99.0.1/32,192.168.10.0/24 \
        persistent-keepalive 25
    ip -n trd-gwa addr add 10.99.0.1/24 dev wgA0
    ip -n trd-gwa link set wgA0 mtu 1420 up
    ip -n trd-gwa route add 192.168.20.0/24 dev wgA0
    ip -n trd-gwb addr add 10.99.0.2/24 dev wgB0
    ip -n trd-gwb link set wgB0 mtu 1420 up
    ip -n trd-gwb route add 192.168.10.0/24 dev wgB0
}

tunnel_ifc() { # CONTENDER SIDE -> interface name in gw$SIDE
    case "$1" in
        trident | trident-baseline) echo "trd${2^^}" ;;
        *) echo "wg${2^^}0" ;;
    esac
}

# setup CONTENDER [EPOCH REJECT]: fresh namespaces, gateways, iperf3 server; tunnel passes.
setup() {
    local c=$1 i
    "$NETNS" up >/dev/null
    case "$c" in
        trident | trident-baseline) start_trident "$c" "${2:-120}" "${3:-180}" ;;
        *) start_userspace_wg "$c" ;;
    esac
    ip netns exec trd-lanb iperf3 -s -p 5201 >"$WORK/logs/iperf3-server.log" 2>&1 &
    started iperf-server $!
    for ((i = 0; i < 40; i++)); do
        ip netns exec trd-lana ping -c 1 -W 1 192.168.20.2 >/dev/null 2>&1 && break
        sleep 0.25
    done
    ((i < 40)) || { echo "$c: no ping through the tunnel" >&2; return 1; }
    for ((i = 0; i < 50; i++)); do
        ip netns exec trd-lanb ss -ltn 2>/dev/null | grep -q ':5201 ' && break
        sleep 0.1
    done
}

teardown() {
    stop_one iperf-server
    stop_one gwa
    stop_one gwb
    rm -f /var/run/wireguard/wgA0.sock /var/run/wireguard/wgB0.sock
    "$NETNS" down
}

# transfer CONTENDER ROUND SCENARIO STREAMS REVERSE WITH_PING: one iperf3 run; appends a sample.
transfer() {
    local c=$1 r=$2 sc=$3 streams=$4 rev=$5 with_ping=$6
    local f=$WORK/raw/$c-r$r-$sc pid_a pid_b a0 b0 a1 b1 ping_pid= flags=()
    pid_a=$(gw_pid a)
    pid_b=$(gw_pid b)
    ((rev)) && flags+=(-R)
    ((streams > 1)) && flags+=(-P "$streams")
    a0=$(cpu_ticks "$pid_a")
    b0=$(cpu_ticks "$pid_b")
    if ((with_ping)); then
        (sleep 0.5 && exec ip netns exec trd-lana ping -i 0.1 -w $((SECS - 1)) 192.168.20.2) \
            >"$f.ping" 2>&1 &
        ping_pid=$!
    fi
    ip netns exec trd-lana timeout $((SECS + 20)) \
        iperf3 -c 192.168.20.2 -p 5201 -t "$SECS" "${flags[@]}" -J >"$f.json" 2>"$f.err" || true
    a1=$(cpu_ticks "$pid_a")
    b1=$(cpu_ticks "$pid_b")
    [[ -n $ping_pid ]] && { wait "$ping_pid" 2>/dev/null || true; }
    local args=(--contender "$c" --round "$r" --scenario "$sc" --streams "$streams" --reverse "$rev"
        --iperf "$f.json" --cpu-a $((a1 - a0)) --cpu-b $((b1 - b0)) --loadavg "$(cut -d' ' -f1 /proc/loadavg)")
    ((with_ping)) && args+=(--ping "$f.ping")
    "$PY" "$REPORT" iperf-sample "${args[@]}" | tee -a "$WORK/samples.jsonl" |
        "$PY" -c 'import json,sys; s=json.load(sys.stdin); print("   %-13s %-9s %s" % (s["contender"], s["scenario"], ("%.3f Gbit/s, CPU s/GB A %.2f B %.2f" % (s["gbps"], s["cpu_a_s_per_gb"] or 0, s["cpu_b_s_per_gb"] or 0)) if "gbps" in s else "ERROR " + s.get("error", "")))' >&2
    sleep 1 # let queues drain between transfers
    ! tail -n 1 "$WORK/samples.jsonl" | grep -q '"error"'
}

measure() { # CONTENDER ROUND
    local c=$1 r=$2
    ip netns exec trd-lana ping -c "$IDLE_PINGS" -i 0.05 -W 1 192.168.20.2 >"$WORK/raw/$c-r$r-idle.ping" 2>&1 || true
    "$PY" "$REPORT" ping-sample --contender "$c" --round "$r" --ping "$WORK/raw/$c-r$r-idle.ping" >>"$WORK/samples.jsonl"
    # A failed transfer ends the contender-round (the caller measures it again once).
    transfer "$c" "$r" tcp1_fwd 1 0 1 &&
        transfer "$c" "$r" tcp1_rev 1 1 0 &&
        transfer "$c" "$r" tcp4_fwd 4 0 0 &&
        transfer "$c" "$r" tcp4_rev 4 1 0
}

failed_since() { # LINE: did a sample after line LINE of samples.jsonl fail?
    tail -n +"$(($1 + 1))" "$WORK/samples.jsonl" | grep -q '"error"'
}

discard_since() { # LINE: mark the samples after line LINE as discarded (kept in raw data)
    "$PY" - "$WORK/samples.jsonl" "$1" <<'PY'
import json, sys
path, keep = sys.argv[1], int(sys.argv[2])
lines = open(path).read().splitlines()
out = lines[:keep] + [json.dumps({**json.loads(l), "discarded": True}) for l in lines[keep:] if l.strip()]
open(path, "w").write("\n".join(out) + "\n")
PY
}

epoch_check() {
    say "epoch switch during iperf3: trident, epoch_secs=$EPOCH_SECS reject_after_secs=$EPOCH_REJECT, ${EPOCH_RUN} s, 1 stream A->B"
    setup trident "$EPOCH_SECS" "$EPOCH_REJECT"
    local polls=$WORK/raw/epoch-polls.txt t0 poller
    : >"$polls"
    (
        while :; do
            e=$("$TRIDENT" status trdA --json 2>/dev/null | grep -o '"epoch": *[0-9]*' | head -1 | tr -dc 0-9)
            echo "$(date +%s.%N) ${e:-None}"
            sleep 0.5
        done
    ) >>"$polls" 2>/dev/null &
    started epoch-poller $!
    t0=$(date +%s.%N)
    ip netns exec trd-lana timeout $((EPOCH_RUN + 20)) \
        iperf3 -c 192.168.20.2 -p 5201 -t "$EPOCH_RUN" -i 1 -J >"$WORK/raw/epoch.json" 2>"$WORK/raw/epoch.err" || true
    stop_one epoch-poller
    "$PY" "$REPORT" epoch-sample --iperf "$WORK/raw/epoch.json" --epochs "$polls" --t0 "$t0" >"$WORK/epoch.json"
    teardown
}

# ---------------------------------------------------------------- profile mode
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

# ---------------------------------------------------------------- main
install_deps
build_trident
# shellcheck source=lib/trident.sh
. "$ROOT/scripts/lib/trident.sh"

wait_for_harness
WORK=$(mktemp -d /tmp/trident-bench.XXXXXX)
mkdir -p "$WORK/pids" "$WORK/raw" "$WORK/logs"
trap cleanup EXIT
trap 'exit 130' INT TERM

if ((PROFILE)); then
    mkdir -p "$OUT/profile"
    rm -f "$OUT"/profile/trident-gw*.txt
    echo "# scripts/bench.sh --profile, $(date '+%Y-%m-%d %H:%M'), load average $(cut -d' ' -f1-3 /proc/loadavg)" \
        >"$OUT/profile/syscalls.txt"
    for c in "${CONTENDERS[@]}"; do
        say "profile: $c"
        profile_contender "$c"
    done
    say "profile reports in $OUT/profile/"
    exit 0
fi

version_of() {
    case "$1" in
        trident) [[ -n ${TRIDENT_LABEL:-} ]] && { echo "$TRIDENT_LABEL"; return; }
            echo "$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)$( [[ -n $(cd "$ROOT" && git status --porcelain -- src tunnel keymix Cargo.toml Cargo.lock 2>/dev/null) ]] && echo "-dirty")$( [[ $TRIDENT != "$ROOT/target/release/trident" ]] && echo " ($TRIDENT)")" ;;
        trident-baseline) echo "${TRIDENT_BASELINE_LABEL:-$TRIDENT_BASELINE}" ;;
        # `|| true`: a tool that is not a contender may not be installed (pipefail, set -e).
        boringtun-cli) boringtun-cli --version 2>/dev/null | head -1 || true ;;
        wireguard-go) wireguard-go --version 2>/dev/null | head -1 || true ;;
        iperf3) iperf3 --version 2>/dev/null | head -1 || true ;;
    esac
}
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
CPUSTAT_START=$(grep '^cpu ' /proc/stat)
START_TIME=$(date +%s)
: >"$WORK/samples.jsonl"

say "contenders: ${CONTENDERS[*]}; $ROUNDS round(s) x ${SECS} s transfers"
for ((r = 0; r < ROUNDS; r++)); do
    n=${#CONTENDERS[@]}
    for ((k = 0; k < n; k++)); do
        c=${CONTENDERS[$(((k + r) % n))]}
        say "round $((r + 1))/$ROUNDS: $c"
        for attempt in 1 2; do
            mark=$(wc -l <"$WORK/samples.jsonl")
            if setup "$c" && measure "$c" "$r" && ! failed_since "$mark"; then
                teardown
                break
            fi
            teardown || true
            if ((attempt == 1)); then
                # A transfer failed (tunnel down, or someone else took the harness down):
                # keep the failed samples, marked, and measure this contender-round again.
                say "round $((r + 1)): $c had a failed transfer; measuring it again"
                discard_since "$mark"
            fi
        done
    done
done

EPOCH_FILE=
if ((DO_EPOCH)) && [[ " ${CONTENDERS[*]} " == *" trident "* ]]; then
    epoch_check
    EPOCH_FILE=$WORK/epoch.json
fi

LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
CPUSTAT_END=$(grep '^cpu ' /proc/stat)
export CPUSTAT_START CPUSTAT_END
export LOAD_START LOAD_END START_TIME ROUNDS SECS EPOCH_SECS EPOCH_REJECT EPOCH_RUN QUICK IDLE_PINGS
BENCH_CMD="scripts/bench.sh${ORIG_ARGS[*]:+ ${ORIG_ARGS[*]}}"
[[ $TRIDENT != "$ROOT/target/release/trident" ]] && BENCH_CMD="TRIDENT=$TRIDENT $BENCH_CMD"
[[ " ${CONTENDERS[*]} " == *" trident-baseline "* ]] && BENCH_CMD="TRIDENT_BASELINE=$TRIDENT_BASELINE $BENCH_CMD"
export BENCH_CMD
export BENCH_CONTENDERS="${CONTENDERS[*]}"
export V_TRIDENT V_TRIDENT_BASELINE='' V_BT V_WGGO V_IPERF
V_TRIDENT=$(version_of trident)
[[ " ${CONTENDERS[*]} " == *" trident-baseline "* ]] && V_TRIDENT_BASELINE=$(version_of trident-baseline)
V_BT=$(version_of boringtun-cli)
V_WGGO=$(version_of wireguard-go)
V_IPERF=$(version_of iperf3)
"$PY" - >"$WORK/meta.json" <<'PY'
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
    "versions": {
        "trident": env["V_TRIDENT"],
        # Only in a run that compares two trident builds.
        **({"trident-baseline": env["V_TRIDENT_BASELINE"]} if env.get("V_TRIDENT_BASELINE") else {}),
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
PY
mkdir -p "$OUT"
echo
"$PY" "$REPORT" report --samples "$WORK/samples.jsonl" --meta "$WORK/meta.json" --out "$OUT" \
    ${EPOCH_FILE:+--epoch "$EPOCH_FILE"}
echo
say "done in $(($(date +%s) - START_TIME)) s: $OUT/results.md, $OUT/results.json, $OUT/chart.png"
