# Helpers for tests with a stock WireGuard (wireguard-go + wg) on the netns harness
# (scripts/netns.sh): userspace interfaces in the gateway namespaces, Trident's external
# data plane next to them, and a third site (namespace trd-gwc) for plain WireGuard peers.
# Source it after lib/trident.sh; expects ROOT, NETNS and TRIDENT. Processes and the extra namespace are removed
# by wg_cleanup (call it from the test and from the EXIT trap).

WG_PIDS=()
WG_GWC=trd-gwc

# wg_deps: wireguard-go and wg from Debian (only when missing).
wg_deps() {
    "$ROOT/scripts/install-deps.sh" wireguard-go=wireguard-go wg=wireguard-tools >/dev/null
}

# wg_go NS IFACE: wireguard-go in the foreground in namespace NS (short name like gwa, or
# full), waits for its UAPI socket.
wg_go() {
    local ns=$1 ifc=$2 i
    [[ $ns == trd-* ]] || ns=trd-$ns
    rm -f "/var/run/wireguard/$ifc.sock"
    # The env var silences wireguard-go's "use the kernel module" refusal on Linux.
    WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1 LOG_LEVEL=error \
        ip netns exec "$ns" wireguard-go -f "$ifc" >>"$WORK/wg-$ifc.log" 2>&1 &
    WG_PIDS+=($!)
    for ((i = 0; i < 50; i++)); do
        [[ -S /var/run/wireguard/$ifc.sock ]] && return 0
        sleep 0.1
    done
    echo "wireguard-go $ifc did not start:" >&2
    cat "$WORK/wg-$ifc.log" >&2
    return 1
}

# wg_iface NS IFACE KEYFILE PORT ADDR/PREFIX ROUTE...: key, port, address, routes.
wg_iface() {
    local ns=$1 ifc=$2 key=$3 port=$4 addr=$5
    shift 5
    [[ $ns == trd-* ]] || ns=trd-$ns
    ip netns exec "$ns" wg set "$ifc" private-key "$key" listen-port "$port" || return 1
    ip -n "$ns" addr add "$addr" dev "$ifc" || return 1
    ip -n "$ns" link set "$ifc" up || return 1
    local r
    for r in "$@"; do
        ip -n "$ns" route add "$r" dev "$ifc" || return 1
    done
}

# wg_peer NS IFACE PUBKEY ENDPOINT ALLOWED [PSKFILE]: one peer (persistent keepalive 25).
wg_peer() {
    local ns=$1 ifc=$2 pub=$3 ep=$4 allowed=$5 psk=${6:-}
    [[ $ns == trd-* ]] || ns=trd-$ns
    local extra=()
    [[ -n $psk ]] && extra=(preshared-key "$psk")
    ip netns exec "$ns" wg set "$ifc" peer "$pub" endpoint "$ep" allowed-ips "$allowed" \
        persistent-keepalive 25 "${extra[@]}"
}

# wg_psk NS IFACE: the first peer's PSK as `wg show` prints it ("(none)" when zero).
wg_psk() {
    local ns=$1
    [[ $ns == trd-* ]] || ns=trd-$ns
    ip netns exec "$ns" wg show "$2" preshared-keys | awk 'NR == 1 { print $2 }'
}

# wg_psk_fp PSK_BASE64 [VERSION]: the key log's psk_fp of a PSK in keymix protocol VERSION
# (default 1; keymix::schedule::psk_fingerprint_with).
wg_psk_fp() {
    python3 -c '
import base64, hashlib, sys
psk = base64.b64decode(sys.argv[1])
label = b"trident keymix v%s psk fingerprint" % sys.argv[2].encode()
print(hashlib.sha256(label + psk).hexdigest()[:32])' "$1" "${2:-1}"
}

# wg_keylog_fp KEYLOG EPOCH: "VERSION psk_fp" of that epoch's line (either version's line;
# each version's fingerprint has its own label).
wg_keylog_fp() {
    local line
    line=$(grep -E "^trident-keylog-v[0-9]+ epoch=$2 " "$1" | tail -n 1)
    [[ -n $line ]] || return 0
    echo "$(sed -E 's/^trident-keylog-v([0-9]+) .*/\1/' <<<"$line") $(grep -oE 'psk_fp=[0-9a-f]+' <<<"$line" | cut -d= -f2)"
}

# wg_site_c: a third gateway namespace trd-gwc on the WAN router (198.18.0.2/24 via c0).
wg_site_c() {
    trd_wan_site "$WG_GWC" c0 198.18.0
}

# wg_cleanup: stop every wireguard-go this file started, remove trd-gwc (idempotent).
wg_cleanup() {
    local pid
    for pid in "${WG_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for pid in "${WG_PIDS[@]}"; do
        { timeout 5 tail --pid="$pid" -f /dev/null || kill -KILL "$pid"; wait "$pid"; } 2>/dev/null
    done
    WG_PIDS=()
    ip netns del "$WG_GWC" 2>/dev/null
    return 0
}
