#!/usr/bin/env bash
# Builds the Debian package: target/debian/nsnet_VERSION_ARCH.deb, with the
# release binary, man pages and completions (see [package.metadata.deb] in
# Cargo.toml). Installs cargo-deb first if it is missing. Prints the path.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -x "$HOME/.cargo/bin/cargo" ]] && export PATH="$HOME/.cargo/bin:$PATH"
if ! cargo deb --version >/dev/null 2>&1; then
    echo "package: installing cargo-deb" >&2
    cargo install --locked cargo-deb >&2
fi
cargo build --release --locked >&2
scripts/assets.sh target/assets
cargo deb --no-build
