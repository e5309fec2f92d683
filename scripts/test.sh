#!/usr/bin/env bash
# Everything CI runs, in order: build once, unit and integration tests, clippy, rustfmt,
# the fuzz targets' build, then the end-to-end tests in network namespaces.
# Needs root for the namespaces and TUN devices: as root it just runs, otherwise it re-runs
# itself through sudo.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    exec sudo -E env "PATH=$PATH" bash "$0" "$@"
fi

cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n==> %s\n' "$*"; }

step "installing system packages the tests need"
scripts/install-deps.sh

step "build (debug and release, all targets)"
cargo build --locked --workspace --all-targets
cargo build --locked --release --bin trident
# keymix must stay sans-IO: no async runtime, HTTP, TLS or certificate crate in its normal
# dependency tree (the ETSI 014 client and the KME simulator live in qkd/).
# (Two steps, so that a failing `cargo tree` stops the script instead of passing the check.)
keymix_tree=$(cargo tree --locked -p keymix -e normal --prefix none)
if grep -E '^(tokio|hyper|rustls|rcgen|tokio-rustls|hyper-util|openssl|openssl-sys|tokio-openssl)( |$)' <<<"$keymix_tree"; then
    echo "keymix must stay sans-IO" >&2
    exit 1
fi
# The data plane takes any QkdKeySource; HTTP and TLS (rustls, and OpenSSL for SKIP's PSK
# mode) stay out of it (docs/ARCHITECTURE.md).
tunnel_tree=$(cargo tree --locked -p tunnel -e normal --prefix none)
if grep -E '^(qkd|hyper|rustls|rcgen|openssl|openssl-sys|tokio-openssl)( |$)' <<<"$tunnel_tree"; then
    echo "tunnel must not depend on qkd, HTTP or TLS" >&2
    exit 1
fi
# One concept a file: no Rust source in the crates over 500 lines (docs/ARCHITECTURE.md).
long_files=$(find keymix qkd tunnel src -name '*.rs' -not -path '*/target/*' -exec wc -l {} + |
    awk '$2 != "total" && $1 > 500')
if [ -n "$long_files" ]; then
    printf 'over 500 lines, split by concern:\n%s\n' "$long_files" >&2
    exit 1
fi

step "systemd unit (systemd-analyze verify)"
scripts/verify-unit.sh "$PWD/target/release/trident"

step "unit and integration tests"
cargo test --locked --workspace

step "clippy -D warnings"
cargo clippy --locked --workspace --all-targets -- -D warnings

step "rustfmt --check"
cargo fmt --all -- --check

if [ -f fuzz/Cargo.toml ]; then
    step "fuzz targets build"
    # Shares the main target directory so keymix, qkd and their dependencies build once.
    cargo build --locked --manifest-path fuzz/Cargo.toml --target-dir target
fi

if [ -x scripts/e2e.sh ]; then
    step "end-to-end tests in network namespaces"
    # The release binary built above: what users run, and less CPU per test on a busy box.
    TRIDENT="$PWD/target/release/trident" scripts/e2e.sh
fi

step "all checks passed"
