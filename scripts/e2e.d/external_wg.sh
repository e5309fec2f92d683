# Trident next to a stock WireGuard (issue 12), sourced by scripts/e2e.sh:
#  - external data plane: wireguard-go wgA/wgB carry the traffic, Trident (trxA/trxB, keymix
#    on UDP 51821) sets their peer's PSK every epoch; fail closed when QKD is required and
#    one KME dies;
#  - a built-in Trident gateway with one hybrid peer and one plain wireguard-go peer (a
#    third site, namespace trd-gwc).
# wireguard-go and wg are installed from Debian when missing (scripts/install-deps.sh).

# shellcheck source=../lib/wg.sh
. "$ROOT/scripts/lib/wg.sh"
# wireguard-go processes and trd-gwc go away also when a test fails or is interrupted.
trap 'wg_cleanup; cleanup' EXIT

# ext_up EPOCH REJECT [POLICY]: namespaces, wireguard-go on both gateways, Trident in
# external mode on both, waits until traffic flows LAN to LAN.
ext_up() {
    local epoch=$1 reject=$2 policy=${3:-}
    stop_all
    wg_cleanup
    rm -f "$WORK"/*.log "$WORK"/*.keylog
    wg_deps || { log "cannot install wireguard-go/wireguard-tools"; return 1; }
    "$NETNS" up >/dev/null || return 1
    trd_keys "$WORK"
    local pub_a=$TRD_PUB_A pub_b=$TRD_PUB_B
    wg_go gwa wgA && wg_go gwb wgB || return 1
    wg_iface gwa wgA "$WORK/a.key" 51820 10.99.0.1/24 192.168.20.0/24 || return 1
    wg_iface gwb wgB "$WORK/b.key" 51820 10.99.0.2/24 192.168.10.0/24 || return 1
    wg_peer gwa wgA "$pub_b" 198.51.100.2:51820 10.99.0.2/32,192.168.20.0/24 || return 1
    wg_peer gwb wgB "$pub_a" 192.0.2.2:51820 10.99.0.1/32,192.168.10.0/24 || return 1
    local qkd_a="" qkd_b="" sae_a="" sae_b="" keymix_qkd=""
    if [[ -n $policy ]]; then
        trd_kme_init "$WORK" || { log "kme-sim init failed"; return 1; }
        trd_kme_start a "$WORK" && trd_kme_start b "$WORK" || return 1
        keymix_qkd="qkd = \"$policy\""
        qkd_a=$(trd_qkd_table a SAE_A "$TRD_KME_LISTEN_A")
        qkd_b=$(trd_qkd_table b SAE_B "$TRD_KME_LISTEN_B")
        sae_a='sae_id = "SAE_B"'
        sae_b='sae_id = "SAE_A"'
    fi
    local side name wg peer ep key qkd sae metrics
    for side in a b; do
        if [[ $side == a ]]; then
            name=trxA wg=wgA peer=$pub_b ep=198.51.100.2:51821 key=a.key qkd=$qkd_a sae=$sae_a
            metrics='metrics_listen = "127.0.0.1:9587"'
        else
            name=trxB wg=wgB peer=$pub_a ep=192.0.2.2:51821 key=b.key qkd=$qkd_b sae=$sae_b
            metrics=""
        fi
        cat >"$WORK/x$side.toml" <<TOML
[interface]
name = "$name"
private_key_file = "$key"
listen_port = 51821
state_dir = "state-$side"
wireguard = "$wg"
$metrics

[keymix]
epoch_secs = $epoch
reject_after_secs = $reject
keylog_file = "$side.keylog"
$keymix_qkd
$qkd

[[peer]]
public_key = "$peer"
endpoint = "$ep"
$sae
TOML
    done
    trd_start a "$WORK" trxA "$WORK/xa.toml" && trd_start b "$WORK" trxB "$WORK/xb.toml" || return 1
    trd_wait_state trxA up 30 && trd_wait_state trxB up 30 || {
        log "keymix not up: A=$(trd_peer trxA state) B=$(trd_peer trxB state)"
        return 1
    }
    ext_wait_ping 30 || { log "no traffic through wireguard-go after the first epoch"; return 1; }
}

# ext_wait_ping SECONDS: until one ping LAN A -> LAN B is answered.
ext_wait_ping() {
    local start=$SECONDS
    while ((SECONDS - start < $1)); do
        ping_ok && return 0
    done
    return 1
}

ext_down() {
    stop_all
    wg_cleanup
}

# ext_check_psk NAME NS IFACE KEYLOG: the PSK wireguard-go holds is the current epoch's
# (fingerprint equal to the key log's) and not zero. Prints "EPOCH PSK".
ext_check_psk() {
    local name=$1 ns=$2 ifc=$3 keylog=$4 i e1 e2 psk installed
    for ((i = 0; i < 20; i++)); do
        e1=$(trd_peer "$name" epoch)
        installed=$(trd_peer "$name" installed_psk)
        psk=$(wg_psk "$ns" "$ifc")
        e2=$(trd_peer "$name" epoch)
        # Between two epochs the read can straddle the switch: read again.
        if [[ $e1 == "$e2" && $installed == "epoch $e1" ]]; then
            [[ $psk != "(none)" && -n $psk ]] || { log "$ifc: PSK is zero"; return 1; }
            local want got version
            read -r version want <<<"$(wg_keylog_fp "$keylog" "$e1")"
            got=$(wg_psk_fp "$psk" "$version")
            [[ -n $want && $want == "$got" ]] || { log "$ifc epoch $e1: fingerprint $got, key log $want (v$version)"; return 1; }
            echo "$e1 $psk"
            return 0
        fi
        sleep 0.2
    done
    log "$name: no stable epoch to compare"
    return 1
}

t_external_wg_psk_every_epoch() {
    ext_up 5 10 || { ext_down; return 1; }
    "$TRIDENT" status trxA | grep -q 'data plane: external (wgA, wireguard-go)' || {
        log "status lacks the data plane line:"
        "$TRIDENT" status trxA | sed 's/^/    | /'
        ext_down
        return 1
    }
    # Metrics work the same as with the built-in data plane (gateway A serves them).
    "$ROOT/scripts/install-deps.sh" curl=curl >/dev/null || { log "cannot install curl"; ext_down; return 1; }
    local scrape
    scrape=$("$NETNS" exec gwa curl -sf --max-time 5 http://127.0.0.1:9587/metrics) || {
        log "no metrics from the external data plane"
        ext_down
        return 1
    }
    grep -Eq '^trident_peer_epoch\{.*interface="trxA".*\} [1-9]' <<<"$scrape" || {
        log "metrics lack a live epoch for trxA:"
        grep '^trident_peer_epoch' <<<"$scrape" | sed 's/^/    | /'
        ext_down
        return 1
    }
    log "metrics: $(grep -c '^trident_' <<<"$scrape") samples, $(grep '^trident_peer_epoch' <<<"$scrape")"
    local seen=() line epoch psk prev_epoch=-1 rounds=0
    while ((rounds < 4)); do
        line=$(ext_check_psk trxA gwa wgA "$WORK/a.keylog") || { ext_down; return 1; }
        read -r epoch psk <<<"$line"
        if ((epoch != prev_epoch)); then
            ext_check_psk trxB gwb wgB "$WORK/b.keylog" >/dev/null || { ext_down; return 1; }
            [[ " ${seen[*]} " != *" $psk "* ]] || { log "PSK repeated at epoch $epoch"; ext_down; return 1; }
            seen+=("$psk")
            log "epoch $epoch: wgA and wgB hold the key log's PSK (fp $(wg_psk_fp "$psk" 2 | cut -c1-12)...)"
            prev_epoch=$epoch
            rounds=$((rounds + 1))
        fi
        sleep 1
    done
    # The switch-loss figure of the README: pings every 10 ms across 5 s epochs (30 s of them
    # in CI; the README's figure is EXT_PING_COUNT=6000). EXT_PING_COUNT raises the count, to
    # span WireGuard's own rekeys (every 120 s).
    local out count=${EXT_PING_COUNT:-3000}
    out=$("$NETNS" exec lana ping -q -i 0.01 -c "$count" -W 1 192.168.20.2 | grep 'packets transmitted')
    log "ping -i 0.01 -c $count across 5 s epochs over wireguard-go: $out"
    log "wgA latest handshake: $(ip netns exec trd-gwa wg show wgA latest-handshakes | awk '{print systime() - $2}') s ago"
    log "epochs now: A=$(trd_peer trxA epoch) B=$(trd_peer trxB epoch)"
    ext_down
    [[ -n $out ]]
}

t_external_wg_kme_killed() {
    ext_up 4 8 required || { ext_down; return 1; }
    local before
    before=$(wg_psk gwa wgA)
    trd_kme_stop b "$WORK" KILL
    local stopped start
    stopped=$(traffic_stop_secs 40)
    log "traffic stopped $stopped s after KME B was killed (epoch 4 s, reject age 8 s)"
    local rc=0
    ((stopped <= 8 + 1)) || { log "later than reject_after_secs"; rc=1; }
    local sa psk
    sa=$(trd_peer trxA installed_psk)
    psk=$(wg_psk gwa wgA)
    log "A: state $(trd_peer trxA state), installed_psk: $sa"
    [[ $sa == *"fail closed"* ]] || rc=1
    [[ $psk != "(none)" && -n $psk && $psk != "$before" ]] || { log "wgA PSK not replaced"; rc=1; }
    grep -qE "psk_fp=($(wg_psk_fp "$psk" 1)|$(wg_psk_fp "$psk" 2))" "$WORK/a.keylog" && { log "wgA holds a real epoch's PSK"; rc=1; }
    trd_kme_start b "$WORK" || { ext_down; return 1; }
    start=$SECONDS
    ext_wait_ping 40 || { log "traffic did not resume"; rc=1; }
    log "traffic resumed $((SECONDS - start)) s after KME B restarted; A: $(trd_peer trxA installed_psk)"
    ext_down
    return $rc
}

t_plain_wireguard_peer() {
    fresh 120 180 || return 1
    wg_deps || return 1
    wg_site_c
    "$TRIDENT" genkey >"$WORK/c.key"
    "$TRIDENT" genpsk >"$WORK/c.psk"
    local pub_a pub_c
    pub_a=$("$TRIDENT" pubkey <"$WORK/a.key")
    pub_c=$("$TRIDENT" pubkey <"$WORK/c.key")
    wg_go "$WG_GWC" wgC || { wg_cleanup; return 1; }
    wg_iface "$WG_GWC" wgC "$WORK/c.key" 51820 10.99.0.3/24 192.168.10.0/24 || { wg_cleanup; return 1; }
    wg_peer "$WG_GWC" wgC "$pub_a" 192.0.2.2:51820 10.99.0.1/32,192.168.10.0/24 "$WORK/c.psk" || { wg_cleanup; return 1; }
    # Gateway A gets C as a plain peer next to its hybrid peer B.
    trd_stop a "$WORK"
    cat >>"$WORK/a.toml" <<TOML

[[peer]]
public_key = "$pub_c"
endpoint = "198.18.0.2:51820"
allowed_ips = ["10.99.0.3/32"]
keymix = "off"
preshared_key_file = "c.psk"
TOML
    trd_start a "$WORK" || { wg_cleanup; return 1; }
    grep -q 'keymix = "off": classic WireGuard' "$WORK/a.log" || { log "no start-up warning"; wg_cleanup; return 1; }
    local rc=0 i
    for ((i = 0; i < 30; i++)); do ping_ok && break; done
    ping_ok || { log "hybrid peer B: no traffic"; rc=1; }
    for ((i = 0; i < 30; i++)); do
        "$NETNS" exec lana ping -c 1 -W 1 10.99.0.3 >/dev/null 2>&1 && break
    done
    "$NETNS" exec lana ping -c 3 -i 0.2 -W 2 10.99.0.3 >/dev/null || { log "plain peer C: no traffic"; rc=1; }
    local view
    view=$("$TRIDENT" status trdA)
    grep -q 'sources: none (classic WireGuard)' <<<"$view" || rc=1
    grep -q 'warning: plain WireGuard peer' <<<"$view" || rc=1
    log "trdA: B $(trd_json trdA "s['peers'][0]['state']"), C $(trd_json trdA "s['peers'][1]['state']") classic=$(trd_json trdA "s['peers'][1]['classic']")"
    [[ $(trd_json trdA "s['peers'][1]['state']") == up ]] || rc=1
    ip netns exec "$WG_GWC" wg show wgC latest-handshakes | sed 's/^/    wgC: /'
    trd_stop a "$WORK"
    wg_cleanup
    return $rc
}

TESTS+=(t_external_wg_psk_every_epoch t_external_wg_kme_killed t_plain_wireguard_peer)
