//! Attachments: a container runtime's containers plugged into nsnet bridges
//! through CNI. ADD is `bridge up` of the container's namespace with the
//! runtime's interface name, NAT and published ports composed into one plan;
//! the port remembers the attachment (network, container, interface). DEL
//! and GC unplug attachments, and a bridge an ADD made goes, with its NAT and
//! rules, when its network's last attachment does.

use super::policy::{self, Edit};
use super::release::release;
use super::{Change, bridge, nat, publish};
use crate::host::Host;
use crate::model::ports::Mapping;
use crate::model::state::{Attachment, Port, State};
use crate::model::validate::{IfName, NsAddress, NsName};
use anyhow::{Result, bail};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A CNI network, as its configuration describes it.
pub struct Network<'a> {
    pub name: &'a str,
    pub bridge: &'a IfName,
    pub subnet: Option<Ipv4Net>,
    pub subnet6: Option<Ipv6Net>,
    pub gateway: Option<Ipv4Addr>,
    pub gateway6: Option<Ipv6Addr>,
    pub nat: bool,
    pub default_route: bool,
    pub deny: &'a [IpNet],
    pub allow: &'a [IpNet],
    /// The runtime's port mappings: host address (`None`: all) and mapping.
    pub ports: &'a [(Option<IpAddr>, Mapping)],
}

/// The container an ADD plugs in.
pub struct Container<'a> {
    pub id: &'a str,
    pub ifname: &'a IfName,
    /// Its namespace's name in /run/netns, and the path the runtime gave.
    pub ns: &'a NsName,
    pub netns: &'a str,
    /// Addresses the runtime asks to keep (`IP=` of CNI_ARGS).
    pub addresses: &'a [IpAddr],
}

/// The port of attachment (`container`, `ifname`), on whichever bridge.
pub fn find<'s>(
    state: &'s State,
    container: &str,
    ifname: &IfName,
) -> Option<(&'s IfName, &'s Port)> {
    state.bridges.iter().find_map(|(name, b)| {
        b.ports
            .iter()
            .find(|p| {
                &p.ifname == ifname && p.runtime.as_ref().is_some_and(|a| a.container == container)
            })
            .map(|p| (name, p))
    })
}

/// ADD: plugs the container into the network's bridge, made on first use.
pub fn add(net: &Network, c: &Container, host: &Host, state: &State) -> Result<Change> {
    if let Some((bridge, _)) = find(state, c.id, c.ifname) {
        bail!(
            "container `{}` already has `{}` on bridge `{bridge}`: the runtime must DEL it before adding it again",
            c.id,
            c.ifname
        );
    }
    let existing = state.bridges.get(net.bridge);
    if let Some(other) = existing.and_then(|b| b.network.as_deref())
        && other != net.name
    {
        bail!(
            "bridge `{}` serves CNI network `{other}`: give network `{}` a bridge of its own",
            net.bridge,
            net.name
        );
    }
    let namespaces = [c.ns.clone()];
    let addresses: Vec<NsAddress> = c
        .addresses
        .iter()
        .map(|a| NsAddress {
            ns: c.ns.clone(),
            address: *a,
        })
        .collect();
    let up = bridge::Up {
        bridge: net.bridge,
        subnet: net.subnet,
        subnet6: net.subnet6,
        ipv6: false,
        ifname: c.ifname,
        ifname_given: true,
        namespaces: &namespaces,
        gateway: net.gateway,
        gateway6: net.gateway6,
        addresses: &addresses,
        default_route: net.default_route,
    };
    let mut change = bridge::up(&up, host, state)?;
    let entry = change
        .state
        .bridges
        .get_mut(net.bridge)
        .expect("bridge up records its bridge");
    if existing.is_none() {
        entry.network = Some(net.name.to_string());
    }
    let Some(port) = entry
        .ports
        .iter_mut()
        .find(|p| &p.ns == c.ns && &p.ifname == c.ifname && p.ifindex.is_none())
    else {
        bail!(
            "namespace `{}` is already on bridge `{}`: a container joins a network once",
            c.ns,
            net.bridge
        );
    };
    port.runtime = Some(Attachment {
        network: net.name.to_string(),
        container: c.id.to_string(),
        netns: c.netns.to_string(),
    });
    let nat_missing = entry.nat.is_none();
    let deny: Vec<IpNet> = (net.deny.iter())
        .filter(|n| !entry.policy.deny.iter().any(|d| d.to == **n))
        .copied()
        .collect();
    let allow: Vec<IpNet> = (net.allow.iter())
        .filter(|n| !entry.policy.allow.contains(n))
        .copied()
        .collect();
    if net.nat && nat_missing {
        change = change.then(|s| nat::up(net.bridge, None, host, s))?;
    }
    if !deny.is_empty() {
        change =
            change.then(|s| policy::edit(net.bridge, &deny, Edit::Deny { log: false }, host, s))?;
    }
    if !allow.is_empty() {
        change = change.then(|s| policy::edit(net.bridge, &allow, Edit::Allow, host, s))?;
    }
    let mut by_address: Vec<(Option<IpAddr>, Vec<Mapping>)> = Vec::new();
    for (ip, mapping) in net.ports {
        match by_address.iter_mut().find(|(a, _)| a == ip) {
            Some((_, list)) => list.push(*mapping),
            None => by_address.push((*ip, vec![*mapping])),
        }
    }
    for (host_ip, mappings) in &by_address {
        let add = publish::Add {
            ns: c.ns,
            mappings,
            host_ip: *host_ip,
            bridge: Some(net.bridge),
            // The runtime reserves its host ports itself (podman's conmon
            // listens on them once the container starts, and holds them
            // across `podman network reload`'s DEL and ADD); a port another
            // nsnet namespace publishes is still refused.
            force: true,
            allow: None,
        };
        change = change.then(|s| publish::add(&add, host, s))?;
    }
    Ok(change)
}

/// DEL: unplugs attachment (`container`, `ifname`) if nsnet has it; with
/// nothing to do (a second DEL, or a DEL after a failed ADD) it succeeds.
pub fn del(
    network: &str,
    container: &str,
    ifname: &IfName,
    host: &Host,
    state: &State,
) -> Result<Change> {
    let ports: Vec<(IfName, Port)> = find(state, container, ifname)
        .map(|(b, p)| (b.clone(), p.clone()))
        .into_iter()
        .collect();
    unplug(network, &ports, host, state)
}

/// GC: unplugs every attachment of `network` the runtime does not list in
/// `valid` (container id and interface).
pub fn gc(network: &str, valid: &[(String, String)], host: &Host, state: &State) -> Result<Change> {
    let kept = |p: &Port, a: &Attachment| {
        valid
            .iter()
            .any(|(c, i)| *c == a.container && i == p.ifname.as_str())
    };
    let ports: Vec<(IfName, Port)> = (state.bridges.iter())
        .flat_map(|(name, b)| b.ports.iter().map(move |p| (name, p)))
        .filter(|(_, p)| {
            p.runtime
                .as_ref()
                .is_some_and(|a| a.network == network && !kept(p, a))
        })
        .map(|(name, p)| (name.clone(), p.clone()))
        .collect();
    unplug(network, &ports, host, state)
}

/// Unplugs `ports`, then removes the bridges `network` made that have no
/// port left.
fn unplug(network: &str, ports: &[(IfName, Port)], host: &Host, state: &State) -> Result<Change> {
    let mut change = Change::from(state);
    release(&mut change, host, ports, &[], &[], true)?;
    let empty: Vec<IfName> = (change.state.bridges.iter())
        .filter(|(_, b)| b.network.as_deref() == Some(network) && b.ports.is_empty())
        .map(|(name, _)| name.clone())
        .collect();
    for name in &empty {
        bridge::remove(&mut change, host, name);
    }
    Ok(change)
}
