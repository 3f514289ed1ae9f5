#!/usr/bin/env bash
# Benchmarks one network built five ways, side by side: N namespaces on one
# bridge (10.210.0.0/22), NAT, one published port each (10000+i -> 80), then
# torn down. Every measurement runs in a fresh throwaway host
# (scripts/sandbox.sh); nothing reaches this machine's network.
#
#   nsnet     nsnet as a script would use it: one `bridge up` with --nat and
#             a --publish per namespace; `down`
#   nsnet-each  nsnet a command at a time: bridge up, nat up, then one
#             `publish add` per namespace (each a process that reads the
#             host and the rules); `down`
#   tutorial  the tutorials' way: one ip/iptables/sysctl process per command
#   cni       the CNI reference plugins (bridge + host-local + portmap, from
#             Debian's containernetworking-plugins) driven by their env +
#             stdin protocol, as a runtime drives them
#   floor     the fewest processes the tools allow: one `ip -batch` for the
#             host, one per namespace, one iptables-restore
#
# Then, under a container runtime: ADD and DEL of C containers, one plugin
# call (chain) per container as libcni makes them, each call timed: nsnet's
# plugin against the reference chain bridge + host-local + portmap. The
# namespaces are the runtime's (made and deleted untimed); each ADD's result
# is passed as prevResult on its DEL. Checked in every run: the last
# container pings the first, a published port answers on the host's
# address, and after the DELs no veth is left (nor, for nsnet, its bridge or
# a rule); what the reference chain leaves is counted.
#
#   scripts/bench.sh [--runs R] [--out FILE] [--foreign F] [--containers C]
#                    [--only cni] [N ...]
#       (default: 3 runs; N = 10 100 500 1000; F = 5000 rules of another
#       tool; C = 50 containers; --only cni: the runtime section alone, the
#       only thing written to FILE)
#
# Prints medians and ratios, and writes them to docs/benchmarks.md (or FILE).
# Run as root, after `cargo build --release`; NSNET_BIN=PATH benchmarks
# another binary (default target/release/nsnet).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
nsnet=${NSNET_BIN:-$here/target/release/nsnet}
subnet=10.210.0.0/22
gateway=10.210.0.1
cni=/usr/lib/cni

addr() { echo "10.210.$(( (1 + $1) / 256 )).$(( (1 + $1) % 256 ))"; }

ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

# --- the ways; each defines setup_WAY and teardown_WAY for N -----------

setup_nsnet() {
    local n=$1 args=() i
    for ((i = 1; i <= n; i++)); do args+=("ns$i" --publish "ns$i=$((10000 + i)):80"); done
    mem "$nsnet" -q bridge up "${args[@]}" --subnet "$subnet" --bridge br0 --nat >/dev/null
}
teardown_nsnet() { mem "$nsnet" -q down; }

setup_nsnet-each() {
    local n=$1 names=() i
    for ((i = 1; i <= n; i++)); do names+=("ns$i"); done
    mem "$nsnet" -q bridge up "${names[@]}" --subnet "$subnet" --bridge br0 >/dev/null
    mem "$nsnet" -q nat up --bridge br0
    for ((i = 1; i <= n; i++)); do mem "$nsnet" -q publish add "ns$i" "$((10000 + i)):80" >/dev/null; done
}
teardown_nsnet-each() { teardown_nsnet; }

# Peak resident memory of nsnet, in kB, across the run. /usr/bin/time costs
# about 1.5 ms a process, which the floor does not pay, so only the memory
# run (one more run of each nsnet way, untimed) goes through it; the timed
# runs start nsnet directly.
mem() {
    if [[ ${measure_mem:-0} != 1 ]]; then
        "$@"
        return
    fi
    local kb
    kb=$( { /usr/bin/time -f '%M' "$@" 2>&1 1>&3 3>&-; } 3>&1 | tail -1)
    (( kb > ${peak_kb:-0} )) && peak_kb=$kb
    return 0
}

setup_tutorial() {
    local n=$1 i a
    ip link add br0 type bridge
    ip addr add "$gateway/22" dev br0
    ip link set br0 up
    sysctl -qw net.ipv4.ip_forward=1
    iptables -t nat -A POSTROUTING -s "$subnet" ! -o br0 -j MASQUERADE
    iptables -A FORWARD -i br0 -j ACCEPT
    iptables -A FORWARD -o br0 -j ACCEPT
    for ((i = 1; i <= n; i++)); do
        a=$(addr "$i")
        ip netns add "ns$i"
        ip link add "veth-$i" type veth peer name "veth-$i-br"
        ip link set "veth-$i" netns "ns$i"
        ip link set "veth-$i-br" master br0
        ip -n "ns$i" link set "veth-$i" up
        ip link set "veth-$i-br" up
        ip -n "ns$i" addr add "$a/22" dev "veth-$i"
        ip -n "ns$i" link set lo up
        ip -n "ns$i" route add default via "$gateway"
        iptables -t nat -A PREROUTING -p tcp --dport $((10000 + i)) -j DNAT --to-destination "$a:80"
    done
}
teardown_tutorial() {
    local n=$1 i
    for ((i = 1; i <= n; i++)); do
        iptables -t nat -D PREROUTING -p tcp --dport $((10000 + i)) -j DNAT --to-destination "$(addr "$i"):80"
        ip netns del "ns$i"
    done
    iptables -D FORWARD -o br0 -j ACCEPT
    iptables -D FORWARD -i br0 -j ACCEPT
    iptables -t nat -D POSTROUTING -s "$subnet" ! -o br0 -j MASQUERADE
    sysctl -qw net.ipv4.ip_forward=0
    ip link del br0
}

cni_bridge='"cniVersion":"1.0.0","name":"bench","type":"bridge","bridge":"br0","isGateway":true,"ipMasq":true,"ipam":{"type":"host-local","subnet":"'$subnet'","dataDir":"/run/nsnet/cni-ipam"}'
cni_portmap() { echo '"cniVersion":"1.0.0","name":"bench","type":"portmap","capabilities":{"portMappings":true},"snat":true,"runtimeConfig":{"portMappings":[{"hostPort":'$((10000 + $1))',"containerPort":80,"protocol":"tcp"}]}'; }
plugin() { # plugin COMMAND TYPE ID CONFIG (TYPE nsnet is the benchmarked binary)
    local bin=$cni/$2
    if [[ $2 == nsnet ]]; then bin=$nsnet; fi
    CNI_COMMAND=$1 CNI_CONTAINERID=$3 CNI_NETNS=/run/netns/$3 CNI_IFNAME=eth0 CNI_PATH=$cni "$bin" <<< "{$4}"
}
setup_cni() {
    local n=$1 i result
    for ((i = 1; i <= n; i++)); do
        ip netns add "ns$i"
        result=$(plugin ADD bridge "ns$i" "$cni_bridge")
        plugin ADD portmap "ns$i" "$(cni_portmap "$i"),\"prevResult\":$result" >/dev/null
    done
}
teardown_cni() {
    local n=$1 i
    for ((i = 1; i <= n; i++)); do
        plugin DEL portmap "ns$i" "$(cni_portmap "$i")" >/dev/null
        plugin DEL bridge "ns$i" "$cni_bridge" >/dev/null
        ip netns del "ns$i"
    done
    ip link del br0
}

# --- under a container runtime: C containers, one chain call each ---------
#
# As libcni runs a network's plugins: per container one ADD of the chain,
# whose result the runtime keeps and passes as prevResult to every plugin
# of the DEL, with the same runtimeConfig. Two ways: nsnet alone (its own
# portMappings capability), or the reference bridge (host-local IPAM) then
# portmap with bridge's result, deleted in reverse (portmap, then bridge).

nsnet_cni='"cniVersion":"1.0.0","name":"bench","type":"nsnet","bridge":"br0","subnet":"'$subnet'","nat":true,"capabilities":{"portMappings":true}'
# The reference bridge as a runtime configures it: host-local with the
# default route (podman's default network has it), as nsnet gives one.
# Without it a container answers nothing off its subnet, not even a
# published port asked for on the host's address.
cni_bridge_rt=${cni_bridge%\}}',"routes":[{"dst":"0.0.0.0/0"}]}'
# The host's own address, where a published port is asked for: a sandbox
# has only lo, so the harness puts it on a dummy uplink.
uplink=172.31.0.1

# runtime_add WAY I: container I's ADD; the chain's result into res[I].
# Configurations are built before the clock starts (conf[I]): the timed
# part is the plugins and the runtime's own passing of results.
runtime_add() {
    local way=$1 i=$2 r
    if [[ $way == nsnet ]]; then
        res[i]=$(plugin ADD nsnet "ctr$i" "${conf[i]}") || { echo "bench: nsnet ADD ctr$i: ${res[i]}" >&2; exit 1; }
    else
        r=$(plugin ADD bridge "ctr$i" "$cni_bridge_rt") || { echo "bench: bridge ADD ctr$i: $r" >&2; exit 1; }
        res[i]=$(plugin ADD portmap "ctr$i" "${conf[i]},\"prevResult\":$r") || { echo "bench: portmap ADD ctr$i: ${res[i]}" >&2; exit 1; }
    fi
}

# runtime_del WAY I: container I's DEL, each plugin given the ADD's result.
runtime_del() {
    local way=$1 i=$2 out
    if [[ $way == nsnet ]]; then
        out=$(plugin DEL nsnet "ctr$i" "${conf[i]},\"prevResult\":${res[i]}") || { echo "bench: nsnet DEL ctr$i: $out" >&2; exit 1; }
    else
        out=$(plugin DEL portmap "ctr$i" "${conf[i]},\"prevResult\":${res[i]}") || { echo "bench: portmap DEL ctr$i: $out" >&2; exit 1; }
        out=$(plugin DEL bridge "ctr$i" "$cni_bridge_rt,\"prevResult\":${res[i]}") || { echo "bench: bridge DEL ctr$i: $out" >&2; exit 1; }
    fi
}

# runtime_run WAY C: one run in this throwaway host. Prints, in µs, the
# median ADD, the median DEL, the 1st and the Cth ADD, all ADDs and all DELs
# (wall time of the loops), the clock's median cost, then what the DELs
# left: links, rules, and the links' and chains' names (comma-joined, - for
# none).
runtime_run() {
    local way=$1 c=$2 i start now t0 adds=() dels=() clocks=() add_all del_all first answer listener
    # The runtime's side, untimed: the host's uplink, then a namespace per
    # container, made before its ADD as podman and CRI-O make them.
    # A dummy device; ifb where the kernel has no dummy driver (the same for
    # this: a device of the host's own with no peer to reach).
    ip link add up0 type dummy 2>/dev/null || ip link add up0 type ifb
    ip addr add "$uplink/24" dev up0
    ip link set up0 up
    for ((i = 1; i <= c; i++)); do
        ip netns add "ctr$i"
        if [[ $way == nsnet ]]; then
            conf[i]="$nsnet_cni,\"runtimeConfig\":{\"portMappings\":[{\"hostPort\":$((10000 + i)),\"containerPort\":80,\"protocol\":\"tcp\"}]}"
        else
            conf[i]=$(cni_portmap "$i")
        fi
    done
    # The clock's own cost, in every figure below: the two dates with
    # nothing between (a process each, some ms on a slow machine).
    for ((i = 1; i <= c; i++)); do
        start=$(date +%s%N); now=$(date +%s%N)
        clocks+=($(((now - start) / 1000)))
    done
    # No subshell around the clock: date before, the call, date after.
    t0=$(date +%s%N)
    for ((i = 1; i <= c; i++)); do
        start=$(date +%s%N); runtime_add "$way" "$i"; now=$(date +%s%N)
        adds+=($(((now - start) / 1000)))
    done
    add_all=$((($(date +%s%N) - t0) / 1000))
    # The network must work before it is timed away: the last container
    # reaches the first, and the last one's published port answers on the
    # host's address (the nat table's OUTPUT path).
    first=$(ip -n ctr1 -4 -o addr show dev eth0 | awk '{sub(/\/.*/, "", $4); print $4}')
    ip netns exec "ctr$c" ping -c 1 -W 2 "$first" >/dev/null || { echo "bench: $way: ctr$c cannot reach ctr1 ($first)" >&2; exit 1; }
    ip netns exec "ctr$c" socat TCP4-LISTEN:80,fork,reuseaddr SYSTEM:"echo ctr$c" &
    listener=$!
    # Up to five seconds, the listener may still be starting.
    answer= start=$(date +%s%N)
    while (($(date +%s%N) - start < 5000000000)); do
        answer=$(echo hello | timeout 1 socat -T1 - "TCP4:$uplink:$((10000 + c))" 2>/dev/null) || true
        [[ $answer == "ctr$c" ]] && break
        sleep 0.1
    done
    kill "$listener"
    wait "$listener" 2>/dev/null || true
    [[ $answer == "ctr$c" ]] || { echo "bench: $way: $uplink:$((10000 + c)) did not reach ctr$c (got '$answer')" >&2; exit 1; }
    t0=$(date +%s%N)
    for ((i = 1; i <= c; i++)); do
        start=$(date +%s%N); runtime_del "$way" "$i"; now=$(date +%s%N)
        dels+=($(((now - start) / 1000)))
    done
    del_all=$((($(date +%s%N) - t0) / 1000))
    # What the DELs left, before the runtime deletes its namespaces (which
    # would take any veth with them): no veth for either way; for nsnet no
    # bridge and no rule of its own either.
    [[ -z $(ip -br link show type veth) ]] || { echo "bench: $way: veths left after DEL: $(ip -br link show type veth)" >&2; exit 1; }
    if [[ $way == nsnet ]]; then
        ! ip link show br0 >/dev/null 2>&1 || { echo "bench: nsnet: br0 left after the last DEL" >&2; exit 1; }
        [[ $(iptables-save | grep -c NSNET || true) == 0 ]] || { echo "bench: nsnet: NSNET rules left after the last DEL" >&2; exit 1; }
    fi
    local links chains rules
    links=$(ip -o link show | awk -F': ' '$2 != "lo" && $2 != "up0" {sub(/@.*/, "", $2); print $2}' | paste -sd, -)
    chains=$(iptables-save | awk '/^:/ && $1 !~ /^:(INPUT|FORWARD|OUTPUT|PREROUTING|POSTROUTING)$/ {print substr($1, 2)}' | sort -u | paste -sd, -)
    rules=$(iptables-save | grep -c '^-A' || true)
    for ((i = 1; i <= c; i++)); do ip netns del "ctr$i"; done
    echo "$(printf '%s\n' "${adds[@]}" | median) $(printf '%s\n' "${dels[@]}" | median) ${adds[0]} ${adds[c - 1]} $add_all $del_all" \
        "$(printf '%s\n' "${clocks[@]}" | median) $(awk -v l="$links" 'BEGIN {print l == "" ? 0 : split(l, a, ",")}') $rules ${links:--} ${chains:--}"
}

setup_floor() {
    local n=$1 i a
    {
        echo "link add br0 type bridge"
        echo "addr add $gateway/22 dev br0"
        echo "link set br0 up"
        for ((i = 1; i <= n; i++)); do
            echo "netns add ns$i"
            echo "link add v$i type veth peer name eth0 netns ns$i"
            echo "link set v$i master br0"
            echo "link set v$i up"
        done
    } | ip -batch -
    # No subshell per namespace: the address by arithmetic, the batch by a
    # here-string, so the floor pays for nothing but the tools.
    for ((i = 1; i <= n; i++)); do
        a="10.210.$(((1 + i) / 256)).$(((1 + i) % 256))"
        ip -n "ns$i" -batch - <<<"link set lo up
addr add $a/22 dev eth0
link set eth0 up
route add default via $gateway"
    done
    {
        echo "*nat"
        echo ":FLOOR - [0:0]"
        echo "-A PREROUTING -m addrtype --dst-type LOCAL -j FLOOR"
        echo "-A POSTROUTING -s $subnet ! -o br0 -j MASQUERADE"
        for ((i = 1; i <= n; i++)); do
            echo "-A FLOOR -p tcp --dport $((10000 + i)) -j DNAT --to-destination 10.210.$(((1 + i) / 256)).$(((1 + i) % 256)):80"
        done
        echo "COMMIT"
        echo "*filter"
        echo "-A FORWARD -i br0 -j ACCEPT"
        echo "-A FORWARD -o br0 -j ACCEPT"
        echo "COMMIT"
    } | iptables-restore --noflush -w
    sysctl -qw net.ipv4.ip_forward=1
}
teardown_floor() {
    local n=$1 i
    printf '*nat\n-D PREROUTING -m addrtype --dst-type LOCAL -j FLOOR\n-F FLOOR\n-X FLOOR\n-D POSTROUTING -s %s ! -o br0 -j MASQUERADE\nCOMMIT\n*filter\n-D FORWARD -i br0 -j ACCEPT\n-D FORWARD -o br0 -j ACCEPT\nCOMMIT\n' \
        "$subnet" | iptables-restore --noflush -w
    sysctl -qw net.ipv4.ip_forward=0
    { for ((i = 1; i <= n; i++)); do echo "netns del ns$i"; done; echo "link del br0"; } | ip -batch -
}

# --- inside one throwaway host: one run of one way -------------------------

# Rules of another tool, as kube-proxy or Docker keep them: F rules in chains
# of their own, half in filter and half in nat, jumped to from the built-in
# chains nsnet also uses.
foreign() {
    local f=$1 c i
    ((f > 0)) || return 0
    {
        echo "*filter"
        for ((c = 0; c < 10; c++)); do echo ":OTHER-$c - [0:0]"; echo "-A FORWARD -j OTHER-$c"; done
        for ((i = 0; i < f / 2; i++)); do
            echo "-A OTHER-$((i % 10)) -s 172.$((16 + i / 250 % 16)).$((i % 250)).0/24 -p tcp --dport $((1000 + i % 5000)) -j ACCEPT"
        done
        echo "COMMIT"
        echo "*nat"
        for ((c = 0; c < 10; c++)); do echo ":OTHER-SVC-$c - [0:0]"; echo "-A PREROUTING -j OTHER-SVC-$c"; done
        for ((i = 0; i < f / 2; i++)); do
            echo "-A OTHER-SVC-$((i % 10)) -d 172.30.$((i / 250 % 256)).$((i % 250)) -p tcp --dport 80 -j DNAT --to-destination 172.31.$((i / 250 % 256)).$((i % 250)):80"
        done
        echo "COMMIT"
    } | iptables-restore --noflush -w
}

# One command at a time on top of the N namespaces (nsnet-each only): one
# more namespace on the bridge, a port for it, the port gone, the namespace
# gone; each against the fewest processes that make the same change by
# hand (`ip -batch` for the host and one for the namespace, one
# iptables-restore, one `ip netns del`). A deleting commit waits for an RCU
# grace period (10 to 30 ms here, varying from one to the next), so each
# figure is the median of $rounds rounds. Prints "nsnet floor" ms pairs, in
# tenths of a millisecond.
rounds=5
# nsnet's four commands, one after the other.
nsnet_round() {
    local a=10.210.3.250 start t=()
    start=$(date +%s%N); "$nsnet" -q bridge up extra --bridge br0 --address "extra=$a" >/dev/null; t+=("$(tenths "$start")")
    start=$(date +%s%N); "$nsnet" -q publish add extra 9999:80 >/dev/null; t+=("$(tenths "$start")")
    start=$(date +%s%N); "$nsnet" -q publish del extra 9999 >/dev/null; t+=("$(tenths "$start")")
    start=$(date +%s%N); "$nsnet" -q bridge down extra >/dev/null; t+=("$(tenths "$start")")
    echo "${t[*]}"
}
# The same four changes by hand, with the fewest processes.
hand_round() {
    local start t=() w
    local dnat="-p tcp -m tcp --dport 9998 -j DNAT --to-destination 10.210.3.251:80"
    local accept="-d 10.210.3.251/32 -p tcp -m tcp --dport 80 -m conntrack --ctstate DNAT -j ACCEPT"
    start=$(date +%s%N)
    printf 'netns add hand\nlink add vh type veth peer name eth0 netns hand\nlink set vh master br0\nlink set vh up\n' | ip -batch -
    ip -n hand -batch - <<<"link set lo up
addr add 10.210.3.251/22 dev eth0
link set eth0 up
route add default via $gateway"
    t+=("$(tenths "$start")")
    start=$(date +%s%N)
    printf '*nat\n-A PREROUTING %s\nCOMMIT\n*filter\n-A FORWARD %s\nCOMMIT\n' "$dnat" "$accept" | iptables-restore --noflush -w
    t+=("$(tenths "$start")")
    start=$(date +%s%N)
    printf '*nat\n-D PREROUTING %s\nCOMMIT\n*filter\n-D FORWARD %s\nCOMMIT\n' "$dnat" "$accept" | iptables-restore --noflush -w
    t+=("$(tenths "$start")")
    start=$(date +%s%N); ip netns del hand; t+=("$(tenths "$start")")
    # A deleted namespace's veths go asynchronously: wait for them, untimed,
    # so one round does not pay for the last.
    for ((w = 0; w < 200; w++)); do [[ -z $(ip -br link show dev vh 2>/dev/null) ]] && break; sleep 0.005; done
    echo "${t[*]}"
}
tenths() { echo $(( ($(date +%s%N) - $1) / 100000 )); }
# Every nsnet round first, then every hand round: the hand's rules change
# the ruleset, and a command after that reads it whole again (its cache of
# the rules holds only while nsnet alone changed them), which is a figure
# of its own: one `bridge up` after the hand's last round. Prints nine
# figures: nsnet and hand for each command, then that `bridge up`.
each_command() {
    local r mine=() hand=() col vals=() start stale
    for ((r = 0; r < rounds; r++)); do mine+=("$(nsnet_round)"); done
    for ((r = 0; r < rounds; r++)); do hand+=("$(hand_round)"); done
    start=$(date +%s%N)
    "$nsnet" -q bridge up extra --bridge br0 --address extra=10.210.3.250 >/dev/null
    stale=$(tenths "$start")
    "$nsnet" -q bridge down extra >/dev/null
    for col in 1 2 3 4; do
        vals+=("$(printf '%s\n' "${mine[@]}" | cut -d' ' -f"$col" | median)")
        vals+=("$(printf '%s\n' "${hand[@]}" | cut -d' ' -f"$col" | median)")
    done
    echo "${vals[*]} $stale"
}

if [[ ${1:-} == --inner-runtime ]]; then
    runtime_run "$2" "$3"
    exit 0
fi
if [[ ${1:-} == --inner ]]; then
    way=$2 n=$3 f=$4 measure_mem=$5 peak_kb=0
    foreign "$f"
    start=$(date +%s%N); "setup_$way" "$n"; setup_ms=$(ms "$start")
    # The network must really be there before it is timed away.
    [[ $(ls /run/netns | wc -l) == "$n" ]] || { echo "bench: $way built $(ls /run/netns | wc -l) of $n" >&2; exit 1; }
    # Up to three pings: a host busy with a thousand new namespaces can
    # lose the first (its ARP); one answer proves the path.
    ip netns exec "ns$n" ping -c 3 -i 0.2 -W 2 "$gateway" >/dev/null || { echo "bench: $way: ns$n cannot reach the gateway" >&2; exit 1; }
    each=- status_ms=-
    if [[ $way == nsnet-each && $measure_mem == 0 ]]; then
        each=$(each_command | tr ' ' ,)
    fi
    if [[ $way == nsnet ]]; then
        start=$(date +%s%N); mem "$nsnet" status >/dev/null; status_ms=$(ms "$start")
    fi
    # Teardown ends when the host is clean: the kernel destroys a deleted
    # namespace, and its veths, asynchronously, after `ip netns del` returns.
    start=$(date +%s%N); "teardown_$way" "$n"
    for ((i = 0; i < 1000; i++)); do [[ -z $(ip -br link show type veth) ]] && break; sleep 0.01; done
    teardown_ms=$(ms "$start")
    [[ $(ls /run/netns | wc -l) == 0 && -z $(ip -br link show type veth) ]] || { echo "bench: $way left things behind" >&2; exit 1; }
    if [[ $measure_mem == 1 ]]; then
        echo "- - $peak_kb - -"
    else
        echo "$setup_ms $teardown_ms - $each $status_ms"
    fi
    exit 0
fi

# --- the driver --------------------------------------------------------------

runs=3
out="$here/docs/benchmarks.md"
sizes=()
foreign_rules=5000
big=1000
containers=50
only=
while (($#)); do
    case $1 in
        --runs) runs=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --foreign) foreign_rules=$2; shift 2 ;;
        --containers) containers=$2; shift 2 ;;
        --only)
            [[ $2 == cni ]] || { echo "bench: --only takes cni (the runtime section alone)" >&2; exit 2; }
            only=$2; shift 2 ;;
        *) sizes+=("$1"); shift ;;
    esac
done
((${#sizes[@]})) || sizes=(10 100 500 1000)
((containers >= 2)) || { echo "bench: --containers needs at least 2 (the last pings the first)" >&2; exit 2; }
[[ -x $nsnet ]] || { echo "bench: build nsnet first: cargo build --release (or set NSNET_BIN)" >&2; exit 1; }
if [[ ! -x $cni/bridge || ! -x /usr/bin/time || ! -x /usr/bin/socat ]]; then
    echo "bench: installing containernetworking-plugins, time and socat" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq containernetworking-plugins time socat >/dev/null
fi

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0 || a == "-" || b == "-") print "-"; else printf "%.2f", a / b }'; }
ways=(nsnet nsnet-each tutorial cni floor)
# Past N = 100 the reference plugins take minutes a run (122 s to set up
# 500 in one run): they run at N <= 100, the tutorial up to 500.
ways_mid=(nsnet nsnet-each tutorial floor)
cni_max=100
# At N = 1,000 the slow ways would take most of an hour: nsnet's alone.
ways_big=(nsnet nsnet-each floor)
# With another tool's rules on the host: nsnet's ways against the floor.
ways_foreign=(nsnet nsnet-each floor)
declare -A setup teardown each status
peak=0
commit=$(git -C "$here" log --format=%h -1)
git -C "$here" diff --quiet HEAD -- src Cargo.toml Cargo.lock || commit="$commit + uncommitted changes"

# bench_size N F WAYS...: R rounds, each one run of every way in turn, so
# that a slow minute of the machine (it varies: one floor at N = 500 took
# 4.6 s, where four runs by hand took 2.5 to 3.1) falls on all of them
# alike, not on one way's every run; medians into the tables under key
# WAY,N,F. Then one memory run of each nsnet way.
declare -A runs_s runs_t runs_e runs_st
bench_size() {
    local n=$1 f=$2 way r sm tm kb em stm k
    shift 2
    for ((r = 1; r <= runs; r++)); do
        for way in "$@"; do
            k="$way,$n,$f"
            read -r sm tm kb em stm < <("$here/scripts/sandbox.sh" "$0" --inner "$way" "$n" "$f" 0)
            runs_s[$k]+="$sm "
            runs_t[$k]+="$tm "
            [[ $em == - ]] || runs_e[$k]+="$em "
            [[ $stm == - ]] || runs_st[$k]+="$stm "
        done
    done
    for way in "$@"; do
        if [[ $way == nsnet* ]]; then
            read -r sm tm kb em stm < <("$here/scripts/sandbox.sh" "$0" --inner "$way" "$n" "$f" 1)
            ((kb > peak)) && peak=$kb
        fi
        k="$way,$n,$f"
        setup[$k]=$(tr ' ' '\n' <<<"${runs_s[$k]}" | grep . | median)
        teardown[$k]=$(tr ' ' '\n' <<<"${runs_t[$k]}" | grep . | median)
        [[ -n ${runs_st[$k]:-} ]] && status[$k]=$(tr ' ' '\n' <<<"${runs_st[$k]}" | grep . | median)
        if [[ -n ${runs_e[$k]:-} ]]; then
            # Nine figures per run: the median of each column.
            local col vals=()
            for col in 1 2 3 4 5 6 7 8 9; do
                vals+=("$(tr ' ' '\n' <<<"${runs_e[$k]}" | grep . | cut -d, -f"$col" | median)")
            done
            each[$k]="${vals[*]}"
        fi
        printf 'bench: N=%-4s F=%-5s %-10s setup %6s ms  teardown %6s ms\n' "$n" "$f" "$way" "${setup[$k]}" "${teardown[$k]}" >&2
    done
}

# bench_runtime WAY: R runs of C containers under a runtime; the median of
# each figure (in ms) into rt[WAY], what the DELs left into rt_left[WAY].
# The clock's cost is measured in every run of both ways: its median over
# all of them (rt_clock) goes under the table.
declare -A rt rt_left
rt_clocks=()
bench_runtime() {
    local way=$1 r line cols=() vals=() col start
    for ((r = 1; r <= runs; r++)); do
        start=$(date +%s%N)
        read -r line < <("$here/scripts/sandbox.sh" "$0" --inner-runtime "$way" "$containers")
        cols+=("$line")
        rt_clocks+=("$(cut -d' ' -f7 <<<"$line")")
        printf 'bench: runtime %-9s run %d: %s (%s ms)\n' "$way" "$r" "$line" "$(ms "$start")" >&2
    done
    # Six timings in µs, the clock, then links and rules left, their names.
    for col in 1 2 3 4 5 6; do
        vals+=("$(printf '%s\n' "${cols[@]}" | cut -d' ' -f"$col" | median | awk '{printf "%.1f", $1 / 1000}')")
    done
    rt[$way]="${vals[*]}"
    rt_clock=$(printf '%s\n' "${rt_clocks[@]}" | median | awk '{printf "%.1f", $1 / 1000}')
    # Every run starts from the same empty host: the leftovers of the first
    # run are those of all (the driver says so if they differ).
    rt_left[$way]=$(cut -d' ' -f8- <<<"${cols[0]}")
    for line in "${cols[@]}"; do
        [[ $(cut -d' ' -f8- <<<"$line") == "${rt_left[$way]}" ]] || echo "bench: runtime $way: runs left different things behind: $line" >&2
    done
    printf 'bench: runtime C=%s %-9s ADD %s ms  DEL %s ms (medians)\n' "$containers" "$way" "${vals[0]}" "${vals[1]}" >&2
}

if [[ -z $only ]]; then
    for n in "${sizes[@]}"; do
        list=("${ways[@]}")
        ((n > cni_max)) && list=("${ways_mid[@]}")
        ((n >= big)) && list=("${ways_big[@]}")
        bench_size "$n" 0 "${list[@]}"
    done
    for n in "${sizes[@]}"; do
        ((n == 10)) && continue
        bench_size "$n" "$foreign_rules" "${ways_foreign[@]}"
    done
fi
bench_runtime nsnet
bench_runtime reference

# table F WAYS...: setup and teardown against N, and ratios to the floor.
table() {
    local f=$1 n way k
    shift
    echo "| N | way | setup (ms) | teardown (ms) | setup / floor | teardown / floor |"
    echo "|---|---|---:|---:|---:|---:|"
    for n in "${sizes[@]}"; do
        for way in "$@"; do
            k="$way,$n,$f"
            [[ -n ${setup[$k]:-} ]] || continue
            echo "| $n | $way | ${setup[$k]} | ${teardown[$k]} | $(ratio "${setup[$k]}" "${setup[floor,$n,$f]}") | $(ratio "${teardown[$k]}" "${teardown[floor,$n,$f]}") |"
        done
    done
}

# percommand F: one command on top of N, nsnet against the hand floor.
percommand() {
    local f=$1 n names=("bridge up NS" "publish add" "publish del" "bridge down NS") i v
    echo "| N | command | nsnet (ms) | fewest processes by hand (ms) | nsnet - hand (ms) |"
    echo "|---|---|---:|---:|---:|"
    for n in "${sizes[@]}"; do
        [[ -n ${each[nsnet-each,$n,$f]:-} ]] || continue
        read -ra v <<<"${each[nsnet-each,$n,$f]}"
        for i in 0 1 2 3; do
            # The figures are tenths of a millisecond.
            awk -v n="$n" -v c="\`${names[$i]}\`" -v a="${v[$((2 * i))]}" -v b="${v[$((2 * i + 1))]}" \
                'BEGIN { printf "| %s | %s | %.1f | %.1f | %.1f |\n", n, c, a / 10, b / 10, (a - b) / 10 }'
        done
        awk -v n="$n" -v c="\`bridge up NS\` after a change by hand" -v a="${v[8]}" -v b="${v[1]}" \
            'BEGIN { printf "| %s | %s | %.1f | %.1f | %.1f |\n", n, c, a / 10, b / 10, (a - b) / 10 }'
    done
}

# left WAY: what the way's DELs left, in words.
left() {
    local links rules names chains
    read -r links rules names chains <<<"${rt_left[$1]}"
    if ((links == 0 && rules == 0)); then echo "nothing"; return; fi
    echo "$links link$( ((links == 1)) || echo s) (${names//,/, }), $rules iptables rule$( ((rules == 1)) || echo s) (chains ${chains//,/, })"
}

# provenance CMD: the machine, the tools and the binary a run used.
provenance() {
    echo "Produced by \`$1\` on $(date -u +%Y-%m-%d): $(nproc) cores,"
    echo "$(uname -r) kernel, $(ip -V | head -1), $(iptables -V), CNI plugins"
    echo "$(dpkg-query -W -f='${Version}' containernetworking-plugins 2>/dev/null || echo '?'). Medians of $runs runs, each in a fresh"
    echo "throwaway host."
    if [[ -n ${NSNET_BIN:-} ]]; then
        echo "nsnet: $("$nsnet" --version) (\`NSNET_BIN=$nsnet\`), the tree at commit $commit."
    else
        echo "nsnet: $("$nsnet" --version), from commit $commit (\`cargo build --release\` before the run)."
    fi
}

ordinal() {
    case $1 in
        *1[123]) echo "${1}th" ;;
        *1) echo "${1}st" ;;
        *2) echo "${1}nd" ;;
        *3) echo "${1}rd" ;;
        *) echo "${1}th" ;;
    esac
}

# runtime_section [alone]: the runtime section; alone, with its provenance.
runtime_section() {
    local n r way v
    read -ra n <<<"${rt[nsnet]}"
    read -ra r <<<"${rt[reference]}"
    echo "## Under a container runtime: ADD and DEL of $containers containers"
    echo
    if [[ ${1:-} == alone ]]; then
        provenance "scripts/bench.sh --only cni --runs $runs --containers $containers"
        echo
    fi
    echo "One network, one plugin call (chain) per container as libcni makes them, each container"
    echo "publishing 10000+i -> 80: **nsnet** is nsnet's plugin alone (\`\"type\": \"nsnet\"\`, \`bridge\`,"
    echo "\`subnet\` $subnet, \`nat\`, the \`portMappings\` capability); **bridge + host-local + portmap**"
    echo "the reference chain (bridge with isGateway, ipMasq and host-local IPAM, then portmap given"
    echo "bridge's result; DEL in reverse: portmap, then bridge). The runtime's namespaces are made"
    echo "before the ADDs and deleted after the DELs, untimed; each ADD's result is passed to every"
    echo "plugin of its DEL as \`prevResult\`; the reference bridge's host-local has the default route"
    echo "(\`routes\` 0.0.0.0/0, as in podman's default network) that nsnet gives. Each call is timed"
    echo "on its own (\`date\` before and after the plugin processes, the runtime's passing of results"
    echo "included); the totals are the wall time of the $containers ADDs and of the $containers DELs."
    echo "Checked in every run: container $containers pings container 1, its published port answers on"
    echo "the host's address, and after the last DEL no veth is left, nor, for nsnet, its bridge or"
    echo "any rule."
    echo
    echo "| way | ADD, median (ms) | DEL, median (ms) | ADD of the 1st (ms) | ADD of the $(ordinal "$containers") (ms) | all ADDs (ms) | all DELs (ms) | left after the last DEL |"
    echo "|---|---:|---:|---:|---:|---:|---:|---|"
    for way in nsnet reference; do
        read -ra v <<<"${rt[$way]}"
        echo "| $([[ $way == nsnet ]] && echo nsnet || echo "bridge + host-local + portmap") | ${v[0]} | ${v[1]} | ${v[2]} | ${v[3]} | ${v[4]} | ${v[5]} | $(left "$way") |"
    done
    echo
    echo "The reference chain takes $(ratio "${r[0]}" "${n[0]}") x nsnet's time for a container's ADD and"
    echo "$(ratio "${r[1]}" "${n[1]}") x for its DEL (medians); $(ratio "${r[4]}" "${n[4]}") x for all $containers ADDs and $(ratio "${r[5]}" "${n[5]}") x for all $containers DELs."
    echo "The clock itself (the two \`date\`s with nothing between) reads $rt_clock ms (median), in every"
    echo "figure of a single call."
}

if [[ -n $only ]]; then
    runtime_section alone > "$out"
    echo "bench: wrote $out" >&2
    exit 0
fi

{
    echo "# Benchmarks"
    echo
    provenance "scripts/bench.sh --runs $runs --foreign $foreign_rules --containers $containers ${sizes[*]}"
    echo "The network: N namespaces on one bridge, NAT, one published port each."
    echo
    echo "The ways: **nsnet** is one \`nsnet bridge up NS... --nat --publish NS=PORT:80 ...\` and one"
    echo "\`nsnet down\`; **nsnet-each** the same network a command at a time (bridge up, nat up, then one"
    echo "\`publish add\` per namespace, each a process that reads the host and its rules); **tutorial**"
    echo "one ip/iptables/sysctl process per command; **cni** the reference plugins as a runtime drives"
    echo "them; **floor** the fewest processes the tools allow. Teardown is timed until the kernel has"
    echo "removed every veth. cni runs up to N = $cni_max (past it, minutes a run), tutorial below"
    echo "N = $big; at N = $big only nsnet's ways and the floor run. At each N the ways take turns,"
    echo "run by run, so a slow minute of the machine falls on all of them alike."
    echo
    echo "## A clean host"
    echo
    table 0 "${ways[@]}"
    echo
    echo "## A host with $foreign_rules rules of another tool"
    echo
    echo "Half in filter, half in nat, in chains of their own jumped to from FORWARD and PREROUTING,"
    echo "as kube-proxy and Docker keep theirs."
    echo
    table "$foreign_rules" "${ways_foreign[@]}"
    echo
    echo "## One command at a time"
    echo
    echo "On top of the N namespaces and ports: \`bridge up extra\` (one more namespace), \`publish add"
    echo "extra 9999:80\`, \`publish del extra 9999\`, \`bridge down extra\`, each one nsnet process,"
    echo "against the fewest processes that make the same change by hand: an \`ip -batch\` for the host"
    echo "and one for the namespace, one \`iptables-restore\`, one \`ip netns del\`. The last column is"
    echo "what nsnet costs beyond the tools it must start: reading the host, planning, its record."
    echo "Each figure is the median of $rounds rounds in each of the $runs runs, then of the runs: a"
    echo "deleting commit waits for the kernel's RCU grace period (10 to 30 ms here, varying from one"
    echo "to the next), as much by hand as in nsnet. No figure on this page goes through"
    echo "\`/usr/bin/time\` (about 1.5 ms a process): peak memory comes from one more, untimed run of"
    echo "each nsnet way. nsnet's rounds run first, then the hand's: nsnet reads the whole ruleset"
    echo "again only when someone else changed it (its cache of the rules holds while nsnet alone"
    echo "changes them), and the row \"after a change by hand\" is one \`bridge up NS\` right after the"
    echo "hand's rounds, against the same hand figure."
    echo
    echo "A clean host:"
    echo
    percommand 0
    echo
    echo "With $foreign_rules rules of another tool:"
    echo
    percommand "$foreign_rules"
    echo
    echo "\`nsnet status\` on the N namespaces (median, ms):"
    for n in "${sizes[@]}"; do
        echo "  N=$n: ${status[nsnet,$n,0]:--} ms (with $foreign_rules foreign rules: ${status[nsnet,$n,$foreign_rules]:--} ms)"
    done
    echo
    if [[ -n ${setup[nsnet,100,0]:-} ]]; then
        echo "At N = 100: one command $(ratio "${setup[nsnet,100,0]}" "${setup[floor,100,0]}") x the floor to set up and"
        echo "$(ratio "${teardown[nsnet,100,0]}" "${teardown[floor,100,0]}") x to tear down; a command at a time"
        echo "$(ratio "${setup[nsnet-each,100,0]}" "${setup[floor,100,0]}") x; CNI"
        echo "$(ratio "${setup[cni,100,0]}" "${setup[nsnet,100,0]}") x slower than nsnet to set up and"
        echo "$(ratio "${teardown[cni,100,0]}" "${teardown[nsnet,100,0]}") x slower to tear down."
        echo
    fi
    echo "Peak memory of one nsnet process: $((peak / 1024)) MB ($peak kB, the largest over every run)."
    echo
    echo "Setup time in seconds against N on a clean host. Mermaid's xychart has no legend: the lines"
    echo "are, in order, ${ways_big[*]} (the table has the same figures)."
    echo
    echo '```mermaid'
    echo 'xychart-beta'
    echo '    title "setup time (s) against N"'
    echo "    x-axis [$(IFS=,; echo "${sizes[*]}")]"
    echo '    y-axis "seconds"'
    for way in "${ways_big[@]}"; do
        vals=()
        for n in "${sizes[@]}"; do vals+=("$(awk -v m="${setup[$way,$n,0]}" 'BEGIN {printf "%.2f", m / 1000}')"); done
        echo "    line [$(IFS=,; echo "${vals[*]}")]"
    done
    echo '```'
    echo
    runtime_section
} > "$out"
echo "bench: wrote $out" >&2
