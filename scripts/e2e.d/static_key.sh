# After bootstrap, a static private key steers nothing (issue 19): a thief holding gateway
# A's real static key floods B with WireGuard initiations from a third address while
# traffic runs; an operator who does whatever status advises, after forged keymix
# datagrams, never lets a static-key holder in; a bootstrap PSK is rotated by reload on
# both sides without an outage. Sourced by scripts/e2e.sh (dataplane.sh brings
# dp_attacker_up and ATTACKER, auth_lifecycle.sh rogue_up/rogue_down).

# The thief's tool: initiations sealed with a stolen static key (tunnel/examples).
FORGE=${FORGE:-$ROOT/target/debug/examples/forge_initiations}

sk_forge() {
    [[ -x $FORGE ]] || cargo build --quiet --manifest-path "$ROOT/Cargo.toml" -p tunnel \
        --example forge_initiations || return 1
    "$NETNS" exec wan "$FORGE" "$@"
}

# t_static_key_initiation_flood: 50 forged initiations a second (A's real key, random epoch
# tags, fresh timestamps) plus some 50 years ahead, from 203.0.113.66 to B for 25 s, across
# epoch switches (5 s epochs), while A pings B every 50 ms. B's endpoint for A never moves,
# no ping is lost, the far-future ones are refused, and the thief gets answers it cannot
# use (no data). Before the fix B moved its endpoint to the thief on the first one and lost
# its session after eight.
t_static_key_initiation_flood() {
    fresh 5 12 || return 1
    dp_attacker_up
    local pub_b endpoint0 e0
    pub_b=$("$TRIDENT" pubkey <"$WORK/b.key")
    endpoint0=$(trd_peer trdB endpoint)
    e0=$(trd_peer trdB epoch)
    "$NETNS" exec lana ping -q -c 500 -i 0.05 -W 1 192.168.20.2 >"$WORK/flood-ping.txt" 2>&1 &
    local pinger=$!
    sk_forge "$WORK/a.key" "$pub_b" 198.51.100.2:51820 "$ATTACKER:0" 50 25 >"$WORK/forge.json" 2>&1 &
    local thief=$!
    sk_forge "$WORK/a.key" "$pub_b" 198.51.100.2:51820 "$ATTACKER:0" 2 25 1576800000 \
        >"$WORK/forge-future.json" 2>&1 &
    local future=$!
    local moved=0 i
    for ((i = 0; i < 50; i++)); do
        sleep 0.5
        [[ $(trd_peer trdB endpoint) == "$endpoint0" ]] || moved=1
    done
    wait "$thief" "$future" "$pinger"
    local summary received
    summary=$(grep 'packets transmitted' "$WORK/flood-ping.txt")
    received=$(grep -oE '[0-9]+ received' <<<"$summary" | cut -d' ' -f1)
    log "thief (50/s): $(cat "$WORK/forge.json"); far future (2/s): $(cat "$WORK/forge-future.json")"
    log "A -> B pings during the flood: $summary"
    log "B: endpoint $(trd_peer trdB endpoint) (was $endpoint0), epoch $e0 -> $(trd_peer trdB epoch), auth $(trd_peer trdB auth)"
    log "B drops: $(trd_json trdB "{k: v for k, v in s['dropped'].items() if v}")"
    ((moved == 0)) || { log "B's endpoint for A moved"; return 1; }
    ((${received:-0} == 500)) || { log "pings lost during the flood"; return 1; }
    (($(trd_drops trdB future_initiation) > 0)) || { log "far-future initiations not refused"; return 1; }
    (($(trd_peer trdB epoch) >= e0 + 3)) || { log "epochs stopped"; return 1; }
    python3 - "$WORK/forge.json" <<'PY' || { log "the thief got more than throw-away answers"; return 1; }
import json, sys
r = json.load(open(sys.argv[1]))
# Answers to the thief's initiations are fine (it cannot use them); data never.
sys.exit(0 if r["sent"] > 1000 and r["data"] == 0 else 1)
PY
}

# sk_forged_keymix N: N keymix Inits to B claiming to be A (A's public key, a valid mac1 for
# B, fresh timestamps, epochs 1..N and some far ones, garbage auth tags): what anyone who
# knows both public keys can send. Prints how many were sent.
sk_forged_keymix() {
    # keymix's MAC: scripts/lib/keymix_mac.py (PYTHONPATH survives `ip netns exec`).
    PYTHONPATH=$ROOT/scripts/lib "$NETNS" exec wan python3 - "$1" "$("$TRIDENT" pubkey <"$WORK/a.key")" "$("$TRIDENT" pubkey <"$WORK/b.key")" "$ATTACKER" <<'PY'
import base64, hashlib, os, socket, struct, sys, time
n, pub_a, pub_b, src = int(sys.argv[1]), base64.b64decode(sys.argv[2]), base64.b64decode(sys.argv[3]), sys.argv[4]
from keymix_mac import available, keymix_mac as mac, mac1_key_v1
if not available():
    print(0); sys.exit(0)
mac1_key = mac1_key_v1(pub_b)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((src, 0))
sent = 0
for i in range(n):
    epoch = [1, 2, 3, i + 1, 1 << 40][i % 5]
    ts = time.time_ns() + i
    body = bytes([0x81, 1, 3, 0]) + struct.pack("<IQQ", 1 + i, epoch, ts) + pub_a
    body += os.urandom(32) + os.urandom(1184) + bytes([0]) + os.urandom(16)
    s.sendto(body + mac(mac1_key, body) + bytes(16), ("198.51.100.2", 51820))
    sent += 1
    time.sleep(0.05)
print(sent)
PY
}

# sk_follow_advice NAME: the operator who does whatever the status of NAME advises: if its
# hint or reason names `trident reset`, it runs it as written (with --static-only when
# the advice offers that). Prints what it did.
sk_follow_advice() {
    local name=$1 advice
    advice=$(trd_json "$name" "(s['peers'][0]['hint'] or '') + ' ' + (s['peers'][0]['reason'] or '')")
    if [[ $advice == *"trident reset"* ]]; then
        local flag=""
        [[ $advice == *--static-only* ]] && flag=--static-only
        echo "advised: $advice; ran: trident reset $flag"
        "$TRIDENT" reset $flag "$name" "$(trd_peer "$name" public_key)" 2>&1
    fi
}

# t_static_key_operator_follows_status: a rogue gateway holding A's static key (no state,
# no bootstrap PSK) runs on the WAN, and forged keymix Inits claiming to be A reach B while
# keymix between A and B is cut until B's key expires (B not up). The operator does
# whatever B's status advises. Nothing in B's status advises anything, B counts the
# datagrams as unverified, the rogue never gets in, and once keymix passes again A-B
# continue their chain.
t_static_key_operator_follows_status() {
    fresh 4 8 || return 1
    dp_attacker_up
    auth_wait 15 '(( $(trd_peer trdB epoch) >= 2 ))' >/dev/null || { log "no second epoch"; return 1; }
    local ep0
    ep0=$(trd_peer trdB epoch)
    # A's and B's keymix datagrams are dropped on the WAN (the rogue's are not: it sits
    # behind the router's r0 interface, and its datagrams come from 198.18.0.2).
    "$NETNS" exec wan nft -f - <<'NFT' || return 1
table inet trd_sk {
    chain forward {
        type filter hook forward priority -10; policy accept;
        ip saddr { 192.0.2.2, 198.51.100.2 } meta l4proto udp @th,64,8 0x81-0x84 counter drop
    }
}
NFT
    rogue_up || { "$NETNS" exec wan nft delete table inet trd_sk; return 1; }
    local sent actions="" i
    sent=$(sk_forged_keymix 200)
    for ((i = 0; i < 10; i++)); do
        actions+=$(sk_follow_advice trdB)
        sleep 0.5
    done
    local st_b unverified
    st_b=$(trd_peer trdB state)
    unverified=$(trd_peer trdB unverified)
    log "forged keymix Inits sent: $sent; B: state $st_b, unverified $unverified, reason $(trd_peer trdB reason), hint $(trd_peer trdB hint)"
    log "rogue: $(trd_peer trdR state 2>/dev/null)"
    "$NETNS" exec wan nft delete table inet trd_sk
    local took
    took=$(auth_wait 30 '[[ $(trd_peer trdA state) == up && $(trd_peer trdB state) == up ]] && ping_ok') || {
        rogue_down
        log "A-B did not resume: A $(trd_peer trdA state), B $(trd_peer trdB state)"
        return 1
    }
    actions+=$(sk_follow_advice trdB)
    local rogue_state
    rogue_state=$(trd_peer trdR state 2>/dev/null)
    rogue_down
    log "A-B resumed $took s after keymix passed again: epoch $ep0 -> $(trd_peer trdB epoch), auth $(trd_peer trdB auth)"
    [[ -z $actions ]] || { log "status advised an action: $actions"; return 1; }
    [[ $st_b == blocked ]] || { log "B should be blocked (expired key) while cut off"; return 1; }
    ((unverified > 0)) || { log "nothing counted as unverified"; return 1; }
    [[ $rogue_state != up ]] || { log "the rogue got in"; return 1; }
    [[ $(trd_peer trdB auth) == chain ]] || { log "B's chain was not continued"; return 1; }
    (($(trd_peer trdB epoch) > ep0)) || { log "epochs did not rise"; return 1; }
}

# t_static_key_psk_rotation: both gateways share a bootstrap PSK; the operator replaces it
# with a new one by reload, A first, then B, under a 20 ms ping across several 4 s epochs:
# no ping lost and no key past its reject age, reload names the change, status shows the
# rotation until both have it, and a re-bootstrap afterwards (A loses its state) needs the
# new PSK.
t_static_key_psk_rotation() {
    fresh_configs 4 10 || return 1
    "$TRIDENT" genpsk >"$WORK/old.psk"
    "$TRIDENT" genpsk >"$WORK/new.psk"
    echo "bootstrap_psk_file = \"$WORK/old.psk\"" >>"$WORK/a.toml"
    echo "bootstrap_psk_file = \"$WORK/old.psk\"" >>"$WORK/b.toml"
    trd_start a "$WORK" && trd_start b "$WORK" || return 1
    trd_wait_state trdA up 20 && trd_wait_state trdB up 20 || return 1
    "$NETNS" exec lana ping -q -c 1000 -i 0.02 -W 1 192.168.20.2 >"$WORK/rot-ping.txt" 2>&1 &
    local pinger=$!
    sleep 3
    sed -i "s#old.psk#new.psk#" "$WORK/a.toml"
    local out_a out_b rot_a
    out_a=$("$TRIDENT" reload trdA 2>&1)
    sleep 1
    rot_a=$(trd_peer trdA psk_rotation)
    sleep 7
    sed -i "s#old.psk#new.psk#" "$WORK/b.toml"
    out_b=$("$TRIDENT" reload trdB 2>&1)
    sleep 9
    wait "$pinger"
    local summary received
    summary=$(grep 'packets transmitted' "$WORK/rot-ping.txt")
    received=$(grep -oE '[0-9]+ received' <<<"$summary" | cut -d' ' -f1)
    log "reload A: $out_a"
    log "reload B: $out_b"
    log "A rotating after its reload: $rot_a; now A $(trd_peer trdA psk_rotation), B $(trd_peer trdB psk_rotation)"
    log "pings across both reloads: $summary"
    [[ $out_a == *"bootstrap PSK"* && $out_b == *"bootstrap PSK"* ]] || { log "reload did not name the PSK change"; return 1; }
    [[ $rot_a == True ]] || { log "status did not show the rotation"; return 1; }
    ((${received:-0} == 1000)) || { log "pings lost"; return 1; }
    # Each epoch came before the last one's key reached its reject age: a key that expired
    # costs no ping only when none falls into the gap (E2 in keymix/SIMULATION.md).
    local expired
    expired=$(cat "$WORK/a.log" "$WORK/b.log" | grep -c "past its reject age")
    ((expired == 0)) || { log "$expired epoch keys reached their reject age"; return 1; }
    [[ $(trd_peer trdA psk_rotation) == False && $(trd_peer trdB psk_rotation) == False ]] || {
        log "the rotation did not complete"
        return 1
    }
    # A loses its state: it re-bootstraps with the new PSK, B accepts it over its chain.
    trd_kill9 a "$WORK"
    rm -rf "$WORK/state-a"
    trd_start a "$WORK" || return 1
    auth_wait 20 'ping_ok && [[ $(trd_peer trdA auth) == bootstrap-psk ]]' >/dev/null || {
        log "no re-bootstrap with the new PSK: A $(trd_peer trdA state), B $(trd_peer trdB state)"
        return 1
    }
}

TESTS+=(t_static_key_initiation_flood t_static_key_operator_follows_status t_static_key_psk_rotation)
