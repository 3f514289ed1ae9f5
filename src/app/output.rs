//! Results on stdout: a short table for people, or JSON (`--json`) for
//! scripts, both from the typed views in `report::status`. Diagnostics never
//! go here.

use crate::cli::Global;
use crate::host::Host;
use crate::model::state::{Bridge, Cable, NsRoute, State};
use crate::model::validate::{End, IfName, NsName};
use crate::report::status::{self, ListedNs, Origin, PortView, PublishedPort};
use anyhow::Result;
use serde::Serialize;
use std::net::Ipv4Addr;

fn print_json(value: &impl Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Namespaces: all of them, or only `only`.
pub fn namespaces(g: &Global, state: &State, host: &Host, only: Option<&[NsName]>) -> Result<()> {
    let mut views = status::listed(state, host);
    if let Some(only) = only {
        views.retain(|v| only.iter().any(|n| n.as_str() == v.name));
    }
    if g.json {
        return print_json(&views);
    }
    if only.is_some() {
        return Ok(());
    }
    for v in views {
        println!("{}", namespace_line(&v));
    }
    Ok(())
}

/// `red              nsnet            eth0 10.200.0.2/24 on nsnet0`.
fn namespace_line(v: &ListedNs) -> String {
    let mut origin = match v.origin {
        Origin::Attached { pid } => format!("attached:{pid}"),
        origin => origin.to_string(),
    };
    if !v.present {
        origin.push_str(",missing");
    }
    let ifaces: Vec<String> = v
        .interfaces
        .iter()
        .map(|i| {
            let mut text = i.ifname.to_string();
            if let Some(a) = &i.address {
                text.push_str(&format!(" {a}"));
            }
            if let Some(b) = &i.bridge {
                text.push_str(&format!(" on {b}"));
            }
            if let Some(p) = &i.peer {
                text.push_str(&format!(" to {p}"));
            }
            text
        })
        .collect();
    let line = format!("{:<16} {:<16} {}", v.name, origin, ifaces.join(", "));
    line.trim_end().to_string()
}

#[derive(Serialize)]
struct BridgeView<'a> {
    name: &'a IfName,
    subnet: String,
    gateway: Ipv4Addr,
    #[serde(skip_serializing_if = "Option::is_none")]
    ipv6: Option<crate::model::state::Net6>,
    ports: Vec<PortView>,
    /// Outbound NAT: `null` when off; `{}` for "any interface".
    nat: Option<&'a crate::model::state::Nat>,
    published: Vec<PublishedPort>,
}

/// A bridge and its ports, after `bridge up`.
pub fn bridge(g: &Global, state: &State, name: &IfName) -> Result<()> {
    let Some(br): Option<&Bridge> = state.bridges.get(name) else {
        return Ok(());
    };
    let view = BridgeView {
        name,
        subnet: br.subnet.to_string(),
        gateway: br.gateway,
        ipv6: br.ipv6,
        ports: status::ports(br),
        nat: br.nat.as_ref(),
        published: status::published(state, |_, b| b == name),
    };
    if g.json {
        return print_json(&view);
    }
    if g.quiet {
        return Ok(());
    }
    println!("{name} gateway {}/{}", br.gateway, br.subnet.prefix_len());
    if let Some(net6) = br.ipv6 {
        println!(
            "{name} gateway {}/{}",
            net6.gateway,
            net6.subnet.prefix_len()
        );
    }
    for p in &view.ports {
        let v6 = match (p.address6, br.ipv6) {
            (Some(a), Some(n)) => format!(" {a}/{}", n.subnet.prefix_len()),
            _ => String::new(),
        };
        println!(
            "  {:<16} {:<6} {}/{}{v6}  (host end {})",
            p.namespace,
            p.ifname,
            p.address,
            br.subnet.prefix_len(),
            p.host_ifname
        );
    }
    if let Some(nat) = &view.nat {
        let out = nat.out.as_ref().map_or("any interface", |o| o.as_str());
        match nat.via {
            Some(via) => println!(
                "  nat out through {out} via {} (routing table {}, ip rules {} and {})",
                via.gateway,
                via.table,
                via.priority,
                via.priority + 1
            ),
            None => println!("  nat out through {out}"),
        }
    }
    for line in published_lines(&view.published) {
        println!("  {line}");
    }
    Ok(())
}

/// A cable, after `veth add`.
pub fn cable(g: &Global, state: &State, a: &End, b: &End) -> Result<()> {
    let Some(c): Option<&Cable> = state.cables.iter().find(|c| c.joins(a, b)) else {
        return Ok(());
    };
    if g.json {
        return print_json(c);
    }
    if g.quiet {
        return Ok(());
    }
    let addr = |i: usize| {
        let addresses = status::cable_addresses(c, i);
        addresses
            .iter()
            .map(|a| format!(" {a}"))
            .collect::<String>()
    };
    println!(
        "{} {}{} <-> {} {}{}",
        c.a,
        c.a_ifname,
        addr(0),
        c.b,
        c.b_ifname,
        addr(1)
    );
    Ok(())
}

/// Published ports: all of them, or those of namespace `only`.
/// Bridges' firewall policies: all of them, or bridge `only`'s.
pub fn policies(g: &Global, state: &State, only: Option<&IfName>) -> Result<()> {
    let views = crate::builders::policy::views(state, only);
    if g.json {
        return print_json(&views);
    }
    if !g.quiet {
        for line in views.iter().flat_map(policy_lines) {
            println!("{line}");
        }
    }
    Ok(())
}

/// `nsnet0`, then `  deny  10.0.0.0/8 (logged)`, `  allow …`, and the
/// bridges it is isolated from.
pub fn policy_lines(v: &crate::builders::policy::View) -> Vec<String> {
    let mut lines = vec![v.bridge.to_string()];
    for a in &v.policy.allow {
        lines.push(format!("  allow {a}"));
    }
    for d in &v.policy.deny {
        let logged = if d.log { " (logged)" } else { "" };
        lines.push(format!("  deny  {}{logged}", d.to));
    }
    if !v.isolated_from.is_empty() {
        let names: Vec<&str> = v.isolated_from.iter().map(IfName::as_str).collect();
        lines.push(format!("  isolated from {}", names.join(", ")));
    }
    if lines.len() == 1 {
        lines.push("  no policy: its namespaces reach whatever the host routes them to".into());
    }
    lines
}

/// The routes nsnet added in namespace `ns`: `red 192.168.1.0/24 via
/// 192.168.15.5`, a line each.
pub fn routes(g: &Global, state: &State, ns: &NsName) -> Result<()> {
    let routes: Vec<&NsRoute> = state.routes.iter().filter(|r| &r.ns == ns).collect();
    if g.json {
        return print_json(&routes);
    }
    if !g.quiet {
        for r in routes {
            println!("{} {} via {}", r.ns, r.to, r.via);
        }
    }
    Ok(())
}

pub fn published(g: &Global, state: &State, only: Option<&NsName>) -> Result<()> {
    let views = status::published(state, |ns, _| only.is_none_or(|o| o == ns));
    if g.json {
        return print_json(&views);
    }
    if !g.quiet {
        for line in published_lines(&views) {
            println!("{line}");
        }
    }
    Ok(())
}

/// `*:8080/tcp               -> red 10.200.0.2:80 on nsnet0`, and with
/// `--allow`, ` from 192.0.2.0/24, 198.51.100.7/32`.
fn published_lines(views: &[PublishedPort]) -> Vec<String> {
    let line = |v: &PublishedPort| {
        let (ns, to, bridge) = (&v.namespace, v.to(), &v.bridge);
        format!("{:<24} -> {ns} {to} on {bridge}{}", v.from(), v.sources())
    };
    views.iter().map(line).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fixture::Fixture;
    use crate::host::{Wants, observe_in};

    #[test]
    fn netns_list_lines() {
        let mut f = Fixture::load("drift");
        let host = observe_in(&mut f.runner, &f.roots, Wants::default()).unwrap();
        let lines: Vec<String> = status::listed(&f.state, &host)
            .iter()
            .map(namespace_line)
            .collect();
        let pid = f.state.namespaces.values().find_map(|e| e.pid).unwrap();
        let sleeper = format!("{:<16} attached:{pid}", "sleeper");
        assert_eq!(
            lines,
            [
                "blue             nsnet            eth0 10.200.0.3/24 on nsnet0, vc-host 10.6.0.2/30 to host",
                "green            nsnet,missing    vc-red 10.5.0.2/30 to red",
                "red              nsnet            eth0 10.200.0.2/24 on nsnet0, vc-green 10.5.0.1/30 to green",
                sleeper.as_str(),
                "theirs           external",
            ]
        );
    }

    #[test]
    fn publish_list_lines() {
        let f = Fixture::load("clean");
        let lines = published_lines(&status::published(&f.state, |_, _| true));
        assert_eq!(
            lines,
            [
                "*:8080/tcp               -> red 10.200.0.2:80 on nsnet0",
                "*:5353/udp               -> red 10.200.0.2:53 on nsnet0",
            ]
        );
    }
}
