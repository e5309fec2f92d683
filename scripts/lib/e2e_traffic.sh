# Traffic timing shared by scripts/e2e.sh and its groups (scripts/e2e.d/*.sh). Sourced by
# e2e.sh; uses its ping_ok (one ping LAN A -> LAN B, 1 s timeout), log and WORK.

# traffic_back TRIES: true as soon as one of TRIES pings (ping_ok) passes.
traffic_back() {
    local i
    for ((i = 0; i < $1; i++)); do
        ping_ok && return 0
    done
    return 1
}

# restart_b_within SECONDS: start gateway B again (trd_start, after it was stopped or
# killed) and log how long until traffic passed again; true when it passes, within SECONDS.
restart_b_within() {
    local start=$SECONDS took
    trd_start b "$WORK" || return 1
    traffic_back 20 || true
    took=$((SECONDS - start))
    log "traffic again $took s after restarting B"
    ping_ok && ((took <= $1))
}

# traffic_stop_secs MAX: prints how many seconds from now the last ping passed before 3 s
# without one (giving up after MAX s): when traffic stopped after a cut.
traffic_stop_secs() {
    local start=$SECONDS last=$SECONDS
    while ((SECONDS - last < 3 && SECONDS - start < $1)); do
        ping_ok && last=$SECONDS
        sleep 0.2
    done
    echo $((last - start))
}
