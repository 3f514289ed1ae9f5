#!/usr/bin/env bash
# Measures nsnet's reliability and writes docs/reliability.md: faults
# injected at every step (in-process against a model host, and end to end in
# throwaway hosts), interrupts and SIGKILL mid-plan, concurrency, hostile
# input, idempotency, and fuzzing. Every figure comes from this run: the
# tests print `reliability:` lines, the fuzzers their execution counts.
# Everything runs in throwaway hosts (scripts/sandbox.sh); run as root.
#
#   scripts/reliability.sh [FUZZ_SECONDS]      (default 60 per fuzz target)
set -euo pipefail
cd "$(dirname "$0")/.."
fuzz_seconds=${1:-60}
[[ -x "$HOME/.cargo/bin/cargo" ]] && export PATH="$HOME/.cargo/bin:$PATH"

log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "reliability: running the fault, signal, concurrency, input, idempotency, state-file and ownership tests" >&2
cargo test --locked --lib model -- --nocapture >> "$log" 2>&1
for t in faults concurrency cli idempotency statefiles ownership; do
    cargo test --locked --test "$t" -- --nocapture >> "$log" 2>&1
done
echo "reliability: fuzzing for ${fuzz_seconds}s per target" >&2
fuzz=$(scripts/fuzz.sh "$fuzz_seconds")

injected=$(grep -o 'end to end: .*: [0-9]* faults injected' "$log" | grep -o '[0-9]* faults' | awk '{s+=$1} END {print s}')
in_process=$(grep -o 'in-process: [0-9]* faults' "$log" | grep -o '[0-9]*' | head -1)
executions=$(grep -o '[0-9]* executions' <<< "$fuzz" | awk '{s+=$1} END {print s}')
passed=$(grep -o 'test result: ok. [0-9]* passed' "$log" | awk '{s+=$4} END {print s}')

{
    echo "# Reliability"
    echo
    echo "Produced by \`scripts/reliability.sh $fuzz_seconds\` on $(date -u +%Y-%m-%d), $(uname -r) kernel,"
    echo "$(ip -V | head -1), $(iptables -V), $(nproc) cores. Every figure below is"
    echo "from that run; run the script to measure your machine."
    echo
    echo "| what | figure |"
    echo "|---|---|"
    echo "| faults injected, end to end (real binary, real tools, throwaway hosts; step k fails for every k) | $injected, 0 leftovers |"
    echo "| faults injected, in-process (every step of each command of a 15-command session, IPv4 only and dual stack, against a model host) | $in_process, 0 leftovers |"
    echo "| fuzz executions (input parsers, and what nsnet reads back), no failure | $executions |"
    echo "| tests these figures come from, all passed | $passed |"
    echo
    echo "## What each test saw"
    echo
    grep -o 'reliability: .*' "$log" | sed 's/^reliability: /- /' | sort
    echo
    echo "## Fuzzing"
    echo
    sed 's/^fuzz: /- /' <<< "$fuzz"
    echo
    echo "## How"
    echo
    echo "- End to end: \`NSNET_FAIL_AT=k\` makes the k-th command of the plan fail as if the tool had"
    echo "  refused it; the executor rolls back; a normalised snapshot of the throwaway host (links,"
    echo "  addresses, routes of the host and every namespace, sysctls, iptables-save) must equal the"
    echo "  one taken before the command. Real causes are tested too: an \`eth0\` already in a"
    echo "  namespace, a name already taken, an existing default route, a read-only /proc/sys,"
    echo "  iptables missing."
    echo "- Signals: SIGINT/SIGTERM/SIGHUP are noted; the executor stops before its next step and"
    echo "  rolls back (exit 128+signal). SIGKILL cannot be caught: the journal, written ahead of"
    echo "  every step, lets the next command or \`nsnet recover\` undo what was applied. \`NSNET_KILL_AT=k\`"
    echo "  makes nsnet SIGKILL itself just before step k: \`recover\` is tested after a kill at every step."
    echo "- Concurrency: one lock for all nsnet processes; 20 at once, and two racing for a port."
    echo "- Ownership: namespaces, bridges and veth ends deleted and made again by hand under nsnet's"
    echo "  names, and records naming what the user made (tests/ownership.rs); nsnet's own files"
    echo "  full, read-only, linked, a FIFO, oversized (tests/statefiles.rs)."
    echo "- Fuzzing: cargo-fuzz (libFuzzer) on stable Rust, without a sanitizer; targets in fuzz/,"
    echo "  seeded with hand-written hostile records (fuzz/seeds/). A record that loads is also taken"
    echo "  as hostile: on a host where every name it holds is another object, \`down\` must plan no deletion."
} > docs/reliability.md
echo "reliability: wrote docs/reliability.md ($injected + $in_process faults, $executions fuzz executions)" >&2
