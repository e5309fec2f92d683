# Hub-and-spoke topology for e2e tests: one hub and N spokes, each a trident gateway in its
# own namespace, all on one WAN bridge. The spokes know the hub's endpoint; the hub knows
# none of theirs (it learns them when they connect), the branch-office setup of issue 9.
#
#   trh-wan           bridge br0 (no addresses), one veth port per gateway
#   trh-hub           wan0 10.97.0.1/24;        tunnel trhHub 10.98.0.1/24
#   trh-s1 .. trh-sN  wan0 10.97.0.(10+i)/24;   tunnel trhS<i> 10.98.0.(1+i)/24
#
# QKD is off (no KME) to keep 21 processes light. Source it; expects TRIDENT, and calls
# hub_down from the EXIT trap it installs (chained before the caller's own trap), so the
# namespaces and processes go away also when a test fails or is interrupted.

HUB_NS_PREFIX=trh-
HUB_PIDS=()
HUB_N=0
HUB_DIR=
HUB_PREV_EXIT_TRAP=

hub_ns_list() {
    local i
    echo "${HUB_NS_PREFIX}wan ${HUB_NS_PREFIX}hub"
    for ((i = 1; i <= HUB_N; i++)); do echo "${HUB_NS_PREFIX}s$i"; done
}

# hub_down: stop every hub/spoke process and delete the namespaces (idempotent).
hub_down() {
    local pid ns
    for pid in "${HUB_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for pid in "${HUB_PIDS[@]}"; do
        { timeout 5 tail --pid="$pid" -f /dev/null || kill -KILL "$pid"; wait "$pid"; } 2>/dev/null
    done
    HUB_PIDS=()
    for ns in $(hub_ns_list); do ip netns del "$ns" 2>/dev/null; done
    # Restore the caller's EXIT trap.
    if [[ -n $HUB_PREV_EXIT_TRAP ]]; then
        eval "$HUB_PREV_EXIT_TRAP"
        HUB_PREV_EXIT_TRAP=
    fi
    return 0
}

# hub_exec NAME CMD...: run CMD in hub (hub), spoke i (s<i>) or the bridge (wan).
hub_exec() {
    local ns=$HUB_NS_PREFIX$1
    shift
    ip netns exec "$ns" "$@"
}

# hub_link NAME ADDR: a gateway namespace with wan0 (ADDR/24) on the bridge.
hub_link() {
    local name=$1 addr=$2 ns=$HUB_NS_PREFIX$1
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip -n "$ns" link add wan0 type veth peer name "p-$name" netns "${HUB_NS_PREFIX}wan"
    ip -n "$ns" addr add "$addr/24" dev wan0
    ip -n "$ns" link set wan0 up
    ip -n "${HUB_NS_PREFIX}wan" link set "p-$name" master br0 up
}

# hub_config NAME KEYFILE ADDR EPOCH REJECT: the [interface] and [keymix] part.
hub_config() {
    cat <<TOML
[interface]
name = "$1"
private_key_file = "$2"
listen_port = 51820
address = ["$3/24"]
state_dir = "$HUB_DIR/state-$1"

[keymix]
epoch_secs = $4
reject_after_secs = $5
TOML
}

# hub_start NAME CONFIG: start a gateway in namespace NAME, record its pid.
hub_start() {
    RUST_LOG=${RUST_LOG:-info} ip netns exec "$HUB_NS_PREFIX$1" "$TRIDENT" up "$2" \
        >>"$HUB_DIR/$1.log" 2>&1 &
    HUB_PIDS+=($!)
}

# hub_wait_socket IFNAME: until `trident status IFNAME` answers (10 s).
hub_wait_socket() {
    local i
    for ((i = 0; i < 100; i++)); do
        "$TRIDENT" status "$1" --json >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "hub: $1 did not start" >&2
    return 1
}

# hub_up DIR N EPOCH REJECT: namespaces, keys, configs, and all N+1 gateways running.
hub_up() {
    local dir=$1 n=$2 epoch=$3 reject=$4 i
    HUB_DIR=$dir
    HUB_N=$n
    mkdir -p "$dir"
    local prev
    prev=$(trap -p EXIT)
    HUB_PREV_EXIT_TRAP=$prev
    local prev_cmd=""
    if [[ -n $prev ]]; then
        eval "set -- $prev"
        prev_cmd=$3
    fi
    # shellcheck disable=SC2064 # expand now: chain the caller's trap after ours
    trap "hub_down; $prev_cmd" EXIT
    for ns in $(hub_ns_list); do ip netns del "$ns" 2>/dev/null; done

    ip netns add "${HUB_NS_PREFIX}wan"
    ip -n "${HUB_NS_PREFIX}wan" link set lo up
    ip -n "${HUB_NS_PREFIX}wan" link add br0 type bridge
    ip -n "${HUB_NS_PREFIX}wan" link set br0 up
    hub_link hub 10.97.0.1 || return 1
    for ((i = 1; i <= n; i++)); do hub_link "s$i" "10.97.0.$((10 + i))" || return 1; done

    umask 077
    "$TRIDENT" genkey >"$dir/hub.key"
    local hub_pub
    hub_pub=$("$TRIDENT" pubkey <"$dir/hub.key")
    hub_config trhHub "$dir/hub.key" 10.98.0.1 "$epoch" "$reject" >"$dir/hub.toml"
    for ((i = 1; i <= n; i++)); do
        "$TRIDENT" genkey >"$dir/s$i.key"
        # No endpoint: the hub learns it from the spoke's first authenticated message.
        cat >>"$dir/hub.toml" <<TOML

[[peer]]
public_key = "$("$TRIDENT" pubkey <"$dir/s$i.key")"
allowed_ips = ["10.98.0.$((1 + i))/32"]
TOML
        {
            hub_config "trhS$i" "$dir/s$i.key" "10.98.0.$((1 + i))" "$epoch" "$reject"
            cat <<TOML

[[peer]]
public_key = "$hub_pub"
endpoint = "10.97.0.1:51820"
allowed_ips = ["10.98.0.1/32"]
persistent_keepalive = 25
TOML
        } >"$dir/s$i.toml"
    done

    hub_start hub "$dir/hub.toml"
    hub_wait_socket trhHub || return 1
    for ((i = 1; i <= n; i++)); do hub_start "s$i" "$dir/s$i.toml"; done
    for ((i = 1; i <= n; i++)); do hub_wait_socket "trhS$i" || return 1; done
}

# hub_unreachable: the spokes (numbers) whose ping to the hub's tunnel address fails now.
hub_unreachable() {
    local i pids=() bad=()
    for ((i = 1; i <= HUB_N; i++)); do
        hub_exec "s$i" ping -c 1 -W 1 10.98.0.1 >/dev/null 2>&1 &
        pids+=($!)
    done
    for ((i = 1; i <= HUB_N; i++)); do
        wait "${pids[i - 1]}" || bad+=("$i")
    done
    echo "${bad[*]}"
}
