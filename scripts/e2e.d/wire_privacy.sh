# keymix version 2 on the wire (issue 20), sourced by scripts/e2e.sh: what a passive observer
# of the WAN sees of a version-2 pair (scripts/lib/wire_privacy.py checks the capture), with a
# version-1 capture to show the check can fail, the audit on the version-2 capture, and a
# rolling upgrade from version 1 with a replayed version-1 Init afterwards (dataplane.sh
# brings dp_attacker_up and ATTACKER, auth_lifecycle.sh auth_wait).

WP_CHECK=$ROOT/scripts/lib/wire_privacy.py

# wp_capture_start FILE: tcpdump on the WAN router's link to gateway A (every datagram
# between the sites crosses it), all UDP, into FILE; returns once tcpdump is listening.
wp_capture_start() {
    rm -f "$1"
    "$NETNS" exec wan tcpdump -i a0 -U -n -w "$1" udp 2>"$WORK/wp-tcpdump.log" &
    echo $! >"$WORK/wp-tcpdump.pid"
    local i
    for ((i = 0; i < 50; i++)); do
        grep -q "listening on" "$WORK/wp-tcpdump.log" && return 0
        sleep 0.1
    done
    log "tcpdump did not start: $(cat "$WORK/wp-tcpdump.log")"
    return 1
}

wp_capture_stop() {
    trd_stop_pidfile "$WORK/wp-tcpdump.pid" INT 5
}

# wp_poll_start FILE SECONDS: in the background (at most SECONDS), every 0.25 s one line per
# gateway: "unix-time name epoch version pinned_version qkd_key_id state auth" (first peer).
wp_poll_start() {
    python3 - "$TRIDENT" "$1" "$2" trdA trdB <<'PY' &
import json, subprocess, sys, time
trident, out, secs, names = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4:]
end = time.monotonic() + secs
with open(out, "a", buffering=1) as f:
    while time.monotonic() < end:
        for name in names:
            r = subprocess.run([trident, "status", name, "--json"], capture_output=True, text=True)
            try:
                p = json.loads(r.stdout)["peers"][0]
            except (ValueError, KeyError, IndexError):
                continue
            fields = [p.get(k) for k in ("epoch", "version", "pinned_version", "qkd_key_id", "state", "auth")]
            f.write("%.3f %s %s\n" % (time.time(), name, " ".join(str(v) for v in fields)))
        time.sleep(0.25)
PY
    echo $! >"$WORK/wp-poll.pid"
}

wp_poll_stop() {
    trd_stop_pidfile "$WORK/wp-poll.pid" TERM 2
}

# Whatever a test left running, also when it failed or was interrupted.
wp_down() {
    wp_poll_stop
    wp_capture_stop
    trd_stop_pidfile "$WORK/wp-traffic.pid" TERM 2
}

# wp_traffic: pings of many sizes both ways across the tunnel (inner IP packets of 28 bytes
# up to the tunnel MTU of 1420), over and over until killed.
wp_traffic() {
    local s
    while :; do
        for s in 0 1 15 16 17 56 57 100 255 256 511 512 999 1000 1371 1372 1392; do
            "$NETNS" exec lana ping -c 1 -W 1 -s "$s" 192.168.20.2 >/dev/null 2>&1
            "$NETNS" exec lanb ping -c 1 -W 1 -s "$s" 192.168.10.2 >/dev/null 2>&1
        done
    done
}

# wp_wait_epochs N SECONDS: until both gateways are at epoch >= N.
wp_wait_epochs() {
    auth_wait "$2" '[[ $(trd_peer trdA epoch) != None && $(trd_peer trdB epoch) != None ]] && (( $(trd_peer trdA epoch) >= '"$1"' && $(trd_peer trdB epoch) >= '"$1"' ))' >/dev/null
}

# wp_run TAG EPOCHS: with the configs in WORK ready: capture the WAN into WORK/TAG.pcap from
# before the first contact, start both gateways (and the status poller, WORK/TAG.poll),
# traffic of many sizes and one TCP transfer until both are at epoch EPOCHS, then stop the
# gateways (so the capture holds every epoch of the key log) and the capture.
wp_run() {
    local tag=$1 epochs=$2
    rm -f "$WORK/$tag.poll"
    wp_capture_start "$WORK/$tag.pcap" || return 1
    wp_poll_start "$WORK/$tag.poll" 90
    trd_start a "$WORK" && trd_start b "$WORK" || return 1
    trd_wait_state trdA up 20 && trd_wait_state trdB up 20 || {
        log "tunnel not up: A $(trd_peer trdA state), B $(trd_peer trdB state)"
        return 1
    }
    WP_MTU=$("$NETNS" exec gwa cat /sys/class/net/trdA/mtu)
    wp_traffic &
    echo $! >"$WORK/wp-traffic.pid"
    [[ -f $WORK/wp-data.bin ]] || head -c 2M /dev/urandom >"$WORK/wp-data.bin"
    tcp_transfer lana lanb 192.168.20.2 "$WORK/wp-data.bin" 30 || return 1
    wp_wait_epochs "$epochs" 60 || { log "not at epoch $epochs: A $(trd_peer trdA epoch), B $(trd_peer trdB epoch)"; return 1; }
    trd_stop_pidfile "$WORK/wp-traffic.pid" TERM 2
    trd_stop a "$WORK"
    trd_stop b "$WORK"
    wp_poll_stop
    wp_capture_stop
    # Key IDs (both sides name the same key; a line per epoch), the highest epoch seen.
    awk '$6 != "None" { print $6 }' "$WORK/$tag.poll" | sort -u >"$WORK/$tag.keyids"
    WP_MAX_EPOCH=$(awk '$3 != "None" && $3 > m { m = $3 } END { print m + 0 }' "$WORK/$tag.poll")
    WP_VERSIONS=$(awk '$4 != "None" { print $4 }' "$WORK/$tag.poll" | sort -u | tr '\n' ' ')
    log "$tag: captured $(stat -c %s "$WORK/$tag.pcap") bytes; epochs up to $WP_MAX_EPOCH, keymix versions seen in status: $WP_VERSIONS; $(wc -l <"$WORK/$tag.keyids") QKD key IDs; tunnel MTU $WP_MTU"
}

# wp_check TAG: the checker on WORK/TAG.pcap (both static keys, the key IDs seen, every epoch
# reached and the one after it, which an Init in flight at the end may carry); JSON in
# WORK/TAG.json, summary logged; returns the checker's exit code.
wp_check() {
    local tag=$1 rc
    python3 "$WP_CHECK" check "$WORK/$tag.pcap" \
        --pubkey "$("$TRIDENT" pubkey <"$WORK/a.key")" --pubkey "$("$TRIDENT" pubkey <"$WORK/b.key")" \
        --key-ids "$WORK/$tag.keyids" --max-epoch $((WP_MAX_EPOCH + 1)) --mtu "$WP_MTU" \
        >"$WORK/$tag.json" 2>"$WORK/$tag.summary"
    rc=$?
    sed "s/^/    $tag| /" "$WORK/$tag.summary"
    return $rc
}

# wp_json TAG EXPR: a python expression over the checker's JSON (bound to `r`).
wp_json() {
    python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print($2)" "$WORK/$1.json"
}

# wp_audit BROKEN [PSK_FILE]: `trident audit` of WORK/v2.pcap with gateway A's key log; the
# per-epoch results as a string like "TTTU" (recovered, not recovered, unknown).
wp_audit() {
    local psk=()
    [[ -n ${2:-} ]] && psk=(--bootstrap-psk-file "$2")
    "$TRIDENT" audit --pcap "$WORK/v2.pcap" --keylog "$WORK/a.keylog" --broken "$1" "${psk[@]}" --json |
        python3 -c "import json,sys; print(''.join({True: 'T', False: 'F', None: 'U'}[e['recovered']] for e in json.load(sys.stdin)['epochs']))"
}

# t_v2_wire_privacy: a version-2 pair (the default) with a per-peer bootstrap PSK and QKD
# required, captured on the WAN from before the first contact through the bootstrap and 4
# more epochs (5 s) with traffic of many sizes: no static key, QKD key ID, epoch number or
# timestamp in any datagram, no two Inits share 8 bytes at one offset, every data message
# padded. The audit of that capture recovers every epoch only with all three sources broken
# (and the PSK). Then a version-1 pair (`max_version = 1` on both sides, padding switched off
# with TRIDENT_WG_PADDING=0) is captured the same way, and the checker must flag all of it.
t_v2_wire_privacy() {
    wp_v2_body
    local rc=$?
    wp_down
    return $rc
}

wp_v2_body() {
    fresh_configs 5 12 required || return 1
    trd_add_psk "$WORK"
    rm -f "$WORK/a.keylog"
    sed -i "/^\[keymix\]/a keylog_file = \"$WORK/a.keylog\"" "$WORK/a.toml"
    wp_run v2 5 || return 1
    [[ $WP_VERSIONS == "2 " ]] || { log "status showed keymix versions $WP_VERSIONS, not only 2"; return 1; }
    (($(wc -l <"$WORK/v2.keyids") >= 4)) || { log "too few QKD key IDs seen to check"; return 1; }
    local rc
    wp_check v2
    rc=$?
    ((rc == 0)) || { log "version 2 capture: checker exit $rc: $(wp_json v2 "r['violations'], r['problems']")"; return 1; }

    # The audit: the capture plus A's key log, with the leaked bootstrap PSK (the bootstrap
    # epoch is keyed with it); all three sources broken recover every epoch from the
    # bootstrap on, any one or two recover none; without the PSK not even all three. The
    # newest epoch may be U: installed just before the capture stopped, it carried no packet.
    local all got list lines first
    lines=$(grep -c '^trident-keylog-v2' "$WORK/a.keylog")
    all=$(wp_audit all "$WORK/ab.psk")
    first=$("$TRIDENT" audit --pcap "$WORK/v2.pcap" --keylog "$WORK/a.keylog" --broken all \
        --bootstrap-psk-file "$WORK/ab.psk" --json | python3 -c "import json,sys; print(json.load(sys.stdin)['epochs'][0]['epoch'])")
    log "audit, key log of $lines version-2 epochs (of $(grep -vc '^#' "$WORK/a.keylog") lines), first epoch $first; broken all + PSK: $all"
    [[ ${#all} -ge 4 && ${#all} == "$lines" && $all =~ ^T{4,}U?$ && $first == 1 ]] || {
        log "all three broken (and the PSK) must recover every epoch from the bootstrap on (>= 4)"
        return 1
    }
    for list in x25519 mlkem qkd x25519,mlkem x25519,qkd mlkem,qkd; do
        got=$(wp_audit "$list" "$WORK/ab.psk")
        log "broken $list + PSK: $got"
        [[ ${#got} == "${#all}" && $got != *T* ]] || { log "$list must recover nothing"; return 1; }
    done
    got=$(wp_audit all)
    log "broken all, without the PSK: $got"
    [[ ${#got} == "${#all}" && $got != *T* ]] || { log "without the bootstrap PSK nothing may be recovered"; return 1; }

    # The same checker on a version-1 pair must flag every claim (else it proves nothing).
    fresh_configs 4 10 required || return 1
    trd_add_psk "$WORK"
    sed -i "/^\[keymix\]/a max_version = 1" "$WORK/a.toml" "$WORK/b.toml"
    TRIDENT_WG_PADDING=0 wp_run v1 3 || return 1
    [[ $WP_VERSIONS == "1 " ]] || { log "status showed keymix versions $WP_VERSIONS, not only 1"; return 1; }
    wp_check v1
    rc=$?
    local flagged
    flagged=$(wp_json v1 "' '.join(k for k, v in r['violations'].items() if v)")
    log "version 1 capture: checker exit $rc, flagged: $flagged"
    ((rc == 1)) || { log "the checker must flag the version-1 capture (exit 1), problems: $(wp_json v1 "r['problems']")"; return 1; }
    [[ $flagged == "static_key key_id epoch timestamp linkable_inits padding" ]] || {
        log "the checker missed something in the version-1 capture"
        return 1
    }
}

# t_v2_rolling_upgrade: A runs the default (version 2), B `max_version = 1` (a release that
# has not been upgraded): they talk version 1. Under a ping every 50 ms, B is upgraded as an
# operator does it (stop, new config, start with its state directory): from the next epoch
# both sides speak version 2, pinned, continuing the chain, and traffic is lost only while
# B is down and until its first epoch (a restarted gateway holds no WireGuard session:
# traffic needs a fresh epoch). Then a version-1 Init recorded from B before the upgrade is
# replayed to A from a third address: a counted downgrade, nothing else.
t_v2_rolling_upgrade() {
    wp_upgrade_body
    local rc=$?
    wp_down
    return $rc
}

# wp_now: wall clock, seconds with decimals.
wp_now() { date +%s.%N; }

# wp_epoch_after NAME E0: "epoch:version " of NAME's first peer when its epoch is above E0.
wp_epoch_after() {
    trd_json "$1" "'%s:%s' % (s['peers'][0]['epoch'], s['peers'][0]['version']) if (s['peers'][0]['epoch'] or 0) > $2 else ''"
}

# wp_gap FILE: the longest gap (s) between consecutive replies in `ping -D` output.
wp_gap() {
    awk -F'[][]' '/bytes from/ { t = $2 + 0; if (last && t - last > gap) gap = t - last; last = t } END { printf "%.2f", gap }' "$1"
}

wp_upgrade_body() {
    fresh_configs 8 20 || return 1
    sed -i "/^\[keymix\]/a max_version = 1" "$WORK/b.toml"
    wp_capture_start "$WORK/upgrade.pcap" || return 1
    trd_start a "$WORK" && trd_start b "$WORK" || return 1
    trd_wait_state trdA up 20 && trd_wait_state trdB up 20 || {
        log "tunnel not up: A $(trd_peer trdA state), B $(trd_peer trdB state)"
        return 1
    }
    ping_ok || traffic_back 5 || { log "no traffic in version 1"; return 1; }
    local va vb pa pb
    va=$(trd_peer trdA version)
    vb=$(trd_peer trdB version)
    pa=$(trd_peer trdA pinned_version)
    pb=$(trd_peer trdB pinned_version)
    log "before the upgrade: epoch A $(trd_peer trdA epoch) B $(trd_peer trdB epoch); version A $va B $vb; pinned A $pa B $pb"
    [[ $va == 1 && $vb == 1 && $pa != 2 && $pb != 2 ]] || { log "expected version 1 on both sides, unpinned"; return 1; }

    # Upgrade B right after an epoch began, so no exchange of A's is pending while B is down
    # (an Init of A's unanswered for 3 s falls back to version 1 for that epoch, by design).
    local e_start
    e_start=$(trd_peer trdA epoch)
    auth_wait 20 "(( \$(trd_peer trdA epoch) > $e_start ))" >/dev/null || { log "no new epoch in version 1"; return 1; }
    local endpoint0
    endpoint0=$(trd_peer trdA endpoint)
    "$NETNS" exec lana ping -D -n -c 300 -i 0.05 -W 1 192.168.20.2 >"$WORK/upgrade-ping.txt" 2>&1 &
    local pinger=$!
    sleep 2
    local e0 t_stop t_up
    e0=$(trd_peer trdA epoch)
    t_stop=$(wp_now)
    trd_stop b "$WORK"
    ls "$WORK/state-b"/peer-*.chain >/dev/null 2>&1 || { log "B left no state file"; kill $pinger; return 1; }
    sed -i '/^max_version = 1$/d' "$WORK/b.toml"
    trd_start b "$WORK" || { kill $pinger; return 1; }
    t_up=$(wp_now)
    local seen_a=" " seen_b=" " x i
    e0=$((e0 > $(trd_peer trdA epoch) ? e0 : $(trd_peer trdA epoch)))
    # Each epoch after e0 that either side shows, with its version (" epoch:version"),
    # polled every 0.2 s until both sides are pinned.
    for ((i = 0; i < 100; i++)); do
        x=$(wp_epoch_after trdA "$e0")
        [[ -n $x && $seen_a != *" $x "* ]] && seen_a+="$x "
        x=$(wp_epoch_after trdB "$e0")
        [[ -n $x && $seen_b != *" $x "* ]] && seen_b+="$x "
        [[ $seen_a != " " && $seen_b != " " && $(trd_peer trdA pinned_version) == 2 && $(trd_peer trdB pinned_version) == 2 ]] && break
        sleep 0.2
    done
    wait $pinger
    local summary sent received gap
    summary=$(grep 'packets transmitted' "$WORK/upgrade-ping.txt")
    sent=$(grep -oE '^[0-9]+' <<<"$summary")
    received=$(grep -oE '[0-9]+ received' <<<"$summary" | grep -oE '[0-9]+')
    gap=$(wp_gap "$WORK/upgrade-ping.txt")
    local down
    down=$(python3 -c "import sys; print('%.1f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$t_stop" "$t_up")
    log "upgrade of B at epoch $e0: B down (stop to control socket) $down s; pings: $summary; longest gap $gap s"
    log "first epochs after the upgrade (epoch, version): A ${seen_a:-none}; B ${seen_b:-none}"
    log "after: A version $(trd_peer trdA version) pinned $(trd_peer trdA pinned_version) auth $(trd_peer trdA auth); B version $(trd_peer trdB version) pinned $(trd_peer trdB pinned_version) auth $(trd_peer trdB auth)"
    # The next epoch, on both sides, is version 2 (and every one after it); both pinned; the
    # chain continued.
    python3 - "$e0" "$seen_a" "$seen_b" <<'PY' || { log "the next epoch is not version 2 on both sides"; return 1; }
import sys
e0 = int(sys.argv[1])
for seen in sys.argv[2:4]:
    pairs = [tuple(p.split(":")) for p in seen.split()]
    if not pairs or pairs[0][0] != str(e0 + 1) or any(v != "2" for _, v in pairs):
        sys.exit(1)
PY
    [[ $(trd_peer trdA pinned_version) == 2 && $(trd_peer trdB pinned_version) == 2 ]] || { log "not pinned to version 2"; return 1; }
    [[ $(trd_peer trdA auth) == chain && $(trd_peer trdB auth) == chain ]] || { log "the version-1 chain was not continued"; return 1; }
    # Loss: only the restart's (B down, then its first epoch and WireGuard session), in one
    # gap; traffic again within 10 s of B's start (a functional bound, not a speed test).
    python3 - "$sent" "$received" "$gap" "$down" <<'PY' || { log "more loss than the restart explains"; return 1; }
import sys
sent, received, gap, down = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
lost = sent - received
print("    lost %d pings (%.2f s at 50 ms); the longest gap %.1f s covers %d of them; B was down %.1f s"
      % (lost, lost * 0.05, gap, max(0, round(gap / 0.05) - 1), down))
# Every lost ping in the one gap (+2 for where ping's 50 ms steps and the gap's edges fall),
# and that gap no longer than B's downtime plus 10 s.
sys.exit(0 if sent == 300 and lost <= gap / 0.05 + 2 and gap <= down + 10 else 1)
PY

    # Replay a version-1 Init of B's, recorded before the upgrade, to A from a third address.
    local rec src init
    rec=$(python3 "$WP_CHECK" extract "$WORK/upgrade.pcap" --src 198.51.100.2 --first-byte 0x81 --version 1 --partial) || {
        log "no version-1 Init from B in the capture"
        return 1
    }
    src=${rec%% *}
    init=${rec#* }
    dp_attacker_up
    local drops0 unv0
    drops0=$(trd_drops trdA keymix_downgrade)
    unv0=$(trd_peer trdA unverified)
    "$NETNS" exec lana ping -q -n -c 60 -i 0.05 -W 1 192.168.20.2 >"$WORK/replay-ping.txt" 2>&1 &
    pinger=$!
    "$NETNS" exec wan python3 - "$init" "$ATTACKER" <<'PY' || { kill $pinger; log "replay failed"; return 1; }
import socket, sys, time
init, src = bytes.fromhex(sys.argv[1]), sys.argv[2]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((src, 0))
for _ in range(3):
    s.sendto(init, ("192.0.2.2", 51820))
    time.sleep(0.3)
PY
    wait $pinger
    sleep 0.5
    local drops1 unv1 endpoint1 human
    drops1=$(trd_drops trdA keymix_downgrade)
    unv1=$(trd_peer trdA unverified)
    endpoint1=$(trd_peer trdA endpoint)
    human=$("$TRIDENT" status trdA)
    summary=$(grep 'packets transmitted' "$WORK/replay-ping.txt")
    log "replayed B's version-1 Init (recorded from $src, ${#init} hex digits) 3 times from $ATTACKER to A"
    log "A: keymix_downgrade $drops0 -> $drops1, unverified $unv0 -> $unv1, endpoint $endpoint1 (was $endpoint0), state $(trd_peer trdA state); pings meanwhile: $summary"
    grep -E 'downgrade|unverified' <<<"$human" | sed 's/^/    status| /'
    ((drops1 - drops0 >= 1)) || { log "no downgrade drop counted"; return 1; }
    ((unv1 - unv0 >= 1)) || { log "not counted as unverified for B"; return 1; }
    [[ $human == *"keymix_downgrade:"* && $human == *"unverified:"* ]] || { log "human status shows neither"; return 1; }
    [[ $endpoint1 == "$endpoint0" ]] || { log "A's endpoint for B moved"; return 1; }
    [[ $summary == *" 0% packet loss"* ]] || { log "pings lost during the replay"; return 1; }
    [[ $(trd_peer trdA pinned_version) == 2 && $(trd_peer trdA version) == 2 ]] || { log "A left version 2"; return 1; }
    # A answered nothing to the replay (no Resp, no cookie reply to the third address).
    wp_capture_stop
    if python3 "$WP_CHECK" extract "$WORK/upgrade.pcap" --src 192.0.2.2 --dst "$ATTACKER" >/dev/null; then
        log "A sent something to $ATTACKER"
        return 1
    fi
}

TESTS+=(t_v2_wire_privacy t_v2_rolling_upgrade)
CLEANUP_HOOKS+=(wp_down)
