# Shared helpers for demo.sh, e2e.sh and bench.sh: keys, configs and gateway processes on
# the netns harness (scripts/netns.sh). Source it; expects NETNS (path of netns.sh) and
# TRIDENT (path of the binary) to be set.

# trd_keys DIR: fresh private keys DIR/a.key and DIR/b.key (umask 077 from here on) and
# their public keys in TRD_PUB_A, TRD_PUB_B. New keys make the old chains useless, so the
# state directories DIR/state-a, DIR/state-b are removed.
trd_keys() {
    local dir=$1
    umask 077
    rm -rf "$dir/state-a" "$dir/state-b"
    "$TRIDENT" genkey >"$dir/a.key"
    "$TRIDENT" genkey >"$dir/b.key"
    TRD_PUB_A=$("$TRIDENT" pubkey <"$dir/a.key")
    TRD_PUB_B=$("$TRIDENT" pubkey <"$dir/b.key")
}

# trd_configs DIR EPOCH_SECS REJECT_AFTER_SECS [QKD_POLICY [MTU]]: keys and trdA/trdB
# configs in DIR. With QKD_POLICY preferred|required each gateway gets a [qkd] table
# pointing at its own site's KME (see trd_kme_init) and `[keymix] qkd = QKD_POLICY`;
# with "off" only `qkd = "off"`. With MTU, `[interface] mtu = MTU`. Each gateway keeps its
# keymix chains in DIR/state-a, DIR/state-b (new keys: the old chains are removed).
trd_configs() {
    local dir=$1 epoch=${2:-120} reject=${3:-180} policy=${4:-} mtu=${5:-}
    trd_keys "$dir"
    local pub_a=$TRD_PUB_A pub_b=$TRD_PUB_B
    local qkd_a="" qkd_b="" sae_a="" sae_b="" keymix_qkd="" mtu_line=""
    [[ -n $mtu ]] && mtu_line="mtu = $mtu"
    if [[ $policy == off ]]; then
        keymix_qkd='qkd = "off"'
    elif [[ -n $policy ]]; then
        keymix_qkd="qkd = \"$policy\""
        # Paths relative to the config file's directory.
        qkd_a=$(trd_qkd_table a SAE_A "$TRD_KME_LISTEN_A")
        qkd_b=$(trd_qkd_table b SAE_B "$TRD_KME_LISTEN_B")
        sae_a='sae_id = "SAE_B"'
        sae_b='sae_id = "SAE_A"'
    fi
    cat >"$dir/a.toml" <<TOML
[interface]
name = "trdA"
private_key_file = "$dir/a.key"
listen_port = 51820
state_dir = "$dir/state-a"
address = ["10.99.0.1/24"]
$mtu_line

[keymix]
epoch_secs = $epoch
reject_after_secs = $reject
$keymix_qkd
$qkd_a

[[peer]]
public_key = "$pub_b"
endpoint = "198.51.100.2:51820"
allowed_ips = ["10.99.0.2/32", "192.168.20.0/24"]
persistent_keepalive = 25
$sae_a
TOML
    cat >"$dir/b.toml" <<TOML
[interface]
name = "trdB"
private_key_file = "$dir/b.key"
listen_port = 51820
state_dir = "$dir/state-b"
address = ["10.99.0.2/24"]
$mtu_line

[keymix]
epoch_secs = $epoch
reject_after_secs = $reject
$keymix_qkd
$qkd_b

[[peer]]
public_key = "$pub_a"
endpoint = "192.0.2.2:51820"
allowed_ips = ["10.99.0.1/32", "192.168.10.0/24"]
persistent_keepalive = 25
$sae_b
TOML
}

# trd_add_psk DIR: a bootstrap PSK for the pair (DIR/ab.psk, `trident genpsk`) in both
# configs' [[peer]] tables (the last table of each).
trd_add_psk() {
    local dir=$1
    (umask 077 && "$TRIDENT" genpsk >"$dir/ab.psk")
    echo "bootstrap_psk_file = \"$dir/ab.psk\"" >>"$dir/a.toml"
    echo "bootstrap_psk_file = \"$dir/ab.psk\"" >>"$dir/b.toml"
}

# trd_start SIDE(a|b) DIR [NAME CONFIG]: start that gateway's trident (`up CONFIG`,
# default DIR/SIDE.toml; interface NAME, default trdA/trdB) in the background, log in
# DIR/SIDE.log, pid in DIR/SIDE.pid; waits for its control socket.
trd_start() {
    local side=$1 dir=$2 name=${3:-trd${1^^}} config=${4:-$2/$1.toml}
    RUST_LOG=${RUST_LOG:-info} "$NETNS" exec "gw$side" "$TRIDENT" up "$config" \
        >>"$dir/$side.log" 2>&1 &
    echo $! >"$dir/$side.pid"
    local i
    for ((i = 0; i < 100; i++)); do
        # Only our own process counts: a stale instance would answer on the same socket.
        kill -0 "$(cat "$dir/$side.pid")" 2>/dev/null || break
        "$TRIDENT" status "$name" --json >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "gateway $side ($name) did not start; log:" >&2
    tail -n 20 "$dir/$side.log" >&2
    return 1
}

# trd_wait_exit PID SECONDS: until process PID has exited, at most SECONDS.
trd_wait_exit() {
    local pid=$1 i
    for ((i = 0; i < $2 * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    return 1
}

# trd_stop_pidfile FILE [SIGNAL [SECONDS]]: send SIGNAL (TERM) to the process in FILE,
# SIGKILL it when it has not exited after SECONDS (5), reap it, remove FILE. Nothing to do
# without FILE.
trd_stop_pidfile() {
    local f=$1 sig=${2:-TERM} secs=${3:-5} pid
    [[ -f $f ]] || return 0
    pid=$(cat "$f")
    # The braces' redirection also silences bash's "Killed" job notice.
    {
        kill "-$sig" "$pid" || true
        trd_wait_exit "$pid" "$secs" || true
        kill -KILL "$pid" || true
        wait "$pid" || true
    } 2>/dev/null
    rm -f "$f"
}

# trd_stop SIDE DIR [SECONDS]: SIGTERM the gateway and wait for it to exit (SIGKILL after
# SECONDS, default 5).
trd_stop() {
    trd_stop_pidfile "$2/$1.pid" TERM "${3:-5}"
}

# trd_wan_site NS IFC NET: one more site's gateway namespace NS, its wan0 a veth to the WAN
# router's IFC, in NET.0/24 (NET like 198.18.0): router NET.1, gateway NET.2, default route
# via the router.
trd_wan_site() {
    local ns=$1 ifc=$2 net=$3
    ip netns add "$ns" || return 1
    ip -n "$ns" link set lo up
    ip -n trd-wan link add "$ifc" type veth peer name wan0 netns "$ns" || return 1
    ip -n trd-wan addr add "$net.1/24" dev "$ifc"
    ip -n trd-wan link set "$ifc" up
    ip -n "$ns" addr add "$net.2/24" dev wan0
    ip -n "$ns" link set wan0 up
    ip -n "$ns" route add default via "$net.1"
}

# trd_kill9 SIDE DIR: SIGKILL the gateway (no clean shutdown) and reap it.
trd_kill9() {
    local side=$1 dir=$2 pid
    [[ -f $dir/$side.pid ]] || return 0
    pid=$(cat "$dir/$side.pid")
    { kill -KILL "$pid"; wait "$pid"; } 2>/dev/null
    rm -f "$dir/$side.pid"
}

# trd_peer NAME FIELD: a field of the first peer in the status JSON (Python repr).
trd_peer() {
    trd_json "$1" "s['peers'][0]['$2']"
}

# trd_drops NAME REASON: one dropped-counter of the status JSON (0 when absent).
trd_drops() {
    trd_json "$1" "s['dropped'].get('$2', 0)"
}

# trd_json NAME EXPR: evaluate a python expression over the status JSON (bound to `s`).
trd_json() {
    "$TRIDENT" status "$1" --json 2>/dev/null | python3 -c "import json,sys; s=json.load(sys.stdin); print($2)"
}

# trd_wait_state NAME STATE SECONDS: wait until the first peer's state is STATE.
trd_wait_state() {
    local name=$1 state=$2 secs=$3 i
    for ((i = 0; i < secs * 10; i++)); do
        [[ $(trd_json "$name" "s['peers'][0]['state']") == "$state" ]] && return 0
        sleep 0.1
    done
    return 1
}

# --- KME simulators -------------------------------------------------------------------------
# Each site runs its own KME on its gateway host (namespace gwa / gwb): the SAE API listens on
# the gateway's loopback, so only that host's trident reaches it. The two KMEs' key link is the
# only KME traffic that leaves a site: KME A accepts it on gateway A's WAN address (TCP 8445),
# KME B on gateway B's (TCP 8446), so it crosses the WAN router like the tunnel does (a real
# QKD link would be its own fibre; the classical channel still crosses between the sites).
TRD_KME_LISTEN_A=127.0.0.1:8443
TRD_KME_LISTEN_B=127.0.0.1:8444
TRD_KME_LINK_A=192.0.2.2:8445
TRD_KME_LINK_B=198.51.100.2:8446

# trd_qkd_table SIDE SAE_ID LISTEN: the [qkd] table of gateway SIDE (files in DIR/kme).
trd_qkd_table() {
    cat <<TOML
[qkd]
kme_url = "https://$3"
sae_id = "$2"
ca_file = "kme/ca.pem"
cert_file = "kme/$2.pem"
key_file = "kme/$2.key"
timeout_secs = 3
TOML
}

# trd_kme_init DIR [kme-sim init options...]: certificates and KME configs in DIR/kme.
trd_kme_init() {
    local dir=$1
    shift
    rm -rf "$dir/kme"
    "$TRIDENT" kme-sim init "$dir/kme" --sae SAE_A --sae SAE_B \
        --listen-a "$TRD_KME_LISTEN_A" --listen-b "$TRD_KME_LISTEN_B" \
        --link-a "$TRD_KME_LINK_A" --link-b "$TRD_KME_LINK_B" "$@" >/dev/null 2>&1
}

# trd_kme_start SIDE DIR: run that site's KME in its gateway namespace; waits until it
# answers Get status.
trd_kme_start() {
    local side=$1 dir=$2 i
    RUST_LOG=${KME_LOG:-info} "$NETNS" exec "gw$side" "$TRIDENT" kme-sim run "$dir/kme/kme-$side.toml" \
        >>"$dir/kme-$side.log" 2>&1 &
    echo $! >"$dir/kme-$side.pid"
    for ((i = 0; i < 100; i++)); do
        kill -0 "$(cat "$dir/kme-$side.pid")" 2>/dev/null || break
        trd_kme_status "$side" "$dir" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "KME $side did not start; log:" >&2
    tail -n 20 "$dir/kme-$side.log" >&2
    return 1
}

# trd_kme_stop SIDE DIR [SIGNAL]: SIGTERM (or SIGNAL, e.g. KILL) the KME and wait for it.
trd_kme_stop() {
    trd_stop_pidfile "$2/kme-$1.pid" "${3:-TERM}" 5
}

# trd_kme_status SIDE DIR: the KME's ETSI 014 Status JSON, asked as its own SAE (mTLS).
trd_kme_status() {
    "$NETNS" exec "gw$1" "$TRIDENT" kme-sim status "$2/kme/kme-$1.toml" 2>/dev/null
}

# trd_kme_count SIDE DIR: the KME's stored_key_count.
trd_kme_count() {
    trd_kme_status "$1" "$2" | python3 -c "import json,sys; print(json.load(sys.stdin)['stored_key_count'])"
}
