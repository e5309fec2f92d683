#!/usr/bin/env bash
# Benchmark: trident against GotaTun (gotatun-cli), boringtun-cli and wireguard-go on the same two-site netns
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
# 1-stream transfer with 1-second intervals, once with the default congestion control and
# once with CUBIC; reports the worst interval a switch touched against the median.
#
# Output: a median table with ratios to boringtun-cli, or to the first contender when
# boringtun-cli is not one, and a column trident/gotatun when both ran (stdout and
# bench/results.md),
# bench/results.json (machine info, every raw sample, medians), bench/chart.png.
# This is a benchmark only: nothing here passes or fails on a speed.
#
# Usage: scripts/bench.sh [--quick] [--rounds N] [--seconds S] [--contenders a,b,c]
#                         [--no-epoch] [--out DIR] [--wait-idle SECS] [--profile]
#   --quick        1 round, 3-second transfers, short epoch check (under 3 minutes)
#   --rounds N     rounds (default 3); --seconds S: length of each transfer (default 10)
#   --contenders   comma list out of trident,trident-unpadded,gotatun,boringtun-cli,wireguard-go
#                  (default all five; trident-unpadded is the same binary with the WireGuard
#                  padding to 16 bytes off, TRIDENT_WG_PADDING=0: the padding's cost)
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
#   --soak MIN     instead of the comparison: MIN minutes of a ping every 50 ms and an iperf3
#                  at 200 Mbit/s A->B with 2 s epochs, sampling both gateways' resident memory
#                  every minute (trident only unless --contenders); OUT/soak.md, soak.json,
#                  soak.png (lib/bench_soak.sh)
# Env: TRIDENT=path         use this trident binary instead of building target/release/trident
#      TRIDENT_LABEL=text    how results name that binary (default: git revision, or the path)
#      TRIDENT_BASELINE=path the binary of the trident-baseline contender: measured exactly
#                            like trident (same config and transfers), to compare two builds
#                            in the same run, e.g. TRIDENT_BASELINE=/tmp/old/trident
#                            scripts/bench.sh --quick --contenders trident,trident-baseline
#      TRIDENT_BASELINE_LABEL=text  how results name it (default: its path)
#      PERF_KEEP_DIR=dir     --profile: keep the perf.data files there
#      SOAK_SAMPLE=secs      --soak: seconds between memory samples (default 60)
#
# Needs root (re-runs itself through sudo otherwise). Installs what is missing: iperf3,
# wireguard-go, wireguard-tools, python3-matplotlib (Debian), gotatun-cli and boringtun-cli
# at pinned versions (cargo install --locked into target/bench-tools, which this script
# owns: nothing else on PATH is used for them), linux-perf for --profile. Everything it
# starts is stopped and the namespaces are removed on exit, failure or Ctrl-C. All traffic
# stays inside the harness namespaces.
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
SOAK=0
SOAK_MINUTES=30
CONTENDERS_GIVEN=0
WAIT_IDLE=0
QUICK=0
OUT=$ROOT/bench
CONTENDERS=(trident trident-unpadded gotatun boringtun-cli wireguard-go)
# The Rust contenders, pinned: cargo install --locked builds exactly these into TOOLS.
GOTATUN_VERSION=0.10.2
BORINGTUN_VERSION=0.7.1

while (($#)); do
    case "$1" in
        --quick) QUICK=1; ROUNDS=1; SECS=3; IDLE_PINGS=30; EPOCH_RUN=12 ;;
        --rounds) ROUNDS=${2:?}; shift ;;
        --seconds) SECS=${2:?}; shift ;;
        --contenders) IFS=, read -r -a CONTENDERS <<<"${2:?}"; CONTENDERS_GIVEN=1; shift ;;
        --no-epoch) DO_EPOCH=0 ;;
        --out) OUT=$(mkdir -p "${2:?}" && cd "$2" && pwd); shift ;;
        --wait-idle) WAIT_IDLE=${2:?}; shift ;;
        --profile) PROFILE=1 ;;
        --soak) SOAK=1; SOAK_MINUTES=${2:?}; shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
for c in "${CONTENDERS[@]}"; do
    case "$c" in
        trident | trident-unpadded | gotatun | boringtun-cli | wireguard-go) ;;
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
# A soak measures trident alone unless the contenders are named.
((SOAK && !CONTENDERS_GIVEN)) && CONTENDERS=(trident)
((SECS >= 2)) || { echo "bench.sh: --seconds must be at least 2" >&2; exit 2; }

# The pinned Rust contenders live here (and come first on PATH); cargo, also when sudo
# reset PATH.
TOOLS=$ROOT/target/bench-tools
PATH=$TOOLS/bin:$HOME/.cargo/bin:$PATH:/usr/sbin:/sbin
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
    command -v openssl >/dev/null || missing+=(openssl)
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
    install_pinned gotatun gotatun-cli gotatun "$GOTATUN_VERSION"
    install_pinned boringtun-cli boringtun-cli boringtun-cli "$BORINGTUN_VERSION"
}

# install_pinned CONTENDER CRATE BINARY VERSION: cargo install CRATE@VERSION into TOOLS when
# CONTENDER runs and TOOLS does not have that version yet (cargo's own record says).
install_pinned() {
    [[ " ${CONTENDERS[*]} " == *" $1 "* ]] || return 0
    if [[ -x $TOOLS/bin/$3 ]] && grep -q "\"$2 $4 " "$TOOLS/.crates.toml" 2>/dev/null; then
        return 0
    fi
    say "installing $2 $4 (cargo install --locked into $TOOLS; several minutes)"
    cargo install "$2" --version "$4" --locked --root "$TOOLS" --quiet
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
    # test.sh runs e2e.sh; e2e.sh and demo.sh bring the same namespaces up and down. One
    # still waiting for the shared lock (`flock LOCK ... e2e.sh`) is not running yet.
    local running
    running=$(pgrep -af '(e2e|demo|test)\.sh' 2>/dev/null | awk '$2 !~ /flock$/' || true)
    if [[ -n $running ]]; then
        echo "$(echo "$running" | awk '{print $2, $3}' | sort -u | tr '\n' ' ')is running"
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
    # Twice: with the machine's default congestion control (BBR here, whose ProbeRTT dips
    # every 10 s whatever the tunnel does), then with CUBIC, which keeps a flat rate on a
    # path that does not drop, so a stall of the tunnel shows alone.
    local cc
    for cc in default cubic; do
        local flags=() name=epoch
        [[ $cc == cubic ]] && flags=(-C cubic) name=epoch-cubic
        t0=$(date +%s.%N)
        ip netns exec trd-lana timeout $((EPOCH_RUN + 20)) \
            iperf3 -c 192.168.20.2 -p 5201 -t "$EPOCH_RUN" -i 1 "${flags[@]}" -J >"$WORK/raw/$name.json" 2>"$WORK/raw/$name.err" || true
        "$PY" "$REPORT" epoch-sample --iperf "$WORK/raw/$name.json" --epochs "$polls" --t0 "$t0" >"$WORK/$name.json"
        sleep 1
    done
    stop_one epoch-poller
    teardown
}

version_of() {
    case "$1" in
        trident) [[ -n ${TRIDENT_LABEL:-} ]] && { echo "$TRIDENT_LABEL"; return; }
            echo "$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)$( [[ -n $(cd "$ROOT" && git status --porcelain -- src tunnel keymix Cargo.toml Cargo.lock 2>/dev/null) ]] && echo "-dirty")$( [[ $TRIDENT != "$ROOT/target/release/trident" ]] && echo " ($TRIDENT)")" ;;
        trident-baseline) echo "${TRIDENT_BASELINE_LABEL:-$TRIDENT_BASELINE}" ;;
        trident-unpadded) echo "$(version_of trident), TRIDENT_WG_PADDING=0" ;;
        # `|| true`: a tool that is not a contender may not be installed (pipefail, set -e).
        gotatun) "$TOOLS/bin/gotatun" --version 2>/dev/null | head -1 || true ;;
        boringtun-cli) "$TOOLS/bin/boringtun-cli" --version 2>/dev/null | head -1 || true ;;
        wireguard-go) wireguard-go --version 2>/dev/null | head -1 || true ;;
        iperf3) iperf3 --version 2>/dev/null | head -1 || true ;;
    esac
}

# ---------------------------------------------------------------- main
install_deps
build_trident
# shellcheck source=lib/trident.sh
. "$ROOT/scripts/lib/trident.sh"
# shellcheck source=lib/bench_contenders.sh
. "$ROOT/scripts/lib/bench_contenders.sh"

# shellcheck source=lib/bench_profile.sh
. "$ROOT/scripts/lib/bench_profile.sh"

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
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
BENCH_CMD="scripts/bench.sh${ORIG_ARGS[*]:+ ${ORIG_ARGS[*]}}"
[[ $TRIDENT != "$ROOT/target/release/trident" ]] && BENCH_CMD="TRIDENT=$TRIDENT $BENCH_CMD"
if ((SOAK)); then
    # shellcheck source=lib/bench_soak.sh
    . "$ROOT/scripts/lib/bench_soak.sh"
    soak_run "$SOAK_MINUTES"
    exit 0
fi

# The AEAD floor: what one core spends on ChaCha20-Poly1305 alone per GB of 1420-byte
# packets (openssl speed), at the start and the end of the run, under the same load.
aead_bps() {
    openssl speed -evp chacha20-poly1305 -bytes 1420 -seconds 3 2>/dev/null |
        awk '/^[Cc]ha[Cc]ha20-[Pp]oly1305/ { v = $NF } END { sub(/k$/, "", v); printf "%.0f\n", v * 1000 }'
}
AEAD_BPS_START=$(aead_bps || echo 0)
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
AEAD_BPS_END=$(aead_bps || echo 0)
export CPUSTAT_START CPUSTAT_END AEAD_BPS_START AEAD_BPS_END
export LOAD_START LOAD_END START_TIME ROUNDS SECS EPOCH_SECS EPOCH_REJECT EPOCH_RUN QUICK IDLE_PINGS
[[ " ${CONTENDERS[*]} " == *" trident-baseline "* ]] && BENCH_CMD="TRIDENT_BASELINE=$TRIDENT_BASELINE $BENCH_CMD"
export BENCH_CMD
export BENCH_CONTENDERS="${CONTENDERS[*]}"
export V_TRIDENT V_TRIDENT_BASELINE='' V_TRIDENT_UNPADDED='' V_GOTATUN V_BT V_WGGO V_IPERF
V_TRIDENT=$(version_of trident)
[[ " ${CONTENDERS[*]} " == *" trident-baseline "* ]] && V_TRIDENT_BASELINE=$(version_of trident-baseline)
[[ " ${CONTENDERS[*]} " == *" trident-unpadded "* ]] && V_TRIDENT_UNPADDED=$(version_of trident-unpadded)
V_GOTATUN=$(version_of gotatun)
V_BT=$(version_of boringtun-cli)
V_WGGO=$(version_of wireguard-go)
V_IPERF=$(version_of iperf3)
"$PY" "$ROOT/scripts/lib/bench_meta.py" >"$WORK/meta.json"
mkdir -p "$OUT"
echo
"$PY" "$REPORT" report --samples "$WORK/samples.jsonl" --meta "$WORK/meta.json" --out "$OUT" \
    ${EPOCH_FILE:+--epoch "$EPOCH_FILE" --epoch-cubic "$WORK/epoch-cubic.json"}
echo
say "done in $(($(date +%s) - START_TIME)) s: $OUT/results.md, $OUT/results.json, $OUT/chart.png"
