#!/usr/bin/env bash
# A throwaway host: runs a command in fresh network and mount namespaces, with
# empty tmpfs over /run/netns, /run/nsnet and /etc/netns, so nothing done inside reaches
# the real host's interfaces, namespaces, routes, sysctls or firewall. When
# the command ends, everything made inside is gone.
#
#   scripts/sandbox.sh                 an interactive shell in a throwaway host
#   scripts/sandbox.sh CMD [ARG...]    run a command in one
#   scripts/sandbox.sh --hold          print "ready PID", then wait until stdin
#                                      closes (tests enter it with nsenter)
#
# Needs root (or a kernel and setup that allow unshare --net --mount).
set -euo pipefail

if [[ ${NSNET_SANDBOX_INSIDE:-} != 1 ]]; then
    NSNET_SANDBOX_INSIDE=1 exec unshare --net --mount --propagation private -- "$0" "$@"
fi
unset NSNET_SANDBOX_INSIDE

# /etc/netns (per-namespace resolv.conf and hosts) is made once, empty, on
# the real machine if missing: a tmpfs needs a directory to cover.
for dir in /run/netns /run/nsnet /etc/netns; do
    mkdir -p "$dir"
    mount -t tmpfs -o mode=0755,size=16m nsnet-sandbox "$dir"
done
# A sysfs of this network namespace, so /sys/class/net shows its interfaces.
mount -t sysfs sysfs /sys 2>/dev/null || true
ip link set lo up

if [[ ${1:-} == --hold ]]; then
    echo "ready $$"
    read -r _ || true
    exit 0
fi
if [[ $# -eq 0 ]]; then
    set -- "${SHELL:-/bin/bash}"
fi
exec "$@"
