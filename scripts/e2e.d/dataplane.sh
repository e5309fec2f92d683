# Data-plane hardening (issue 10): roaming only on authenticated packets, WireGuard replay
# protection across PSK epochs, no crash from a TUN super-packet. Sourced by scripts/e2e.sh.
#
# The attacker sits on the WAN router (namespace trd-wan) with an address of its own,
# 203.0.113.66 (RFC 5737), and knows only public keys and what it sees on the wire.

ATTACKER=203.0.113.66

# dp_attacker_up: the attacker's address on the WAN router (replies to it stay there).
dp_attacker_up() {
    "$NETNS" exec wan ip addr add "$ATTACKER/32" dev lo 2>/dev/null || true
}

# dp_py: python helpers shared by the attacks (mac1, sniffing the WAN link a0).
DP_PY='
import hashlib, os, socket, struct, sys, time
def mac1(pub, msg):
    key = hashlib.blake2s(b"mac1----" + pub).digest()
    return hashlib.blake2s(msg, digest_size=16, key=key).digest()
def seal(pub, body):
    """Appends a valid mac1 (anyone with the public key can) and an empty mac2."""
    return body + mac1(pub, body) + bytes(16)
def sniff(want, secs):
    """First WireGuard datagram on a0 for which want(src_ip, payload) holds."""
    # ETH_P_ALL: packets the router forwards out of a0 reach only "all" taps.
    r = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    r.bind(("a0", 0))
    r.settimeout(1)
    end = time.time() + secs
    while time.time() < end:
        try:
            frame = r.recv(65535)
        except socket.timeout:
            continue
        ip = frame[14:]
        if frame[12:14] != b"\x08\x00" or len(ip) < 28 or ip[9] != 17:
            continue
        ihl = (ip[0] & 15) * 4
        udp = ip[ihl:]
        src = socket.inet_ntoa(ip[12:16])
        if struct.unpack("!H", udp[2:4])[0] != 51820:
            continue
        payload = udp[8:]
        if want(src, payload):
            return src, payload
    return None, None
'

# t_forged_handshakes_do_not_roam: forged handshake responses (and initiations) from a
# third address, fast enough to trip the handshake rate limiter, do not move A's endpoint
# for B and do not interrupt traffic. Before the fix, the cookie reply A sent under load
# counted as authentication and A's endpoint for B moved to the attacker.
t_forged_handshakes_do_not_roam() {
    fresh 120 180 || return 1
    dp_attacker_up
    local pub_a endpoint before out
    pub_a=$("$TRIDENT" pubkey <"$WORK/a.key")
    endpoint=$(trd_json trdA "s['peers'][0]['endpoint']")
    "$NETNS" exec lana ping -q -c 200 -i 0.05 -W 1 192.168.20.2 >"$WORK/ping.txt" 2>&1 &
    local pinger=$!
    out=$("$NETNS" exec wan python3 - "$pub_a" "$ATTACKER" <<PY
$DP_PY
import base64
pub = base64.b64decode(sys.argv[1])
# A's receiver index, in clear in every data message from B to A.
src, data = sniff(lambda s, p: s == "198.51.100.2" and len(p) >= 32 and p[0] == 4, 10)
if data is None:
    print("no data message seen"); sys.exit(1)
receiver = data[4:8]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[2], 0))
s.setblocking(False)
to = ("192.0.2.2", 51820)
cookies = 0
for rnd in range(3):
    for i in range(200):
        # Handshake responses to A's session index, and initiations, all with a valid mac1.
        s.sendto(seal(pub, struct.pack("<I", 2) + os.urandom(4) + receiver + os.urandom(48)), to)
        s.sendto(seal(pub, struct.pack("<I", 1) + os.urandom(112)), to)
    time.sleep(0.3)
    while True:
        try:
            d = s.recv(2048)
        except BlockingIOError:
            break
        cookies += d[:1] == b"\x03"
print(cookies)
PY
) || { log "attack script failed: $out"; return 1; }
    wait "$pinger"
    log "attacker sent 1200 forged handshake messages, got $out cookie replies"
    log "during the attack: $(grep 'packets transmitted' "$WORK/ping.txt")"
    local now
    now=$(trd_json trdA "s['peers'][0]['endpoint']")
    log "A's endpoint for B: $endpoint -> $now"
    log "dropped on A: $(trd_json trdA "{k: v for k, v in s['dropped'].items() if v}")"
    ((out > 0)) || { log "the rate limiter never tripped: the test proves nothing"; return 1; }
    [[ $now == "$endpoint" ]] || { log "endpoint moved"; return 1; }
    "$NETNS" exec lana ping -c 5 -i 0.2 -W 1 192.168.20.2 >/dev/null || { log "no traffic after"; return 1; }
}

# t_replayed_initiation_changes_nothing: a WireGuard initiation captured on the WAN and
# replayed after the next epochs' Tunns exist (verbatim, and re-tagged to the current epoch
# with a fresh mac1) is dropped: the endpoint stays, traffic flows.
t_replayed_initiation_changes_nothing() {
    fresh 4 8 || return 1
    dp_attacker_up
    local pub_a pub_b
    pub_a=$("$TRIDENT" pubkey <"$WORK/a.key")
    pub_b=$("$TRIDENT" pubkey <"$WORK/b.key")
    # Capture one initiation of an epoch switch (either side may start it), keep traffic up.
    "$NETNS" exec lana ping -q -c 100 -i 0.1 -W 1 192.168.20.2 >/dev/null 2>&1 &
    local pinger=$!
    "$NETNS" exec wan python3 - <<PY >"$WORK/init.hex" || { log "no initiation captured"; return 1; }
$DP_PY
src, init = sniff(lambda s, p: len(p) == 148 and p[0] == 1, 15)
if init is None:
    sys.exit(1)
print(src, init.hex())
PY
    wait "$pinger"
    local src victim
    src=$(cut -d' ' -f1 <"$WORK/init.hex")
    if [[ $src == 192.0.2.2 ]]; then victim=B; else victim=A; fi
    local name=trd$victim pub
    [[ $victim == B ]] && pub=$pub_b || pub=$pub_a
    # Two further epochs: the captured epoch's Tunns are gone, fresh ones took over.
    local e0 e
    e0=$(trd_json "$name" "s['peers'][0]['epoch']")
    for ((i = 0; i < 100; i++)); do
        e=$(trd_json "$name" "s['peers'][0]['epoch']")
        ((e >= e0 + 2)) && break
        sleep 0.2
    done
    local endpoint replays_before
    endpoint=$(trd_json "$name" "s['peers'][0]['endpoint']")
    replays_before=$(trd_json "$name" "s['dropped'].get('replayed_initiation', 0)")
    local answers
    answers=$("$NETNS" exec wan python3 - "$pub" "$ATTACKER" "$(cut -d' ' -f2 <"$WORK/init.hex")" "$victim" "$e" <<PY

$DP_PY
import base64
pub = base64.b64decode(sys.argv[1])
init = bytes.fromhex(sys.argv[3])
to = ("198.51.100.2" if sys.argv[4] == "B" else "192.0.2.2", 51820)
epoch = int(sys.argv[5])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[2], 0))
forged = [init]
for tag in (epoch, epoch + 1, epoch - 1):
    body = bytearray(init[:116])
    body[5] = (body[5] & 0xF0) | (tag & 0xF)   # epoch tag of the sender index
    forged.append(seal(pub, bytes(body)))
for f in forged:
    s.sendto(f, to)
    time.sleep(0.05)
# Anything the victim answers to the attacker (a handshake response) means it accepted one.
# Wait past the next epoch switch: the replay re-tagged to the next epoch would be parked
# and answered by that epoch's fresh Tunn as soon as its key lands.
s.settimeout(0.5)
answers = 0
end = time.time() + 7
while time.time() < end:
    try:
        s.recv(2048)
        answers += 1
    except socket.timeout:
        pass
print(answers)
PY
) || return 1
    local now replays
    now=$(trd_json "$name" "s['peers'][0]['endpoint']")
    replays=$(trd_json "$name" "s['dropped'].get('replayed_initiation', 0)")
    log "captured an initiation to $victim; replayed at epoch $e (captured before epoch $e0)"
    log "$victim's endpoint: $endpoint -> $now; replayed_initiation $replays_before -> $replays; answers to the attacker: $answers"
    [[ $now == "$endpoint" ]] || { log "endpoint moved"; return 1; }
    ((answers == 0)) || { log "a replay was answered"; return 1; }
    ((replays - replays_before >= 2)) || { log "replays not counted"; return 1; }
    "$NETNS" exec lana ping -c 10 -i 0.2 -W 1 192.168.20.2 >/dev/null || { log "no traffic after"; return 1; }
}

# t_tiny_mss_super_packets: `iperf3 -M 88` by an unprivileged user on gateway A makes the
# kernel hand the TUN device TSO super-packets of more segments than a read batch holds.
# Before the fix, tun-rs's error ended the interface; now that packet is dropped and counted.
t_tiny_mss_super_packets() {
    fresh 120 180 || return 1
    command -v iperf3 >/dev/null || { log "iperf3 missing"; return 1; }
    "$NETNS" exec lanb timeout 40 iperf3 -s -1 >"$WORK/iperf-server.log" 2>&1 &
    local server=$!
    sleep 0.5
    "$NETNS" exec gwa setpriv --reuid=65534 --regid=65534 --clear-groups \
        timeout 30 iperf3 -c 192.168.20.2 -M 88 -t 8 >"$WORK/iperf.log" 2>&1
    log "iperf3 -M 88 as uid 65534: $(grep -E 'sender|receiver|error' "$WORK/iperf.log" | tr -s ' ' | head -2 | tr '\n' ';')"
    kill "$server" 2>/dev/null
    wait "$server" 2>/dev/null
    kill -0 "$(cat "$WORK/a.pid")" 2>/dev/null || { log "gateway A exited"; return 1; }
    log "dropped on A: $(trd_json trdA "{k: v for k, v in s['dropped'].items() if v}")"
    [[ $(trd_json trdA "s['peers'][0]['state']") == up ]] || { log "tunnel not up"; return 1; }
    "$NETNS" exec lana ping -c 5 -i 0.2 -W 1 192.168.20.2 >/dev/null || { log "no traffic after"; return 1; }
    head -c 2M /dev/urandom >"$WORK/data.bin"
    tcp_transfer lana lanb 192.168.20.2 "$WORK/data.bin" 60
}

TESTS+=(t_forged_handshakes_do_not_roam t_replayed_initiation_changes_nothing t_tiny_mss_super_packets)
