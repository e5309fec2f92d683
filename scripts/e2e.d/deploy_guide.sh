# The README's "Deploy on two gateways", its shell blocks run as written on two gateways and
# a LAN host in network namespaces (scripts/lib/guide_walk.sh: how, and what stands in for
# systemd and ssh), and `trident up` without root but with CAP_NET_ADMIN, as the unit can
# run it (issue 11). Sourced by scripts/e2e.sh.

# shellcheck source=../lib/guide_walk.sh
. "$ROOT/scripts/lib/guide_walk.sh"

# guide_configs DIR: keys, a bootstrap PSK and both configs written by hand (the README's
# example addresses, without QKD, keymix state in DIR).
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

# guide_all_up SECONDS: until the one interface on each gateway has its peer up.
guide_all_up() {
    local host state end=$((SECONDS + $1))
    for host in A B; do
        while ((SECONDS < end)); do
            state=$(guide_in "$host" "$TRIDENT" status --json 2>/dev/null |
                python3 -c "import json,sys; print(json.load(sys.stdin)['peers'][0]['state'])" 2>/dev/null)
            [[ $state == up ]] && continue 2
            sleep 0.2
        done
        log "gateway $host: state ${state:-none} after $1 s"
        return 1
    done
}

# guide_step KIND HOSTS WHERE LINE TEXT: one marked block of the guide (guide_blocks).
guide_step() {
    local kind=$1 hosts=$2 where=$3 line=$4 text=$5 host out rc
    if [[ $kind == like ]]; then
        out=$(diff <(guide_in "$hosts" cat "/root/$where" | guide_config_text) <(guide_config_text <<<"$text"))
        rc=$?
        log "README line $line: $where on $hosts $( ((rc == 0)) && echo "is as shown" || echo "differs:")"
        ((rc == 0)) || { sed 's/^/      /' <<<"$out"; return 1; }
        return 0
    fi
    if [[ $where == up ]]; then
        # A block the guide shows once the tunnel is up: wait for it, as a reader would.
        guide_all_up 40 || return 1
    fi
    if [[ $where == clone ]]; then
        # The one substitution (scripts/lib/guide_walk.sh): the binary under test, not a
        # release build.
        [[ $text == "scripts/install.sh "* ]] || { log "README line $line: not scripts/install.sh"; return 1; }
        text="scripts/install.sh $(printf %q "$TRIDENT")${text#scripts/install.sh}"
    fi
    for host in $hosts; do
        out=$(guide_run "$host" "$where" "$text" 2>&1)
        rc=$?
        log "README line $line on $host: exit $rc"
        sed 's/^/      | /' <<<"$out"
        ((rc == 0)) || return 1
        [[ $out != *WARN* ]] || { log "a warning where the guide shows none"; return 1; }
    done
    return 0
}

# guide_firewall_probes: each port the guide opens admits a new flow from the other
# gateway (the tunnel alone may not show it: conntrack lets replies in whoever sent first,
# and which KME pushes keys depends on which side initiates), and the guide's nftables
# files also load where there is no table at all (a fresh network namespace).
guide_firewall_probes() {
    local host peer port before after
    for host in A B; do
        [[ $host == A ]] && peer=B || peer=A
        guide_in "$host" unshare -n nft -f /etc/trident/firewall.nft ||
            { log "gateway $host: firewall.nft does not load without a table"; return 1; }
        [[ $host == A ]] && port=8445 || port=8446
        guide_in "$peer" timeout 3 bash -c "exec 3<>/dev/tcp/${GUIDE_WAN[$host]}/$port" ||
            { log "gateway $host: TCP $port (KME link) closed to $peer"; return 1; }
        before=$(guide_in "$host" "$TRIDENT" status --json | python3 -c "import json,sys; print(json.load(sys.stdin)['dropped_total'])")
        guide_in "$peer" bash -c "echo probe >/dev/udp/${GUIDE_WAN[$host]}/51820"
        sleep 0.5
        after=$(guide_in "$host" "$TRIDENT" status --json | python3 -c "import json,sys; print(json.load(sys.stdin)['dropped_total'])")
        ((after > before)) || { log "gateway $host: UDP 51820 closed to $peer"; return 1; }
    done
    log "firewalls: TCP 8445 on A, 8446 on B, UDP 51820 on both open to the other gateway"
}

# t_deploy_guide: the guide's blocks in order on gateways with forwarding off and a typical
# firewall (input and forward dropped but for replies and loopback): what the guide opens
# and turns on must be enough. Then the tunnel carries all three key sources, the ports are
# open (guide_firewall_probes), and a broken config is refused with one error.
t_deploy_guide() {
    stop_all
    "$NETNS" up >/dev/null || return 1
    local dir=$WORK/guide out rc ns kind hosts where line text steps=0
    rm -rf "$dir" && mkdir -p "$dir"
    for ns in gwa gwb; do
        "$NETNS" exec "$ns" sysctl -qw net.ipv4.ip_forward=0 || return 1
        "$NETNS" exec "$ns" nft -f - <<'NFT' || return 1
table inet filter {
    chain input { type filter hook input priority filter; policy drop; ct state established,related accept; iif lo accept; }
    chain forward { type filter hook forward priority filter; policy drop; ct state established,related accept; }
}
NFT
    done
    CLEANUP_HOOKS+=(guide_hosts_down)
    guide_host_up A "$dir" && guide_host_up B "$dir" || { guide_hosts_down; return 1; }
    guide_blocks "$ROOT/README.md" >"$dir/blocks" || { guide_hosts_down; return 1; }
    rc=0
    while IFS= read -r -u 3 -d '' kind && IFS= read -r -u 3 -d '' hosts &&
        IFS= read -r -u 3 -d '' where && IFS= read -r -u 3 -d '' line &&
        IFS= read -r -u 3 -d '' text; do
        steps=$((steps + 1))
        guide_step "$kind" "$hosts" "$where" "$line" "$text" || { rc=1; break; }
    done 3<"$dir/blocks"
    log "$steps marked blocks of the README walked"
    ((rc == 0)) || { guide_hosts_down; return 1; }
    guide_firewall_probes || rc=1
    local host sources
    for host in A B; do
        sources=$(guide_in "$host" "$TRIDENT" status --json |
            python3 -c "import json,sys; print('+'.join(k for k, v in json.load(sys.stdin)['peers'][0]['sources'].items() if v))")
        log "gateway $host: sources $sources"
        [[ $sources == x25519+mlkem+qkd ]] || rc=1
    done
    # A broken copy of A's config: the same prefix on a second peer, exit 2 and one error
    # line (and a warning that site-a is running).
    { guide_in A cat /etc/trident/site-a.toml &&
        printf '\n[[peer]]\npublic_key = "%s"\nallowed_ips = ["192.168.20.0/25"]\nsae_id = "site-c"\n' \
            "$("$TRIDENT" genkey | "$TRIDENT" pubkey)"; } |
        guide_in A sh -c 'umask 077 && cat >/etc/trident/bad.toml' || rc=1
    out=$(guide_in A "$TRIDENT" check /etc/trident/bad.toml 2>&1)
    local brc=$?
    log "broken config: rc $brc: $out"
    out=$(grep 'config error' <<<"$out")
    [[ $brc -eq 2 && $(wc -l <<<"$out") -eq 1 && $out == *"bad.toml line"*"overlaps"* ]] || rc=1
    guide_hosts_down
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
