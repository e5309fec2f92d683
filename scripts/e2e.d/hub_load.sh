# A hub for many sites (issue 23), functional only: one `trident up` hub against 50 spokes
# emulated by the load generator (examples/hub_load; namespaces trl-hub and trl-spk from
# scripts/lib/hub_load.sh, each spoke on its own source address): every spoke comes up
# (keymix epoch and an echo reply through WireGuard) and a sample pings without loss across
# epoch switches. The deadlines are generous and nothing is timed: scripts/hub-load.sh is
# the benchmark.

# shellcheck source=../lib/hub_load.sh
. "$ROOT/scripts/lib/hub_load.sh"
CLEANUP_HOOKS+=(hl_down)

t_hub_load_50_spokes() {
    local n=50 dir=$WORK/hubload
    if [[ -z ${HUB_LOAD:-} ]]; then
        cargo build --quiet --release --manifest-path "$ROOT/Cargo.toml" --example hub_load || return 1
        HUB_LOAD=$ROOT/target/release/examples/hub_load
    fi
    rm -rf "$dir"
    hl_netns_up "$n" || return 1
    # 10 s epochs: three or more switches during the 35 s of pings.
    hl_gen "$dir" "$n" 10 20 --keepalive 25 >/dev/null || return 1
    hl_hub_start "$dir"
    hl_gen_start "$dir" --ping-sample 5 --up-timeout-secs 90 --hold-secs 35
    if ! hl_wait_file "$dir/ready.json" 100; then
        log "the generator wrote no boot report; its log:"
        tail -n 5 "$dir/gen.log"
        hl_down
        return 1
    fi
    local up
    up=$(python3 -c "import json; b=json.load(open('$dir/ready.json')); print(b['data_up'], b['all_data_s'])")
    log "spokes up (echo reply through the tunnel) and seconds until the last: $up"
    # The generator pings for 35 s, then reports (2 s of grace for late replies).
    local i
    for ((i = 0; i < 600; i++)); do
        kill -0 "$HL_GEN_PID" 2>/dev/null || break
        sleep 0.1
    done
    local states
    states=$("$TRIDENT" status "$HL_NAME" --json | python3 -c "import json,sys,collections; print(dict(collections.Counter(p['state'] for p in json.load(sys.stdin)['peers'])))")
    hl_gen_finish 10
    log "hub peer states: $states"
    local verdict
    verdict=$(python3 - "$dir/report.json" "$n" <<'PY'
import json, sys
r, n = json.load(open(sys.argv[1])), int(sys.argv[2])
p = r["ping"]
print(f"pings from {p['sampled']} spokes: {p['sent']} sent, {p['lost']} lost, "
      f"at least {p['min_epoch_switches']} epoch switches each; "
      f"cookies seen by spokes: {r['spoke_side']['keymix_cookies']} keymix, "
      f"{r['spoke_side']['wireguard_cookies']} WireGuard")
ok = (r["boot"]["data_up"] == n and p["lost"] == 0 and p["sent"] >= 5 * 300
      and (p["min_epoch_switches"] or 0) >= 2)
print("ok" if ok else "FAIL")
PY
    ) || { hl_down; return 1; }
    log "${verdict%$'\n'*}"
    hl_down
    [[ ${verdict##*$'\n'} == ok && $states == "{'up': $n}" ]]
}

TESTS+=(t_hub_load_50_spokes)
