#!/usr/bin/env bash
# `systemd-analyze verify` on contrib/systemd/trident@.service, as instance site-a, with
# ExecStart pointed at the freshly built binary (verify insists the executable exists).
# Installs systemd's analyzer when missing; skips with a message where it cannot run.
set -euo pipefail
cd "$(dirname "$0")/.."

binary="${1:-$PWD/target/release/trident}"
if ! command -v systemd-analyze >/dev/null; then
    if command -v apt-get >/dev/null && [ "$(id -u)" -eq 0 ]; then
        apt-get install -y --no-install-recommends systemd >/dev/null || true
    fi
fi
if ! command -v systemd-analyze >/dev/null; then
    echo "SKIP: systemd-analyze is not available (package systemd)"
    exit 0
fi
[ -x "$binary" ] || { echo "no trident binary at $binary (build it first)" >&2; exit 1; }

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
sed "s#/usr/local/bin/trident#$binary#g" contrib/systemd/trident@.service >"$dir/trident@site-a.service"
if ! out=$(systemd-analyze verify --man=no "$dir/trident@site-a.service" 2>&1); then
    # Without a running systemd some containers cannot load units at all; that is not a
    # problem of the unit. Anything naming the unit is.
    if grep -q "trident@" <<<"$out"; then
        echo "$out" >&2
        exit 1
    fi
    echo "SKIP: systemd-analyze cannot run here: $out"
    exit 0
fi
if [ -n "$out" ]; then
    echo "$out" >&2
    exit 1
fi
echo "contrib/systemd/trident@.service: systemd-analyze verify ok"
