//! What nsnet's record asks of the host's firewall and kernel settings: the
//! iptables rules (in nsnet's own NSNET-* chains, each with one jump from a
//! built-in chain and a comment naming what it serves), the sysctls and the
//! bridge ports in hairpin mode. Pure functions of the record; planning the
//! changes is `firewall::reconcile`'s job.
//!
//! Rules are written exactly as `iptables-save` prints them, so the saved
//! ruleset tells which are in place.

use crate::model::state::{Bridge, Nat, Published, State};
use crate::model::validate::IfName;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

/// The sysctl that lets the host route packets between interfaces.
pub const FORWARDING: &str = "net.ipv4.ip_forward";

/// The sysctl that lets 127.0.0.0/8 be routed through `ifname`. sysctl
/// reads dots as separators, so for a name with a dot (`br.1`) the key is
/// written with slashes, which keep the dot literal.
pub fn route_localnet(ifname: &str) -> String {
    if ifname.contains('.') {
        format!("net/ipv4/conf/{ifname}/route_localnet")
    } else {
        format!("net.ipv4.conf.{ifname}.route_localnet")
    }
}

const FORWARD: &str = "NSNET-FORWARD";
const INPUT: &str = "NSNET-INPUT";
const DNAT: &str = "NSNET-DNAT";
const POSTROUTING: &str = "NSNET-POSTROUTING";
const RAW: &str = "NSNET-PREROUTING";

/// One rule: the table, the chain and the rest of the line.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rule {
    pub table: &'static str,
    pub chain: &'static str,
    pub spec: String,
}

impl Rule {
    fn new(table: &'static str, chain: &'static str, spec: String) -> Rule {
        Rule { table, chain, spec }
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
fn comment(text: &str) -> String {
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

/// Every rule the record calls for.
pub fn rules(state: &State) -> BTreeSet<Rule> {
    let mut rules = BTreeSet::new();
    for (name, bridge) in &state.bridges {
        bridge_rules(name, bridge, &mut rules);
    }
    let jumps = [
        ("filter", "FORWARD", FORWARD, ""),
        ("filter", "INPUT", INPUT, ""),
        ("nat", "PREROUTING", DNAT, "-m addrtype --dst-type LOCAL "),
        ("nat", "OUTPUT", DNAT, "-m addrtype --dst-type LOCAL "),
        ("nat", "POSTROUTING", POSTROUTING, ""),
        ("raw", "PREROUTING", RAW, ""),
    ];
    let used: BTreeSet<(&str, &str)> = rules.iter().map(|r| (r.table, r.chain)).collect();
    for (table, from, to, matches) in jumps {
        if used.contains(&(table, to)) {
            let spec = format!("{matches}{} -j {to}", comment("nsnet"));
            rules.insert(Rule::new(table, from, spec));
        }
    }
    rules
}

fn bridge_rules(name: &IfName, bridge: &Bridge, rules: &mut BTreeSet<Rule>) {
    let tag = comment(&format!("nsnet:{name}"));
    // Traffic between the bridge's own namespaces: where br_netfilter passes
    // bridged frames through iptables and FORWARD drops (every Docker host),
    // it would be dropped without this.
    rules.insert(Rule::new(
        "filter",
        FORWARD,
        format!("-i {name} -o {name} {tag} -j ACCEPT"),
    ));
    if bridge.nat.is_some() || !bridge.published.is_empty() {
        for spec in [
            format!("-o {name} -m conntrack --ctstate RELATED,ESTABLISHED {tag} -j ACCEPT"),
            format!("-i {name} -m conntrack --ctstate RELATED,ESTABLISHED {tag} -j ACCEPT"),
        ] {
            rules.insert(Rule::new("filter", FORWARD, spec));
        }
    }
    if let Some(nat) = &bridge.nat {
        nat_rules(name, bridge.subnet, nat, rules);
    }
    if !bridge.published.is_empty() {
        publish_rules(name, bridge, rules);
    }
}

/// Outbound NAT: the subnet masqueraded on its way out, and let through.
fn nat_rules(name: &IfName, subnet: ipnet::Ipv4Net, nat: &Nat, rules: &mut BTreeSet<Rule>) {
    let tag = comment(&format!("nsnet:nat:{name}"));
    let out = match &nat.out {
        Some(out) => format!("-o {out}"),
        None => format!("! -o {name}"),
    };
    rules.insert(Rule::new(
        "nat",
        POSTROUTING,
        format!("-s {subnet} {out} {tag} -j MASQUERADE"),
    ));
    rules.insert(Rule::new(
        "filter",
        FORWARD,
        format!("-i {name} {out} {tag} -j ACCEPT"),
    ));
}

/// What every published port of the bridge shares (hairpin, and for ports
/// on loopback the masquerade and the CVE-2020-8558 guard), then each one's.
fn publish_rules(name: &IfName, bridge: &Bridge, rules: &mut BTreeSet<Rule>) {
    let subnet = bridge.subnet;
    let tag = comment(&format!("nsnet:publish:{name}"));
    // Hairpin: a namespace reaching a port published by itself or by a
    // neighbour, through a host address, is answered through the host.
    let hairpin = format!("-s {subnet} -o {name} -m conntrack --ctstate DNAT {tag} -j MASQUERADE");
    rules.insert(Rule::new("nat", POSTROUTING, hairpin));
    if bridge
        .published
        .iter()
        .any(|p| p.host_ip.is_none_or(|ip| ip.is_loopback()))
    {
        let from_lo = format!("-s 127.0.0.0/8 -o {name} {tag} -j MASQUERADE");
        rules.insert(Rule::new("nat", POSTROUTING, from_lo));
        // route_localnet lets 127.0.0.0/8 through the bridge: drop what a
        // namespace sends to the host's 127.0.0.0/8 (CVE-2020-8558).
        let guard = format!(
            "! -s 127.0.0.0/8 -d 127.0.0.0/8 -i {name} -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT {tag} -j DROP"
        );
        rules.insert(Rule::new("filter", INPUT, guard));
    }
    for p in &bridge.published {
        if let Some(port) = bridge.ports.iter().find(|port| port.ns == p.ns) {
            published_rules(name, p, port.address, rules);
        }
    }
}

/// One published port: DNAT to the namespace's address, the accept for the
/// DNATed connection, and for a port on loopback, the drop of LAN packets
/// sent to 127.0.0.1.
fn published_rules(name: &IfName, p: &Published, addr: Ipv4Addr, rules: &mut BTreeSet<Rule>) {
    let tag = comment(&format!(
        "nsnet:publish:{}:{}/{}",
        p.ns, p.host_port, p.proto
    ));
    let dst = p
        .host_ip
        .map(|ip| format!("-d {ip}/32 "))
        .unwrap_or_default();
    let proto = p.proto;
    let dnat = format!(
        "{dst}-p {proto} -m {proto} --dport {} {tag} -j DNAT --to-destination {addr}:{}",
        p.host_port, p.port
    );
    rules.insert(Rule::new("nat", DNAT, dnat));
    let accept = format!(
        "-d {addr}/32 -o {name} -p {proto} -m {proto} --dport {} -m conntrack --ctstate DNAT {tag} -j ACCEPT",
        p.port
    );
    rules.insert(Rule::new("filter", FORWARD, accept));
    if let Some(ip) = p.host_ip.filter(|ip| ip.is_loopback()) {
        // Only the host itself may reach a port published on loopback: a
        // LAN peer could send to 127.0.0.1 by the host's MAC address.
        let drop = format!(
            "-d {ip}/32 ! -i lo -p {proto} -m {proto} --dport {} {tag} -j DROP",
            p.host_port
        );
        rules.insert(Rule::new("raw", RAW, drop));
    }
}

/// The sysctls the record needs, with their values.
pub fn sysctls(state: &State) -> BTreeMap<String, &'static str> {
    let mut wanted = BTreeMap::new();
    for (name, bridge) in &state.bridges {
        if bridge.nat.is_some() || !bridge.published.is_empty() {
            wanted.insert(FORWARDING.to_string(), "1");
        }
        if bridge
            .published
            .iter()
            .any(|p| p.host_ip.is_none_or(|ip| ip.is_loopback()))
        {
            wanted.insert(route_localnet(name.as_str()), "1");
        }
    }
    wanted
}

/// The bridge ports that need hairpin mode: those of namespaces with a
/// published port. Where br_netfilter passes bridged traffic through
/// iptables, a namespace reaching its own published port is DNATed back
/// out of the port it came in by, which a bridge allows only in hairpin mode.
pub fn hairpins(state: &State) -> BTreeSet<IfName> {
    let mut ports = BTreeSet::new();
    for bridge in state.bridges.values() {
        for p in &bridge.published {
            ports.extend(
                bridge
                    .ports
                    .iter()
                    .filter(|port| port.ns == p.ns)
                    .map(|port| port.host_ifname.clone()),
            );
        }
    }
    ports
}
