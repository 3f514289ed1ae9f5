#!/usr/bin/env bash
# Fuzzes nsnet's parsers: every parser of user input (fuzz/fuzz_targets/
# input.rs) and what it reads back from tools and disk (saved.rs), for
# SECONDS each (default 60). Installs cargo-fuzz when missing. The toolchain
# here is stable, so libFuzzer runs without a sanitizer (RUSTC_BOOTSTRAP lets
# cargo-fuzz pass its flags); a panic or a failed assertion is a finding.
#
#   scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${1:-60}

[[ -x "$HOME/.cargo/bin/cargo" ]] && export PATH="$HOME/.cargo/bin:$PATH"
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked --quiet
fi
export RUSTC_BOOTSTRAP=1
for target in input saved; do
    log=$(mktemp)
    # Hand-written hostile inputs (seeds/TARGET) start the corpus.
    corpus=corpus/$target
    mkdir -p "$corpus"
    seeds=()
    [[ -d seeds/$target ]] && seeds=("seeds/$target")
    cargo fuzz run --sanitizer none "$target" "$corpus" "${seeds[@]}" -- -max_total_time="$seconds" > "$log" 2>&1 || {
        tail -40 "$log"
        echo "fuzz: $target found a failing input (see fuzz/artifacts/$target/)" >&2
        exit 1
    }
    runs=$(grep -o 'Done [0-9]* runs' "$log" | tail -1 | awk '{print $2}')
    echo "fuzz: $target: ${runs:-?} executions in ${seconds}s, no failure"
    rm -f "$log"
done
