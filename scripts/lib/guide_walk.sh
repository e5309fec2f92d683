# Walking the README's "Deploy on two gateways" as written (scripts/e2e.d/deploy_guide.sh).
# Source it; expects ROOT, NETNS, TRIDENT and log() from scripts/e2e.sh.
#
# The hosts: "A" and "B" are the harness's gateway namespaces gwa and gwb, "lan-a" and
# "lan-b" its LAN hosts. A gateway also gets a mount namespace of its own in which /etc,
# /usr/local, /var and /root are copy-on-write overlays of this machine's, so the guide's
# commands install into /usr/local/bin, write /etc/trident and /var/lib/trident on "their"
# host, as written, and leave this machine's files alone. /run starts empty, as after a
# boot: each gateway has its own /run/trident (`trident status` sees its own interface
# only), and install.sh finds no systemd to reload. The LAN hosts only run commands that
# touch no files, in their network namespaces.
#
# Stand-ins, because a namespace test has neither systemd nor sshd (shell functions that
# shadow the real commands while a block runs; anything else they are asked fails):
#   systemctl enable --now UNIT@NAME  runs the ExecStart line of the installed
#                                     /etc/systemd/system/UNIT@.service with %i = NAME,
#                                     in the background, with its Runtime/StateDirectory
#   journalctl -u UNIT@NAME           prints what that process wrote
#   scp [-r] [-p] SRC... root@IP:DIR  copies into the gateway whose WAN address is IP
# One substitution: `scripts/install.sh` without an argument would build a release binary
# first; the test passes the binary under test instead, the guide's own alternative.

declare -A GUIDE_NS=([A]=gwa [B]=gwb [lan-a]=lana [lan-b]=lanb)
declare -A GUIDE_PID=()
declare -A GUIDE_WAN=([A]=192.0.2.2 [B]=198.51.100.2)
GUIDE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# guide_host_up A|B DIR: the gateway's mount namespace, held by a sleeping process.
guide_host_up() {
    local host=$1 dir=$2 i
    mkdir -p "$dir/ovl-$host"
    # The overlays' upper layers live in a tmpfs of the namespace: gone with its last process.
    "$NETNS" exec "${GUIDE_NS[$host]}" unshare -m --propagation private bash -c '
        set -e
        mount -t tmpfs -o mode=0700 guide "$1"
        for d in etc usr/local var root; do
            n=${d//\//-}
            mkdir -p "$1/$n.up" "$1/$n.work"
            mount -t overlay guide -o "lowerdir=/$d,upperdir=$1/$n.up,workdir=$1/$n.work" "/$d"
        done
        mount -t tmpfs -o mode=0755 guide /run
        echo $$ >"$2.tmp" && mv "$2.tmp" "$2"
        exec sleep infinity' guide "$dir/ovl-$host" "$dir/pid-$host" >"$dir/host-$host.log" 2>&1 &
    disown
    for ((i = 0; i < 50; i++)); do
        [[ -s $dir/pid-$host ]] && GUIDE_PID[$host]=$(<"$dir/pid-$host") && return 0
        sleep 0.1
    done
    log "host $host: no mount namespace: $(cat "$dir/host-$host.log")"
    return 1
}

# guide_hosts_down: stops what the guide started on the gateways (its processes are the
# ones in their mount namespaces), gently first, then the namespaces' holders.
guide_hosts_down() {
    local host mnt p pids=() holders=() i
    for host in "${!GUIDE_PID[@]}"; do
        mnt=$(readlink "/proc/${GUIDE_PID[$host]}/ns/mnt") || continue
        holders+=("${GUIDE_PID[$host]}")
        for p in /proc/[0-9]*; do
            [[ ${p#/proc/} != "${GUIDE_PID[$host]}" && $(readlink "$p/ns/mnt" 2>/dev/null) == "$mnt" ]] &&
                pids+=("${p#/proc/}")
        done
    done
    if ((${#pids[@]})); then
        kill -TERM "${pids[@]}" 2>/dev/null
        for ((i = 0; i < 50; i++)); do
            sleep 0.1
            for p in "${pids[@]}"; do
                kill -0 "$p" 2>/dev/null && continue 2
            done
            break
        done
        kill -KILL "${pids[@]}" 2>/dev/null
    fi
    ((${#holders[@]})) && kill -KILL "${holders[@]}" 2>/dev/null
    GUIDE_PID=()
    return 0
}

# The stand-ins, defined in the shell that runs a gateway's block.
# shellcheck disable=SC2016 # expanded there, not here
GUIDE_SHIMS='
systemctl() {
    [[ $# == 3 && $1 == enable && $2 == --now && $3 == ?*@?* ]] ||
        { echo "guide test: systemctl $* is not emulated" >&2; return 1; }
    local unit=/etc/systemd/system/${3%%@*}@.service cmd key dir
    cmd=$(sed -n "s/^ExecStart=//p" "$unit") || return 1
    [[ -n $cmd ]] || { echo "guide test: no ExecStart in $unit" >&2; return 1; }
    for key in Runtime State; do
        dir=$(sed -n "s/^${key}Directory=//p" "$unit")
        [[ $key == Runtime ]] && dir=/run/$dir || dir=/var/lib/$dir
        mkdir -p -m 0700 "$dir"
        export "${key^^}_DIRECTORY=$dir"
    done
    ${cmd//%i/${3#*@}} >"/var/log/$3.journal" 2>&1 </dev/null &
}
journalctl() {
    [[ $# == 2 && $1 == -u ]] || { echo "guide test: journalctl $* is not emulated" >&2; return 1; }
    cat "/var/log/$2.journal"
}
scp() {
    local files=() a pid
    for a; do
        case $a in
            -r | -p | -rp | -pr) ;;
            -*) echo "guide test: scp $a is not emulated" >&2; return 1 ;;
            *) files+=("$a") ;;
        esac
    done
    local to=${files[-1]}
    unset "files[-1]"
    case ${to%%:*} in
        "root@$GUIDE_WAN_A") pid=$GUIDE_PID_A ;;
        "root@$GUIDE_WAN_B") pid=$GUIDE_PID_B ;;
        *) echo "guide test: scp to ${to%%:*}: no such gateway" >&2; return 1 ;;
    esac
    for a in "${files[@]}"; do
        tar -C "$(dirname "$a")" -cf - "$(basename "$a")" |
            nsenter -t "$pid" -m -- tar -C "${to#*:}" -xpf - || return 1
    done
}
'

# guide_run HOST WHERE TEXT: run TEXT with bash -e on HOST, in this repository (WHERE
# "clone") or root's home, output to stdout.
guide_run() {
    local host=$1 dir=$2 text=$3 ns=${GUIDE_NS[$1]:-}
    [[ -n $ns ]] || { echo "guide test: no host $host" >&2; return 2; }
    [[ $dir == clone ]] && dir=$ROOT || dir=/root
    local script="set -eo pipefail
cd $(printf %q "$dir")
$text"
    if [[ $host == lan-* ]]; then
        "$NETNS" exec "$ns" env -i PATH="$GUIDE_PATH" HOME=/root bash -c "$script" </dev/null
    else
        nsenter -t "${GUIDE_PID[$host]}" -m -n -- env -i PATH="$GUIDE_PATH" HOME=/root \
            GUIDE_PID_A="${GUIDE_PID[A]}" GUIDE_PID_B="${GUIDE_PID[B]}" \
            GUIDE_WAN_A="${GUIDE_WAN[A]}" GUIDE_WAN_B="${GUIDE_WAN[B]}" \
            bash -c "$GUIDE_SHIMS
$script" </dev/null
    fi
}

# guide_in HOST CMD...: a command of the test's own (not the guide's) on gateway HOST.
guide_in() {
    local host=$1
    shift
    nsenter -t "${GUIDE_PID[$host]}" -m -n -- "$@"
}

# guide_blocks README: the guide's marked blocks, in order, as NUL-separated records
# KIND HOSTS WHERE LINE TEXT. The markers:
#   <!-- guide-test: on HOSTS[, in the clone | , once up] -->  run the block on each of
#       HOSTS (KIND "run"; WHERE "clone": in this repository, "up": once both tunnels are
#       up, as a reader would wait; else in root's home)
#   <!-- guide-test: like FILE on HOST -->  FILE (in root's home) has the settings the
#       block shows (KIND "like", HOSTS the host, WHERE the file)
# Fails on an sh block without a marker, or a marker with no block right after it.
guide_blocks() {
    python3 - "$1" <<'PY'
import re, sys
lines = open(sys.argv[1]).read().split("\n")
start = lines.index("## Deploy on two gateways")
end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("## "))
marker, out, i = None, [], start
def fail(n, why):
    sys.exit(f"README.md line {n + 1}: {why}")
while i < end:
    line = lines[i]
    m = re.fullmatch(r"<!-- guide-test: (.*) -->", line.strip())
    if m:
        marker = (i, m.group(1))
    elif line.startswith("```"):
        close = lines.index("```", i + 1)
        text = "\n".join(lines[i + 1:close])
        if marker is None:
            if line == "```sh":
                fail(i, "a shell block without a <!-- guide-test: ... --> marker")
        elif marker[0] != i - 1:
            fail(marker[0], "a marker not right above its block")
        else:
            spec = marker[1]
            if spec.startswith("on "):
                hosts, _, where = spec[3:].partition(", ")
                where = {"": "", "in the clone": "clone", "once up": "up"}.get(where)
                if where is None:
                    fail(i - 1, f"unknown option in {spec!r}")
                out += ["run", hosts, where, str(i + 1), text]
            elif m := re.fullmatch(r"like (\S+) on (\S+)", spec):
                out += ["like", m.group(2), m.group(1), str(i + 1), text]
            else:
                fail(i - 1, f"unknown marker {spec!r}")
        marker, i = None, close
    elif line.strip() and marker is not None and not line.startswith("<!--"):
        fail(marker[0], "a marker with no block right after it")
    i += 1
sys.stdout.write("".join(f + "\0" for f in out))
PY
}

# guide_config_text: a TOML file's settings, for comparing what the guide shows with what
# a command wrote: comments, blank lines and public key values left out.
guide_config_text() {
    sed -e 's/[[:space:]]*#.*$//' -e '/^$/d' -e 's/^public_key = ".*"$/public_key = (a key)/'
}
