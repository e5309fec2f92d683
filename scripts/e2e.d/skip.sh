# SKIP (draft-cisco-skip-02) key delivery, issue 22: each site's KME simulator is also a
# SKIP Key Provider (certificate mode on its ETSI port + 100, PSK mode on + 200; system ID =
# KME ID, PSK files from `kme-sim init`). Sourced by scripts/e2e.sh; uses fresh_configs,
# wait_both, peer_field, sources_of, ping_ok and the trd_* helpers.

# skip_use SIDE(a|b) TLS(certificate|psk) [TLS_VERSION]: turn gateway SIDE's [qkd] table
# (written by trd_configs for ETSI 014) into a SKIP one for its own KP, and its peer's
# sae_id into the peer KP's remote_system_id.
skip_use() {
    local side=$1 tls=$2 version=${3:-1.3}
    local sae kme peer etsi
    if [[ $side == a ]]; then sae=SAE_A kme=KME_A peer=KME_B etsi=8443; else sae=SAE_B kme=KME_B peer=KME_A etsi=8444; fi
    local table="[qkd]
protocol = \"skip\"
local_system_id = \"$kme\"
timeout_secs = 3"
    if [[ $tls == psk ]]; then
        table+="
kp_url = \"https://127.0.0.1:$((etsi + 200))\"
tls = \"psk\"
tls_version = \"$version\"
psk_identity_file = \"kme/$sae.skip-psk-id\"
psk_file = \"kme/$sae.skip-psk\""
    else
        table+="
kp_url = \"https://127.0.0.1:$((etsi + 100))\"
ca_file = \"kme/ca.pem\"
cert_file = \"kme/$sae.pem\"
key_file = \"kme/$sae.key\""
    fi
    python3 - "$WORK/$side.toml" "$table" "$peer" <<'PY' || return 1
import re, sys
path, table, peer = sys.argv[1:4]
text = open(path).read()
text, n = re.subn(r"\[qkd\]\n.*?(?=\n\n\[\[peer\]\])", lambda _: table, text, flags=re.S)
text, m = re.subn(r'^sae_id = "[^"]*"$', f'remote_system_id = "{peer}"', text, flags=re.M)
assert n == 1 and m == 1, (n, m)
open(path, "w").write(text)
PY
}

# skip_check_refuses_unknown_remote SIDE: `trident check` asks the KP and refuses a peer
# whose KP it does not list (exit 2, naming the key and line).
skip_check_refuses_unknown_remote() {
    local side=$1 bad=$WORK/bad-$1.toml err rc
    sed 's/^remote_system_id = .*/remote_system_id = "KME_Z"/' "$WORK/$side.toml" >"$bad"
    err=$("$NETNS" exec "gw$side" "$TRIDENT" check "$bad" 2>&1)
    rc=$?
    log "check with an unknown remote: exit $rc: $err"
    [[ $rc -eq 2 && $err == *peer.remote_system_id* && $err == *line* && $err == *KME_Z* ]] || return 1
    "$NETNS" exec "gw$side" "$TRIDENT" check "$WORK/$side.toml" >/dev/null || { log "check of the good config failed"; return 1; }
}

t_skip_required_kp_killed() {
    fresh_configs 4 8 required || return 1
    skip_use a certificate && skip_use b psk 1.3 || return 1
    skip_check_refuses_unknown_remote b || return 1
    trd_start a "$WORK" && trd_start b "$WORK" || return 1
    wait_both up 20 >/dev/null || return 1
    local side
    for side in trdA trdB; do
        log "$side: $(sources_of $side), qkd_key_id $(peer_field $side qkd_key_id), protocol $(trd_json $side "s['qkd_protocol']")"
        [[ $(sources_of $side) == x25519+mlkem+qkd && $(trd_json $side "s['qkd_protocol']") == skip ]] || return 1
    done
    "$TRIDENT" status trdA | grep -q 'qkd key delivery: skip' || { log "human view lacks the protocol"; return 1; }
    ping_ok || { log "no traffic over SKIP keys"; return 1; }
    trd_kme_stop b "$WORK" KILL
    local took
    took=$(wait_both blocked 30) || return 1
    log "blocked $took s after KP B was killed; last_kme_error B=$(peer_field trdB last_kme_error)"
    ping_ok && { log "traffic passes while blocked"; return 1; }
    trd_kme_start b "$WORK" || return 1
    took=$(wait_both up 20) || return 1
    local i
    for ((i = 0; i < 10; i++)); do ping_ok && break; done
    log "up again $took s after KP B restarted; sources $(sources_of trdA)"
    ping_ok && [[ $(sources_of trdA) == x25519+mlkem+qkd ]]
}

t_skip_mixed_etsi_and_skip() {
    # A on ETSI 014, B on SKIP (TLS 1.2 DHE-PSK), one simulated pair underneath.
    fresh_configs 4 8 required || return 1
    skip_use b psk 1.2 || return 1
    trd_start a "$WORK" && trd_start b "$WORK" || return 1
    wait_both up 20 >/dev/null || return 1
    local e0 e1
    e0=$(peer_field trdA epoch)
    sleep 9
    e1=$(peer_field trdA epoch)
    log "A: $(trd_json trdA "s['qkd_protocol']"), B: $(trd_json trdB "s['qkd_protocol']"); epochs $e0 -> $e1"
    log "A sources $(sources_of trdA), B sources $(sources_of trdB); key ids A=$(peer_field trdA qkd_key_id) B=$(peer_field trdB qkd_key_id)"
    log "masters: A (ETSI 014) $(grep -c 'delivered to the master SAE' "$WORK/kme-a.log"), B (SKIP) $(grep -c 'SKIP key delivered to the local' "$WORK/kme-b.log")"
    [[ $(trd_json trdA "s['qkd_protocol']") == etsi014 && $(trd_json trdB "s['qkd_protocol']") == skip ]] || return 1
    [[ $(sources_of trdA) == x25519+mlkem+qkd && $(sources_of trdB) == x25519+mlkem+qkd ]] || return 1
    ((e1 >= e0 + 2)) || { log "epochs did not advance"; return 1; }
    [[ $(peer_field trdA state) == up && $(peer_field trdB state) == up ]] && ping_ok
}

TESTS+=(t_skip_required_kp_killed t_skip_mixed_etsi_and_skip)
