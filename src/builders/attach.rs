//! Attachments: a container runtime's containers plugged into nsnet bridges
//! through CNI. ADD is `bridge up` of the container's namespace with the
//! runtime's interface name, NAT and published ports composed into one plan;
//! the port remembers the attachment (network, container, interface). DEL
//! and GC unplug attachments, and a bridge an ADD made goes, with its NAT and
//! rules, when its network's last attachment does.

use super::policy::{self, Edit};
use super::release::release;
use super::{Change, bridge, nat, netns, publish};
use crate::host::Host;
use crate::model::ports::Mapping;
use crate::model::state::{Attachment, Port, State};
use crate::model::validate::{IfName, NsAddress, NsName};
use anyhow::{Result, bail};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use thiserror::Error;

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

/// Why an ADD is refused before anything runs, for the runtime to tell
/// apart from a step that failed.
#[derive(Debug, Error)]
pub enum Refused {
    /// The configuration asks for what nsnet cannot do with what it has.
    #[error("{0}")]
    Config(String),
    /// The container's namespace is not the one the runtime named.
    #[error("{0}")]
    Namespace(String),
}

/// The container an ADD plugs in.
pub struct Container<'a> {
    pub id: &'a str,
    pub ifname: &'a IfName,
    /// Its namespace's name in /run/netns, and the path the runtime gave.
    pub ns: &'a NsName,
    pub netns: &'a str,
    /// The namespace's identity (device, inode) when the runtime asked:
    /// the one to plug into, and no other of the same name.
    pub identity: Option<(u64, u64)>,
    /// A namespace named nowhere (`/proc/PID/ns/net`): the process, and
    /// the identities `netns attach` checks, to name it `ns` first.
    pub adopt: Option<(u32, netns::AttachIds)>,
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
    // The runtime made the namespace: gone (deleted while this ADD waited
    // for the lock) or made again, it is no container's any more. One named
    // nowhere must still be the process's the runtime gave.
    let live = match &c.adopt {
        Some((_, ids)) => ids.pid_ns.as_ref().ok().copied(),
        None => (host.ns_stamps.get(c.ns.as_str()))
            .filter(|_| host.has_ns(c.ns.as_str()))
            .map(|s| (s.dev, s.ino)),
    };
    if live.is_none() || c.identity.is_some_and(|i| live != Some(i)) {
        return Err(Refused::Namespace(format!(
            "the container's namespace `{}` is gone or was made again since the runtime named it: nothing was made",
            c.netns
        ))
        .into());
    }
    let existing = state.bridges.get(net.bridge);
    if let Some(other) = existing.and_then(|b| b.network.as_deref())
        && other != net.name
    {
        return Err(Refused::Config(format!(
            "bridge `{}` serves CNI network `{other}`: give network `{}` a bridge of its own",
            net.bridge, net.name
        ))
        .into());
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
    // A namespace named nowhere is named first, after the container; the
    // name goes with its last port, leaving the process its namespace.
    let mut change = match &c.adopt {
        Some((pid, ids)) => {
            let mut change = netns::attach(c.ns, *pid, ids, host, state)
                .map_err(|e| Refused::Config(format!("{e:#}")))?;
            if let Some(entry) = change.state.namespaces.get_mut(c.ns) {
                entry.explicit = false;
            }
            change
        }
        None => Change::from(state),
    };
    change = change.then(|s| bridge::up(&up, host, s))?;
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
        return Err(Refused::Config(format!(
            "namespace `{}` is already on bridge `{}`: a container joins a network once",
            c.ns, net.bridge
        ))
        .into());
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
        // `0.0.0.0` or `::` is every address of that family, and only
        // of that one: sources of the family alone, on every address.
        let every: Vec<IpNet> = (host_ip.filter(IpAddr::is_unspecified))
            .and_then(|ip| IpNet::new(ip, 0).ok())
            .into_iter()
            .collect();
        let add = publish::Add {
            ns: c.ns,
            mappings,
            host_ip: host_ip.filter(|ip| !ip.is_unspecified()),
            bridge: Some(net.bridge),
            // The runtime reserves its host ports itself (podman's conmon
            // listens on them once the container starts, and holds them
            // across `podman network reload`'s DEL and ADD); a port another
            // nsnet namespace publishes is still refused.
            force: true,
            allow: (!every.is_empty()).then_some(&every[..]),
        };
        change = change.then(|s| publish::add(&add, host, s))?;
    }
    Ok(change)
}

/// DEL: unplugs attachment (`container`, `ifname`) if nsnet has it; with
/// nothing to do (a second DEL, or a DEL after a failed ADD) it succeeds.
/// The attachment is the one of `network`, or, if that network has none
/// (it was renamed since the ADD), the container's interface on any.
pub fn del(
    network: &str,
    container: &str,
    ifname: &IfName,
    host: &Host,
    state: &State,
) -> Result<Change> {
    let of = |net: Option<&str>| {
        state.bridges.iter().find_map(|(name, b)| {
            let p = b.ports.iter().find(|p| {
                &p.ifname == ifname
                    && p.runtime.as_ref().is_some_and(|a| {
                        a.container == container && net.is_none_or(|n| a.network == n)
                    })
            })?;
            Some((name.clone(), p.clone()))
        })
    };
    let ports: Vec<(IfName, Port)> = of(Some(network)).or_else(|| of(None)).into_iter().collect();
    unplug(&ports, host, state)
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
    unplug(&ports, host, state)
}

/// Unplugs `ports`: their cables, addresses, published ports and rules.
fn unplug(ports: &[(IfName, Port)], host: &Host, state: &State) -> Result<Change> {
    let mut change = Change::from(state);
    release(&mut change, host, ports, &[], &[], true)?;
    Ok(change)
}

/// Removes every bridge a CNI network made that has no port left, with its
/// NAT and rules: after the last DEL of its network, or after an earlier
/// removal that the host refused.
pub fn retire(host: &Host, state: &State) -> Result<Change> {
    let mut change = Change::from(state);
    let empty: Vec<IfName> = (state.bridges.iter())
        .filter(|(_, b)| b.network.is_some() && b.ports.is_empty())
        .map(|(name, _)| name.clone())
        .collect();
    for name in &empty {
        bridge::remove(&mut change, host, name);
    }
    Ok(change)
}
