#!/usr/bin/env bash
# Demo: two sites linked by trident in network namespaces. Builds in release mode, brings
# up the harness, generates keys and configs, starts both gateways, pings LAN host A ->
# LAN host B, prints both status views, and tears everything down (also on Ctrl-C).
set -euo pipefail
if [[ $(id -u) -ne 0 ]]; then
    exec sudo -E "$0" "$@"
fi

ROOT=$(cd "$(dirname "$0")/.." && pwd)
NETNS=$ROOT/scripts/netns.sh
TRIDENT=$ROOT/target/release/trident
# shellcheck source=lib/trident.sh
. "$ROOT/scripts/lib/trident.sh"

echo "== building (release)"
cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" --bin trident

WORK=$(mktemp -d /tmp/trident-demo.XXXXXX)
cleanup() {
    trap - EXIT INT TERM
    trd_stop a "$WORK"
    trd_stop b "$WORK"
    "$NETNS" down
    rm -rf "$WORK"
    echo "== torn down"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== network namespaces"
"$NETNS" up
echo "== keys and configs in $WORK"
trd_configs "$WORK" 120 180
echo "== starting gateways"
trd_start a "$WORK"
trd_start b "$WORK"
if ! trd_wait_state trdA up 20; then
    echo "tunnel did not come up; logs:" >&2
    tail -n 20 "$WORK/a.log" "$WORK/b.log" >&2
    exit 1
fi
echo "== ping LAN host A (192.168.10.2) -> LAN host B (192.168.20.2)"
"$NETNS" exec lana ping -c 5 -i 0.2 -W 2 192.168.20.2
echo "== status on gateway A"
"$TRIDENT" status trdA
echo "== status on gateway B"
"$TRIDENT" status trdB
