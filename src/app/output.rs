//! Results on stdout: a short table for people, or JSON (`--json`) for
//! scripts. Diagnostics never go here.

use crate::cli::Global;
use crate::host::Host;
use crate::model::state::{Bridge, Cable, State};
use crate::model::validate::{End, IfName, NsName};
use anyhow::Result;
use serde::Serialize;
use std::net::Ipv4Addr;

#[derive(Serialize)]
struct NamespaceView {
    name: String,
    /// `nsnet` (created by nsnet), `attached` (to a process), `external`.
    origin: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pid: Option<u32>,
    /// Whether it exists on the host right now.
    present: bool,
    interfaces: Vec<InterfaceView>,
}

#[derive(Serialize)]
struct InterfaceView {
    ifname: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bridge: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    peer: Option<String>,
}

#[derive(Serialize)]
struct BridgeView<'a> {
    name: &'a IfName,
    subnet: String,
    gateway: Ipv4Addr,
    ports: Vec<PortView<'a>>,
    /// Outbound NAT: `null` when off; `out` is `null` for "any interface".
    nat: Option<&'a crate::model::state::Nat>,
    published: Vec<PublishedView<'a>>,
}

#[derive(Serialize)]
struct PortView<'a> {
    namespace: &'a NsName,
    ifname: &'a IfName,
    host_ifname: &'a IfName,
    address: Ipv4Addr,
}

fn print_json(value: &impl Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn cable_ends(state: &State, ns: &str) -> Vec<InterfaceView> {
    let mut out = Vec::new();
    for cable in &state.cables {
        let ends = [
            (&cable.a, &cable.a_ifname, &cable.b, 0),
            (&cable.b, &cable.b_ifname, &cable.a, 1),
        ];
        for (end, ifname, peer, index) in ends {
            if end.ns() == Some(ns) {
                let address = cable.subnet.map(|s| {
                    format!(
                        "{}/{}",
                        s.hosts().nth(index).expect("two hosts"),
                        s.prefix_len()
                    )
                });
                out.push(InterfaceView {
                    ifname: ifname.to_string(),
                    address,
                    bridge: None,
                    peer: Some(peer.to_string()),
                });
            }
        }
    }
    out
}

fn namespace_views(state: &State, host: &Host) -> Vec<NamespaceView> {
    let mut names: Vec<String> = host.namespaces.iter().cloned().collect();
    names.extend(state.namespaces.keys().map(ToString::to_string));
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|name| {
            let entry = state
                .namespaces
                .iter()
                .find(|(n, _)| n.as_str() == name)
                .map(|(_, e)| e);
            let mut interfaces: Vec<InterfaceView> = state
                .bridges
                .iter()
                .flat_map(|(b, br)| br.ports.iter().map(move |p| (b, br, p)))
                .filter(|(_, _, p)| p.ns.as_str() == name)
                .map(|(b, br, p)| InterfaceView {
                    ifname: p.ifname.to_string(),
                    address: Some(format!("{}/{}", p.address, br.subnet.prefix_len())),
                    bridge: Some(b.to_string()),
                    peer: None,
                })
                .collect();
            interfaces.extend(cable_ends(state, &name));
            NamespaceView {
                origin: match entry {
                    None => "external",
                    Some(e) if e.pid.is_some() => "attached",
                    Some(_) => "nsnet",
                },
                pid: entry.and_then(|e| e.pid),
                present: host.has_ns(&name),
                interfaces,
                name,
            }
        })
        .collect()
}

/// Namespaces: all of them, or only `only`.
pub fn namespaces(g: &Global, state: &State, host: &Host, only: Option<&[NsName]>) -> Result<()> {
    let mut views = namespace_views(state, host);
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
        let mut origin = v.origin.to_string();
        if let Some(pid) = v.pid {
            origin = format!("attached:{pid}");
        }
        if !v.present {
            origin.push_str(",missing");
        }
        let ifaces: Vec<String> = v
            .interfaces
            .iter()
            .map(|i| {
                let mut text = i.ifname.clone();
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
        println!("{}", line.trim_end());
    }
    Ok(())
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
        ports: br
            .ports
            .iter()
            .map(|p| PortView {
                namespace: &p.ns,
                ifname: &p.ifname,
                host_ifname: &p.host_ifname,
                address: p.address,
            })
            .collect(),
        nat: br.nat.as_ref(),
        published: published_views(state, |_, b| b == name),
    };
    if g.json {
        return print_json(&view);
    }
    if g.quiet {
        return Ok(());
    }
    println!("{name} gateway {}/{}", br.gateway, br.subnet.prefix_len());
    for p in &view.ports {
        println!(
            "  {:<16} {:<6} {}/{}  (host end {})",
            p.namespace,
            p.ifname,
            p.address,
            br.subnet.prefix_len(),
            p.host_ifname
        );
    }
    if let Some(nat) = &view.nat {
        let out = nat.out.as_ref().map_or("any interface", |o| o.as_str());
        println!("  nat out through {out}");
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
        c.subnet
            .map(|s| {
                format!(
                    " {}/{}",
                    s.hosts().nth(i).expect("two hosts"),
                    s.prefix_len()
                )
            })
            .unwrap_or_default()
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

#[derive(Serialize)]
struct PublishedView<'a> {
    /// `null`: every address of the host.
    host_ip: Option<Ipv4Addr>,
    host_port: u16,
    proto: crate::model::ports::Proto,
    namespace: &'a NsName,
    address: Ipv4Addr,
    port: u16,
    bridge: &'a IfName,
}

/// Published ports: all of them, or those of namespace `only`.
pub fn published(g: &Global, state: &State, only: Option<&NsName>) -> Result<()> {
    let views = published_views(state, |ns, _| only.is_none_or(|o| o == ns));
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

/// The published ports that `keep(namespace, bridge)` selects.
fn published_views<'a>(
    state: &'a State,
    keep: impl Fn(&NsName, &IfName) -> bool,
) -> Vec<PublishedView<'a>> {
    let mut views = Vec::new();
    for (name, bridge) in &state.bridges {
        for p in bridge.published.iter().filter(|p| keep(&p.ns, name)) {
            let Some(port) = bridge.ports.iter().find(|port| port.ns == p.ns) else {
                continue;
            };
            views.push(PublishedView {
                host_ip: p.host_ip,
                host_port: p.host_port,
                proto: p.proto,
                namespace: &p.ns,
                address: port.address,
                port: p.port,
                bridge: name,
            });
        }
    }
    views
}

fn published_lines(views: &[PublishedView]) -> Vec<String> {
    views
        .iter()
        .map(|v| {
            let host = v
                .host_ip
                .map(|ip| ip.to_string())
                .unwrap_or_else(|| "*".into());
            let from = format!("{host}:{}/{}", v.host_port, v.proto);
            format!(
                "{from:<24} -> {} {}:{} on {}",
                v.namespace, v.address, v.port, v.bridge
            )
        })
        .collect()
}
