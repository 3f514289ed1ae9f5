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
#   scripts/bench.sh [--runs R] [--out FILE] [N ...]   (default: 3 runs; N = 10 100 500)
#
# Prints medians and ratios, and writes them to docs/benchmarks.md (or FILE).
# Run as root, after `cargo build --release`.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
nsnet="$here/target/release/nsnet"
subnet=10.210.0.0/22
gateway=10.210.0.1
cni=/usr/lib/cni

addr() { echo "10.210.$(( (1 + $1) / 256 )).$(( (1 + $1) % 256 ))"; }

ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

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

# Peak resident memory of nsnet, in kB, across the run.
mem() {
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
plugin() { # plugin COMMAND TYPE ID CONFIG
    CNI_COMMAND=$1 CNI_CONTAINERID=$3 CNI_NETNS=/run/netns/$3 CNI_IFNAME=eth0 CNI_PATH=$cni "$cni/$2" <<< "{$4}"
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

if [[ ${1:-} == --inner ]]; then
    way=$2 n=$3 peak_kb=0
    start=$(date +%s%N); "setup_$way" "$n"; setup_ms=$(ms "$start")
    # The network must really be there before it is timed away.
    [[ $(ls /run/netns | wc -l) == "$n" ]] || { echo "bench: $way built $(ls /run/netns | wc -l) of $n" >&2; exit 1; }
    ip netns exec "ns$n" ping -c 1 -W 2 "$gateway" >/dev/null || { echo "bench: $way: ns$n cannot reach the gateway" >&2; exit 1; }
    # One more port on a host that already holds the N ports' rules: what a
    # single `publish add` costs as the ruleset grows.
    one_ms=-
    if [[ $way == nsnet ]]; then
        start=$(date +%s%N); mem "$nsnet" -q publish add ns1 9999:80 >/dev/null; one_ms=$(ms "$start")
    fi
    # Teardown ends when the host is clean: the kernel destroys a deleted
    # namespace, and its veths, asynchronously, after `ip netns del` returns.
    start=$(date +%s%N); "teardown_$way" "$n"
    for ((i = 0; i < 1000; i++)); do [[ -z $(ip -br link show type veth) ]] && break; sleep 0.01; done
    teardown_ms=$(ms "$start")
    [[ $(ls /run/netns | wc -l) == 0 && -z $(ip -br link show type veth) ]] || { echo "bench: $way left things behind" >&2; exit 1; }
    echo "$setup_ms $teardown_ms $peak_kb $one_ms"
    exit 0
fi

# --- the driver --------------------------------------------------------------

runs=3
out="$here/docs/benchmarks.md"
sizes=()
while (($#)); do
    case $1 in
        --runs) runs=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        *) sizes+=("$1"); shift ;;
    esac
done
((${#sizes[@]})) || sizes=(10 100 500)
[[ -x $nsnet ]] || { echo "bench: build nsnet first: cargo build --release" >&2; exit 1; }
if [[ ! -x $cni/bridge || ! -x /usr/bin/time ]]; then
    echo "bench: installing containernetworking-plugins and time" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq containernetworking-plugins time >/dev/null
fi

median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
ways=(nsnet nsnet-each tutorial cni floor)
declare -A setup teardown
peak=0 one=()
commit=$(git -C "$here" log --format=%h -1)
git -C "$here" diff --quiet HEAD -- src Cargo.toml Cargo.lock || commit="$commit + uncommitted changes"
for n in "${sizes[@]}"; do
    for way in "${ways[@]}"; do
        s=() t=()
        for ((r = 1; r <= runs; r++)); do
            read -r sm tm kb om < <("$here/scripts/sandbox.sh" "$0" --inner "$way" "$n")
            s+=("$sm") t+=("$tm")
            [[ $om == - ]] || one+=("$n $om")
            ((kb > peak)) && peak=$kb
        done
        setup[$way,$n]=$(printf '%s\n' "${s[@]}" | median)
        teardown[$way,$n]=$(printf '%s\n' "${t[@]}" | median)
        printf 'bench: N=%-4s %-10s setup %6s ms  teardown %6s ms\n' "$n" "$way" "${setup[$way,$n]}" "${teardown[$way,$n]}" >&2
    done
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "-"; else printf "%.2f", a / b }'; }
{
    echo "# Benchmarks"
    echo
    echo "Produced by \`scripts/bench.sh --runs $runs ${sizes[*]}\` on $(date -u +%Y-%m-%d): $(nproc) cores,"
    echo "$(uname -r) kernel, $(ip -V | head -1), $(iptables -V), CNI plugins"
    echo "$(dpkg-query -W -f='${Version}' containernetworking-plugins 2>/dev/null || echo '?'). Medians of $runs runs, each in a fresh"
    echo "throwaway host. The network: N namespaces on one bridge, NAT, one published port each."
    echo "nsnet: $("$nsnet" --version), from commit $commit (\`cargo build --release\` before the run)."
    echo
    echo "| N | way | setup (ms) | teardown (ms) | setup / nsnet | teardown / nsnet |"
    echo "|---|---|---:|---:|---:|---:|"
    for n in "${sizes[@]}"; do
        for way in "${ways[@]}"; do
            echo "| $n | $way | ${setup[$way,$n]} | ${teardown[$way,$n]} | $(ratio "${setup[$way,$n]}" "${setup[nsnet,$n]}") | $(ratio "${teardown[$way,$n]}" "${teardown[nsnet,$n]}") |"
        done
    done
    echo
    echo "The ways: **nsnet** is one \`nsnet bridge up NS... --nat --publish NS=PORT:80 ...\` and one"
    echo "\`nsnet down\`; **nsnet-each** the same network a command at a time (bridge up, nat up, then one"
    echo "\`publish add\` per namespace, each a process that reads the host and its rules); **tutorial**"
    echo "one ip/iptables/sysctl process per command; **cni** the reference plugins as a runtime drives"
    echo "them; **floor** the fewest processes the tools allow. Teardown is timed until the kernel has"
    echo "removed every veth."
    echo
    if [[ -n ${setup[nsnet,100]:-} ]]; then
        echo "Targets at N = 100: setup $(ratio "${setup[nsnet,100]}" "${setup[floor,100]}") x the floor and"
        echo "teardown $(ratio "${teardown[nsnet,100]}" "${teardown[floor,100]}") x (target: within 2x); CNI"
        echo "$(ratio "${setup[cni,100]}" "${setup[nsnet,100]}") x slower to set up and"
        echo "$(ratio "${teardown[cni,100]}" "${teardown[nsnet,100]}") x slower to tear down (target: at least 8x)."
        echo
    fi
    echo "One more \`nsnet publish add\` on top of the N published ports (median, ms):"
    for n in "${sizes[@]}"; do
        printf '%s\n' "${one[@]}" | awk -v n="$n" '$1 == n {print $2}' | median | xargs printf '  N=%s: %s ms' "$n"
        echo
    done
    echo
    echo "Peak memory of one nsnet process: $((peak / 1024)) MB ($peak kB, the largest over every run)."
    echo
    echo "Setup time in seconds against N. Mermaid's xychart has no legend: the lines are, in order,"
    echo "${ways[*]} (the table has the same figures)."
    echo
    echo '```mermaid'
    echo 'xychart-beta'
    echo '    title "setup time (s) against N"'
    echo "    x-axis [$(IFS=,; echo "${sizes[*]}")]"
    echo '    y-axis "seconds"'
    for way in "${ways[@]}"; do
        vals=()
        for n in "${sizes[@]}"; do vals+=("$(awk -v m="${setup[$way,$n]}" 'BEGIN {printf "%.2f", m / 1000}')"); done
        echo "    line [$(IFS=,; echo "${vals[*]}")]"
    done
    echo '```'
} > "$out"
echo "bench: wrote $out" >&2
