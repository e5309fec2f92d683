# The README's "Deploy on two gateways", step by step, in the netns harness (everything but
# systemd), and `trident up` without root but with CAP_NET_ADMIN, as the unit can run it
# (issue 11). Sourced by scripts/e2e.sh.

# guide_configs DIR: keys, the pair's PSK and both configs, exactly as the README writes them.
guide_configs() {
    local dir=$1 pub_a pub_b
    (
        umask 077
        "$TRIDENT" genkey >"$dir/a.key"
        "$TRIDENT" genkey >"$dir/b.key"
        "$TRIDENT" genpsk >"$dir/ab.psk"
    )
    pub_a=$("$TRIDENT" pubkey <"$dir/a.key")
    pub_b=$("$TRIDENT" pubkey <"$dir/b.key")
    cat >"$dir/site-a.toml" <<TOML
[interface]
name = "trA"
private_key_file = "a.key"
listen_port = 51820
address = ["10.99.0.1/24"]
state_dir = "state-a"

[[peer]]
public_key = "$pub_b"
endpoint = "198.51.100.2:51820"
allowed_ips = ["10.99.0.2/32", "192.168.20.0/24"]
persistent_keepalive = 25
bootstrap_psk_file = "ab.psk"
TOML
    cat >"$dir/site-b.toml" <<TOML
[interface]
name = "trB"
private_key_file = "b.key"
listen_port = 51820
address = ["10.99.0.2/24"]
state_dir = "state-b"

[[peer]]
public_key = "$pub_a"
endpoint = "192.0.2.2:51820"
allowed_ips = ["10.99.0.1/32", "192.168.10.0/24"]
persistent_keepalive = 25
bootstrap_psk_file = "ab.psk"
TOML
}

# guide_up NS CONFIG LOG [PREFIX...]: `trident up` in namespace NS (optionally through a
# wrapper such as setpriv) in the background; prints its pid.
guide_up() {
    local ns=$1 config=$2 logfile=$3
    shift 3
    "$NETNS" exec "$ns" "$@" "$TRIDENT" up "$config" >>"$logfile" 2>&1 &
    echo $!
}

# guide_wait NAME SECONDS [RUNTIME_DIR]: until the peer of NAME is up.
guide_wait() {
    local name=$1 secs=$2 rt=${3:-} state end=$((SECONDS + $2))
    while ((SECONDS < end)); do
        state=$(RUNTIME_DIRECTORY=$rt "$TRIDENT" status "$name" --json 2>/dev/null |
            python3 -c "import json,sys; print(json.load(sys.stdin)['peers'][0]['state'])" 2>/dev/null)
        [[ $state == up ]] && return 0
        sleep 0.1
    done
    log "$name: state ${state:-none} after $secs s"
    return 1
}

guide_stop() {
    local pid
    for pid in "$@"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "$@"; do
        wait "$pid" 2>/dev/null || true
    done
}

# t_deploy_guide: keys, PSK, both configs pass `trident check` (and a broken one exits 2
# with one line), forwarding on, both gateways up, LAN A pings LAN B, status reads `up`.
t_deploy_guide() {
    stop_all
    "$NETNS" up >/dev/null || return 1
    local dir=$WORK/guide out rc pa pb
    rm -rf "$dir" && mkdir -p "$dir"
    guide_configs "$dir"
    for side in a b; do
        out=$("$TRIDENT" check "$dir/site-$side.toml" 2>&1) || { log "check $side: $out"; return 1; }
        [[ $out != *WARNING* ]] || { log "check $side warns: $out"; return 1; }
    done
    log "check: $out"
    # A broken copy: the same prefix on a second peer is refused, exit 2, one line.
    sed 's#^allowed_ips = \["10.99.0.2/32", "192.168.20.0/24"\]#&\n\n[[peer]]\npublic_key = "'"$("$TRIDENT" genkey | "$TRIDENT" pubkey)"'"\nallowed_ips = ["192.168.20.0/25"]#' \
        "$dir/site-a.toml" >"$dir/bad.toml"
    out=$("$TRIDENT" check "$dir/bad.toml" 2>&1)
    rc=$?
    log "broken config: rc $rc: $out"
    [[ $rc -eq 2 && $(wc -l <<<"$out") -eq 1 && $out == *"bad.toml line"*"overlaps"* ]] || return 1
    for ns in gwa gwb; do
        "$NETNS" exec "$ns" sysctl -qw net.ipv4.ip_forward=1 || return 1
    done
    pa=$(guide_up gwa "$dir/site-a.toml" "$dir/a.log")
    pb=$(guide_up gwb "$dir/site-b.toml" "$dir/b.log")
    rc=0
    guide_wait trA 30 && guide_wait trB 30 || rc=1
    if ((rc == 0)); then
        "$NETNS" exec lana ping -c 3 -i 0.2 -W 2 192.168.20.2 >/dev/null || { log "LAN A cannot ping LAN B"; rc=1; }
        "$TRIDENT" status trA | sed 's/^/      /'
        grep -q "PSK epoch installed.*peer=" "$dir/a.log" || { log "no epoch line naming the peer"; rc=1; }
        grep -q $'\e' "$dir/a.log" && { log "escape codes in a log file"; rc=1; }
    fi
    guide_stop "$pa" "$pb"
    ((rc == 0)) || tail -n 5 "$dir/a.log" "$dir/b.log" | sed 's/^/      /'
    return $rc
}

# t_unprivileged_up: gateway A as uid 65534 with only an ambient CAP_NET_ADMIN (what
# trident@.service with User= gives it), control socket in RUNTIME_DIRECTORY: the tunnel
# comes up and carries traffic. Without the capability the error names it.
t_unprivileged_up() {
    stop_all
    "$NETNS" up >/dev/null || return 1
    local dir rt out rc pa pb
    dir=$(mktemp -d /tmp/trident-unpriv.XXXXXX)
    chmod 0755 "$dir"
    rt=$dir/run
    guide_configs "$dir"
    mkdir -p "$rt" "$dir/state-a"
    # On one host the two gateways cannot share the PSK file: B (root) refuses a file uid
    # 65534 owns (the file policy), as it would on a real gateway. B gets its own copy.
    cp -p "$dir/ab.psk" "$dir/ab-b.psk"
    sed -i 's/"ab.psk"/"ab-b.psk"/' "$dir/site-b.toml"
    chown 65534:65534 "$rt" "$dir/state-a" "$dir/a.key" "$dir/ab.psk" "$dir/site-a.toml"
    chmod 0700 "$rt" "$dir/state-a"
    # Distributions make /dev/net/tun 0666; where it is 0600 (some containers), a private
    # mount namespace gets a 0666 node, leaving the host's alone.
    mknod -m 0666 "$dir/tun" c 10 200 || { rm -rf "$dir"; return 1; }
    local nobody=(unshare -m --propagation private sh -c 'mount --bind "$0" /dev/net/tun && exec "$@"'
        "$dir/tun" env RUNTIME_DIRECTORY="$rt" setpriv --reuid=65534 --regid=65534 --clear-groups)
    out=$(timeout 20 "$NETNS" exec gwa "${nobody[@]}" --inh-caps=-all "$TRIDENT" up "$dir/site-a.toml" 2>&1)
    rc=$?
    log "without CAP_NET_ADMIN: rc $rc: $(tail -n 1 <<<"$out")"
    [[ $rc -ne 0 && $out == *CAP_NET_ADMIN* ]] || { rm -rf "$dir"; return 1; }
    pa=$(guide_up gwa "$dir/site-a.toml" "$dir/a.log" "${nobody[@]}" --inh-caps=+net_admin --ambient-caps=+net_admin)
    pb=$(guide_up gwb "$dir/site-b.toml" "$dir/b.log")
    rc=0
    guide_wait trA 30 "$rt" && guide_wait trB 30 || rc=1
    if ((rc == 0)); then
        "$NETNS" exec lana ping -c 3 -i 0.2 -W 2 192.168.20.2 >/dev/null || { log "no traffic"; rc=1; }
        local uid
        uid=$(awk '$1 == "Uid:" { print $2 }' "/proc/$(pgrep -n -f "up $dir/site-a.toml")/status" 2>/dev/null)
        log "gateway A runs as uid ${uid:-?}; socket $(ls "$rt")"
        [[ $uid == 65534 ]] || rc=1
    fi
    guide_stop "$pa" "$pb"
    ((rc == 0)) || tail -n 5 "$dir/a.log" "$dir/b.log" | sed 's/^/      /'
    rm -rf "$dir"
    return $rc
}

TESTS+=(t_deploy_guide t_unprivileged_up)
