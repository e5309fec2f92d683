#!/usr/bin/env bash
# Two-site test harness in network namespaces. All traffic stays inside these namespaces.
#
#   trd-lana (LAN host A)   eth0 192.168.10.2/24, default via 192.168.10.1
#   trd-gwa  (gateway A)    lan0 192.168.10.1/24, wan0 192.0.2.2/24 (default via 192.0.2.1)
#   trd-wan  (WAN router)   a0 192.0.2.1/24, b0 198.51.100.1/24, forwarding on
#   trd-gwb  (gateway B)    wan0 198.51.100.2/24 (default via 198.51.100.1), lan0 192.168.20.1/24
#   trd-lanb (LAN host B)   eth0 192.168.20.2/24, default via 192.168.20.1
#
# The tunnel itself (set up by trident, not here) uses 10.99.0.1/24 on gateway A and
# 10.99.0.2/24 on gateway B, UDP port 51820 on the WAN addresses; the LANs are routed through
# it. WAN addresses are RFC 5737 documentation ranges, LANs RFC 1918.
#
# Usage: scripts/netns.sh up [OPTIONS] | down | exec NS CMD... | netem "loss 5% delay 20ms" | netem off
#        | nat-rebind
#        NS is lana, gwa, wan, gwb, lanb (or the full trd-... name).
# Options of `up` (without them the harness is exactly as above):
#   --wan-mtu N   MTU N on the four WAN link ends (e.g. 1280: tunnels in tunnels, PPPoE).
#   --wan-v6      IPv6-only WAN: gwa wan0 2001:db8:1::2/64, wan a0 2001:db8:1::1/64,
#                 wan b0 2001:db8:2::1/64, gwb wan0 2001:db8:2::2/64; no IPv4 on the WAN.
#   --nat-a       gateway A behind a masquerading NAT on the WAN router (B sees A as
#                 198.51.100.1). `nat-rebind` then moves A's mapping to a new source port
#                 and flushes the WAN router's conntrack table, as a NAT that lost its state.
set -euo pipefail

if [[ $(id -u) -ne 0 ]]; then
    exec sudo -E "$0" "$@"
fi

PREFIX=trd-
NAMESPACES=(lana gwa wan gwb lanb)

ns() { # short or full name -> full name
    case "$1" in
        "$PREFIX"*) echo "$1" ;;
        *) echo "$PREFIX$1" ;;
    esac
}

ensure_tools() {
    local missing=()
    command -v ip >/dev/null || missing+=(iproute2)
    command -v tc >/dev/null || missing+=(iproute2)
    command -v ping >/dev/null || missing+=(iputils-ping)
    command -v iperf3 >/dev/null || missing+=(iperf3)
    if ((${#missing[@]})); then
        echo "netns.sh: installing ${missing[*]}" >&2
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

in_ns() { local n; n=$(ns "$1"); shift; ip netns exec "$n" "$@"; }

cmd_down() {
    local n
    for n in "${NAMESPACES[@]}"; do
        ip netns del "$PREFIX$n" 2>/dev/null || true
    done
}

cmd_up() {
    local wan_mtu="" wan_v6="" nat_a=""
    while (($#)); do
        case "$1" in
            --wan-mtu) wan_mtu=${2:?--wan-mtu N}; shift 2 ;;
            --wan-v6) wan_v6=1; shift ;;
            --nat-a) nat_a=1; shift ;;
            *) echo "netns.sh up: unknown option $1" >&2; exit 2 ;;
        esac
    done
    ensure_tools
    cmd_down
    local n
    for n in "${NAMESPACES[@]}"; do
        ip netns add "$PREFIX$n"
        ip -n "$PREFIX$n" link set lo up
    done
    # Links: lana.eth0-gwa.lan0, gwa.wan0-wan.a0, wan.b0-gwb.wan0, gwb.lan0-lanb.eth0
    ip -n "${PREFIX}gwa" link add lan0 type veth peer name eth0 netns "${PREFIX}lana"
    ip -n "${PREFIX}gwa" link add wan0 type veth peer name a0 netns "${PREFIX}wan"
    ip -n "${PREFIX}gwb" link add wan0 type veth peer name b0 netns "${PREFIX}wan"
    ip -n "${PREFIX}gwb" link add lan0 type veth peer name eth0 netns "${PREFIX}lanb"

    addr() { ip -n "$PREFIX$1" addr add "$3" dev "$2"; ip -n "$PREFIX$1" link set "$2" up; }
    addr lana eth0 192.168.10.2/24
    addr gwa lan0 192.168.10.1/24
    if [[ -z $wan_v6 ]]; then
        addr gwa wan0 192.0.2.2/24
        addr wan a0 192.0.2.1/24
        addr wan b0 198.51.100.1/24
        addr gwb wan0 198.51.100.2/24
    else
        addr6() { ip -n "$PREFIX$1" -6 addr add "$3" dev "$2" nodad; ip -n "$PREFIX$1" link set "$2" up; }
        addr6 gwa wan0 2001:db8:1::2/64
        addr6 wan a0 2001:db8:1::1/64
        addr6 wan b0 2001:db8:2::1/64
        addr6 gwb wan0 2001:db8:2::2/64
    fi
    addr gwb lan0 192.168.20.1/24
    addr lanb eth0 192.168.20.2/24

    ip -n "${PREFIX}lana" route add default via 192.168.10.1
    if [[ -z $wan_v6 ]]; then
        ip -n "${PREFIX}gwa" route add default via 192.0.2.1
        ip -n "${PREFIX}gwb" route add default via 198.51.100.1
    else
        ip -n "${PREFIX}gwa" -6 route add default via 2001:db8:1::1
        ip -n "${PREFIX}gwb" -6 route add default via 2001:db8:2::1
        in_ns wan sysctl -qw net.ipv6.conf.all.forwarding=1
    fi
    ip -n "${PREFIX}lanb" route add default via 192.168.20.1
    for n in gwa wan gwb; do
        in_ns "$n" sysctl -qw net.ipv4.ip_forward=1
    done
    if [[ -n $wan_mtu ]]; then
        ip -n "${PREFIX}gwa" link set wan0 mtu "$wan_mtu"
        ip -n "${PREFIX}wan" link set a0 mtu "$wan_mtu"
        ip -n "${PREFIX}wan" link set b0 mtu "$wan_mtu"
        ip -n "${PREFIX}gwb" link set wan0 mtu "$wan_mtu"
    fi
    if [[ -n $nat_a ]]; then
        nat_rule
    fi
    # The WAN router knows no route to the LANs: LAN traffic can only cross in the tunnel.
    echo "netns harness up: ${NAMESPACES[*]/#/$PREFIX}"
}

# Loss (and delay) on the WAN router's two links, both directions. Uses tc netem; on kernels
# built without sch_netem it falls back to nftables for the loss part (`numgen random`) and
# says that the delay is not emulated.
cmd_netem() {
    local spec=${1:?usage: netns.sh netem \"loss 5% delay 20ms\" | off}
    local dev
    if [[ $spec == off ]]; then
        for dev in a0 b0; do
            in_ns wan tc qdisc del dev "$dev" root 2>/dev/null || true
        done
        in_ns wan nft delete table inet trd_netem 2>/dev/null || true
        return 0
    fi
    # shellcheck disable=SC2086 # the spec is a list of netem words
    if in_ns wan tc qdisc replace dev a0 root netem $spec 2>/dev/null; then
        in_ns wan tc qdisc replace dev b0 root netem $spec
        return 0
    fi
    local loss
    loss=$(grep -oE 'loss +[0-9]+' <<<"$spec" | grep -oE '[0-9]+$' || true)
    echo "netns.sh: kernel has no netem qdisc; emulating loss ${loss:-0}% with nftables, delay NOT emulated" >&2
    in_ns wan nft delete table inet trd_netem 2>/dev/null || true
    [[ -n $loss ]] || return 0
    in_ns wan nft -f - <<NFT
table inet trd_netem {
    chain forward {
        type filter hook forward priority -10; policy accept;
        numgen random mod 100 < $loss counter drop
    }
}
NFT
}

# nat_rule [PORT]: gateway A's WAN traffic leaves the WAN router towards B masqueraded,
# its UDP from source port PORT when given.
nat_rule() {
    local udp=""
    [[ -z ${1:-} ]] || udp="oifname \"b0\" ip saddr 192.0.2.0/24 meta l4proto udp masquerade to :$1"
    in_ns wan nft delete table ip trd_nat 2>/dev/null || true
    in_ns wan nft -f - <<NFT
table ip trd_nat {
    chain post {
        type nat hook postrouting priority srcnat; policy accept;
        $udp
        oifname "b0" ip saddr 192.0.2.0/24 masquerade
    }
}
NFT
}

# A NAT that lost its state and picked a new source port for gateway A.
cmd_nat_rebind() {
    command -v conntrack >/dev/null || { echo "netns.sh: conntrack (package conntrack) is missing" >&2; exit 1; }
    local port=$((40000 + RANDOM % 20000))
    nat_rule "$port"
    in_ns wan conntrack -F 2>/dev/null || true
    echo "$port"
}

case "${1:-}" in
    up) shift; cmd_up "$@" ;;
    nat-rebind) cmd_nat_rebind ;;
    down) cmd_down ;;
    exec)
        shift
        [[ $# -ge 2 ]] || { echo "usage: $0 exec NS CMD..." >&2; exit 2; }
        # exec: callers get the command's own PID (to signal it) and exit status.
        n=$(ns "$1")
        shift
        exec ip netns exec "$n" "$@"
        ;;
    netem) shift; cmd_netem "$@" ;;
    *)
        echo "usage: $0 up | down | exec NS CMD... | netem \"loss 5% delay 20ms\" | netem off" >&2
        exit 2
        ;;
esac
