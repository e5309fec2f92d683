# What an operator meets on day one and day two (issue 21), sourced by scripts/e2e.sh: the
# file policy (a config another user can write, or a key readable by everyone, is refused
# before any hook runs; /dev/zero as a key is refused at once), `check` listing every
# problem, `status` through a closed pipe and after a crash, a second `up`, `showconf`
# across a refused and an applied reload, `down` with its hooks, and `trident pair` making
# two configs (with the KME simulators) that come up as they are.

# ops_set SIDE KEY VALUE: put `KEY = VALUE` into SIDE's [interface] (after listen_port).
ops_set() {
    sed -i "s|^listen_port = 51820\$|listen_port = 51820\n$2 = $3|" "$WORK/$1.toml"
}

# ops_up_refused CONFIG WANT...: `trident up CONFIG` in gateway A's namespace must exit 2
# quickly, print every WANT, run no hook and leave no device.
ops_up_refused() {
    local cfg=$1 out rc start=$SECONDS
    shift
    rm -f "$WORK/pre_up.ran"
    out=$(timeout 10 "$NETNS" exec gwa "$TRIDENT" up "$cfg" 2>&1)
    rc=$?
    log "rc $rc in $((SECONDS - start)) s: $(tail -n 1 <<<"$out")"
    ((rc == 2 && SECONDS - start <= 2)) || { log "wanted exit 2 within 2 s"; return 1; }
    local want
    for want in "$@"; do
        [[ $out == *"$want"* ]] || { log "missing: $want"; return 1; }
    done
    [[ ! -e $WORK/pre_up.ran ]] || { log "pre_up ran"; return 1; }
    if "$NETNS" exec gwa ip link show trdA >/dev/null 2>&1; then
        log "device trdA created"
        return 1
    fi
}

t_ops_planted_files_refused() {
    fresh_configs 120 180 || return 1
    ops_set a pre_up "\"touch $WORK/pre_up.ran\""
    local cfg=$WORK/a.toml
    # A config another user owns (here: could rewrite and add a pre_up of their own).
    chown 65534 "$cfg"
    ops_up_refused "$cfg" "refusing $cfg" "uid 65534" "mode 0600" || return 1
    chown 0 "$cfg"
    # A config every user can write.
    chmod 0666 "$cfg"
    ops_up_refused "$cfg" "refusing $cfg" "mode 0666" "write" || return 1
    chmod 0600 "$cfg"
    # A private directory of its own inside one that others can write (no sticky bit).
    mkdir -p "$WORK/open/conf" && chmod 0777 "$WORK/open"
    cp -p "$cfg" "$WORK/open/conf/a.toml"
    ops_up_refused "$WORK/open/conf/a.toml" "directory $WORK/open" "0777" || return 1
    # A private key every user can read.
    chmod 0644 "$WORK/a.key"
    ops_up_refused "$cfg" "refusing $WORK/a.key" "mode 0644" "read" || return 1
    chmod 0600 "$WORK/a.key"
    # After all that, the config itself is fine.
    "$TRIDENT" check "$cfg" >/dev/null
}

t_ops_dev_zero_key_refused() {
    fresh_configs 120 180 || return 1
    sed -i "s|^private_key_file = .*|private_key_file = \"/dev/zero\"|" "$WORK/a.toml"
    ops_up_refused "$WORK/a.toml" "interface.private_key_file" "/dev/zero" "not a regular file" || return 1
    local out rc
    out=$(timeout 5 "$TRIDENT" check "$WORK/a.toml" 2>&1)
    rc=$?
    log "check: rc $rc: $out"
    ((rc == 2))
}

t_ops_check_lists_every_problem() {
    local cfg=$WORK/three.toml out rc lines
    "$TRIDENT" genkey "$WORK/three.key" 2>/dev/null || [[ -f $WORK/three.key ]] || return 1
    # An unknown key (set aside by the parser), an MTU out of range and an allowed IP with
    # host bits: three independent problems.
    cat >"$cfg" <<TOML
[interface]
name = "trdX"
private_key_file = "three.key"
listen_port = 51829
colour = "blue"
mtu = 100

[[peer]]
public_key = "ISVz4o732eUIYv8xk2Kao9J8Jj25aHR3T4H6aLt5h34="
allowed_ips = ["192.168.120.5/24"]
TOML
    out=$("$TRIDENT" check "$cfg" 2>&1)
    rc=$?
    lines=$(grep -c '^trident: config error' <<<"$out")
    log "rc $rc, $lines lines:"
    sed 's/^/      /' <<<"$out"
    ((rc == 2 && lines == 3)) || return 1
    [[ $out == *"line 5"*colour* && $out == *"line 6"*interface.mtu* && $out == *"line 10"*"host bits"* ]]
}

# ops_status_ok NAME: `trident status NAME` into a reader that is gone, or that stops after
# one line, exits 0 (it used to panic with exit 101 on the broken pipe).
ops_status_ok() {
    local i codes
    for ((i = 0; i < 5; i++)); do
        "$TRIDENT" status "$1" | true
        codes="${PIPESTATUS[*]}"
        [[ $codes == "0 0" ]] || { log "status | true: exit codes $codes"; return 1; }
        "$TRIDENT" status "$1" | head -n 1 >/dev/null
        codes="${PIPESTATUS[*]}"
        [[ $codes == "0 0" ]] || { log "status | head: exit codes $codes"; return 1; }
    done
}

t_ops_status_showconf_down() {
    fresh_configs 120 180 || return 1
    ops_set a metrics_listen '"127.0.0.1:9586"'
    ops_set a pre_down "\"echo pre_down %i >> $WORK/down.out\""
    ops_set a post_down "\"echo post_down %i >> $WORK/down.out\""
    rm -f "$WORK/down.out"
    trd_start a "$WORK" && trd_start b "$WORK" || return 1
    trd_wait_state trdA up 20 || { log "tunnel not up"; return 1; }
    ops_status_ok trdA || return 1
    log "status | head and status | true: exit 0"
    # A second `up` of the running interface: says so, not something about a port.
    local out rc
    out=$(timeout 10 "$NETNS" exec gwa "$TRIDENT" up "$WORK/a.toml" 2>&1)
    rc=$?
    log "second up: rc $rc: $out"
    [[ $rc == 1 && $out == *"already running"* && $out != *9586* ]] || return 1
    # showconf: the running config, defaults filled in, the key as its path only.
    out=$("$TRIDENT" showconf trdA)
    [[ $out == *"name = \"trdA\""* && $out == *"private_key_file = \"$WORK/a.key\""* &&
        $out == *"epoch_secs = 120"* && $out == *"mtu = 1420"* ]] || { log "showconf: $out"; return 1; }
    [[ $out != *"$(cat "$WORK/a.key")"* ]] || { log "showconf prints the private key"; return 1; }
    # A refused reload (restart-only change) leaves showconf as it was; an applied one moves it.
    sed -i 's/^listen_port = 51820$/listen_port = 51830/' "$WORK/a.toml"
    "$TRIDENT" reload trdA >/dev/null 2>&1 && { log "listen_port change was not refused"; return 1; }
    [[ $("$TRIDENT" showconf trdA) == *"listen_port = 51820"* ]] || { log "showconf after a refused reload"; return 1; }
    sed -i 's/^listen_port = 51830$/listen_port = 51820/; s/^persistent_keepalive = 25$/persistent_keepalive = 17/' "$WORK/a.toml"
    "$TRIDENT" reload trdA >/dev/null || { log "reload failed"; return 1; }
    [[ $("$TRIDENT" showconf trdA) == *"persistent_keepalive = 17"* ]] || { log "showconf after an applied reload"; return 1; }
    log "showconf follows an applied reload only"
    # down: hooks, device, socket, process all gone when it returns.
    local pid
    pid=$(cat "$WORK/a.pid")
    out=$("$TRIDENT" down trdA 2>&1)
    rc=$?
    log "down: rc $rc: $out; hooks: $(tr '\n' ' ' <"$WORK/down.out" 2>/dev/null)"
    ((rc == 0)) || return 1
    # (Reaped by this shell a moment later: a zombie still answers kill -0.)
    trd_wait_exit "$pid" 2 || { log "process still there"; return 1; }
    [[ $(cat "$WORK/down.out" 2>/dev/null) == $'pre_down trdA\npost_down trdA' ]] || return 1
    "$NETNS" exec gwa ip link show trdA >/dev/null 2>&1 && { log "device left"; return 1; }
    out=$("$TRIDENT" status trdA 2>&1)
    log "status after down: $out"
    [[ $out == *"not running"* ]] || return 1
    # A crash leaves the socket file behind: status says "not running", not ECONNREFUSED.
    trd_kill9 b "$WORK"
    out=$("$TRIDENT" status trdB 2>&1)
    rc=$?
    log "status after kill -9: rc $rc: $out"
    [[ $rc == 1 && $out == *"not running"* && $out != *"refused"* ]]
}

t_ops_pair_up() {
    stop_all
    "$NETNS" up >/dev/null || return 1
    rm -rf "$WORK/kme" "$WORK/trpA" "$WORK/trpB" "$WORK/pair-state"
    "$TRIDENT" pair trpA trpB --out "$WORK" --endpoint-a 192.0.2.2 --endpoint-b 198.51.100.2 \
        --lan-a 192.168.10.0/24 --lan-b 192.168.20.0/24 --qkd \
        --kme-link-a "$TRD_KME_LINK_A" --kme-link-b "$TRD_KME_LINK_B" | sed 's/^/    | /'
    ((PIPESTATUS[0] == 0)) || return 1
    local modes
    modes=$(stat -c '%a' "$WORK"/trp[AB]/*.* | sort -u | tr '\n' ' ')
    log "file modes: $modes; KME shares: $(stat -c '%a' "$WORK"/trp[AB]/kme | sort -u | tr '\n' ' ')"
    [[ $modes == "600 " && $(stat -c '%a' "$WORK"/trp[AB]/kme | sort -u) == 700 ]] || return 1
    trd_kme_start a "$WORK" && trd_kme_start b "$WORK" || return 1
    # The configs as written; only the default state directory goes to the test's own.
    STATE_DIRECTORY=$WORK/pair-state trd_start a "$WORK" trpA "$WORK/trpA/trpA.toml" || return 1
    STATE_DIRECTORY=$WORK/pair-state trd_start b "$WORK" trpB "$WORK/trpB/trpB.toml" || return 1
    trd_wait_state trpA up 20 && trd_wait_state trpB up 20 || { log "pair not up"; return 1; }
    local sources
    sources=$(trd_json trpA "'+'.join(k for k, v in s['peers'][0]['sources'].items() if v)")
    log "trpA up, sources $sources"
    [[ $sources == x25519+mlkem+qkd ]] || return 1
    ping_ok || ping_ok || { log "no traffic LAN to LAN"; return 1; }
    "$TRIDENT" down trpA >/dev/null && "$TRIDENT" down trpB >/dev/null || return 1
    log "both down"
}

TESTS+=(t_ops_planted_files_refused t_ops_dev_zero_key_refused t_ops_check_lists_every_problem
    t_ops_status_showconf_down t_ops_pair_up)
