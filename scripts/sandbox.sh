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
#
# A tmpfs needs a directory to cover. One of the three that is missing on the
# real machine is made there, with a marker file in it (hidden inside by the
# tmpfs); when a throwaway host ends and no other one still covers it, the
# directory goes again, so the real machine keeps no empty /etc/netns. The
# script's own file is the lock that keeps one host's set-up and another's
# clean-up apart.
set -euo pipefail

dirs=(/run/netns /run/nsnet /etc/netns)
marker=.made-by-nsnet-sandbox

# Whether any process on this machine has DIR as a mount point (field 5 of
# mountinfo), i.e. another throwaway host still covers it.
covered() {
    grep -qsF -- " $1 " /proc/[0-9]*/mountinfo
}

# Removes the directories a throwaway host made, once none covers them.
tidy() {
    local dir
    exec 9<"$0"
    flock -x 9
    for dir in "${dirs[@]}"; do
        [[ -e $dir/$marker ]] || continue
        covered "$dir" && continue
        rm -f "$dir/$marker"
        rmdir "$dir" 2>/dev/null || true
    done
    exec 9<&-
}

if [[ ${NSNET_SANDBOX_INSIDE:-} != 1 ]]; then
    # Not exec: the clean-up runs when the throwaway host has ended. The
    # host runs as a background job this shell waits for, so a TERM, INT or
    # HUP sent to this shell (`pkill -f` of a script a sandbox runs matches
    # this shell too) is passed on to the host at once, and the clean-up still
    # runs once it has ended; a shell waiting on a foreground job would die
    # first and leave the directories it made on the real machine. Standard
    # input is handed on explicitly: a background job's is /dev/null.
    rc=0
    host=
    # The processes under PID, itself included (a shell killed first would
    # leave its children running, reparented, holding the host's mounts).
    tree() {
        ps -e -o pid= -o ppid= 2>/dev/null | awk -v root="$1" '
            { kids[$2] = kids[$2] " " $1 }
            END {
                todo[1] = root; n = 1
                for (i = 1; i <= n; i++) {
                    print todo[i]
                    k = split(kids[todo[i]], more, " ")
                    for (j = 1; j <= k; j++) todo[++n] = more[j]
                }
            }'
    }
    # Whether any of the processes PID... runs (a zombie, ended but not yet
    # waited for, does not).
    running() {
        local pid stat
        for pid; do
            stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
            stat=${stat##*) }
            [[ ${stat:0:1} != Z ]] && return 0
        done
        return 1
    }
    stop() {
        trap '' TERM INT HUP
        local pids=() tries
        if [[ -n $host ]]; then
            mapfile -t pids < <(tree "$host")
            ((${#pids[@]})) || pids=("$host")
            kill "-$1" "${pids[@]}" 2>/dev/null || true
            # Whatever ignored the signal gets 5 s, then KILL.
            for ((tries = 0; tries < 50; tries++)); do
                running "${pids[@]}" || break
                sleep 0.1
            done
            if running "${pids[@]}"; then
                kill -KILL "${pids[@]}" 2>/dev/null || true
            fi
            wait "$host" 2>/dev/null || true
        fi
        tidy
        exit $((128 + $(kill -l "$1")))
    }
    for signal in TERM INT HUP; do
        trap "stop $signal" "$signal"
    done
    NSNET_SANDBOX_INSIDE=1 unshare --net --mount --propagation private -- "$0" "$@" <&0 &
    host=$!
    wait "$host" || rc=$?
    trap - TERM INT HUP
    tidy
    exit "$rc"
fi
unset NSNET_SANDBOX_INSIDE

exec 9<"$0"
flock -s 9
for dir in "${dirs[@]}"; do
    if [[ ! -d $dir ]]; then
        mkdir -p "$dir"
        : >"$dir/$marker"
    fi
    mount -t tmpfs -o mode=0755,size=16m nsnet-sandbox "$dir"
done
exec 9<&-
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
