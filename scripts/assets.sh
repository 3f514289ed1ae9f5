#!/usr/bin/env bash
# Writes what nsnet ships besides its binary into DIR, from the release
# binary itself (so they always match its options): man pages in DIR/man,
# completion scripts in DIR/completions (nsnet.bash, _nsnet, nsnet.fish).
#
#   scripts/assets.sh DIR        (after cargo build --release)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:?usage: scripts/assets.sh DIR}
nsnet=target/release/nsnet
rm -rf "$dir"
mkdir -p "$dir/man" "$dir/completions"
"$nsnet" -q man --dir "$dir/man"
"$nsnet" completions bash > "$dir/completions/nsnet.bash"
"$nsnet" completions zsh > "$dir/completions/_nsnet"
"$nsnet" completions fish > "$dir/completions/nsnet.fish"
