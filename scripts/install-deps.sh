#!/usr/bin/env bash
# Installs the Debian packages the demo, the tests and the benchmark use, only when a
# command is missing, so repeated runs cost nothing and need no network.
set -euo pipefail

declare -A pkg_for=(
    [ip]=iproute2
    [ping]=iputils-ping
    [iperf3]=iperf3
    [tc]=iproute2
    [nft]=nftables
    [socat]=socat
    [tcpdump]=tcpdump
    [sha256sum]=coreutils
    [python3]=python3
    [conntrack]=conntrack
)
missing=()
for cmd in "${!pkg_for[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=("${pkg_for[$cmd]}")
done
# Building: the qkd crate's SKIP PSK mode links the system OpenSSL (openssl-sys finds it
# through pkg-config), and cc compiles openssl-sys's probe.
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
command -v cc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
[ -e /usr/include/openssl/ssl.h ] || missing+=(libssl-dev)
for extra in "$@"; do
    command -v "${extra%%=*}" >/dev/null 2>&1 || missing+=("${extra#*=}")
done
if [ "${#missing[@]}" -gt 0 ]; then
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
