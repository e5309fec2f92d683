#!/usr/bin/env bash
# Installs Trident on a gateway: the binary in /usr/local/bin, the systemd template unit
# trident@.service, the man pages trident(1) and trident.toml(5), shell completions, and a
# private /etc/trident.
# Then: put /etc/trident/NAME.toml and its keys in place, `trident check` it, and
#   systemctl enable --now trident@NAME
# Usage: scripts/install.sh [BINARY]   (default: builds target/release/trident)
# DESTDIR=/some/root installs into a staging tree and skips systemctl.
set -euo pipefail
cd "$(dirname "$0")/.."

binary="${1:-}"
if [ -z "$binary" ]; then
    cargo build --locked --release --bin trident
    binary=target/release/trident
fi
root="${DESTDIR:-}"
if [ -z "$root" ] && [ "$(id -u)" -ne 0 ]; then
    echo "run as root (or set DESTDIR to stage the files)" >&2
    exit 1
fi

install -D -m 0755 "$binary" "$root/usr/local/bin/trident"
install -D -m 0644 contrib/systemd/trident@.service "$root/etc/systemd/system/trident@.service"
install -d -m 0700 "$root/etc/trident"
install -d -m 0755 "$root/usr/local/share/man/man1" "$root/usr/local/share/man/man5" \
    "$root/usr/local/share/bash-completion/completions" \
    "$root/usr/local/share/zsh/site-functions" \
    "$root/usr/local/share/fish/vendor_completions.d"
"$binary" man >"$root/usr/local/share/man/man1/trident.1"
"$binary" man --section 5 >"$root/usr/local/share/man/man5/trident.toml.5"
"$binary" completions bash >"$root/usr/local/share/bash-completion/completions/trident"
"$binary" completions zsh >"$root/usr/local/share/zsh/site-functions/_trident"
"$binary" completions fish >"$root/usr/local/share/fish/vendor_completions.d/trident.fish"

if [ -z "$root" ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
fi
if [ -z "$root" ] && command -v mandb >/dev/null; then
    mandb -q 2>/dev/null || true
fi
echo "installed; next: /etc/trident/NAME.toml, trident check it, systemctl enable --now trident@NAME"
