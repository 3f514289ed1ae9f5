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
#   scripts/bench.sh [--runs R] [--out FILE] [--foreign F] [N ...]
#       (default: 3 runs; N = 10 100 500 1000; F = 5000 rules of another tool)
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
# iptables-restore, one `ip netns del`). Prints "nsnet floor" ms pairs.
each_command() {
    local a=10.210.3.250 start t=()
    start=$(date +%s%N); mem "$nsnet" -q bridge up extra --bridge br0 --address "extra=$a" >/dev/null; t+=("$(ms "$start")")
    start=$(date +%s%N); mem "$nsnet" -q publish add extra 9999:80 >/dev/null; t+=("$(ms "$start")")
    start=$(date +%s%N); mem "$nsnet" -q publish del extra 9999 >/dev/null; t+=("$(ms "$start")")
    start=$(date +%s%N); mem "$nsnet" -q bridge down extra >/dev/null; t+=("$(ms "$start")")
    local dnat="-p tcp -m tcp --dport 9998 -j DNAT --to-destination 10.210.3.251:80"
    local accept="-d 10.210.3.251/32 -p tcp -m tcp --dport 80 -m conntrack --ctstate DNAT -j ACCEPT"
    start=$(date +%s%N)
    printf 'netns add hand\nlink add vh type veth peer name eth0 netns hand\nlink set vh master br0\nlink set vh up\n' | ip -batch -
    ip -n hand -batch - <<<"link set lo up
addr add 10.210.3.251/22 dev eth0
link set eth0 up
route add default via $gateway"
    t+=("$(ms "$start")")
    start=$(date +%s%N)
    printf '*nat\n-A PREROUTING %s\nCOMMIT\n*filter\n-A FORWARD %s\nCOMMIT\n' "$dnat" "$accept" | iptables-restore --noflush -w
    t+=("$(ms "$start")")
    start=$(date +%s%N)
    printf '*nat\n-D PREROUTING %s\nCOMMIT\n*filter\n-D FORWARD %s\nCOMMIT\n' "$dnat" "$accept" | iptables-restore --noflush -w
    t+=("$(ms "$start")")
    start=$(date +%s%N); ip netns del hand; t+=("$(ms "$start")")
    echo "${t[0]} ${t[4]} ${t[1]} ${t[5]} ${t[2]} ${t[6]} ${t[3]} ${t[7]}"
}

if [[ ${1:-} == --inner ]]; then
    way=$2 n=$3 f=$4 peak_kb=0
    foreign "$f"
    start=$(date +%s%N); "setup_$way" "$n"; setup_ms=$(ms "$start")
    # The network must really be there before it is timed away.
    [[ $(ls /run/netns | wc -l) == "$n" ]] || { echo "bench: $way built $(ls /run/netns | wc -l) of $n" >&2; exit 1; }
    ip netns exec "ns$n" ping -c 1 -W 2 "$gateway" >/dev/null || { echo "bench: $way: ns$n cannot reach the gateway" >&2; exit 1; }
    each=- status_ms=-
    if [[ $way == nsnet-each ]]; then
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
    echo "$setup_ms $teardown_ms $peak_kb $each $status_ms"
    exit 0
fi

# --- the driver --------------------------------------------------------------

runs=3
out="$here/docs/benchmarks.md"
sizes=()
foreign_rules=5000
big=1000
while (($#)); do
    case $1 in
        --runs) runs=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --foreign) foreign_rules=$2; shift 2 ;;
        *) sizes+=("$1"); shift ;;
    esac
done
((${#sizes[@]})) || sizes=(10 100 500 1000)
[[ -x $nsnet ]] || { echo "bench: build nsnet first: cargo build --release" >&2; exit 1; }
if [[ ! -x $cni/bridge || ! -x /usr/bin/time ]]; then
    echo "bench: installing containernetworking-plugins and time" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq containernetworking-plugins time >/dev/null
fi

median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0 || a == "-" || b == "-") print "-"; else printf "%.2f", a / b }'; }
ways=(nsnet nsnet-each tutorial cni floor)
# At N = 1,000 the slow ways would take most of an hour: nsnet's alone.
ways_big=(nsnet nsnet-each floor)
# With another tool's rules on the host: nsnet's ways against the floor.
ways_foreign=(nsnet nsnet-each floor)
declare -A setup teardown each status
peak=0
commit=$(git -C "$here" log --format=%h -1)
git -C "$here" diff --quiet HEAD -- src Cargo.toml Cargo.lock || commit="$commit + uncommitted changes"

# bench_one WAY N F: R runs, medians into the tables under key WAY,N,F.
bench_one() {
    local way=$1 n=$2 f=$3 s=() t=() e=() st=() r sm tm kb em stm k
    for ((r = 1; r <= runs; r++)); do
        read -r sm tm kb em stm < <("$here/scripts/sandbox.sh" "$0" --inner "$way" "$n" "$f")
        s+=("$sm") t+=("$tm")
        [[ $em == - ]] || e+=("$em")
        [[ $stm == - ]] || st+=("$stm")
        ((kb > peak)) && peak=$kb
    done
    k="$way,$n,$f"
    setup[$k]=$(printf '%s\n' "${s[@]}" | median)
    teardown[$k]=$(printf '%s\n' "${t[@]}" | median)
    ((${#st[@]})) && status[$k]=$(printf '%s\n' "${st[@]}" | median)
    if ((${#e[@]})); then
        # Eight figures per run: the median of each column.
        local col vals=()
        for col in 1 2 3 4 5 6 7 8; do
            vals+=("$(printf '%s\n' "${e[@]}" | cut -d, -f"$col" | median)")
        done
        each[$k]="${vals[*]}"
    fi
    printf 'bench: N=%-4s F=%-5s %-10s setup %6s ms  teardown %6s ms\n' "$n" "$f" "$way" "${setup[$k]}" "${teardown[$k]}" >&2
}

for n in "${sizes[@]}"; do
    list=("${ways[@]}")
    ((n >= big)) && list=("${ways_big[@]}")
    for way in "${list[@]}"; do bench_one "$way" "$n" 0; done
done
for n in "${sizes[@]}"; do
    ((n == 10)) && continue
    for way in "${ways_foreign[@]}"; do bench_one "$way" "$n" "$foreign_rules"; done
done

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
            echo "| $n | \`${names[$i]}\` | ${v[$((2 * i))]} | ${v[$((2 * i + 1))]} | $((v[2 * i] - v[2 * i + 1])) |"
        done
    done
}

{
    echo "# Benchmarks"
    echo
    echo "Produced by \`scripts/bench.sh --runs $runs --foreign $foreign_rules ${sizes[*]}\` on $(date -u +%Y-%m-%d): $(nproc) cores,"
    echo "$(uname -r) kernel, $(ip -V | head -1), $(iptables -V), CNI plugins"
    echo "$(dpkg-query -W -f='${Version}' containernetworking-plugins 2>/dev/null || echo '?'). Medians of $runs runs, each in a fresh"
    echo "throwaway host. The network: N namespaces on one bridge, NAT, one published port each."
    echo "nsnet: $("$nsnet" --version), from commit $commit (\`cargo build --release\` before the run)."
    echo
    echo "The ways: **nsnet** is one \`nsnet bridge up NS... --nat --publish NS=PORT:80 ...\` and one"
    echo "\`nsnet down\`; **nsnet-each** the same network a command at a time (bridge up, nat up, then one"
    echo "\`publish add\` per namespace, each a process that reads the host and its rules); **tutorial**"
    echo "one ip/iptables/sysctl process per command; **cni** the reference plugins as a runtime drives"
    echo "them; **floor** the fewest processes the tools allow. Teardown is timed until the kernel has"
    echo "removed every veth. At N = $big only nsnet's ways and the floor run."
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
} > "$out"
echo "bench: wrote $out" >&2
