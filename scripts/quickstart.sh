#!/usr/bin/env bash
# Builds nsnet and runs a first real network: two namespaces on a bridge,
# pinging each other and the host. It runs in a throwaway host
# (scripts/sandbox.sh), so this machine's own network is not touched.
# Run as root on Debian or Ubuntu.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
[[ -x "$HOME/.cargo/bin/cargo" ]] && export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --locked
nsnet="$PWD/target/release/nsnet"

# A throwaway host starts with no routes, so the bridge gets the first
# default subnet, 10.200.0.0/24: red is .2, blue .3, the gateway .1.
scripts/sandbox.sh bash -euo pipefail -c "
    set -x
    $nsnet bridge up red blue
    ip netns exec red ping -c 2 -W 2 10.200.0.3
    ping -c 1 -W 2 10.200.0.2
    $nsnet netns list
    $nsnet bridge down
    ip netns list
"
echo
echo "quickstart: nsnet is built and worked in a throwaway host. From here (as root):"
echo "  target/release/nsnet bridge up red blue --explain   # what it would run on this host, and why"
echo "  target/release/nsnet lab                            # a shell in a throwaway host to try it in"
echo "  scripts/install.sh                                  # nsnet on PATH, with man pages and completion"
