# Authentication lifecycle (issue 9): the keymix chain survives a crash, a stolen static key
# without the chain gets nowhere, dropped Confirms do not split a pair for good, and a hub
# reaches spokes whose endpoints it does not know. Sourced by scripts/e2e.sh.

# shellcheck source=../lib/hub.sh
. "$ROOT/scripts/lib/hub.sh"

# auth_wait SECONDS CONDITION: poll CONDITION (a shell command) every 0.5 s; prints the
# seconds it took.
auth_wait() {
    local secs=$1 start=$SECONDS
    shift
    while ((SECONDS - start <= secs)); do
        if eval "$@"; then
            echo $((SECONDS - start))
            return 0
        fi
        sleep 0.5
    done
    echo $((SECONDS - start))
    return 1
}

# (a) kill -9 gateway B at epoch >= 3, restart it: traffic within 10 s, epochs keep rising,
# the first epoch after the restart authenticated by the saved chain.
t_auth_crash_restart_continues_chain() {
    fresh 4 10 || return 1
    auth_wait 30 '(( $(trd_peer trdB epoch) >= 3 ))' >/dev/null || { log "B never reached epoch 3"; return 1; }
    local old
    old=$(trd_peer trdB epoch)
    trd_kill9 b "$WORK"
    log "B killed (SIGKILL) at epoch $old; saved chain files: $(ls "$WORK/state-b" | wc -l)"
    restart_b_within 10 || return 1
    auth_wait 20 '[[ $(trd_peer trdB epoch) != None ]] && (( $(trd_peer trdB epoch) > old ))' >/dev/null || {
        log "B's epoch did not rise past $old: $(trd_peer trdB epoch)"
        return 1
    }
    local auth_b auth_a
    auth_b=$(trd_peer trdB auth)
    auth_a=$(trd_peer trdA auth)
    log "after restart: B epoch $(trd_peer trdB epoch) (auth $auth_b), A epoch $(trd_peer trdA epoch) (auth $auth_a)"
    [[ $auth_b == chain && $auth_a == chain ]] || { log "expected auth = chain on both sides"; return 1; }
    grep -q "continuing the saved chain" "$WORK/b.log" || { log "B did not load its chain"; return 1; }
}

# A rogue gateway in its own namespace on the WAN router (198.18.0.2, RFC 2544 range).
ROGUE_NS=trx-rogue

rogue_down() {
    if [[ -f $WORK/rogue.pid ]]; then
        { kill -TERM "$(cat "$WORK/rogue.pid")"; sleep 1; kill -KILL "$(cat "$WORK/rogue.pid")"; wait "$(cat "$WORK/rogue.pid")"; } 2>/dev/null
        rm -f "$WORK/rogue.pid"
    fi
    ip netns del "$ROGUE_NS" 2>/dev/null
    return 0
}

rogue_up() {
    rogue_down
    ip netns add "$ROGUE_NS" || return 1
    ip -n "$ROGUE_NS" link set lo up
    ip -n "$ROGUE_NS" link add wan0 type veth peer name r0 netns trd-wan
    ip -n "$ROGUE_NS" addr add 198.18.0.2/24 dev wan0
    ip -n "$ROGUE_NS" link set wan0 up
    ip -n trd-wan addr add 198.18.0.1/24 dev r0
    ip -n trd-wan link set r0 up
    ip -n "$ROGUE_NS" route add default via 198.18.0.1
    # A's private key, B as peer, but no state: it can only offer a bootstrap (C_0) Init.
    sed -e 's/^name = "trdA"/name = "trdR"/' -e "s#state-a#state-rogue#" "$WORK/a.toml" >"$WORK/rogue.toml"
    RUST_LOG=info ip netns exec "$ROGUE_NS" "$TRIDENT" up "$WORK/rogue.toml" >>"$WORK/rogue.log" 2>&1 &
    echo $! >"$WORK/rogue.pid"
}

# (b) A rogue holding A's static private key but not A's chain never reaches `up` with B
# and changes nothing for the real A-B pair.
t_auth_rogue_static_key_only() {
    fresh 5 12 || return 1
    rogue_body
    local rc=$?
    rogue_down
    return $rc
}

rogue_body() {
    auth_wait 15 '(( $(trd_peer trdB epoch) >= 2 ))' >/dev/null || { log "no second epoch"; return 1; }
    local ep0 endpoint0
    ep0=$(trd_peer trdB epoch)
    endpoint0=$(trd_peer trdB endpoint)
    "$NETNS" exec lana ping -q -i 0.2 -c 150 -W 1 192.168.20.2 >"$WORK/rogue-ping.txt" 2>&1 &
    local ping=$!
    rogue_up || { kill $ping; return 1; }
    local i rogue_up_seen=0 b_changed=0
    for ((i = 0; i < 56; i++)); do
        sleep 0.5
        [[ $(trd_peer trdR state 2>/dev/null) == up ]] && rogue_up_seen=1
        [[ $(trd_peer trdB endpoint) == "$endpoint0" && $(trd_peer trdB state) == up ]] || b_changed=1
    done
    wait $ping
    local loss mismatch
    loss=$(grep -oE '[0-9]+ received' "$WORK/rogue-ping.txt" | grep -oE '[0-9]+')
    mismatch=$(trd_drops trdB keymix_chain_mismatch)
    log "rogue state: $(trd_peer trdR state 2>/dev/null), ever up: $rogue_up_seen"
    log "B: endpoint $(trd_peer trdB endpoint) (was $endpoint0), state $(trd_peer trdB state), epoch $ep0 -> $(trd_peer trdB epoch), auth $(trd_peer trdB auth), changed: $b_changed"
    log "B keymix_chain_mismatch drops: $mismatch; A-B pings received: ${loss:-0}/150"
    ((rogue_up_seen == 0 && b_changed == 0)) || return 1
    ((mismatch > 0)) || { log "B counted no chain_mismatch drop"; return 1; }
    (($(trd_peer trdB epoch) > ep0)) || { log "A-B epochs stopped"; return 1; }
    [[ $(trd_peer trdB auth) == chain ]] || return 1
    ((${loss:-0} >= 148)) || { log "A-B lost more than 2 pings"; return 1; }
}

# (c) Every keymix Confirm (first payload byte 0x83) dropped on the WAN for 75 s after the
# first epoch (40 s epochs), then let through: both sides agree on a fresh epoch and traffic
# flows within 75 s.
t_auth_confirms_dropped_75s() {
    fresh 40 180 || return 1
    local e0
    e0=$(trd_peer trdA epoch)
    # Both gateways send from and to port 51820: dport 51820 covers both directions.
    "$NETNS" exec wan nft -f - <<'NFT' || return 1
table inet trd_confirm {
    chain forward {
        type filter hook forward priority -10; policy accept;
        udp dport 51820 @th,64,8 0x83 counter drop
    }
}
NFT
    log "dropping Confirms for 75 s from epoch $e0"
    sleep 75
    local dropped
    dropped=$("$NETNS" exec wan nft list table inet trd_confirm | grep -oE 'packets [0-9]+' | grep -oE '[0-9]+')
    log "Confirms dropped: $dropped; now A epoch $(trd_peer trdA epoch) $(trd_peer trdA state), B epoch $(trd_peer trdB epoch) $(trd_peer trdB state)"
    # Fresh: an exchange that completes after the Confirms flow again.
    local e_rm ea eb
    ea=$(trd_peer trdA epoch)
    eb=$(trd_peer trdB epoch)
    e_rm=$((${ea/None/0} > ${eb/None/0} ? ${ea/None/0} : ${eb/None/0}))
    "$NETNS" exec wan nft delete table inet trd_confirm
    ((dropped > 0)) || { log "no Confirm was dropped: the test did not test anything"; return 1; }
    local took
    took=$(auth_wait 75 '[[ $(trd_peer trdA epoch) == $(trd_peer trdB epoch) && $(trd_peer trdA epoch) != None ]] && (( $(trd_peer trdA epoch) > e_rm )) && [[ $(trd_peer trdA state) == up && $(trd_peer trdB state) == up ]] && ping_ok') || {
        log "no agreement within 75 s: A epoch $(trd_peer trdA epoch) $(trd_peer trdA state), B epoch $(trd_peer trdB epoch) $(trd_peer trdB state)"
        return 1
    }
    log "agreed on epoch $(trd_peer trdA epoch) with traffic $took s after the Confirms were let through"
}

# (d) One hub, 20 spokes it has no endpoint for: every spoke reachable within 30 s (10 s
# epochs) and no ping lost over the next minute.
t_auth_hub_20_spokes() {
    hub_body
    local rc=$?
    hub_down
    return $rc
}

hub_body() {
    local n=20
    local start=$SECONDS
    hub_up "$WORK/hub" "$n" 10 25 || return 1
    local bad took
    while :; do
        bad=$(hub_unreachable)
        took=$((SECONDS - start))
        [[ -z $bad ]] && break
        ((took > 30)) && break
        sleep 1
    done
    log "all spokes started; unreachable after $took s: ${bad:-none}"
    if [[ -n $bad ]]; then
        "$TRIDENT" status trhHub --json | python3 -c "import json,sys; s=json.load(sys.stdin); print('    hub drops:', {k: v for k, v in s['dropped'].items() if v}); print('    states:', [p['state'] for p in s['peers']])"
        return 1
    fi
    local i pids=() lost=0 sent=0 out
    for ((i = 1; i <= n; i++)); do
        hub_exec "s$i" ping -q -i 0.5 -c 120 -W 1 10.98.0.1 >"$WORK/hub/ping-$i.txt" 2>&1 &
        pids+=($!)
    done
    for ((i = 1; i <= n; i++)); do
        wait "${pids[i - 1]}"
        out=$(grep 'packets transmitted' "$WORK/hub/ping-$i.txt")
        local tx rx
        tx=$(grep -oE '^[0-9]+' <<<"$out")
        rx=$(grep -oE '[0-9]+ received' <<<"$out" | grep -oE '[0-9]+')
        sent=$((sent + ${tx:-0}))
        lost=$((lost + ${tx:-0} - ${rx:-0}))
        ((${tx:-0} - ${rx:-0} > 0)) && log "spoke $i: $out"
    done
    local epochs
    epochs=$("$TRIDENT" status trhHub --json | python3 -c "import json,sys; s=json.load(sys.stdin); e=[p['epoch'] or 0 for p in s['peers']]; print(min(e), max(e))")
    log "one minute of pings from $n spokes: $lost of $sent lost; hub epochs min/max: $epochs"
    ((sent >= n * 120 && lost == 0))
}

# A loses its state and the pair shares no bootstrap PSK: B refuses A's bootstrap (a static
# key alone proves nothing) and only counts it; A, which knows it lost its chain, says what
# to do. A plain reset on B is refused (it would let the static keys alone in); the
# operator's `--static-only` acknowledgement is accepted, and status shows it until the
# chain has grown again.
t_auth_lost_state_needs_reset() {
    fresh 5 12 || return 1
    local pub_a
    pub_a=$("$TRIDENT" pubkey <"$WORK/a.key")
    local out rc
    out=$("$TRIDENT" reset trdB "$("$TRIDENT" pubkey <"$WORK/b.key")" 2>&1)
    rc=$?
    log "reset of an unknown peer: rc $rc: $out"
    [[ $rc != 0 && $out == *"no peer"* ]] || return 1
    out=$("$TRIDENT" reset trdNone "$pub_a" 2>&1)
    rc=$?
    log "reset on a stopped interface: rc $rc: $out"
    [[ $rc != 0 && $out == *"not running"* ]] || return 1
    trd_kill9 a "$WORK"
    rm -rf "$WORK/state-a"
    trd_start a "$WORK" || return 1
    auth_wait 45 '[[ $(trd_peer trdA hint) == *"--static-only"* ]]' >/dev/null || {
        log "A never said what to do: state $(trd_peer trdA state), hint $(trd_peer trdA hint)"
        return 1
    }
    log "A: state $(trd_peer trdA state), hint: $(trd_peer trdA hint)"
    log "B: state $(trd_peer trdB state), reason $(trd_peer trdB reason), hint $(trd_peer trdB hint), unverified $(trd_peer trdB unverified)"
    [[ "$(trd_peer trdB hint) $(trd_peer trdB reason)" != *reset* ]] || { log "B advises a reset on unverified input"; return 1; }
    (($(trd_peer trdB unverified) > 0)) || { log "B did not count A's refused bootstraps"; return 1; }
    log "B keymix_chain_mismatch drops: $(trd_drops trdB keymix_chain_mismatch)"
    out=$("$TRIDENT" reset trdB "$pub_a" 2>&1)
    rc=$?
    log "plain reset: rc $rc: ${out:0:160}..."
    [[ $rc != 0 && $out == *"--static-only"* ]] || { log "a plain reset without a bootstrap PSK was not refused"; return 1; }
    out=$("$TRIDENT" reset --static-only trdB "$pub_a" 2>&1) || { log "reset failed: $out"; return 1; }
    log "reset --static-only: $out"
    grep -q "operator reset acknowledged as static-only" "$WORK/b.log" || { log "reset not logged"; return 1; }
    local took
    took=$(auth_wait 20 'ping_ok && [[ $(trd_peer trdA state) == up && $(trd_peer trdB state) == up ]]') || {
        log "not up after the reset: A $(trd_peer trdA state), B $(trd_peer trdB state) $(trd_peer trdB reason)"
        return 1
    }
    log "up again $took s after the reset: epoch $(trd_peer trdB epoch), auth $(trd_peer trdB auth), static_only_reset $(trd_peer trdB static_only_reset)"
    "$TRIDENT" status trdB | grep -q "operator reset with --static-only" || [[ $(trd_peer trdB auth) == chain ]] || {
        log "status does not show the acknowledgement"
        return 1
    }
    auth_wait 20 '[[ $(trd_peer trdB auth) == chain && $(trd_peer trdB static_only_reset) == False ]]' >/dev/null || {
        log "the acknowledgement did not clear once the chain grew: $(trd_peer trdB auth) $(trd_peer trdB static_only_reset)"
        return 1
    }
}

# The same loss with a per-peer bootstrap PSK on both sides: A re-bootstraps on its own.
t_auth_lost_state_bootstrap_psk() {
    fresh 5 12 || return 1
    trd_stop a "$WORK"
    trd_stop b "$WORK"
    "$TRIDENT" genpsk >"$WORK/ab.psk"
    # The [[peer]] table is last in both configs.
    echo "bootstrap_psk_file = \"$WORK/ab.psk\"" >>"$WORK/a.toml"
    echo "bootstrap_psk_file = \"$WORK/ab.psk\"" >>"$WORK/b.toml"
    trd_start a "$WORK" && trd_start b "$WORK" || return 1
    trd_wait_state trdA up 20 || return 1
    trd_kill9 a "$WORK"
    rm -rf "$WORK/state-a"
    local start=$SECONDS
    trd_start a "$WORK" || return 1
    local took
    took=$(auth_wait 20 'ping_ok && [[ $(trd_peer trdA auth) == bootstrap-psk && $(trd_peer trdB state) == up ]]') || {
        log "no re-bootstrap: A $(trd_peer trdA state) $(trd_peer trdA auth), B $(trd_peer trdB state) $(trd_peer trdB reason)"
        return 1
    }
    log "A without state re-bootstrapped with the PSK in $((SECONDS - start)) s: epoch $(trd_peer trdA epoch), auth $(trd_peer trdA auth)"
    auth_wait 20 '[[ $(trd_peer trdA auth) == chain ]]' >/dev/null || { log "the next epoch is not chain-authenticated"; return 1; }
}

TESTS+=(t_auth_crash_restart_continues_chain t_auth_rogue_static_key_only
    t_auth_confirms_dropped_75s t_auth_hub_20_spokes t_auth_lost_state_needs_reset
    t_auth_lost_state_bootstrap_psk)
