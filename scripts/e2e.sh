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

need() { command -v "$1" >/dev/null || MISSING+=("$2"); }
MISSING=()
need socat socat
need nft nftables
need ping iputils-ping
need python3 python3
if ((${#MISSING[@]})); then
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${MISSING[@]}" >/dev/null
fi

WORK=$(mktemp -d /tmp/trident-e2e.XXXXXX)
cleanup() {
    trap - EXIT INT TERM
    trd_stop a "$WORK"
    trd_stop b "$WORK"
    "$NETNS" down
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "    $*"; }

# Per-test reset: fresh namespaces and configs, gateways stopped.
fresh() { # EPOCH REJECT
    trd_stop a "$WORK"
    trd_stop b "$WORK"
    rm -f "$WORK"/*.log
    "$NETNS" up >/dev/null || return 1
    trd_configs "$WORK" "$1" "$2"
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

t_epoch_switch_no_loss() {
    fresh 5 10 || return 1
    local e0 out
    e0=$(trd_json trdA "s['peers'][0]['epoch']")
    out=$("$NETNS" exec lana ping -q -i 0.01 -c 6000 -W 1 192.168.20.2 | grep 'packets transmitted')
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
    local start=$SECONDS
    trd_start b "$WORK" || return 1
    local i
    for ((i = 0; i < 20; i++)); do
        ping_ok && break
    done
    local took=$((SECONDS - start))
    log "traffic again $took s after restarting B"
    ping_ok && ((took <= 10))
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
    local start=$SECONDS last=$SECONDS
    while ((SECONDS - last < 3 && SECONDS - start < 30)); do
        ping_ok && last=$SECONDS
        sleep 0.2
    done
    local stopped=$((last - start))
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
    for ((i = 0; i < 60; i++)); do
        ping_ok && break
    done
    log "traffic resumed $((SECONDS - start)) s after keymix passes again"
    ping_ok || return 1
    trd_wait_state trdA up 10
}

t_lossy_wan_tcp() {
    fresh 120 180 || return 1
    "$NETNS" netem "loss 5% delay 20ms" || return 1
    [[ -f $WORK/data.bin ]] || head -c 20M /dev/urandom >"$WORK/data.bin"
    tcp_transfer lana lanb 192.168.20.2 "$WORK/data.bin" 240 || return 1
    local dropped
    dropped=$("$NETNS" exec wan nft list table inet trd_netem 2>/dev/null | grep -oE 'packets [0-9]+' || true)
    [[ -z $dropped ]] || log "WAN dropped $dropped"
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
    [[ $rc -eq 2 && $err == *bogus* ]]
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
        tail -n 15 "$WORK"/a.log "$WORK"/b.log 2>/dev/null | sed 's/^/    /'
        failed=$((failed + 1))
    fi
    "$NETNS" netem off >/dev/null 2>&1
done
echo "e2e: $passed passed, $failed failed"
((failed == 0))
