# Live reconfiguration (issue 11), sourced by scripts/e2e.sh: `trident reload` adds a third
# site (namespace trd-gwr, its own trident trdC) and changes peer B's keepalive while 500
# pings at 10 ms cross peer B without a loss; a new private key is refused and traffic
# continues; SIGHUP removes site C again (route gone) and does not end `up`.

RL_GWR=trd-gwr
# trd-gwr and trdC go away also when a test fails or is interrupted (after the earlier
# groups' cleanup, which this trap keeps).
_rl_prev=$(trap -p EXIT)
_rl_prev=${_rl_prev#"trap -- '"}
_rl_prev=${_rl_prev%"' EXIT"}
trap "rl_cleanup; ${_rl_prev:-cleanup}" EXIT

rl_cleanup() {
    trd_stop c "$WORK"
    ip netns del "$RL_GWR" 2>/dev/null
    return 0
}

# rl_site_c: namespace trd-gwr on the WAN router (198.18.2.2/24 via r0).
rl_site_c() {
    trd_wan_site "$RL_GWR" r0 198.18.2
}

# rl_pid NS: the trident process running in namespace NS (not the netns.sh wrapper).
rl_pid() {
    local p
    for p in $(ip netns pids "$1"); do
        [[ $(cat "/proc/$p/comm" 2>/dev/null) == trident ]] && { echo "$p"; return 0; }
    done
    return 1
}

t_reload_add_peer_no_loss() {
    rl_cleanup
    fresh 120 180 || return 1
    rl_site_c || { log "cannot create $RL_GWR"; return 1; }
    umask 077
    "$TRIDENT" genkey >"$WORK/c.key"
    local pub_a pub_c
    pub_a=$("$TRIDENT" pubkey <"$WORK/a.key")
    pub_c=$("$TRIDENT" pubkey <"$WORK/c.key")
    cat >"$WORK/c.toml" <<TOML
[interface]
name = "trdC"
private_key_file = "$WORK/c.key"
listen_port = 51820
state_dir = "$WORK/state-c"
address = ["10.99.0.3/24"]

[[peer]]
public_key = "$pub_a"
endpoint = "192.0.2.2:51820"
allowed_ips = ["10.99.0.1/32"]
TOML
    local before_epochs before_exchanges
    before_epochs=$(trd_peer trdA tunnel_epochs)
    before_exchanges=$(trd_peer trdA keymix_exchanges)
    cp "$WORK/a.toml" "$WORK/a.toml.orig"
    # 500 pings at 10 ms across peer B while A reloads.
    "$NETNS" exec lana ping -q -i 0.01 -c 500 -W 1 192.168.20.2 >"$WORK/rl-ping.txt" 2>&1 &
    local ping_pid=$!
    sleep 1
    sed -i 's/^persistent_keepalive = 25$/persistent_keepalive = 10/' "$WORK/a.toml"
    cat >>"$WORK/a.toml" <<TOML

[[peer]]
public_key = "$pub_c"
endpoint = "198.18.2.2:51820"
allowed_ips = ["10.99.0.3/32", "192.168.30.0/24"]
TOML
    local out
    out=$("$TRIDENT" reload trdA 2>&1) || { log "reload failed: $out"; kill "$ping_pid"; return 1; }
    log "$out"
    [[ $out == *"1 added"* && $out == *"1 changed"* ]] || { log "unexpected summary"; kill "$ping_pid"; return 1; }
    # The new site comes up next to the running one.
    RUST_LOG=info ip netns exec "$RL_GWR" "$TRIDENT" up "$WORK/c.toml" >>"$WORK/c.log" 2>&1 &
    echo $! >"$WORK/c.pid"
    wait "$ping_pid"
    local summary
    summary=$(grep -E 'packets transmitted' "$WORK/rl-ping.txt")
    log "ping across peer B during the reload: $summary"
    [[ $summary == "500 packets transmitted, 500 received"* ]] || return 1
    trd_wait_state trdC up 20 || { log "site C not up: $(trd_peer trdC state)"; tail -5 "$WORK/c.log"; return 1; }
    ip netns exec "$RL_GWR" ping -c 3 -i 0.2 -W 1 10.99.0.1 >/dev/null || { log "no ping C -> A"; return 1; }
    [[ $(trd_json trdA "len(s['peers'])") == 2 ]] || { log "A has not 2 peers"; return 1; }
    [[ $(trd_peer trdA persistent_keepalive) == 10 ]] || { log "keepalive not changed"; return 1; }
    "$NETNS" exec gwa ip route show 192.168.30.0/24 | grep -q trdA || { log "no route for C's allowed IP"; return 1; }
    # Peer B's tunnel and chain were not restarted: same epochs (or later), exchanges go on.
    local after_epochs after_exchanges
    after_epochs=$(trd_peer trdA tunnel_epochs)
    after_exchanges=$(trd_peer trdA keymix_exchanges)
    log "peer B epochs $before_epochs -> $after_epochs, exchanges $before_exchanges -> $after_exchanges"
    [[ $after_epochs == "$before_epochs" ]] || { log "peer B's tunnel changed"; return 1; }
    ((after_exchanges >= before_exchanges)) || return 1

    # A new private key needs a restart: refused, running config kept, traffic continues.
    "$TRIDENT" genkey >"$WORK/a2.key"
    cp "$WORK/a.toml" "$WORK/a.toml.withc"
    sed -i "s|^private_key_file = .*|private_key_file = \"$WORK/a2.key\"|" "$WORK/a.toml"
    if out=$("$TRIDENT" reload trdA 2>&1); then
        log "a new private key was accepted: $out"
        return 1
    fi
    log "refused: $out"
    [[ $out == *"private key"*"restart"* ]] || { log "refusal does not say why"; return 1; }
    "$NETNS" exec lana ping -q -i 0.01 -c 200 -W 1 192.168.20.2 >"$WORK/rl-ping.txt" 2>&1
    summary=$(grep -E 'packets transmitted' "$WORK/rl-ping.txt")
    log "after the refused reload: $summary"
    [[ $summary == "200 packets transmitted, 200 received"* ]] || return 1
    [[ $(trd_json trdA "len(s['peers'])") == 2 ]] || { log "running config not kept"; return 1; }

    # SIGHUP with the original config: site C removed, its route gone, `up` still runs.
    cp "$WORK/a.toml.orig" "$WORK/a.toml"
    local pid
    pid=$(rl_pid trd-gwa) || { log "no trident in trd-gwa"; return 1; }
    kill -HUP "$pid"
    local i
    for ((i = 0; i < 50; i++)); do
        [[ $(trd_json trdA "len(s['peers'])") == 1 ]] && break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null || { log "SIGHUP ended trident up"; return 1; }
    [[ $(trd_json trdA "len(s['peers'])") == 1 ]] || { log "SIGHUP did not remove peer C"; return 1; }
    if "$NETNS" exec gwa ip route show 192.168.30.0/24 | grep -q trdA; then
        log "route for the removed peer left behind"
        return 1
    fi
    [[ $(trd_peer trdA persistent_keepalive) == 25 ]] || return 1
    ping_ok || { log "no traffic after SIGHUP"; return 1; }
    rl_cleanup
}

# t_reload_timings_no_loss (issue 21): 120/180 s timings reloaded to 3/8 s on both sides
# under a 10 ms ping. Before, the new 8 s reject age applied to the live key at once while
# the next exchange stayed on the 120 s schedule: both sides blocked for a minute. Now the
# live key keeps its reject age, the next exchange is due by the new epoch, and not a ping
# is lost; reload names the change.
t_reload_timings_no_loss() {
    fresh 120 180 || return 1
    local e0
    e0=$(trd_peer trdA epoch)
    "$NETNS" exec lana ping -q -c 2000 -i 0.01 -W 1 192.168.20.2 >"$WORK/timings-ping.txt" 2>&1 &
    local pinger=$!
    sleep 5
    sed -i -e 's/^epoch_secs = .*/epoch_secs = 3/' -e 's/^reject_after_secs = .*/reject_after_secs = 8/' \
        "$WORK/a.toml" "$WORK/b.toml"
    local out_a out_b
    out_a=$("$TRIDENT" reload trdA 2>&1)
    out_b=$("$TRIDENT" reload trdB 2>&1)
    wait "$pinger"
    local summary received
    summary=$(grep 'packets transmitted' "$WORK/timings-ping.txt")
    received=$(grep -oE '[0-9]+ received' <<<"$summary" | cut -d' ' -f1)
    log "reload A: $out_a"
    log "reload B: $out_b"
    log "pings: $summary; epoch $e0 -> $(trd_peer trdA epoch), states A $(trd_peer trdA state) B $(trd_peer trdB state)"
    [[ $out_a == *"epoch timings"* && $out_b == *"epoch timings"* ]] || { log "reload did not name the timings"; return 1; }
    ((${received:-0} == 2000)) || { log "pings lost"; return 1; }
    (($(trd_peer trdA epoch) >= e0 + 3)) || { log "the new 3 s epochs did not apply"; return 1; }
}

TESTS+=(t_reload_add_peer_no_loss t_reload_timings_no_loss)
