#!/usr/bin/env bash
# End-to-end tests of `trident up` on the two-site netns harness (scripts/netns.sh).
# Needs root and /dev/net/tun; skips (exit 0) otherwise. Everything it creates (namespaces,
# processes, temp files) is removed on exit, also when a test fails or on Ctrl-C.
# Traffic goes only to addresses inside the harness's own namespaces.
#
# Usage: scripts/e2e.sh [TEST...]   (default: all; names below in TESTS)
# Env:   TRIDENT=path/to/trident (default: builds target/debug/trident)
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
NETNS=$ROOT/scripts/netns.sh

if [[ $(id -u) -ne 0 || ! -c /dev/net/tun ]]; then
    echo "e2e: skipped (needs root and /dev/net/tun)"
    exit 0
fi

if [[ -z ${TRIDENT:-} ]]; then
    cargo build --quiet --manifest-path "$ROOT/Cargo.toml" --bin trident || exit 1
    TRIDENT=$ROOT/target/debug/trident
fi
# shellcheck source=lib/trident.sh
. "$ROOT/scripts/lib/trident.sh"
# shellcheck source=lib/e2e_traffic.sh
. "$ROOT/scripts/lib/e2e_traffic.sh"

need() { command -v "$1" >/dev/null || MISSING+=("$2"); }
MISSING=()
need socat socat
need nft nftables
need ping iputils-ping
need python3 python3
need tcpdump tcpdump
if ((${#MISSING[@]})); then
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${MISSING[@]}" >/dev/null
fi

WORK=$(mktemp -d /tmp/trident-e2e.XXXXXX)
stop_all() {
    trd_stop a "$WORK"
    trd_stop b "$WORK"
    trd_kme_stop a "$WORK"
    trd_kme_stop b "$WORK"
}
# Test groups with resources of their own (namespaces, daemons) add their teardown here.
CLEANUP_HOOKS=()
cleanup() {
    trap - EXIT INT TERM
    local hook
    for hook in "${CLEANUP_HOOKS[@]}"; do "$hook"; done
    stop_all
    "$NETNS" down
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "    $*"; }

# Per-test reset: fresh namespaces and configs, gateways (and KMEs) stopped.
# fresh_configs EPOCH REJECT [QKD_POLICY [kme-sim init options...]]: everything but starting
# the gateways (for tests that change the configs first). Namespaces from `netns.sh up
# $FRESH_NETNS_OPTS`; with a QKD policy, each site's KME simulator is started in its gateway
# namespace (scripts/lib/trident.sh).
fresh_configs() {
    local epoch=$1 reject=$2 policy=${3:-}
    shift $(($# < 3 ? $# : 3))
    stop_all
    rm -f "$WORK"/*.log
    # shellcheck disable=SC2086 # a list of options
    "$NETNS" up ${FRESH_NETNS_OPTS:-} >/dev/null || return 1
    if [[ -n $policy ]]; then
        trd_kme_init "$WORK" "$@" || { log "kme-sim init failed"; return 1; }
        trd_kme_start a "$WORK" && trd_kme_start b "$WORK" || return 1
    fi
    trd_configs "$WORK" "$epoch" "$reject" "$policy"
}

# fresh EPOCH REJECT [QKD_POLICY [kme-sim init options...]]: fresh_configs, both gateways
# started and up.
fresh() {
    fresh_configs "$@" || return 1
    trd_start a "$WORK" && trd_start b "$WORK" || return 1
    trd_wait_state trdA up 20 && trd_wait_state trdB up 20 || {
        log "tunnel not up: A=$(trd_json trdA "s['peers'][0]['state']") B=$(trd_json trdB "s['peers'][0]['state']")"
        return 1
    }
}

ping_ok() { "$NETNS" exec lana ping -c 1 -W 1 192.168.20.2 >/dev/null 2>&1; }

# tcp_transfer FROM_NS TO_NS TO_IP FILE SECONDS: sends FILE, checks SHA-256 on arrival.
tcp_transfer() {
    local from=$1 to=$2 ip=$3 file=$4 secs=$5 out=$WORK/received.bin
    rm -f "$out"
    "$NETNS" exec "$to" timeout "$secs" socat -u TCP-LISTEN:5001,reuseaddr "OPEN:$out,creat,trunc" &
    local rx=$!
    sleep 0.5
    local start=$SECONDS
    "$NETNS" exec "$from" timeout "$secs" socat -u "OPEN:$file" "TCP:$ip:5001,retry=5,interval=0.5" || {
        log "sender failed"
        wait "$rx"
        return 1
    }
    wait "$rx" || { log "receiver failed"; return 1; }
    local want got
    want=$(sha256sum <"$file" | cut -d' ' -f1)
    got=$(sha256sum <"$out" | cut -d' ' -f1)
    log "$from -> $to: $(stat -c %s "$out") bytes in $((SECONDS - start)) s, sha256 ${got:0:16}..."
    [[ $want == "$got" ]] || { log "SHA-256 mismatch: sent $want got $got"; return 1; }
}

t_ping_and_tcp() {
    fresh 120 180 || return 1
    "$NETNS" exec lana ping -c 3 -i 0.2 -W 2 192.168.20.2 >/dev/null || { log "ping failed"; return 1; }
    head -c 20M /dev/urandom >"$WORK/data.bin"
    tcp_transfer lana lanb 192.168.20.2 "$WORK/data.bin" 120 || return 1
    tcp_transfer lanb lana 192.168.10.2 "$WORK/data.bin" 120 || return 1
}

# Pings every 10 ms across at least 8 epoch switches (4 s epochs; 4000 pings take 40-65 s).
t_epoch_switch_no_loss() {
    fresh 4 8 || return 1
    local e0 out
    e0=$(trd_json trdA "s['peers'][0]['epoch']")
    out=$("$NETNS" exec lana ping -q -i 0.01 -c 4000 -W 1 192.168.20.2 | grep 'packets transmitted')
    log "$out"
    local ea eb
    ea=$(trd_json trdA "s['peers'][0]['epoch']")
    eb=$(trd_json trdB "s['peers'][0]['epoch']")
    log "epoch on A: $e0 -> $ea, on B: $eb"
    [[ $out == *" 0% packet loss"* ]] || return 1
    ((ea >= e0 + 8 && eb >= e0 + 8)) || { log "epochs did not advance"; return 1; }
}

t_restart_gateway_b() {
    fresh 120 180 || return 1
    ping_ok || { log "no traffic before restart"; return 1; }
    trd_stop b "$WORK"
    [[ -e /run/trident/trdB.sock ]] && { log "control socket left behind"; return 1; }
    "$NETNS" exec gwb ip link show trdB >/dev/null 2>&1 && { log "TUN device left behind"; return 1; }
    "$NETNS" exec gwb ip route show | grep -q 192.168.10.0 && { log "route left behind"; return 1; }
    restart_b_within 10
}

t_keymix_blocked_then_resumes() {
    fresh 3 6 || return 1
    ping_ok || return 1
    # Drop keymix (first UDP payload byte 0x81..0x84) on the WAN; WireGuard still passes.
    "$NETNS" exec wan nft -f - <<'NFT' || return 1
table inet trd_e2e {
    chain forward {
        type filter hook forward priority 0; policy accept;
        meta l4proto udp @th,64,8 0x81-0x84 counter drop
    }
}
NFT
    # Traffic must go on with the last PSK and stop when it reaches its reject age (6 s):
    # the time of the last reply before 3 s of silence.
    local stopped start
    stopped=$(traffic_stop_secs 30)
    log "traffic stopped $stopped s after keymix was cut (epoch 3 s, reject age 6 s)"
    ((stopped >= 2 && stopped <= 8)) || return 1
    ping_ok && { log "traffic passes without a fresh PSK"; return 1; }
    local sa sb
    sa=$(trd_json trdA "s['peers'][0]['state']")
    sb=$(trd_json trdB "s['peers'][0]['state']")
    log "status: A=$sa B=$sb"
    [[ $sa == blocked && $sb == blocked ]] || return 1
    "$NETNS" exec wan nft delete table inet trd_e2e
    start=$SECONDS
    traffic_back 60 || true
    log "traffic resumed $((SECONDS - start)) s after keymix passes again"
    ping_ok || return 1
    trd_wait_state trdA up 10
}

t_lossy_wan_tcp() {
    [[ -f $WORK/data.bin ]] || head -c 20M /dev/urandom >"$WORK/data.bin"
    if "$NETNS" exec wan tc qdisc add dev a0 root netem delay 1ms 2>/dev/null; then
        "$NETNS" exec wan tc qdisc del dev a0 root
        fresh 120 180 || return 1
        "$NETNS" netem "loss 5% delay 20ms" || return 1
        tcp_transfer lana lanb 192.168.20.2 "$WORK/data.bin" 240
        return
    fi
    # No netem in this kernel: route the tunnel through a UDP relay on the WAN router that
    # drops 5% and delays 20 ms each way (scripts/lib/wan_relay.py).
    fresh_configs 120 180 || return 1
    sed -i 's/^endpoint = "198.51.100.2:51820"/endpoint = "192.0.2.1:51821"/' "$WORK/a.toml"
    sed -i 's/^endpoint = "192.0.2.2:51820"/endpoint = "198.51.100.1:51822"/' "$WORK/b.toml"
    "$NETNS" exec wan python3 "$ROOT/scripts/lib/wan_relay.py" 192.0.2.1:51821 198.51.100.1:51822 \
        198.51.100.2:51820 0.05 20 300 >"$WORK/relay.log" 2>&1 &
    local relay=$!
    sleep 0.5
    trd_start a "$WORK" && trd_start b "$WORK" || { kill $relay; return 1; }
    trd_wait_state trdA up 30 && trd_wait_state trdB up 30 || { kill $relay; log "tunnel not up"; return 1; }
    local rtt
    rtt=$("$NETNS" exec lana ping -c 5 -i 0.2 -W 2 192.168.20.2 | grep -oE 'rtt [^=]+= [0-9.]+' || true)
    log "through the relay: $rtt ms (>= 40 ms expected)"
    tcp_transfer lana lanb 192.168.20.2 "$WORK/data.bin" 240
    local rc=$?
    kill $relay 2>/dev/null
    wait $relay 2>/dev/null
    log "$(tail -n 1 "$WORK/relay.log")"
    return $rc
}

t_malformed_config() {
    local cfg=$WORK/bad.toml err rc
    printf '[interface]\nname = "trdX"\nprivate_key_file = "%s/a.key"\nlisten_port = "many"\n' "$WORK" >"$cfg"
    err=$("$TRIDENT" up "$cfg" 2>&1)
    rc=$?
    log "exit $rc: $err"
    [[ $rc -eq 2 && $err == *"$cfg"* && $err == *listen_port* && $err == *"line 4"* ]] || return 1
    printf '[interface]\nname = "trdX"\nprivate_key_file = "/x"\nlisten_port = 1\nbogus = 1\n' >"$cfg"
    err=$("$TRIDENT" up "$cfg" 2>&1)
    rc=$?
    log "exit $rc: $err"
    [[ $rc -eq 2 && $err == *bogus* ]] || return 1
    # A QKD policy needs the [qkd] table that says how to reach the KME.
    "$TRIDENT" genkey >"$WORK/x.key"
    printf '[interface]\nname = "trdX"\nprivate_key_file = "x.key"\nlisten_port = 1\n[keymix]\nqkd = "required"\n' >"$cfg"
    err=$("$TRIDENT" up "$cfg" 2>&1)
    rc=$?
    log "exit $rc: $err"
    [[ $rc -eq 2 && $err == *"$cfg"* && $err == *keymix.qkd* && $err == *"[qkd]"* ]]
}

t_garbage_is_counted() {
    fresh 120 180 || return 1
    local before after
    before=$(trd_json trdB "s['dropped_total']")
    "$NETNS" exec wan python3 - <<'PY' || return 1
import os, socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
firsts = [0x01, 0x02, 0x03, 0x04, 0x81, 0x82, 0x83, 0x84, 0x00, 0xff]
for i in range(5000):
    size = [148, 92, 64, 32, 200, 1200, 3, 0][i % 8]
    body = bytearray(os.urandom(size))
    if body:
        body[0] = firsts[i % len(firsts)]
    s.sendto(bytes(body), ("198.51.100.2", 51820))
PY
    sleep 1
    after=$(trd_json trdB "s['dropped_total']")
    log "dropped on B: $before -> $after"
    ((after - before >= 4000)) || return 1
    [[ $(trd_json trdB "s['peers'][0]['state']") == up ]] || return 1
    "$NETNS" exec lana ping -c 3 -i 0.2 -W 2 192.168.20.2 >/dev/null
}

TESTS=(t_malformed_config t_ping_and_tcp t_epoch_switch_no_loss t_restart_gateway_b
    t_keymix_blocked_then_resumes t_garbage_is_counted t_lossy_wan_tcp)
# Further test groups live one concern a file in scripts/e2e.d/; each defines its t_*
# functions and appends their names to TESTS.
for group in "$ROOT"/scripts/e2e.d/*.sh; do
    [[ -e $group ]] || continue
    # shellcheck source=/dev/null
    . "$group"
done
if (($#)); then TESTS=("$@"); fi

passed=0
failed=0
for t in "${TESTS[@]}"; do
    echo "--- $t"
    t0=$SECONDS
    if "$t"; then
        echo "ok   $t ($((SECONDS - t0)) s)"
        passed=$((passed + 1))
    else
        echo "FAIL $t ($((SECONDS - t0)) s); gateway logs:"
        tail -n 15 "$WORK"/a.log "$WORK"/b.log "$WORK"/kme-a.log "$WORK"/kme-b.log 2>/dev/null | sed 's/^/    /'
        failed=$((failed + 1))
    fi
    "$NETNS" netem off >/dev/null 2>&1
done
echo "e2e: $passed passed, $failed failed"
((failed == 0))
