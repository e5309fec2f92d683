# wg-quick's hooks, table and fwmark (issue 11), sourced by scripts/e2e.sh: hooks run in
# order pre_up < post_up < pre_down < post_down with %i replaced, post_up once the device
# exists; a failing pre_up leaves no device; table = "off" adds no routes; fwmark marks the
# tunnel's UDP (counted by an nft rule in gateway A's namespace).

# hk_extra SIDE TEXT: TEXT goes into SIDE's [interface] section.
hk_extra() {
    local file=$WORK/$1.toml
    python3 - "$file" "$2" <<'PY'
import sys
path, extra = sys.argv[1], sys.argv[2]
text = open(path).read()
text = text.replace("listen_port = 51820\n", "listen_port = 51820\n" + extra + "\n", 1)
open(path, "w").write(text)
PY
}

t_hooks_order_table_fwmark() {
    fresh_configs 120 180 || return 1
    rm -f "$WORK/hooks.out"
    local out=$WORK/hooks.out
    hk_extra a "table = \"off\"
fwmark = 0x1234
pre_up = \"echo pre_up %i >> $out\"
post_up = [\"ip link show %i >/dev/null && echo post_up %i >> $out\"]
pre_down = \"ip link show %i >/dev/null && echo pre_down %i >> $out\"
post_down = \"echo post_down %i >> $out\""
    hk_extra b 'table = 1234'
    "$NETNS" exec gwa nft -f - <<'NFT' || { log "nft rule failed"; return 1; }
table inet hk {
    chain out {
        type filter hook output priority 0;
        meta mark 0x1234 udp dport 51820 counter
    }
}
NFT
    trd_start a "$WORK" && trd_start b "$WORK" || return 1
    trd_wait_state trdA up 20 && trd_wait_state trdB up 20 || { log "tunnel not up"; return 1; }
    local routes
    routes=$("$NETNS" exec gwa ip route show dev trdA)
    log "routes via trdA with table = off: ${routes:-none}"
    if grep -q 192.168.20.0/24 <<<"$routes"; then
        log "table = off still routed the peer's allowed_ips"
        return 1
    fi
    routes=$("$NETNS" exec gwb ip route show table 1234)
    log "B's table 1234: $(tr '\n' ' ' <<<"$routes")"
    grep -q "192.168.10.0/24 dev trdB" <<<"$routes" || { log "table = 1234 has no route"; return 1; }
    if "$NETNS" exec gwb ip route show table main | grep -q 192.168.10.0/24; then
        log "table = 1234 also routed in the main table"
        return 1
    fi
    local packets
    packets=$("$NETNS" exec gwa nft list table inet hk | grep -o 'packets [0-9]*' | awk '{print $2}')
    log "UDP packets to port 51820 with mark 0x1234: ${packets:-none}"
    ((${packets:-0} > 0)) || { log "fwmark not set on the tunnel's UDP"; return 1; }
    trd_stop a "$WORK"
    "$NETNS" exec gwa nft delete table inet hk || true
    local got want
    got=$(cat "$out" 2>/dev/null)
    want=$'pre_up trdA\npost_up trdA\npre_down trdA\npost_down trdA'
    log "hook order: $(tr '\n' ' ' <<<"$got")"
    [[ $got == "$want" ]] || { log "wanted: $(tr '\n' ' ' <<<"$want")"; return 1; }
}

t_hooks_pre_up_failure() {
    fresh_configs 120 180 || return 1
    hk_extra a 'pre_up = ["true", "echo refusing %i >&2; exit 7"]'
    if timeout 20 "$NETNS" exec gwa "$TRIDENT" up "$WORK/a.toml" >"$WORK/a.log" 2>&1; then
        log "up succeeded although pre_up failed"
        return 1
    fi
    grep -q "refusing trdA" "$WORK/a.log" || { log "hook stderr not logged"; tail -5 "$WORK/a.log"; return 1; }
    grep -q "pre_up" "$WORK/a.log" || { log "error does not name pre_up"; return 1; }
    if "$NETNS" exec gwa ip link show trdA >/dev/null 2>&1; then
        log "device trdA left behind"
        return 1
    fi
    log "pre_up failure: up exited non-zero, no device: $(tail -1 "$WORK/a.log")"
}

t_hooks_post_up_failure() {
    fresh_configs 120 180 || return 1
    rm -f "$WORK/hooks.out"
    local out=$WORK/hooks.out
    hk_extra a "post_up = \"exit 3\"
post_down = \"echo post_down %i >> $out\""
    if timeout 20 "$NETNS" exec gwa "$TRIDENT" up "$WORK/a.toml" >"$WORK/a.log" 2>&1; then
        log "up succeeded although post_up failed"
        return 1
    fi
    grep -q "post_up" "$WORK/a.log" || { log "error does not name post_up"; return 1; }
    if "$NETNS" exec gwa ip link show trdA >/dev/null 2>&1; then
        log "device trdA left up after post_up failed"
        return 1
    fi
    # As wg-quick: an interface that never finished coming up gets no down hooks.
    [[ ! -s $out ]] || { log "down hooks ran: $(cat "$out")"; return 1; }
    log "post_up failure: up exited non-zero, device removed: $(tail -1 "$WORK/a.log")"
}

TESTS+=(t_hooks_order_table_fwmark t_hooks_pre_up_failure t_hooks_post_up_failure)
