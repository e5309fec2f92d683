# QKD: each site's KME simulator on its gateway host (scripts/lib/trident.sh); the policies
# required and preferred with a KME that dies or runs dry, and forged keymix datagrams that
# must not cost a KME key. Sourced by scripts/e2e.sh.

peer_field() { trd_json "$1" "s['peers'][0]['$2']"; }
sources_of() { trd_json "$1" "'+'.join(k for k, v in s['peers'][0]['sources'].items() if v)"; }

# wait_both STATE SECONDS: until both gateways report STATE; prints the seconds it took.
wait_both() {
    local state=$1 secs=$2 start=$SECONDS
    while ((SECONDS - start < secs)); do
        if [[ $(peer_field trdA state) == "$state" && $(peer_field trdB state) == "$state" ]]; then
            echo $((SECONDS - start))
            return 0
        fi
        sleep 0.2
    done
    log "not $state after $secs s: A=$(peer_field trdA state) B=$(peer_field trdB state)" >&2
    return 1
}

t_qkd_required() {
    fresh 120 180 required || return 1
    local side
    for side in trdA trdB; do
        local src id
        src=$(sources_of $side)
        id=$(peer_field $side qkd_key_id)
        log "$side: state $(peer_field $side state), sources $src, qkd_key_id $id"
        [[ $src == x25519+mlkem+qkd && $id != None ]] || return 1
    done
    "$TRIDENT" status trdA | grep -q 'qkd: true (policy required)' || { log "human view lacks qkd: true"; return 1; }
    "$NETNS" exec lana ping -c 3 -i 0.2 -W 2 192.168.20.2 >/dev/null || { log "ping failed"; return 1; }
    [[ -f $WORK/data.bin ]] || head -c 20M /dev/urandom >"$WORK/data.bin"
    tcp_transfer lana lanb 192.168.20.2 "$WORK/data.bin" 120
}

t_qkd_kme_b_killed() {
    fresh 4 8 required || return 1
    ping_ok || { log "no traffic before the KME died"; return 1; }
    trd_kme_stop b "$WORK" KILL
    local took
    took=$(wait_both blocked 30) || return 1
    log "blocked $took s after KME B was killed (epoch 4 s, reject age 8 s)"
    ping_ok && { log "traffic passes while blocked"; return 1; }
    log "last_kme_error: A=$(peer_field trdA last_kme_error) B=$(peer_field trdB last_kme_error)"
    [[ "$(peer_field trdA last_kme_error)$(peer_field trdB last_kme_error)" != NoneNone ]] || return 1
    trd_kme_start b "$WORK" || return 1
    took=$(wait_both up 20) || return 1
    local i
    for ((i = 0; i < 10; i++)); do ping_ok && break; done
    log "up again $took s after KME B restarted; sources $(sources_of trdA)"
    ping_ok && ((took <= 4 + 8)) && [[ $(sources_of trdA) == x25519+mlkem+qkd ]]
}

t_qkd_preferred_kme_b_dead() {
    fresh 4 8 preferred || return 1
    [[ $(sources_of trdA) == x25519+mlkem+qkd ]] || { log "no QKD before the KME died"; return 1; }
    trd_kme_stop b "$WORK" KILL
    # 16 s of pings: longer than the reject age, so the tunnel has rekeyed without QKD.
    local out
    out=$("$NETNS" exec lana ping -q -i 0.2 -c 80 -W 1 192.168.20.2 | grep 'packets transmitted')
    log "$out"
    local received
    received=$(grep -oE '[0-9]+ received' <<<"$out" | cut -d' ' -f1)
    ((${received:-0} >= 76)) || { log "traffic did not keep flowing"; return 1; }
    wait_both degraded 10 >/dev/null || return 1
    local ea eb
    ea=$(peer_field trdA last_kme_error)
    eb=$(peer_field trdB last_kme_error)
    log "degraded: sources $(sources_of trdA); last_kme_error A=$ea B=$eb"
    [[ $(sources_of trdA) == x25519+mlkem && "$ea$eb" != NoneNone ]] || return 1
    "$TRIDENT" status trdA | grep -q 'last kme error' || [[ $ea == None ]] || return 1
    ping_ok || return 1
    trd_kme_start b "$WORK" || return 1
    local took
    took=$(wait_both up 20) || return 1
    log "QKD back $took s after KME B restarted"
}

t_qkd_pool_drained() {
    # Three keys in each pool and a rate of 1 bit/s (one 256-bit key every ~4 minutes).
    fresh 4 8 required --key-rate-bps 1 --max-key-count 3 || return 1
    ping_ok || { log "no traffic before the pool ran dry"; return 1; }
    local took
    took=$(wait_both blocked 40) || return 1
    log "blocked after $took s; stored_key_count A=$(trd_kme_count a "$WORK") B=$(trd_kme_count b "$WORK")"
    log "last_kme_error: A=$(peer_field trdA last_kme_error) B=$(peer_field trdB last_kme_error)"
    ping_ok && { log "traffic passes while blocked"; return 1; }
    # The simulated link recovers: the KMEs re-read key_rate_bps when their file changes.
    sed -i 's/^key_rate_bps = .*/key_rate_bps = 2560.0/' "$WORK"/kme/kme-a.toml "$WORK"/kme/kme-b.toml
    took=$(wait_both up 20) || return 1
    log "up again $took s after the key rate was restored"
    local i
    for ((i = 0; i < 10; i++)); do ping_ok && break; done
    ping_ok
}

t_qkd_forged_packets() {
    # A fixed pool (rate 0): any key an attacker made a KME hand out would show.
    KME_LOG="info,qkd::sim::server=debug" fresh 120 180 required --key-rate-bps 0 --max-key-count 100 || return 1
    local ca cb calls exchanges drops_before
    ca=$(trd_kme_count a "$WORK")
    cb=$(trd_kme_count b "$WORK")
    calls=$(grep -c '_keys' "$WORK/kme-b.log")
    exchanges=$(peer_field trdB keymix_exchanges)
    drops_before=$(trd_json trdB "s['dropped']")
    log "before: stored_key_count A=$ca B=$cb, KME B key calls $calls, exchanges $exchanges"
    local pub_a pub_b sent
    pub_a=$("$TRIDENT" pubkey <"$WORK/a.key")
    pub_b=$("$TRIDENT" pubkey <"$WORK/b.key")
    # keymix's MAC: scripts/lib/keymix_mac.py (PYTHONPATH survives `ip netns exec`).
    sent=$(PYTHONPATH=$ROOT/scripts/lib "$NETNS" exec wan python3 - "$pub_a" "$pub_b" <<'PY'

import base64, hashlib, os, socket, struct, sys, time, uuid
from keymix_mac import keymix_mac, mac1_key_v1
pub_a, pub_b = (base64.b64decode(k) for k in sys.argv[1:3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
to = ("198.51.100.2", 51820)

def init(auth=None, mac1=None):
    """A well-formed Init (docs/PROTOCOL.md) claiming to come from gateway A, with QKD."""
    key_id = str(uuid.uuid4()).encode()
    body = bytes([0x81, 1, 7, 0]) + struct.pack("<IQQ", int.from_bytes(os.urandom(4), "little"), 1, 1 << 62)
    body += pub_a + os.urandom(32) + os.urandom(1184) + bytes([1, len(key_id)]) + key_id
    body += auth or os.urandom(16)
    return body + (mac1 or os.urandom(16)) + bytes(16)

# 1. Inits that pass the cheap mac1 check (anyone knowing B's public key can compute it)
#    but carry a garbage auth tag: they must die at the auth check, before any KME call.
valid_mac1 = 0
try:
    mac1_key = mac1_key_v1(pub_b)
    for _ in range(10):
        m = init(mac1=bytes(16))
        m = m[:-32] + keymix_mac(mac1_key, m[:-32]) + bytes(16)
        s.sendto(m, to)
        valid_mac1 += 1
        time.sleep(0.2)
except ImportError:
    print("    (python3-cryptography missing: skipping Inits with a valid mac1)", file=sys.stderr)
# 2. Correctly sized Inits with garbage tags, 3. random bytes behind the Init type byte.
for _ in range(300):
    s.sendto(init(), to)
for i in range(3000):
    size = [1339, 1303, 148, 32, 1200, 64, 1, 2000][i % 8]
    s.sendto(b"\x81" + os.urandom(size - 1), to)
print(valid_mac1)
PY
) || return 1
    sleep 1
    local na nb calls_after exchanges_after bad_auth
    na=$(trd_kme_count a "$WORK")
    nb=$(trd_kme_count b "$WORK")
    calls_after=$(grep -c '_keys' "$WORK/kme-b.log")
    exchanges_after=$(peer_field trdB keymix_exchanges)
    # The pair speaks keymix version 2 (pinned after its first exchange), so a version-1
    # Init dies as a downgrade, before the auth check; either way before any KME call.
    bad_auth=$(trd_json trdB "sum(s['dropped'].get(k, 0) - ($drops_before).get(k, 0) for k in ('keymix_bad_auth', 'keymix_downgrade'))")
    log "sent $sent Inits with a valid mac1 but a forged auth tag; $bad_auth dropped at the auth check or as downgrades"
    log "after: stored_key_count A=$na B=$nb, KME B key calls $calls_after, exchanges $exchanges_after"
    log "dropped on B: $(trd_json trdB "{k: v - ($drops_before).get(k, 0) for k, v in s['dropped'].items() if v != ($drops_before).get(k, 0)}")"
    [[ $na == "$ca" && $nb == "$cb" ]] || { log "stored_key_count changed"; return 1; }
    [[ $calls_after == "$calls" ]] || { log "KME B was called"; return 1; }
    [[ $exchanges_after == "$exchanges" ]] || { log "a forged packet completed an exchange"; return 1; }
    ((bad_auth >= sent)) || { log "only $bad_auth of $sent Inits with a valid mac1 were dropped at the auth or version check"; return 1; }
    [[ $(peer_field trdB state) == up ]] || return 1
    "$NETNS" exec lana ping -c 3 -i 0.2 -W 2 192.168.20.2 >/dev/null
}

TESTS+=(t_qkd_required t_qkd_kme_b_killed t_qkd_preferred_kme_b_dead t_qkd_pool_drained
    t_qkd_forged_packets)
