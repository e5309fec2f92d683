# Shared helpers for demo.sh and e2e.sh: keys, configs and gateway processes on the
# netns harness (scripts/netns.sh). Source it; expects NETNS (path of netns.sh) and TRIDENT
# (path of the binary) to be set.

# trd_configs DIR EPOCH_SECS REJECT_AFTER_SECS: keys and trdA/trdB configs in DIR.
trd_configs() {
    local dir=$1 epoch=${2:-120} reject=${3:-180}
    umask 077
    "$TRIDENT" genkey >"$dir/a.key"
    "$TRIDENT" genkey >"$dir/b.key"
    local pub_a pub_b
    pub_a=$("$TRIDENT" pubkey <"$dir/a.key")
    pub_b=$("$TRIDENT" pubkey <"$dir/b.key")
    cat >"$dir/a.toml" <<TOML
[interface]
name = "trdA"
private_key_file = "$dir/a.key"
listen_port = 51820
address = ["10.99.0.1/24"]

[keymix]
epoch_secs = $epoch
reject_after_secs = $reject

[[peer]]
public_key = "$pub_b"
endpoint = "198.51.100.2:51820"
allowed_ips = ["10.99.0.2/32", "192.168.20.0/24"]
persistent_keepalive = 25
TOML
    cat >"$dir/b.toml" <<TOML
[interface]
name = "trdB"
private_key_file = "$dir/b.key"
listen_port = 51820
address = ["10.99.0.2/24"]

[keymix]
epoch_secs = $epoch
reject_after_secs = $reject

[[peer]]
public_key = "$pub_a"
endpoint = "192.0.2.2:51820"
allowed_ips = ["10.99.0.1/32", "192.168.10.0/24"]
persistent_keepalive = 25
TOML
}

# trd_start SIDE(a|b) DIR: start that gateway's trident in the background; waits for its
# control socket.
trd_start() {
    local side=$1 dir=$2 name
    name=trd${side^^}
    RUST_LOG=${RUST_LOG:-info} "$NETNS" exec "gw$side" "$TRIDENT" up "$dir/$side.toml" \
        >>"$dir/$side.log" 2>&1 &
    echo $! >"$dir/$side.pid"
    local i
    for ((i = 0; i < 100; i++)); do
        # Only our own process counts: a stale instance would answer on the same socket.
        kill -0 "$(cat "$dir/$side.pid")" 2>/dev/null || break
        "$TRIDENT" status "$name" --json >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "gateway $side did not start; log:" >&2
    tail -n 20 "$dir/$side.log" >&2
    return 1
}

# trd_stop SIDE DIR: SIGTERM the gateway and wait for it to exit.
trd_stop() {
    local side=$1 dir=$2 pid
    [[ -f $dir/$side.pid ]] || return 0
    pid=$(cat "$dir/$side.pid")
    kill -TERM "$pid" 2>/dev/null || true
    local i
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -f "$dir/$side.pid"
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
