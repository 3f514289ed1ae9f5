#!/usr/bin/env bash
# Runs the whole test suite: unit tests, then integration tests that run the
# real nsnet against the real `ip` inside throwaway hosts (scripts/sandbox.sh),
# never on this machine's own network. Run as root on Debian or Ubuntu.
#
# Every test binary runs even when an earlier one fails (--no-fail-fast), and
# the last line adds up every binary's result: `N passed, N failed`.
# Arguments go to `cargo test` (e.g. `scripts/test.sh --test publish`).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
[[ -x "$HOME/.cargo/bin/cargo" ]] && export PATH="$HOME/.cargo/bin:$PATH"

if [[ $(id -u) != 0 ]]; then
    echo "test: integration tests need root to make throwaway hosts; run with sudo" >&2
    [[ ${CI:-} == true ]] && exit 1
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --locked --no-fail-fast "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

# cargo prints `test result: ok. 12 passed; 0 failed; 1 ignored; ...` per binary.
read -r passed failed ignored binaries < <(awk '
    /^test result:/ {
        for (i = 1; i <= NF; i++) {
            if ($(i) ~ /^passed;?$/) p += $(i - 1)
            if ($(i) ~ /^failed;?$/) f += $(i - 1)
            if ($(i) ~ /^ignored;?$/) g += $(i - 1)
        }
        n++
    }
    END { print p + 0, f + 0, g + 0, n + 0 }' "$log")
echo
echo "test: $binaries test binaries ran"
echo "test: $passed passed, $failed failed, $ignored skipped"
# Name what failed, so a log read from its end says which test to run again.
grep -E '^test .* \.\.\. FAILED$' "$log" | sed 's/^test /test: FAILED /; s/ \.\.\. FAILED$//' || true
if ((status == 0 && failed > 0)); then
    status=1
fi
exit "$status"
