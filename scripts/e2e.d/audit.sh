# The audit (`trident audit`) on a real capture of the WAN and gateway A's key log: every
# epoch key needs all three sources; bad input is an error. Sourced by scripts/e2e.sh.

# audit_capture POLICY: both gateways (KMEs when POLICY is set) with 4 s epochs, gateway A
# writing the key log, tcpdump recording the WAN link of site A for at least 3 epochs.
audit_capture() {
    local policy=$1
    fresh_configs 4 8 "$policy" || return 1
    rm -f "$WORK"/wan.pcap "$WORK"/a.keylog
    sed -i "/^\[keymix\]/a keylog_file = \"$WORK/a.keylog\"" "$WORK/a.toml"
    "$NETNS" exec wan tcpdump -i a0 -U -q -w "$WORK/wan.pcap" udp port 51820 2>"$WORK/tcpdump.log" &
    local dump=$!
    sleep 1
    trd_start a "$WORK" && trd_start b "$WORK" || { kill -INT $dump; return 1; }
    trd_wait_state trdA up 20 || { kill -INT $dump; return 1; }
    "$TRIDENT" status trdA | grep -q "keylog: $WORK/a.keylog" || { log "status does not show the key log"; kill -INT $dump; return 1; }
    # 3 more epochs after the first, with traffic in the tunnel.
    "$NETNS" exec lana ping -c 30 -i 0.5 -W 1 192.168.20.2 >/dev/null
    # Stop the gateways first, so every epoch in the key log is in the capture.
    trd_stop a "$WORK"
    trd_stop b "$WORK"
    kill -INT $dump
    wait $dump 2>/dev/null
    log "captured $(stat -c %s "$WORK/wan.pcap") bytes; key log $(grep -c '^trident-keylog-v' "$WORK/a.keylog") epochs; tcpdump: $(grep -o '[0-9]* packets dropped by kernel' "$WORK/tcpdump.log" | head -1)"
}

# audit_recovered LIST: the audit's per-epoch results as a string like "TTFU" (recovered,
# not recovered, unknown: the audit could not rebuild the epoch).
audit_recovered() {
    "$TRIDENT" audit --pcap "$WORK/wan.pcap" --keylog "$WORK/a.keylog" --broken "$1" --json |
        python3 -c "import json,sys; print(''.join({True: 'T', False: 'F', None: 'U'}[e['recovered']] for e in json.load(sys.stdin)['epochs']))"
}

# audit_needs_all_three: on the capture of a QKD-required run (>= 3 epochs), all three
# components broken recover every epoch, and any one or two broken recover none.
audit_needs_all_three() {
    local list got all
    all=$(audit_recovered all)
    log "broken all: $all"
    # The last epoch may be cut off by the end of the capture on a loaded machine (the
    # audit then says `unknown`, never `not recovered`); every other one must be recovered.
    [[ $all =~ ^T{3,}U?$ ]] || { log "all three broken must recover every epoch (>= 3)"; return 1; }
    for list in x25519 mlkem qkd x25519,mlkem x25519,qkd mlkem,qkd; do
        got=$(audit_recovered "$list")
        log "broken $list: $got"
        [[ ${#got} == "${#all}" && $got != *T* ]] || { log "$list must recover nothing"; return 1; }
    done
}

t_audit_rndl() {
    audit_capture required || return 1
    audit_needs_all_three || return 1
    local got
    "$TRIDENT" audit --pcap "$WORK/wan.pcap" --keylog "$WORK/a.keylog" --broken x25519,mlkem | sed 's/^/    | /'

    audit_capture "" || return 1
    got=$(audit_recovered x25519,mlkem)
    log "qkd off, broken x25519,mlkem: $got"
    [[ ${#got} -ge 3 && $got != *F* ]] || { log "without QKD, x25519+mlkem must suffice"; return 1; }
    got=$(audit_recovered x25519)
    [[ $got != *T* ]] || { log "without QKD, x25519 alone must not suffice"; return 1; }
    # Bad input is a clear error, never a panic.
    head -c 100 "$WORK/wan.pcap" >"$WORK/truncated.pcap"
    local out rc
    out=$("$TRIDENT" audit --pcap "$WORK/truncated.pcap" --keylog "$WORK/a.keylog" --broken all 2>&1)
    rc=$?
    log "truncated capture: rc $rc: $out"
    [[ $rc == 1 && $out == *truncated* ]] || return 1
    echo "garbage" >"$WORK/bad.keylog"
    out=$("$TRIDENT" audit --pcap "$WORK/wan.pcap" --keylog "$WORK/bad.keylog" --broken all 2>&1)
    rc=$?
    log "bad key log: rc $rc: $out"
    [[ $rc == 1 && $out == *"line 1"* ]] || return 1
    # A key log that matches nothing in the capture is an error, not "0 of 0 recovered".
    : >"$WORK/empty.keylog"
    out=$("$TRIDENT" audit --pcap "$WORK/wan.pcap" --keylog "$WORK/empty.keylog" --broken ml-kem-768 2>&1)
    rc=$?
    log "empty key log: rc $rc: $out"
    [[ $rc == 1 && $out == *"matches any"* ]] || return 1
}

TESTS+=(t_audit_rndl)
