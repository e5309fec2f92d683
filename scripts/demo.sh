#!/usr/bin/env bash
# Demo: two sites linked by trident in network namespaces, with all three key sources.
# Builds in release mode, brings up the harness, starts one KME simulator per site, generates
# keys, a per-pair bootstrap PSK and configs (qkd = "required"), the setup the README
# recommends; starts both gateways, pings LAN host A -> LAN host B, waits for the second
# epoch (authenticated by the chain, not only by the bootstrap PSK), prints both status
# views, and tears everything down (also on Ctrl-C).
#
# Where the KMEs run (scripts/lib/trident.sh): KME A on gateway A's host (namespace trd-gwa),
# KME B on gateway B's (trd-gwb). Each serves its SAE (the gateway's trident) on the host's
# loopback only (127.0.0.1:8443 / :8444), inside the secure site. The KMEs' own key link
# runs between the gateways' WAN addresses (192.0.2.2:8445 <-> 198.51.100.2:8446), i.e. it
# crosses between the sites through the WAN router, as the QKD link's classical channel would.
set -euo pipefail
if [[ $(id -u) -ne 0 ]]; then
    exec sudo -E "$0" "$@"
fi

ROOT=$(cd "$(dirname "$0")/.." && pwd)
NETNS=$ROOT/scripts/netns.sh
TRIDENT=$ROOT/target/release/trident
# shellcheck source=lib/trident.sh
. "$ROOT/scripts/lib/trident.sh"

echo "== system packages (only those missing: OpenSSL headers for the build, iproute2, ...)"
"$ROOT/scripts/install-deps.sh"

echo "== building (release)"
cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" --bin trident

WORK=$(mktemp -d /tmp/trident-demo.XXXXXX)
cleanup() {
    trap - EXIT INT TERM
    trd_stop a "$WORK"
    trd_stop b "$WORK"
    trd_kme_stop a "$WORK"
    trd_kme_stop b "$WORK"
    "$NETNS" down
    rm -rf "$WORK"
    echo "== torn down"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== network namespaces"
"$NETNS" up
echo "== KME simulators: KME A in trd-gwa ($TRD_KME_LISTEN_A), KME B in trd-gwb ($TRD_KME_LISTEN_B);"
echo "   key link $TRD_KME_LINK_A <-> $TRD_KME_LINK_B across the WAN"
trd_kme_init "$WORK"
trd_kme_start a "$WORK"
trd_kme_start b "$WORK"
echo "== keys, a bootstrap PSK for the pair and configs in $WORK (qkd = \"required\", 10 s epochs)"
trd_configs "$WORK" 10 30 required
trd_add_psk "$WORK"
echo "== starting gateways"
trd_start a "$WORK"
trd_start b "$WORK"
if ! trd_wait_state trdA up 20 || ! trd_wait_state trdB up 20; then
    echo "tunnel did not come up; logs:" >&2
    tail -n 20 "$WORK/a.log" "$WORK/b.log" "$WORK/kme-a.log" "$WORK/kme-b.log" >&2
    exit 1
fi
echo "== ping LAN host A (192.168.10.2) -> LAN host B (192.168.20.2)"
"$NETNS" exec lana ping -c 5 -i 0.2 -W 2 192.168.20.2
echo "== epoch 1 was authenticated by the bootstrap PSK; waiting for epoch 2, authenticated by the chain"
for ((i = 0; i < 150; i++)); do
    [[ $(trd_json trdA "s['peers'][0]['auth']") == chain && $(trd_json trdB "s['peers'][0]['auth']") == chain ]] && break
    sleep 0.2
done
"$NETNS" exec lana ping -c 3 -i 0.2 -W 2 192.168.20.2
for side in A B; do
    echo "== status on gateway $side"
    "$TRIDENT" status "trd$side"
    echo "   sources (JSON): $(trd_json "trd$side" "json.dumps(s['peers'][0]['sources'])")"
done
