//! Drift: every way the host no longer matches nsnet's record, one sentence
//! each, with what clears it where nsnet can. Compares the record with values
//! read before (`World`, `Host`); no I/O here.

use crate::host::Host;
use crate::host::live::World;
use crate::model::policy;
use crate::model::rules::{self, Family};
use crate::model::state::{Bridge, Found, Port, State, replaced};
use crate::model::validate::IfName;
use crate::report::status::{cable_addresses, port_address};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// Bridges (and their ports), then namespaces, then rules and sysctls.
pub(super) fn drift(state: &State, world: &World, host: &Host) -> Vec<String> {
    let mut out = Vec::new();
    for (name, br) in &state.bridges {
        match host.link(name.as_str(), br.ifindex) {
            Found::Other => out.push(replaced("bridge", name.as_str())),
            _ => bridge(name, br, (state, world, host), &mut out),
        }
    }
    namespaces(state, world, host, &mut out);
    cables(state, world, host, &mut out);
    rule_drift(state, host, &mut out);
    out
}

/// The bridge itself, its gateway address, then each port.
fn bridge(name: &IfName, br: &Bridge, seen: (&State, &World, &Host), out: &mut Vec<String>) {
    let (state, world, host) = seen;
    let live = world.host_iface(name.as_str());
    let gateway = Ipv4Net::new(br.gateway, br.subnet.prefix_len()).expect("a prefix length");
    match live {
        None => out.push(format!(
            "bridge `{name}` is gone from the host (`nsnet bridge down --bridge {name}` clears the record)"
        )),
        Some(i) if !i.has_address(IpNet::V4(gateway)) => {
            out.push(format!("bridge `{name}` has lost its gateway address {gateway}"))
        }
        Some(i) => {
            if let Some(net6) = br.ipv6 {
                let gw6 = Ipv6Net::new(net6.gateway, net6.subnet.prefix_len()).expect("a prefix");
                if !i.has_address(IpNet::V6(gw6)) {
                    out.push(format!("bridge `{name}` has lost its IPv6 gateway address {gw6}"));
                }
            }
        }
    }
    for port in &br.ports {
        // A namespace made again by hand is reported once, as such.
        let entry = state.namespaces.get(&port.ns);
        if entry.is_some_and(|e| host.namespace(&port.ns, e) == Found::Other) {
            continue;
        }
        if host.link(port.host_ifname.as_str(), port.ifindex) == Found::Other {
            out.push(format!(
                "`{}` is not the interface nsnet made for `{}`'s port on `{name}` (made again by hand?): `nsnet bridge up {} --bridge {name}` plugs it in again",
                port.host_ifname, port.ns, port.ns
            ));
            continue;
        }
        host_end(name, port, live.is_some(), world, out);
        ns_end(name, br, port, world, out);
    }
}

/// The port's host end: there (if the bridge is) and plugged into the bridge.
fn host_end(name: &IfName, port: &Port, bridge_there: bool, world: &World, out: &mut Vec<String>) {
    let (ns, ifname, host_ifname) = (&port.ns, &port.ifname, &port.host_ifname);
    match world.host_iface(host_ifname.as_str()) {
        None if bridge_there => out.push(format!(
            "`{host_ifname}`, the host end of `{ns}`'s {ifname}, is gone: `{ns}` is off bridge `{name}`"
        )),
        Some(i) if i.master.as_deref() != Some(name.as_str()) => out.push(format!(
            "`{host_ifname}` (`{ns}`'s {ifname}) is not plugged into bridge `{name}`"
        )),
        _ => {}
    }
}

/// The port's end in its namespace (when the namespace is there): there, with
/// its address.
fn ns_end(name: &IfName, br: &Bridge, port: &Port, world: &World, out: &mut Vec<String>) {
    let (ns, ifname) = (port.ns.as_str(), port.ifname.as_str());
    let Some(netns) = world.namespaces.get(ns) else {
        return;
    };
    let address = port_address(br, port);
    let address6 = br
        .ipv6
        .zip(port.address6)
        .map(|(n, a)| IpNet::V6(Ipv6Net::new(a, n.subnet.prefix_len()).expect("a prefix length")));
    let Some(i) = netns.ifaces.iter().find(|i| i.ifname == ifname) else {
        out.push(format!("`{ns}` has no {ifname} any more (bridge `{name}`)"));
        return;
    };
    for address in std::iter::once(address).chain(address6) {
        if !i.has_address(address) {
            out.push(format!("`{ns}`'s {ifname} has lost its address {address}"));
        }
    }
}

/// Recorded namespaces the kernel no longer has, and attached ones whose
/// process has exited.
fn namespaces(state: &State, world: &World, host: &Host, out: &mut Vec<String>) {
    for (name, entry) in &state.namespaces {
        if host.namespace(name, entry) == Found::Other {
            out.push(replaced("namespace", name.as_str()));
        } else if !world.namespaces.contains_key(name.as_str()) {
            out.push(format!(
                "namespace `{name}` is gone (deleted by hand?); `nsnet down` or `nsnet netns del {name}` clears the record"
            ));
        } else if entry.pid.is_some_and(|pid| world.exited.contains(&pid)) {
            out.push(format!("the process `{name}` was attached to has exited; its namespace lives on under the name"));
        }
    }
}

/// Cables whose end nsnet would cut is something else of the same name,
/// and ends (where they are there to look at) that lost an address.
fn cables(state: &State, world: &World, host: &Host, out: &mut Vec<String>) {
    for cable in &state.cables {
        let (end, ifname, index) = cable.cut_end();
        if host.link_in(end.ns(), ifname.as_str(), index) == Found::Other {
            out.push(format!(
                "`{ifname}` in {end} is not the end nsnet made of the cable between {} and {} (made again by hand?)",
                cable.a, cable.b
            ));
            continue;
        }
        for (k, (end, ifname)) in [(&cable.a, &cable.a_ifname), (&cable.b, &cable.b_ifname)]
            .into_iter()
            .enumerate()
        {
            let Some(netns) = world.netns(end.ns()) else {
                continue;
            };
            let Some(i) = netns.ifaces.iter().find(|i| i.ifname == ifname.as_str()) else {
                continue;
            };
            for address in cable_addresses(cable, k) {
                if !i.has_address(address) {
                    let whose = end
                        .ns()
                        .map_or("the host".to_string(), |n| format!("`{n}`"));
                    out.push(format!("{whose}'s {ifname} has lost its address {address}"));
                }
            }
        }
    }
}

/// The firewall rules and sysctls the record needs that the host lacks.
pub fn firewall_drift(state: &State, host: &Host) -> Vec<String> {
    let mut out = Vec::new();
    rule_drift(state, host, &mut out);
    out
}

/// Rules and sysctls the record needs that the host does not have.
fn rule_drift(state: &State, host: &Host, out: &mut Vec<String>) {
    for rule in rules::rules(state) {
        let fw = match rule.family {
            Family::V4 => &host.firewall,
            Family::V6 => &host.firewall6,
        };
        let Some(fw) = fw else { continue };
        let line = rule.saved_line();
        if !fw.has_rule(rule.table, &line) {
            out.push(format!(
                "{} rule missing from table {}: {line}",
                rule.family.tool_name(),
                rule.table
            ));
        }
    }
    for (family, fw) in [(Family::V4, &host.firewall), (Family::V6, &host.firewall6)] {
        let Some(fw) = fw else { continue };
        for chain in policy::misplaced(&fw.chain("filter", "FORWARD")) {
            out.push(format!(
                "in {}'s FORWARD, nsnet's jump to {chain} comes before one it must follow (NSNET-USER, then NSNET-POLICY, then NSNET-FORWARD): the next nsnet command that changes anything, or `nsnet bridge up NS` again for a namespace already up, puts it back",
                family.tool_name()
            ));
        }
    }
    for (key, value) in rules::sysctls(state) {
        if let Some(current) = host.sysctls.get(&key).filter(|c| c.as_str() != value) {
            out.push(format!("{key} is {current}; nsnet needs {value}"));
        }
    }
}
