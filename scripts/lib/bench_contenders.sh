# The contenders of scripts/bench.sh: starting and stopping each one's two gateways on the
# netns harness, the same tunnel addresses, MTU and routes for all. Sourced by bench.sh,
# which provides started/stop_one, say, WORK, TOOLS, TRIDENT, TRIDENT_BASELINE, NETNS.
# shellcheck shell=bash

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

# start_trident CONTENDER EPOCH REJECT: trident (TRIDENT), trident-unpadded (TRIDENT without
# the WireGuard padding) or trident-baseline (TRIDENT_BASELINE), the same config for all: MTU
# 1420, no QKD, chains in WORK/CONTENDER.
start_trident() {
    local dir=$WORK/$1 side
    # Keys, `up` and `status` all from the binary under test (lib/trident.sh uses TRIDENT).
    local TRIDENT=$TRIDENT
    [[ $1 == trident-baseline ]] && TRIDENT=$TRIDENT_BASELINE
    # Read by `trident up` at start (tunnel's TunRx): inner packets go out at their own length.
    local TRIDENT_WG_PADDING=${TRIDENT_WG_PADDING:-}
    if [[ $1 == trident-unpadded ]]; then export TRIDENT_WG_PADDING=0; else unset TRIDENT_WG_PADDING; fi
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

# start_userspace_wg KIND: gotatun, boringtun-cli or wireguard-go on both gateways, configured
# with wg(8) and ip(8) exactly like trident's interface (addresses, MTU, routes). GotaTun is
# boringtun's fork and takes boringtun-cli's flags.
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
            boringtun-cli | gotatun)
                local exe=boringtun-cli
                [[ $kind == gotatun ]] && exe=gotatun # the binary of the gotatun-cli crate
                ip netns exec "$ns" "$TOOLS/bin/$exe" --foreground --disable-drop-privileges "$ifc" \
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
        trident | trident-unpadded | trident-baseline) echo "trd${2^^}" ;;
        *) echo "wg${2^^}0" ;;
    esac
}

# setup CONTENDER [EPOCH REJECT]: fresh namespaces, gateways, iperf3 server; tunnel passes.
setup() {
    local c=$1 i
    "$NETNS" up >/dev/null
    case "$c" in
        trident | trident-unpadded | trident-baseline) start_trident "$c" "${2:-120}" "${3:-180}" ;;
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
