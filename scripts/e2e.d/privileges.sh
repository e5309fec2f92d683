# Least privilege of `trident up` and the key log's file checks (issue 10). Sourced by
# scripts/e2e.sh.

# priv_status PID FIELD: a field of /proc/PID/status (or of a thread's status file).
priv_field() { awk -v f="$2:" '$1 == f { print $2 }' "$1"; }

# t_privileges_after_setup: once the tunnel is up, the gateway holds CAP_NET_ADMIN only
# (effective, permitted, bounding; nothing inheritable or ambient), has no-new-privileges,
# and its packet thread runs under a seccomp filter, while traffic still flows. A key log
# planted by another user (uid 65534, mode 0644, in a world-writable directory) makes
# `trident up` refuse instead of writing secrets into it.
t_privileges_after_setup() {
    fresh 120 180 || return 1
    local side pid field want got task data
    for side in a b; do
        pid=$(cat "$WORK/$side.pid")
        for field in CapEff CapPrm CapBnd CapInh CapAmb NoNewPrivs; do
            case $field in
            CapEff | CapPrm | CapBnd) want=0000000000001000 ;;
            CapInh | CapAmb) want=0000000000000000 ;;
            NoNewPrivs) want=1 ;;
            esac
            got=$(priv_field "/proc/$pid/status" "$field")
            [[ $got == "$want" ]] || { log "gateway $side: $field is $got, want $want"; return 1; }
        done
        data=
        for task in /proc/"$pid"/task/*; do
            [[ $(cat "$task/comm") == trident-data ]] && data=$task
            # Threads are created after the drop, so every one of them has it too.
            got=$(priv_field "$task/status" CapEff)
            [[ $got == 0000000000001000 ]] || { log "gateway $side thread $task: CapEff $got"; return 1; }
        done
        [[ -n $data ]] || { log "gateway $side: no trident-data thread"; return 1; }
        got=$(priv_field "$data/status" Seccomp_filters)
        [[ $got == 1 ]] || { log "gateway $side packet thread: Seccomp_filters $got"; return 1; }
    done
    log "both gateways: CapEff/CapPrm/CapBnd 0x1000 (CAP_NET_ADMIN), NoNewPrivs 1, packet thread filtered"
    "$NETNS" exec lana ping -c 3 -i 0.2 -W 2 192.168.20.2 >/dev/null || { log "ping failed"; return 1; }
    "$TRIDENT" status trdA --json >/dev/null || { log "status does not answer"; return 1; }

    # The planted key log.
    trd_stop a "$WORK"
    local shared=$WORK/shared out rc
    mkdir -p "$shared" && chmod 1777 "$shared"
    : >"$shared/a.keylog"
    chown 65534 "$shared/a.keylog" && chmod 0644 "$shared/a.keylog"
    sed -i "/^\[keymix\]/a keylog_file = \"$shared/a.keylog\"" "$WORK/a.toml"
    out=$(timeout 20 "$NETNS" exec gwa "$TRIDENT" up "$WORK/a.toml" 2>&1)
    rc=$?
    log "planted key log: rc $rc: $(grep -v WARNING <<<"$out" | tail -n 1)"
    [[ $rc -ne 0 && $out == *"refusing $shared/a.keylog: owned by uid 65534"* ]] || return 1
    [[ ! -s $shared/a.keylog ]] || { log "the planted key log received data"; return 1; }
    "$NETNS" exec gwa ip link show trdA >/dev/null 2>&1 && { log "trdA left behind"; return 1; }
    return 0
}

TESTS+=(t_privileges_after_setup)
