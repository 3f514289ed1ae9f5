#!/usr/bin/env bash
# Runs the whole test suite: unit tests, then integration tests that run the
# real nsnet against the real `ip` inside throwaway hosts (scripts/sandbox.sh),
# never on this machine's own network. Run as root on Debian or Ubuntu.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
[[ -x "$HOME/.cargo/bin/cargo" ]] && export PATH="$HOME/.cargo/bin:$PATH"

if [[ $(id -u) != 0 ]]; then
    echo "test: integration tests need root to make throwaway hosts; run with sudo" >&2
    [[ ${CI:-} == true ]] && exit 1
fi

cargo test --locked "$@"
