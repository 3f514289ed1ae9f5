#!/usr/bin/env bash
# Builds nsnet (release profile) and installs it with its man pages and its
# bash, zsh and fish completions under PREFIX (default /usr/local):
#
#   scripts/install.sh [--prefix DIR] [--cni-dir DIR]
#
#   PREFIX/bin/nsnet
#   PREFIX/share/man/man1/nsnet*.1
#   PREFIX/share/bash-completion/completions/nsnet
#   PREFIX/share/zsh/site-functions/_nsnet
#   PREFIX/share/fish/vendor_completions.d/nsnet.fish
#   CNI_DIR/nsnet -> PREFIX/bin/nsnet   the CNI plugin (CNI_DIR: --cni-dir,
#                                       default PREFIX/lib/cni, which podman
#                                       searches; containerd on Debian wants
#                                       --cni-dir /usr/lib/cni)
#
# Run as root for /usr/local. `cargo install --locked --path .` installs the binary
# alone; packaging (scripts/package.sh) builds a .deb with the same files.
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=/usr/local
cni_dir=
while (($#)); do
    case $1 in
        --prefix) prefix=$2; shift 2 ;;
        --cni-dir) cni_dir=$2; shift 2 ;;
        *) echo "install: unknown argument $1 (usage: scripts/install.sh [--prefix DIR] [--cni-dir DIR])" >&2; exit 2 ;;
    esac
done
[[ -x "$HOME/.cargo/bin/cargo" ]] && export PATH="$HOME/.cargo/bin:$PATH"

cargo build --release --locked
scripts/assets.sh target/assets
install -Dm755 target/release/nsnet "$prefix/bin/nsnet"
install -d "$prefix/share/man/man1"
install -m644 target/assets/man/*.1 "$prefix/share/man/man1/"
install -Dm644 target/assets/completions/nsnet.bash "$prefix/share/bash-completion/completions/nsnet"
install -Dm644 target/assets/completions/_nsnet "$prefix/share/zsh/site-functions/_nsnet"
install -Dm644 target/assets/completions/nsnet.fish "$prefix/share/fish/vendor_completions.d/nsnet.fish"
cni_dir=${cni_dir:-$prefix/lib/cni}
install -d "$cni_dir"
ln -sf "$prefix/bin/nsnet" "$cni_dir/nsnet"
echo "install: nsnet $("$prefix/bin/nsnet" --version | cut -d' ' -f2) in $prefix/bin, with man pages and completions; the CNI plugin in $cni_dir"
