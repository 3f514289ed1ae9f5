#!/usr/bin/env bash
# Installs what nsnet and its tests need on Debian or Ubuntu, when missing:
# the tools nsnet drives (iproute2, iptables, procps for sysctl), those the
# tests and the tutorial pages use to make throwaway hosts and send real
# traffic (util-linux, iputils-ping, netcat-openbsd, socat), and what building
# needs: a C compiler with the C library's headers and start files (Debian's
# gcc only *recommends* libc6-dev, and --no-install-recommends skips it, so it
# is named here), and a real container runtime for the CNI tests: podman
# with the reference CNI plugins, and a static busybox for the containers'
# root file system (no image registry needed). Installs Rust with rustup only if there is no cargo at all.
# Run as root.
set -euo pipefail

packages=(iproute2 iptables nftables iputils-ping netcat-openbsd socat util-linux procps kmod ca-certificates curl gcc libc6-dev
    podman containernetworking-plugins busybox-static)
missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    echo "deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null && [[ -x "$HOME/.cargo/bin/cargo" ]]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null; then
    echo "deps: installing Rust with rustup"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c rustfmt,clippy
fi
