# Real WANs (issue 13): a 1280-byte path MTU on IPv4 and on an IPv6-only underlay (keymix
# messages cross as IP fragments), gateway A behind a NAT that loses its mapping, and the
# audit reading a capture in which keymix messages are fragments.

# rw_fresh "NETNS_OPTIONS" EPOCH REJECT POLICY TUN_MTU A_TO_B B_TO_A: like `fresh`, on a
# harness built with NETNS_OPTIONS, tunnel MTU TUN_MTU, IPv6 inside the tunnel as well
# (fd99::1, fd99::2), each gateway's endpoint for the other (B_TO_A "none": B learns A's).
rw_fresh() {
    local opts=$1 epoch=$2 reject=$3 policy=$4 mtu=$5 a_to_b=$6 b_to_a=$7
    FRESH_NETNS_OPTS=$opts fresh_configs "$epoch" "$reject" "$policy" || return 1
    rm -f "$WORK"/a.keylog
    rw_patch a 1 2 "$mtu" "$a_to_b"
    rw_patch b 2 1 "$mtu" "$b_to_a"
    sed -i "/^\[keymix\]/a keylog_file = \"$WORK/a.keylog\"" "$WORK/a.toml"
    if [[ -n ${RW_CAPTURE:-} ]]; then
        # Everything on A's WAN link: a filter on the UDP port would miss the fragments
        # after the first, which carry no UDP header.
        "$NETNS" exec wan tcpdump -i a0 -U -q -w "$WORK/wan.pcap" 2>"$WORK/tcpdump.log" &
        echo $! >"$WORK/tcpdump.pid"
        sleep 1
    fi
    trd_start a "$WORK" && trd_start b "$WORK" || return 1
    trd_wait_state trdA up 30 && trd_wait_state trdB up 30 || {
        log "tunnel not up: A=$(peer_field trdA state) B=$(peer_field trdB state)"
        rw_counters
        return 1
    }
}

# rw_patch SIDE SELF PEER MTU ENDPOINT: tunnel MTU, the peer's endpoint (or none), and an
# IPv6 tunnel address and allowed IP when MTU allows IPv6 (Linux refuses IPv6 on a link
# under 1280 bytes, so a 1280-byte WAN carries IPv4 only inside the tunnel).
rw_patch() {
    local f=$WORK/$1.toml
    if (($4 >= 1280)); then
        sed -i "s|^address = \[\"10.99.0.$2/24\"\]|address = [\"10.99.0.$2/24\", \"fd99::$2/64\"]|" "$f"
        sed -i "s|^allowed_ips = \[\"10.99.0.$3/32\"|allowed_ips = [\"10.99.0.$3/32\", \"fd99::$3/128\"|" "$f"
    fi
    sed -i "s|^address = \(.*\)|address = \1\nmtu = $4|" "$f"
    if [[ $5 == none ]]; then
        sed -i '/^endpoint = /d' "$f"
    else
        sed -i "s|^endpoint = .*|endpoint = \"$5\"|" "$f"
    fi
}

rw_counters() {
    local side
    for side in A B; do
        log "$side dropped: $(trd_json "trd$side" "{k: v for k, v in s['dropped'].items() if v}")"
    done
}

# rw_traffic EPOCHS: ping (IPv4 LAN to LAN, IPv6 tunnel to tunnel), a 20 MiB transfer each
# way, then waits until A has passed EPOCHS more epochs; fails when any keymix send hit
# EMSGSIZE.
rw_traffic() {
    local want=$1 e0 e
    e0=$(peer_field trdA epoch)
    "$NETNS" exec lana ping -c 3 -i 0.2 -W 2 192.168.20.2 >/dev/null || { log "IPv4 ping failed"; return 1; }
    if ((RW_TUN_MTU >= 1280)); then
        "$NETNS" exec gwa ping -6 -c 3 -i 0.2 -W 2 fd99::2 >/dev/null || { log "IPv6 ping in the tunnel failed"; return 1; }
    fi
    # Full-size packets in the tunnel must cross unfragmented (DF set by ping -M do).
    "$NETNS" exec lana ping -M do -s "$((RW_TUN_MTU - 28))" -c 2 -W 2 192.168.20.2 >/dev/null ||
        { log "a full-size ($RW_TUN_MTU byte) packet did not cross the tunnel"; return 1; }
    [[ -f $WORK/data.bin ]] || head -c 20M /dev/urandom >"$WORK/data.bin"
    tcp_transfer lana lanb 192.168.20.2 "$WORK/data.bin" 120 || return 1
    tcp_transfer lanb lana 192.168.10.2 "$WORK/data.bin" 120 || return 1
    local start=$SECONDS
    while e=$(peer_field trdA epoch); ((e < e0 + want)); do
        ((SECONDS - start < 60)) || { log "epoch $e after 60 s, wanted $((e0 + want))"; return 1; }
        ping_ok || true
        sleep 1
    done
    ping_ok || { log "no traffic after the epochs"; return 1; }
    log "epochs $e0 -> $e, sources A: $(sources_of trdA)"
    [[ $(sources_of trdA) == *qkd* ]] || { log "QKD is not among the sources"; return 1; }
    local n
    n=$(trd_json trdA "s['dropped']['keymix_emsgsize']")
    [[ ${n:-0} == 0 ]] || { log "keymix_emsgsize = $n"; return 1; }
}

# rw_up FAMILY(4|6) "NETNS_OPTIONS" TUN_MTU: rw_fresh with QKD required and 4 s epochs on
# an IPv4 WAN or an IPv6-only one (--wan-v6); the gateways' endpoints and the KMEs' link
# use that family's WAN addresses. Sets RW_TUN_MTU for rw_traffic.
rw_up() {
    local family=$1 opts=$2 rc=0
    RW_TUN_MTU=$3
    if ((family == 4)); then
        rw_fresh "$opts" 4 8 required "$RW_TUN_MTU" 198.51.100.2:51820 192.0.2.2:51820
        return
    fi
    local link_a=$TRD_KME_LINK_A link_b=$TRD_KME_LINK_B
    TRD_KME_LINK_A="[2001:db8:1::2]:8445"
    TRD_KME_LINK_B="[2001:db8:2::2]:8446"
    rw_fresh "--wan-v6${opts:+ $opts}" 4 8 required "$RW_TUN_MTU" "[2001:db8:2::2]:51820" "[2001:db8:1::2]:51820" || rc=1
    TRD_KME_LINK_A=$link_a
    TRD_KME_LINK_B=$link_b
    return $rc
}

t_wan_mtu1280_v4() {
    rw_up 4 "--wan-mtu 1280" 1220 || return 1
    rw_traffic 3
}

t_wan_mtu1280_v6_only() {
    rw_up 6 "--wan-mtu 1280" 1200 || return 1
    "$NETNS" exec gwa ip -4 addr show dev wan0 | grep -q inet && { log "the WAN has IPv4"; return 1; }
    rw_traffic 3
}

# IPv6-only underlay with a full-size WAN: IPv4 and IPv6 inside the tunnel.
t_wan_v6_only_inner_v4_v6() {
    rw_up 6 "" 1420 || return 1
    rw_traffic 2
}

# Gateway A behind a masquerading NAT; B has no endpoint for A and learns it. The NAT then
# loses its mapping and picks a new source port: traffic must be back within 10 s, and
# the next keymix exchange must complete.
t_wan_nat_rebind() {
    RW_TUN_MTU=1420
    rw_fresh "--nat-a" 4 8 required 1420 198.51.100.2:51820 none || return 1
    local ep
    ep=$(peer_field trdB endpoint)
    log "B learnt A at $ep"
    [[ $ep == 198.51.100.1:* ]] || { log "B's endpoint for A is not the NAT's address"; return 1; }
    ping_ok || { log "no traffic before the rebind"; return 1; }
    local port start e0 e
    port=$("$NETNS" nat-rebind) || return 1
    start=$SECONDS
    until "$NETNS" exec lana ping -c 1 -W 1 192.168.20.2 >/dev/null 2>&1; do
        ((SECONDS - start < 10)) || { log "no traffic 10 s after the rebind; B has $(peer_field trdB endpoint)"; return 1; }
    done
    log "traffic back $((SECONDS - start)) s after the NAT moved A to port $port; B has $(peer_field trdB endpoint)"
    [[ $(peer_field trdB endpoint) == "198.51.100.1:$port" ]] || { log "B did not follow A to port $port"; return 1; }
    e0=$(peer_field trdB epoch)
    start=$SECONDS
    while e=$(peer_field trdB epoch); ((e < e0 + 2)); do
        ((SECONDS - start < 30)) || { log "no keymix exchange after the rebind (epoch $e)"; return 1; }
        sleep 0.5
    done
    ping_ok || { log "no traffic after the next epochs"; return 1; }
    log "epochs $e0 -> $e after the rebind"
}

# The audit on a WAN capture of the 1280-byte IPv4 link: keymix Init and Resp cross as IP
# fragments, and the audit must rebuild every epoch from them.
t_wan_audit_fragments() {
    RW_CAPTURE=1 rw_up 4 "--wan-mtu 1280" 1220 || return 1
    rw_traffic 3 || return 1
    trd_stop a "$WORK"
    trd_stop b "$WORK"
    kill -INT "$(cat "$WORK/tcpdump.pid")"
    wait "$(cat "$WORK/tcpdump.pid")" 2>/dev/null
    "$TRIDENT" audit --pcap "$WORK/wan.pcap" --keylog "$WORK/a.keylog" --broken all | sed 's/^/    | /' | head -4
    local frags
    frags=$("$TRIDENT" audit --pcap "$WORK/wan.pcap" --keylog "$WORK/a.keylog" --broken all --json |
        python3 -c "import json,sys; c=json.load(sys.stdin)['capture']; print(c['reassembled'], c['malformed'] + c['fragments_invalid'])")
    log "reassembled datagrams, malformed+invalid: $frags"
    [[ ${frags%% *} -ge 3 ]] || { log "the keymix messages did not cross as fragments"; return 1; }
    audit_needs_all_three
}

TESTS+=(t_wan_mtu1280_v4 t_wan_mtu1280_v6_only t_wan_v6_only_inner_v4_v6 t_wan_nat_rebind
    t_wan_audit_fragments)
