# A site with two gateways (issue 21): A1 and A2 share site A's identity (static key,
# bootstrap PSK) behind virtual addresses that keepalived (VRRP) moves between them; trident
# runs on both all the time with `listen_address` = the virtual WAN address. A LAN host
# pings B's LAN through the tunnel across a failover (A1 dies) and a failback (A1 returns
# with its old state file), following contrib/keepalived/keepalived.conf. Sourced by
# scripts/e2e.sh; its own namespaces (trha-*), removed afterwards.
#
#   trha-lan  192.168.10.2 --- br-lan (trha-sw) --- A1 lan0 / A2 lan0, VIP 192.168.10.1
#   A1 wan0 192.0.2.11, A2 wan0 192.0.2.12, VIP 192.0.2.10 --- br-wan (trha-sw) --- B 192.0.2.20
#   trha-b lan0 192.168.20.1 --- trha-lanb 192.168.20.2

HA_NS=(trha-sw trha-lan trha-a1 trha-a2 trha-b trha-lanb)

ha_down() {
    local f
    for f in "$WORK"/ha/*.pid; do
        [[ -f $f ]] && trd_stop_pidfile "$f" TERM 3
    done
    local n
    for n in "${HA_NS[@]}"; do ip netns del "$n" 2>/dev/null; done
    return 0
}

# ha_link NS IFC BRIDGE: a veth from namespace NS (named IFC) to BRIDGE in trha-sw.
ha_link() {
    local ns=$1 ifc=$2 br=$3 peer="${1#trha-}-$2"
    ip -n trha-sw link add "$peer" type veth peer name "$ifc" netns "$ns" || return 1
    ip -n trha-sw link set "$peer" master "$br" up
    ip -n "$ns" link set "$ifc" up
}

ha_up() {
    ha_down
    mkdir -p "$WORK/ha"
    local n
    for n in "${HA_NS[@]}"; do
        ip netns add "$n" || return 1
        ip -n "$n" link set lo up
    done
    ip -n trha-sw link add br-lan type bridge && ip -n trha-sw link set br-lan up
    ip -n trha-sw link add br-wan type bridge && ip -n trha-sw link set br-wan up
    ha_link trha-lan eth0 br-lan && ha_link trha-a1 lan0 br-lan && ha_link trha-a2 lan0 br-lan || return 1
    ha_link trha-a1 wan0 br-wan && ha_link trha-a2 wan0 br-wan && ha_link trha-b wan0 br-wan || return 1
    ip -n trha-lan addr add 192.168.10.2/24 dev eth0
    ip -n trha-lan route add default via 192.168.10.1
    ip -n trha-a1 addr add 192.0.2.11/24 dev wan0
    ip -n trha-a2 addr add 192.0.2.12/24 dev wan0
    ip -n trha-a1 addr add 192.168.10.11/24 dev lan0
    ip -n trha-a2 addr add 192.168.10.12/24 dev lan0
    ip -n trha-b addr add 192.0.2.20/24 dev wan0
    ip -n trha-b link add lan0 type veth peer name eth0 netns trha-lanb
    ip -n trha-b addr add 192.168.20.1/24 dev lan0 && ip -n trha-b link set lan0 up
    ip -n trha-lanb addr add 192.168.20.2/24 dev eth0 && ip -n trha-lanb link set eth0 up
    ip -n trha-lanb route add default via 192.168.20.1
    for n in trha-a1 trha-a2 trha-b; do
        ip netns exec "$n" sysctl -qw net.ipv4.ip_forward=1
    done
}

# ha_configs: one private key and bootstrap PSK for site A (both boxes), one for B.
ha_configs() {
    local d=$WORK/ha
    "$TRIDENT" genkey >"$d/a.key" && "$TRIDENT" genkey >"$d/b.key" && "$TRIDENT" genpsk >"$d/ab.psk" || return 1
    chmod 600 "$d"/*.key "$d"/ab.psk
    local pub_a pub_b box
    pub_a=$("$TRIDENT" pubkey <"$d/a.key")
    pub_b=$("$TRIDENT" pubkey <"$d/b.key")
    for box in a1 a2; do
        cat >"$d/$box.toml" <<TOML
[interface]
name = "tr${box^^}"
private_key_file = "$d/a.key"
listen_port = 51820
listen_address = "192.0.2.10"
state_dir = "$d/state-$box"
address = ["10.99.0.1/24"]

[keymix]
epoch_secs = 10
reject_after_secs = 25

[[peer]]
public_key = "$pub_b"
endpoint = "192.0.2.20:51820"
allowed_ips = ["10.99.0.2/32", "192.168.20.0/24"]
persistent_keepalive = 5
bootstrap_psk_file = "$d/ab.psk"
TOML
    done
    cat >"$d/b.toml" <<TOML
[interface]
name = "trHB"
private_key_file = "$d/b.key"
listen_port = 51820
state_dir = "$d/state-b"
address = ["10.99.0.2/24"]

[keymix]
epoch_secs = 10
reject_after_secs = 25

[[peer]]
public_key = "$pub_a"
endpoint = "192.0.2.10:51820"
allowed_ips = ["10.99.0.1/32", "192.168.10.0/24"]
persistent_keepalive = 5
bootstrap_psk_file = "$d/ab.psk"
TOML
}

# ha_keepalived BOX PRIORITY: keepalived on BOX (a1, a2), per contrib/keepalived/keepalived.conf.
ha_keepalived() {
    local box=$1 prio=$2 d=$WORK/ha
    sed -e "s/router_id gw-a1/router_id gw-$box/" -e "s/priority 150/priority $prio/" \
        -e "s/state MASTER/state BACKUP/" "$ROOT/contrib/keepalived/keepalived.conf" >"$d/keepalived-$box.conf"
    ip netns exec "trha-$box" keepalived --dont-fork --log-console --vrrp -f "$d/keepalived-$box.conf" \
        -p "$d/keepalived-$box.main" -r "$d/keepalived-$box.vrrp" >>"$d/keepalived-$box.log" 2>&1 &
    echo $! >"$d/keepalived-$box.pid"
}

# ha_trident BOX: trident up on BOX (a1, a2, b) in its namespace.
ha_trident() {
    local box=$1 d=$WORK/ha
    RUST_LOG=${RUST_LOG:-info} ip netns exec "trha-$box" "$TRIDENT" up "$d/$box.toml" >>"$d/$box.log" 2>&1 &
    echo $! >"$d/$box.pid"
    local i name=tr${box^^}
    [[ $box == b ]] && name=trHB
    for ((i = 0; i < 100; i++)); do
        "$TRIDENT" status "$name" --json >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    tail -n 20 "$d/$box.log" >&2
    return 1
}

ha_holds_vip() { ip -n "trha-$1" -4 addr show dev wan0 | grep -q "192.0.2.10/"; }

# ha_gap FILE: the longest gap (s) between consecutive replies of `ping -D` output.
ha_gap() {
    awk -F'[][]' '/bytes from/ { t = $2 + 0; if (last && t - last > gap) gap = t - last; last = t } END { printf "%.1f", gap }' "$1"
}

t_ha_failover_and_failback() {
    command -v keepalived >/dev/null || {
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends keepalived >/dev/null 2>&1
    }
    command -v keepalived >/dev/null || { log "keepalived missing"; return 1; }
    ha_body
    local rc=$?
    ha_down
    return $rc
}

ha_body() {
    ha_up || { log "topology failed"; return 1; }
    ha_configs || return 1
    ha_keepalived a1 150
    ha_keepalived a2 100
    auth_wait 15 'ha_holds_vip a1' >/dev/null || { log "A1 never became master"; return 1; }
    ha_trident b && ha_trident a1 && ha_trident a2 || return 1
    auth_wait 20 '[[ $(trd_peer trHB state) == up ]] && ip netns exec trha-lan ping -c1 -W1 192.168.20.2 >/dev/null' >/dev/null ||
        { log "A1-B never up: B $(trd_peer trHB state), A1 $(trd_peer trA1 state), A2 $(trd_peer trA2 state)"; return 1; }
    ip netns exec trha-lan ping -D -i 0.1 -W 1 192.168.20.2 >"$WORK/ha/ping.txt" 2>&1 &
    local pinger=$!
    # Both boxes run trident: the standby must disturb nothing.
    sleep 15
    local steady endpoint_b
    steady=$(ha_gap "$WORK/ha/ping.txt")
    endpoint_b=$(trd_peer trHB endpoint)
    log "steady, both boxes running trident: longest gap ${steady} s; B's endpoint for A $endpoint_b; A2 (standby) $(trd_peer trA2 state), drops $(trd_json trA2 "{k: v for k, v in s['dropped'].items() if v}")"
    # Failover: A1 dies (trident, keepalived and its links).
    trd_stop_pidfile "$WORK/ha/a1.pid" KILL 1
    trd_stop_pidfile "$WORK/ha/keepalived-a1.pid" KILL 1
    ip -n trha-a1 link set wan0 down && ip -n trha-a1 link set lan0 down
    ip -n trha-a1 addr flush dev wan0 && ip -n trha-a1 addr flush dev lan0
    local t_fail=$SECONDS
    auth_wait 40 'ip netns exec trha-lan ping -c1 -W1 192.168.20.2 >/dev/null' >/dev/null || {
        log "no traffic after the failover: A2 $(trd_peer trA2 state) $(trd_peer trA2 hint), B $(trd_peer trHB state)"
        kill $pinger
        return 1
    }
    sleep 25
    local failover_gap
    failover_gap=$(ha_gap "$WORK/ha/ping.txt")
    log "failover: traffic again after ~$((SECONDS - 25 - t_fail)) s; longest gap ${failover_gap} s; A2 auth $(trd_peer trA2 auth), epoch $(trd_peer trA2 epoch); B's endpoint $(trd_peer trHB endpoint)"
    # Failback: A1 is repaired and returns with its old (stale) state file.
    ip -n trha-a1 addr add 192.0.2.11/24 dev wan0 && ip -n trha-a1 addr add 192.168.10.11/24 dev lan0
    ip -n trha-a1 link set wan0 up && ip -n trha-a1 link set lan0 up
    : >"$WORK/ha/ping-back.txt"
    kill $pinger 2>/dev/null
    wait $pinger 2>/dev/null
    ip netns exec trha-lan ping -D -i 0.1 -W 1 192.168.20.2 >"$WORK/ha/ping-back.txt" 2>&1 &
    pinger=$!
    ha_trident a1 || { kill $pinger; return 1; }
    ha_keepalived a1 150
    auth_wait 15 'ha_holds_vip a1' >/dev/null || { log "A1 did not take the address back"; kill $pinger; return 1; }
    local t_back=$SECONDS
    auth_wait 40 '[[ $(trd_peer trA1 state) == up ]] && ip netns exec trha-lan ping -c1 -W1 192.168.20.2 >/dev/null' >/dev/null || {
        log "no traffic after the failback: A1 $(trd_peer trA1 state) $(trd_peer trA1 hint), B $(trd_peer trHB state)"
        kill $pinger
        return 1
    }
    sleep 5
    kill $pinger 2>/dev/null
    wait $pinger 2>/dev/null
    local failback_gap auth_a1 auth_b endpoint
    failback_gap=$(ha_gap "$WORK/ha/ping-back.txt")
    auth_a1=$(trd_peer trA1 auth)
    auth_b=$(trd_peer trHB auth)
    endpoint=$(trd_peer trHB endpoint)
    log "failback: traffic again ~$((SECONDS - 5 - t_back)) s after A1 took the address; longest gap ${failback_gap} s; A1 auth $auth_a1, B auth $auth_b, B warning: $(trd_peer trHB warning)"
    log "B's endpoint for A: $endpoint; A2 (standby again) $(trd_peer trA2 state)"
    python3 - "$steady" "$failover_gap" "$failback_gap" <<'PY' || { log "gaps too long"; return 1; }
import sys
steady, over, back = map(float, sys.argv[1:4])
# The standby disturbs nothing; failover and failback carry traffic again within 30 s.
sys.exit(0 if steady < 1.5 and over <= 30 and back <= 30 else 1)
PY
    [[ $endpoint == 192.0.2.10:51820 && $endpoint_b == 192.0.2.10:51820 ]] || { log "B saw another source than the virtual address"; return 1; }
    [[ $auth_a1 != static-only && $auth_b != static-only ]] || { log "authentication fell back to the static keys"; return 1; }
}

TESTS+=(t_ha_failover_and_failback)
CLEANUP_HOOKS+=(ha_down)
