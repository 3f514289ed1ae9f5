//! `status`: what nsnet manages, as the live kernel shows it, with drift
//! flagged wherever the host no longer matches nsnet's record. Built from the
//! record, the live world (`live::World`), the firewall and the sysctls; no
//! I/O here. The JSON form of `Status` is a stable interface (see README).

use crate::host::Host;
use crate::host::live::{Peer, World};
use crate::model::rules;
use crate::model::state::State;
use serde::Serialize;
use std::net::Ipv4Addr;

#[derive(Debug, Serialize)]
pub struct Status {
    pub bridges: Vec<BridgeStatus>,
    pub namespaces: Vec<NsStatus>,
    pub published: Vec<PublishedStatus>,
    /// Where the host no longer matches nsnet's record, one sentence each.
    pub drift: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct BridgeStatus {
    pub name: String,
    pub subnet: String,
    pub gateway: Ipv4Addr,
    pub present: bool,
    /// `null`: no NAT; otherwise the interface it is limited to, or `null`.
    pub nat: Option<NatStatus>,
    pub ports: Vec<PortStatus>,
}

#[derive(Debug, Serialize)]
pub struct NatStatus {
    pub out: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct PortStatus {
    pub namespace: String,
    pub ifname: String,
    pub host_ifname: String,
    pub address: Ipv4Addr,
}

#[derive(Debug, Serialize)]
pub struct NsStatus {
    pub name: String,
    /// `nsnet`, `attached` or `external` (not nsnet's: shown, never changed).
    pub origin: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    pub present: bool,
    pub interfaces: Vec<IfaceStatus>,
    pub routes: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct IfaceStatus {
    pub ifname: String,
    pub up: bool,
    pub addresses: Vec<String>,
    /// For a veth: where its other end is.
    pub peer: Option<PeerStatus>,
}

#[derive(Debug, Serialize)]
pub struct PeerStatus {
    /// `host`, or the namespace's name.
    pub namespace: String,
    pub ifname: String,
    pub bridge: Option<String>,
    pub addresses: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct PublishedStatus {
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub proto: crate::model::ports::Proto,
    pub namespace: String,
    pub address: Ipv4Addr,
    pub port: u16,
    pub bridge: String,
}

fn peer_status(peer: Peer) -> PeerStatus {
    PeerStatus {
        namespace: peer.ns.unwrap_or_else(|| "host".into()),
        ifname: peer.ifname,
        bridge: peer.bridge,
        addresses: peer.addresses,
    }
}

/// Builds the status of `state` as `world` and `host` show it.
pub fn build(state: &State, world: &World, host: &Host) -> Status {
    let mut drift = Vec::new();
    let host_if = |name: &str| world.host.ifaces.iter().find(|i| i.ifname == name);
    let mut bridges = Vec::new();
    let mut published = Vec::new();
    for (name, br) in &state.bridges {
        let live = host_if(name.as_str());
        let gateway = format!("{}/{}", br.gateway, br.subnet.prefix_len());
        match live {
            None => drift.push(format!(
                "bridge `{name}` is gone from the host (`nsnet bridge down --bridge {name}` clears the record)"
            )),
            Some(i) if !i.ipv4().contains(&gateway) => {
                drift.push(format!("bridge `{name}` has lost its gateway address {gateway}"))
            }
            Some(_) => {}
        }
        for port in &br.ports {
            let (ns, ifname) = (port.ns.as_str(), port.ifname.as_str());
            let address = format!("{}/{}", port.address, br.subnet.prefix_len());
            match host_if(port.host_ifname.as_str()) {
                None if live.is_some() => drift.push(format!(
                    "`{}`, the host end of `{ns}`'s {ifname}, is gone: `{ns}` is off bridge `{name}`",
                    port.host_ifname
                )),
                Some(i) if i.master.as_deref() != Some(name.as_str()) => drift.push(format!(
                    "`{}` (`{ns}`'s {ifname}) is not plugged into bridge `{name}`",
                    port.host_ifname
                )),
                _ => {}
            }
            if let Some(netns) = world.namespaces.get(ns) {
                match netns.ifaces.iter().find(|i| i.ifname == ifname) {
                    None => {
                        drift.push(format!("`{ns}` has no {ifname} any more (bridge `{name}`)"))
                    }
                    Some(i) if !i.ipv4().contains(&address) => {
                        drift.push(format!("`{ns}`'s {ifname} has lost its address {address}"))
                    }
                    Some(_) => {}
                }
            }
        }
        for p in &br.published {
            if let Some(port) = br.ports.iter().find(|port| port.ns == p.ns) {
                published.push(PublishedStatus {
                    host_ip: p.host_ip,
                    host_port: p.host_port,
                    proto: p.proto,
                    namespace: p.ns.to_string(),
                    address: port.address,
                    port: p.port,
                    bridge: name.to_string(),
                });
            }
        }
        bridges.push(BridgeStatus {
            name: name.to_string(),
            subnet: br.subnet.to_string(),
            gateway: br.gateway,
            present: live.is_some(),
            nat: br.nat.as_ref().map(|n| NatStatus {
                out: n.out.as_ref().map(ToString::to_string),
            }),
            ports: br
                .ports
                .iter()
                .map(|p| PortStatus {
                    namespace: p.ns.to_string(),
                    ifname: p.ifname.to_string(),
                    host_ifname: p.host_ifname.to_string(),
                    address: p.address,
                })
                .collect(),
        });
    }
    for (name, entry) in &state.namespaces {
        if !world.namespaces.contains_key(name.as_str()) {
            drift.push(format!(
                "namespace `{name}` is gone (deleted by hand?); `nsnet down` or `nsnet netns del {name}` clears the record"
            ));
        } else if entry
            .pid
            .is_some_and(|pid| crate::host::netns_of_pid(pid).is_err())
        {
            drift.push(format!("the process `{name}` was attached to has exited; its namespace lives on under the name"));
        }
    }
    rule_drift(state, host, &mut drift);
    let mut namespaces: Vec<NsStatus> = world
        .namespaces
        .iter()
        .map(|(name, netns)| {
            let entry = state
                .namespaces
                .iter()
                .find(|(n, _)| n.as_str() == name)
                .map(|(_, e)| e);
            let interfaces = netns
                .ifaces
                .iter()
                .filter(|i| i.ifname != "lo")
                .map(|i| IfaceStatus {
                    ifname: i.ifname.clone(),
                    up: i.is_up(),
                    addresses: i.ipv4(),
                    peer: world.peer(Some(name), i).map(peer_status),
                })
                .collect();
            NsStatus {
                name: name.clone(),
                origin: match entry {
                    None => "external",
                    Some(e) if e.pid.is_some() => "attached",
                    Some(_) => "nsnet",
                },
                pid: entry.and_then(|e| e.pid),
                present: true,
                interfaces,
                routes: netns.routes.clone(),
            }
        })
        .chain(
            state
                .namespaces
                .iter()
                .filter(|(n, _)| !world.namespaces.contains_key(n.as_str()))
                .map(|(name, entry)| NsStatus {
                    name: name.to_string(),
                    origin: if entry.pid.is_some() {
                        "attached"
                    } else {
                        "nsnet"
                    },
                    pid: entry.pid,
                    present: false,
                    interfaces: Vec::new(),
                    routes: Vec::new(),
                }),
        )
        .collect();
    namespaces.sort_by(|a, b| a.name.cmp(&b.name));
    Status {
        bridges,
        namespaces,
        published,
        drift,
    }
}

/// Rules and sysctls the record needs that the host does not have.
fn rule_drift(state: &State, host: &Host, drift: &mut Vec<String>) {
    if let Some(fw) = &host.firewall {
        for rule in rules::rules(state) {
            let line = format!("-A {} {}", rule.chain, rule.spec);
            if !fw.rules.contains(&(rule.table.to_string(), line.clone())) {
                drift.push(format!(
                    "iptables rule missing from table {}: {line}",
                    rule.table
                ));
            }
        }
    }
    for (key, value) in rules::sysctls(state) {
        if let Some(current) = host.sysctls.get(&key).filter(|c| c.as_str() != value) {
            drift.push(format!("{key} is {current}; nsnet needs {value}"));
        }
    }
}
