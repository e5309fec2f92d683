# The audit's memory does not grow with the capture (issue 21, finding 9: a 1 GB capture
# took 3.8 GB), sourced by scripts/e2e.sh. A real WAN capture of a QKD-required run, padded
# to 300 MB with bulk WireGuard data (scripts/lib/pcap_pad.py), gives the same verdicts as
# the capture itself, with about the same peak memory.

# am_audit PCAP OUT: `trident audit --broken all --json` of PCAP (with gateway A's key log)
# into OUT; prints the audit's peak resident memory in KiB.
am_audit() {
    python3 -c '
import resource, subprocess, sys
with open(sys.argv[1], "wb") as out:
    rc = subprocess.run(sys.argv[2:], stdout=out).returncode
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(rc)' "$2" "$TRIDENT" audit --pcap "$1" --keylog "$WORK/a.keylog" --broken all --json
}

t_audit_large_capture() {
    audit_capture required || return 1
    local rss_small rss_big size
    rss_small=$(am_audit "$WORK/wan.pcap" "$WORK/small.json") || { log "audit of the capture failed"; return 1; }
    python3 "$ROOT/scripts/lib/pcap_pad.py" "$WORK/wan.pcap" "$WORK/big.pcap" 300 || { log "padding failed"; return 1; }
    size=$(stat -c %s "$WORK/big.pcap")
    rss_big=$(am_audit "$WORK/big.pcap" "$WORK/big.json") || { log "audit of the padded capture failed"; rm -f "$WORK/big.pcap"; return 1; }
    rm -f "$WORK/big.pcap"
    log "audit peak memory: $rss_small KiB for the capture ($(stat -c %s "$WORK/wan.pcap") bytes), $rss_big KiB padded to $size bytes"
    local same
    same=$(python3 -c '
import json, sys
small, big = (json.load(open(f)) for f in sys.argv[1:3])
ok = small["epochs"] == big["epochs"] and len(big["epochs"]) >= 3 and big["recovered"] == len(big["epochs"])
ok = ok and big["capture"]["udp"] > 100 * small["capture"]["udp"]
print("same" if ok else "different: %s vs %s" % (small, big))' "$WORK/small.json" "$WORK/big.json")
    [[ $same == same ]] || { log "verdicts differ: $same"; return 1; }
    # Memory follows the exchanges, not the bytes: 300 MB more capture, under 32 MiB more.
    ((rss_big < rss_small + 32768)) || { log "peak memory grew with the capture"; return 1; }
}

TESTS+=(t_audit_large_capture)
