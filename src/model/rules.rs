//! What nsnet's record asks of the host's firewall and kernel settings: the
//! iptables and ip6tables rules (in nsnet's own NSNET-* chains, each with
//! one jump from a built-in chain and a comment naming what it serves), the
//! sysctls and the bridge ports in hairpin mode. Pure functions of the
//! record; planning the changes is `firewall::reconcile`'s job.
//!
//! Rules are written exactly as `iptables-save` (or `ip6tables-save`)
//! prints them, so the saved ruleset tells which are in place.

use crate::model::policy;
use crate::model::state::{Bridge, Nat, Port, Published, State};
use crate::model::validate::{IfName, NsName};
use crate::plan::cmd::Tool;
use ipnet::IpNet;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// The sysctl that lets the host route IPv4 packets between interfaces.
pub const FORWARDING: &str = "net.ipv4.ip_forward";

/// The same for IPv6. Setting it sets every interface's `forwarding` (and
/// `default`'s), and an interface that forwards ignores router
/// advertisements unless its `accept_ra` is 2: see `accept_ra`.
pub const FORWARDING6: &str = "net.ipv6.conf.all.forwarding";

/// A per-interface sysctl key. sysctl reads dots as separators, so for a
/// name with a dot (`br.1`) the key is written with slashes, which keep the
/// dot literal.
fn per_interface(family: &str, ifname: &str, setting: &str) -> String {
    if ifname.contains('.') {
        format!("net/{family}/conf/{ifname}/{setting}")
    } else {
        format!("net.{family}.conf.{ifname}.{setting}")
    }
}

/// The sysctl that lets 127.0.0.0/8 be routed through `ifname`.
pub fn route_localnet(ifname: &str) -> String {
    per_interface("ipv4", ifname, "route_localnet")
}

/// Whether `ifname` takes router advertisements (1: unless it forwards,
/// 2: even when it forwards).
pub fn accept_ra(ifname: &str) -> String {
    per_interface("ipv6", ifname, "accept_ra")
}

/// Whether `ifname` forwards IPv6 (set on all of them by `FORWARDING6`).
pub fn forwarding6(ifname: &str) -> String {
    per_interface("ipv6", ifname, "forwarding")
}

/// The interface an `accept_ra` key is about, if `key` is one.
pub fn accept_ra_of(key: &str) -> Option<&str> {
    let rest = key
        .strip_prefix("net.ipv6.conf.")
        .or_else(|| key.strip_prefix("net/ipv6/conf/"))?;
    rest.strip_suffix(".accept_ra")
        .or_else(|| rest.strip_suffix("/accept_ra"))
}

/// The interface a per-interface IPv6 `forwarding` key is about (`all`
/// is not one).
pub fn forwarding6_of(key: &str) -> Option<&str> {
    let rest = key
        .strip_prefix("net.ipv6.conf.")
        .or_else(|| key.strip_prefix("net/ipv6/conf/"))?;
    let ifname = rest
        .strip_suffix(".forwarding")
        .or_else(|| rest.strip_suffix("/forwarding"))?;
    (ifname != "all").then_some(ifname)
}

pub(crate) const FORWARD: &str = "NSNET-FORWARD";
const INPUT: &str = "NSNET-INPUT";
const DNAT: &str = "NSNET-DNAT";
const POSTROUTING: &str = "NSNET-POSTROUTING";
const RAW: &str = "NSNET-PREROUTING";

/// Which of the kernel's two rulesets: iptables (IPv4) or ip6tables (IPv6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub const BOTH: [Family; 2] = [Family::V4, Family::V6];

    /// The tool that applies a batch of rules.
    pub fn restore(self) -> Tool {
        match self {
            Family::V4 => Tool::IptablesRestore,
            Family::V6 => Tool::Ip6tablesRestore,
        }
    }

    /// The tool that lists one chain (`-S CHAIN`).
    pub fn list(self) -> Tool {
        match self {
            Family::V4 => Tool::Iptables,
            Family::V6 => Tool::Ip6tables,
        }
    }

    /// The tool that prints the rules.
    pub fn save(self) -> Tool {
        match self {
            Family::V4 => Tool::IptablesSave,
            Family::V6 => Tool::Ip6tablesSave,
        }
    }

    /// `IPv4` or `IPv6`, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }

    /// `iptables` or `ip6tables`, for messages.
    pub fn tool_name(self) -> &'static str {
        match self {
            Family::V4 => "iptables",
            Family::V6 => "ip6tables",
        }
    }

    /// The family of `addr`.
    pub fn of(addr: IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }
}

/// One rule: the ruleset, the table, the chain and the rest of the line.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rule {
    pub family: Family,
    pub table: &'static str,
    pub chain: &'static str,
    pub spec: String,
}

impl Rule {
    pub(crate) fn new(
        family: Family,
        table: &'static str,
        chain: &'static str,
        spec: String,
    ) -> Rule {
        Rule {
            family,
            table,
            chain,
            spec,
        }
    }

    /// Whether this is the jump from a built-in chain to one of nsnet's.
    pub fn is_jump(&self) -> bool {
        !self.chain.starts_with("NSNET-")
    }

    /// The line that adds it: jumps in filter and raw go first in their
    /// built-in chain, ahead of any DROP a firewall or Docker put there;
    /// nat jumps go last, after DNAT rules of others.
    pub fn add_line(&self) -> String {
        if self.is_jump() && self.table != "nat" {
            format!("-I {} 1 {}", self.chain, self.spec)
        } else {
            format!("-A {} {}", self.chain, self.spec)
        }
    }

    pub fn saved_line(&self) -> String {
        format!("-A {} {}", self.chain, self.spec)
    }

    pub fn del_line(&self) -> String {
        format!("-D {} {}", self.chain, self.spec)
    }
}

/// `-m comment --comment TEXT`, quoted as `iptables-save` prints it: bare
/// when TEXT is only letters, digits, `_` and `-`, in double quotes otherwise.
pub(crate) fn comment(text: &str) -> String {
    let bare = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        format!("-m comment --comment {text}")
    } else {
        format!("-m comment --comment \"{text}\"")
    }
}

/// Where derived rules go: a set of whole rules, or `Chains`, which keeps
/// only the chain each would be in and never writes its text. The text of
/// a rule is asked for only by a sink that keeps it.
pub(crate) trait Sink {
    fn rule(
        &mut self,
        family: Family,
        table: &'static str,
        chain: &'static str,
        spec: impl FnOnce() -> String,
    );
}

impl Sink for BTreeSet<Rule> {
    fn rule(
        &mut self,
        family: Family,
        table: &'static str,
        chain: &'static str,
        spec: impl FnOnce() -> String,
    ) {
        self.insert(Rule::new(family, table, chain, spec()));
    }
}

/// A chain of one family and table, as (family, table, chain).
pub type ChainKey = (Family, &'static str, &'static str);

/// The chains rules are in, without the rules.
#[derive(Default)]
pub(crate) struct Chains(pub BTreeSet<ChainKey>);

impl Sink for Chains {
    fn rule(
        &mut self,
        family: Family,
        table: &'static str,
        chain: &'static str,
        _spec: impl FnOnce() -> String,
    ) {
        self.0.insert((family, table, chain));
    }
}

/// Every rule the record calls for, in both families, but those of the
/// ordered chain NSNET-POLICY (see `policy::chain`); its jump is here. With
/// nsnet's accepts in FORWARD comes the jump to the user's NSNET-USER.
pub fn rules(state: &State) -> BTreeSet<Rule> {
    let mut rules = BTreeSet::new();
    derive(state, &mut rules);
    let used = rules.iter().map(|r| (r.family, r.table, r.chain)).collect();
    rules.extend(jumps(state, &used));
    rules
}

/// Every rule the record calls for but the jumps from built-in chains:
/// each bridge's own, each of its published ports', and those between
/// bridges a policy lets reach each other.
pub(crate) fn derive(state: &State, out: &mut impl Sink) {
    for (name, bridge) in &state.bridges {
        let units = units(bridge);
        bridge_rules(name, bridge, Serving::of(&units), out);
        for unit in &units {
            unit_rules(name, unit, out);
        }
    }
    across(state, out);
}

/// The rules between bridges: the accepts an `allow` of another nsnet
/// bridge's subnet needs, in each family.
pub(crate) fn across(state: &State, out: &mut impl Sink) {
    for family in Family::BOTH {
        policy::allowed_bridges(state, family, out);
    }
}

/// The chains the record's rules (jumps aside) are in. Published ports of
/// one kind (see `unit_kinds`) have their rules in the same chains, so one
/// unit of each kind tells them: not every unit of a bridge of hundreds.
pub(crate) fn chains(state: &State) -> BTreeSet<ChainKey> {
    let mut chains = Chains::default();
    for (name, bridge) in &state.bridges {
        bridge_rules(name, bridge, Serving::of_bridge(bridge), &mut chains);
        for unit in unit_kinds(bridge) {
            unit_rules(name, &unit, &mut chains);
        }
    }
    across(state, &mut chains);
    #[cfg(debug_assertions)]
    {
        let mut every = Chains::default();
        derive(state, &mut every);
        assert_eq!(chains.0, every.0, "the chains of unit kinds stray");
    }
    chains.0
}

/// One unit of each kind a bridge has: what decides which chains a unit's
/// rules are in (`unit_rules`): its family, whether it has a DNAT (it has
/// one per allowed source, and no source of its family leaves none), and
/// whether it guards a port on IPv4 loopback (raw).
fn unit_kinds(bridge: &Bridge) -> Vec<Unit<'_>> {
    let mut kinds: Vec<(Family, bool, bool)> = Vec::new();
    let mut units = Vec::new();
    for family in Family::BOTH {
        if family == Family::V6 && bridge.ipv6.is_none() {
            continue;
        }
        for p in bridge.published.iter().filter(|p| p.serves(family)) {
            let dnat = p.sources(family).is_none_or(|nets| !nets.is_empty());
            let raw = family == Family::V4 && p.host_ip.is_some_and(|ip| ip.is_loopback());
            let kind = (family, dnat, raw);
            if kinds.contains(&kind) {
                continue;
            }
            let port = bridge.ports.iter().find(|port| port.ns == p.ns);
            let Some(addr) = port.and_then(|port| port_address(port, family)) else {
                continue;
            };
            kinds.push(kind);
            units.push(Unit {
                family,
                published: p,
                addr,
            });
        }
    }
    units
}

/// The jumps from built-in chains to nsnet's that rules in the chains
/// `used` need: one to each chain in use, and in FORWARD, with nsnet's
/// accepts, the user's NSNET-USER, and NSNET-POLICY while it has rules.
pub(crate) fn jumps(state: &State, used: &BTreeSet<ChainKey>) -> BTreeSet<Rule> {
    let mut rules = BTreeSet::new();
    let to = |target: &str| format!("{} -j {target}", comment("nsnet"));
    for family in Family::BOTH {
        if used.contains(&(family, "filter", FORWARD)) {
            rules.insert(Rule::new(family, "filter", "FORWARD", to(policy::USER)));
        }
        if !policy::chain(state, family).is_empty() {
            rules.insert(Rule::new(family, "filter", "FORWARD", to(policy::POLICY)));
        }
    }
    let jumps = [
        ("filter", "FORWARD", FORWARD, ""),
        ("filter", "INPUT", INPUT, ""),
        ("nat", "PREROUTING", DNAT, "-m addrtype --dst-type LOCAL "),
        ("nat", "OUTPUT", DNAT, "-m addrtype --dst-type LOCAL "),
        ("nat", "POSTROUTING", POSTROUTING, ""),
        ("raw", "PREROUTING", RAW, ""),
    ];
    for family in Family::BOTH {
        for (table, from, to, matches) in jumps {
            if used.contains(&(family, table, to)) {
                let spec = format!("{matches}{} -j {to}", comment("nsnet"));
                rules.insert(Rule::new(family, table, from, spec));
            }
        }
    }
    rules
}

/// The families whose rulesets the record has rules in.
pub fn families(state: &State) -> BTreeSet<Family> {
    chains(state).into_iter().map(|(f, _, _)| f).collect()
}

/// A bridge's subnet in one family, as iptables prints it.
struct Net {
    family: Family,
    subnet: String,
}

/// A bridge's own rules in each family: all but those of each published
/// port (`serving` says what its published ports share).
pub(crate) fn bridge_rules(name: &IfName, bridge: &Bridge, serving: Serving, out: &mut impl Sink) {
    let mut nets = vec![Net {
        family: Family::V4,
        subnet: bridge.subnet.to_string(),
    }];
    if let Some(v6) = &bridge.ipv6 {
        nets.push(Net {
            family: Family::V6,
            subnet: v6.subnet.to_string(),
        });
    }
    let tag = comment(&format!("nsnet:{name}"));
    for net in &nets {
        let family = net.family;
        // Traffic between the bridge's own namespaces: where br_netfilter
        // passes bridged frames through iptables and FORWARD drops (every
        // Docker host), it would be dropped without this.
        out.rule(family, "filter", FORWARD, || {
            format!("-i {name} -o {name} {tag} -j ACCEPT")
        });
        if bridge.nat.is_some() || !bridge.published.is_empty() {
            for dir in ["-o", "-i"] {
                out.rule(family, "filter", FORWARD, || {
                    format!(
                        "{dir} {name} -m conntrack --ctstate RELATED,ESTABLISHED {tag} -j ACCEPT"
                    )
                });
            }
        }
        if let Some(nat) = &bridge.nat {
            nat_rules(name, net, nat, out);
        }
        publish_rules(name, net, serving, out);
    }
}

/// Outbound NAT: the subnet masqueraded on its way out, and let through.
fn nat_rules(name: &IfName, net: &Net, nat: &Nat, out: &mut impl Sink) {
    let tag = comment(&format!("nsnet:nat:{name}"));
    let to = match &nat.out {
        Some(out) => format!("-o {out}"),
        None => format!("! -o {name}"),
    };
    let subnet = &net.subnet;
    out.rule(net.family, "nat", POSTROUTING, || {
        format!("-s {subnet} {to} {tag} -j MASQUERADE")
    });
    out.rule(net.family, "filter", FORWARD, || {
        format!("-i {name} {to} {tag} -j ACCEPT")
    });
}

/// One published port in one family, with the address of its namespace's
/// port on the bridge: what its own rules are derived from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Unit<'a> {
    pub family: Family,
    pub published: &'a Published,
    pub addr: IpAddr,
}

/// The bridge's published ports in each family they are served in, each
/// with its namespace's address (the first port of the namespace on the
/// bridge): one unit of rules each.
pub(crate) fn units(bridge: &Bridge) -> Vec<Unit<'_>> {
    units_where(bridge, |_| true)
}

/// The units of the namespaces `of` takes, as `units` has them.
pub(crate) fn units_where<'a>(bridge: &'a Bridge, of: impl Fn(&NsName) -> bool) -> Vec<Unit<'a>> {
    let mut ports: BTreeMap<&NsName, &Port> = BTreeMap::new();
    for port in bridge.ports.iter().filter(|p| of(&p.ns)) {
        ports.entry(&port.ns).or_insert(port);
    }
    let mut units = Vec::new();
    for family in Family::BOTH {
        if family == Family::V6 && bridge.ipv6.is_none() {
            continue;
        }
        let served = |p: &&Published| p.serves(family) && of(&p.ns);
        for p in bridge.published.iter().filter(served) {
            let Some(addr) = ports.get(&p.ns).and_then(|port| port_address(port, family)) else {
                continue;
            };
            units.push(Unit {
                family,
                published: p,
                addr,
            });
        }
    }
    units
}

/// The address of a namespace's port in `family`, if it has one there.
fn port_address(port: &Port, family: Family) -> Option<IpAddr> {
    match family {
        Family::V4 => Some(IpAddr::V4(port.address)),
        Family::V6 => port.address6.map(IpAddr::V6),
    }
}

/// What the rules a bridge's published ports share depend on: whether it
/// has a unit in each family, and an IPv4 one on loopback.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Serving {
    v4: bool,
    v6: bool,
    loopback: bool,
}

impl Serving {
    /// From every unit of a bridge.
    pub fn of(units: &[Unit]) -> Serving {
        let mut serving = Serving::default();
        for unit in units {
            match unit.family {
                Family::V4 => {
                    serving.v4 = true;
                    serving.loopback |= unit.published.from_loopback();
                }
                Family::V6 => serving.v6 = true,
            }
        }
        serving
    }

    /// The same, from the bridge, without deriving its units: a published
    /// port is a unit in a family it serves when its namespace's first
    /// port on the bridge has an address there (see `units`).
    pub fn of_bridge(bridge: &Bridge) -> Serving {
        // Each test stops at the first port that passes: a look along the
        // ports for one or two published ports, not for every one.
        let first = |ns: &NsName| bridge.ports.iter().find(|port| port.ns == *ns);
        let unit = |p: &Published, family: Family| match family {
            Family::V4 => p.serves(family) && first(&p.ns).is_some(),
            Family::V6 => {
                bridge.ipv6.is_some()
                    && p.serves(family)
                    && first(&p.ns).is_some_and(|port| port.address6.is_some())
            }
        };
        let published = &bridge.published;
        Serving {
            v4: published.iter().any(|p| unit(p, Family::V4)),
            v6: published.iter().any(|p| unit(p, Family::V6)),
            loopback: published
                .iter()
                .any(|p| p.from_loopback() && unit(p, Family::V4)),
        }
    }
}

/// What every published port of the bridge in one family shares: hairpin,
/// and for IPv4 ports on loopback the masquerade and the CVE-2020-8558
/// guard. Each port's own rules are `unit_rules`.
fn publish_rules(name: &IfName, net: &Net, serving: Serving, out: &mut impl Sink) {
    let (family, subnet) = (net.family, &net.subnet);
    let served = match family {
        Family::V4 => serving.v4,
        Family::V6 => serving.v6,
    };
    if !served {
        return;
    }
    let tag = comment(&format!("nsnet:publish:{name}"));
    // Hairpin: a namespace reaching a port published by itself or by a
    // neighbour, through a host address, is answered through the host.
    out.rule(family, "nat", POSTROUTING, || {
        format!("-s {subnet} -o {name} -m conntrack --ctstate DNAT {tag} -j MASQUERADE")
    });
    if family == Family::V4 && serving.loopback {
        out.rule(family, "nat", POSTROUTING, || {
            format!("-s 127.0.0.0/8 -o {name} {tag} -j MASQUERADE")
        });
        // route_localnet lets 127.0.0.0/8 through the bridge: drop what a
        // namespace sends to the host's 127.0.0.0/8 (CVE-2020-8558).
        out.rule(family, "filter", INPUT, || {
            format!(
                "! -s 127.0.0.0/8 -d 127.0.0.0/8 -i {name} -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT {tag} -j DROP"
            )
        });
    }
}

/// One published port in one family: DNAT to the namespace's address, the
/// accept for the DNATed connection, and for an IPv4 port on loopback, the
/// drop of LAN packets sent to 127.0.0.1. Every rule carries the port's own
/// tag (namespace, host port, protocol), so no two ports' rules are alike.
pub(crate) fn unit_rules(name: &IfName, unit: &Unit, out: &mut impl Sink) {
    let (p, addr, family) = (unit.published, unit.addr, unit.family);
    // Each part is written out only when a rule's text is asked for.
    let tag = || {
        comment(&format!(
            "nsnet:publish:{}:{}/{}",
            p.ns, p.host_port, p.proto
        ))
    };
    let host = || match (addr, p.host_ip) {
        (IpAddr::V4(_), Some(ip)) => format!("-d {ip}/32 "),
        (IpAddr::V4(_), None) => String::new(),
        (IpAddr::V6(_), Some(ip)) => format!("-d {ip}/128 "),
        // The kernel cannot route a packet from ::1 out of an interface
        // (IPv6 has no route_localnet): DNATed, a connection to [::1] would
        // hang. Left out, it is refused at once, or served by the host.
        (IpAddr::V6(_), None) => "! -d ::1/128 ".into(),
    };
    let to = || match addr {
        IpAddr::V4(a) => format!("{a}:{}", p.port),
        IpAddr::V6(a) => format!("[{a}]:{}", p.port),
    };
    let len = match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    };
    let proto = p.proto;
    // With `--allow`, only connections from those sources are sent on: the
    // others reach the host itself (refused, unless a host program listens
    // there), on every path, as the host's own connections pass through
    // nat OUTPUT, never FORWARD.
    let sources: Vec<Option<IpNet>> = match p.sources(family) {
        None => vec![None],
        // A /0 is every source of the family: no `-s` (iptables-save prints
        // none for it, so a rule written with one would never be found).
        Some(nets) if nets.iter().any(|n| n.prefix_len() == 0) => vec![None],
        Some(nets) => nets.into_iter().map(Some).collect(),
    };
    for source in sources {
        out.rule(family, "nat", DNAT, || {
            let source = source.map(|n| format!("-s {n} ")).unwrap_or_default();
            format!(
                "{source}{}-p {proto} -m {proto} --dport {} {} -j DNAT --to-destination {}",
                host(),
                p.host_port,
                tag(),
                to()
            )
        });
    }
    out.rule(family, "filter", FORWARD, || {
        format!(
            "-d {addr}/{len} -o {name} -p {proto} -m {proto} --dport {} -m conntrack --ctstate DNAT {} -j ACCEPT",
            p.port,
            tag()
        )
    });
    if let Some(ip) = p
        .host_ip
        .filter(|ip| ip.is_loopback() && family == Family::V4)
    {
        // Only the host itself may reach a port published on loopback: a
        // LAN peer could send to 127.0.0.1 by the host's MAC address.
        out.rule(family, "raw", RAW, || {
            format!(
                "-d {ip}/32 ! -i lo -p {proto} -m {proto} --dport {} {} -j DROP",
                p.host_port,
                tag()
            )
        });
    }
}

/// The sysctls the record needs, with their values: forwarding in each
/// family a bridge routes (NAT or published ports), `route_localnet` on
/// bridges with an IPv4 port on loopback, and while nsnet keeps IPv6
/// forwarding on, `accept_ra` 2 on the interfaces it set so (recorded in
/// `saved`), so that they keep taking router advertisements.
pub fn sysctls(state: &State) -> BTreeMap<String, &'static str> {
    let mut wanted = BTreeMap::new();
    for (name, bridge) in &state.bridges {
        if bridge.nat.is_some() || !bridge.published.is_empty() {
            wanted.insert(FORWARDING.to_string(), "1");
            if bridge.ipv6.is_some() {
                wanted.insert(FORWARDING6.to_string(), "1");
            }
        }
        if bridge.published.iter().any(Published::from_loopback) {
            wanted.insert(route_localnet(name.as_str()), "1");
        }
    }
    if wanted.contains_key(FORWARDING6) {
        for key in state.saved.keys().filter(|k| accept_ra_of(k).is_some()) {
            wanted.insert(key.clone(), "2");
        }
    }
    wanted
}

/// The bridge ports that need hairpin mode: those of namespaces with a
/// published port. Where br_netfilter passes bridged traffic through
/// iptables, a namespace reaching its own published port is DNATed back
/// out of the port it came in by, which a bridge allows only in hairpin
/// mode (in both families).
pub fn hairpins(state: &State) -> BTreeSet<IfName> {
    let ports = state.bridges.values().flat_map(bridge_hairpins);
    ports.cloned().collect()
}

/// The ports of one bridge that need hairpin mode (see `hairpins`).
pub fn bridge_hairpins(bridge: &Bridge) -> BTreeSet<&IfName> {
    bridge_hairpins_where(bridge, |_| true)
}

/// Those of the namespaces `of` takes.
pub(crate) fn bridge_hairpins_where(
    bridge: &Bridge,
    of: impl Fn(&NsName) -> bool,
) -> BTreeSet<&IfName> {
    let published = bridge.published.iter().filter(|p| of(&p.ns));
    let serving: BTreeSet<&NsName> = published.map(|p| &p.ns).collect();
    let ports = bridge.ports.iter();
    ports
        .filter(|port| serving.contains(&port.ns))
        .map(|port| &port.host_ifname)
        .collect()
}
