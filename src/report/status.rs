//! The typed view of nsnet's network that every report prints: `Status` (what
//! nsnet manages, as the live kernel shows it, with drift flagged wherever the
//! host no longer matches the record), and the pieces `netns list`, `publish
//! list`, `bridge up` and the graphs share with it: where a namespace came
//! from (`Origin`), a bridge's ports, published ports, the namespaces nsnet
//! knows. Everything is built from values read before (the record, `Host`,
//! `live::World`); no I/O here. The JSON form of `Status` is a stable
//! interface (see README), and so are those of `netns list` and `publish list`.

mod drift;

pub use drift::firewall_drift;
#[cfg(test)]
mod tests;

use crate::host::Host;
use crate::host::live::{Iface, LiveRoute, Netns, Peer, World};
use crate::model::ports::Proto;
use crate::model::rules::Family;
use crate::model::state::{Attachment, Bridge, Cable, Found, Net6, Policy, Port, State};
use crate::model::validate::{IfName, NsName};
use ipnet::{IpNet, Ipv4Net};
use serde::Serialize;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Where a namespace came from. In JSON: `"origin": "nsnet"`, or
/// `"origin": "attached", "pid": 42`, or `"origin": "external"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "origin", rename_all = "lowercase")]
pub enum Origin {
    /// Created by nsnet.
    Nsnet,
    /// A name nsnet gave to the namespace of process `pid`.
    Attached { pid: u32 },
    /// Not nsnet's: shown, never changed.
    External,
}

impl Origin {
    /// The origin of namespace `name`, by nsnet's record.
    pub fn of(state: &State, name: &str) -> Origin {
        match state.namespaces.iter().find(|(n, _)| n.as_str() == name) {
            None => Origin::External,
            Some((_, entry)) => match entry.pid {
                Some(pid) => Origin::Attached { pid },
                None => Origin::Nsnet,
            },
        }
    }
}

/// `nsnet`, `attached` or `external`.
impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Origin::Nsnet => "nsnet",
            Origin::Attached { .. } => "attached",
            Origin::External => "external",
        })
    }
}

/// One namespace on a bridge, as the record has it.
#[derive(Clone, Debug, Serialize)]
pub struct PortView {
    pub namespace: NsName,
    pub ifname: IfName,
    pub host_ifname: IfName,
    pub address: Ipv4Addr,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address6: Option<Ipv6Addr>,
    /// The container runtime's attachment, for a port made through CNI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<Attachment>,
}

/// The ports of bridge `br`.
pub fn ports(br: &Bridge) -> Vec<PortView> {
    let view = |p: &Port| PortView {
        namespace: p.ns.clone(),
        ifname: p.ifname.clone(),
        host_ifname: p.host_ifname.clone(),
        address: p.address,
        address6: p.address6,
        runtime: p.runtime.clone(),
    };
    br.ports.iter().map(view).collect()
}

/// The address a port gives its namespace, with the bridge's prefix length.
pub fn port_address(br: &Bridge, port: &Port) -> IpNet {
    let net = Ipv4Net::new(port.address, br.subnet.prefix_len());
    IpNet::V4(net.expect("a subnet's prefix length"))
}

/// The address of end `index` (0: `a`, 1: `b`) of a cable with a subnet.
pub fn cable_address(cable: &Cable, index: usize) -> Option<IpNet> {
    cable_addresses(cable, index).into_iter().next()
}

/// Every address of end `index` (0: `a`, 1: `b`) of `cable`: IPv4, then
/// IPv6 (the subnet's first and second address, as `veth add` gives them).
pub fn cable_addresses(cable: &Cable, index: usize) -> Vec<IpNet> {
    let v4 = cable.subnet.map(|subnet| {
        let address = subnet.hosts().nth(index).expect("two hosts");
        let net = Ipv4Net::new(address, subnet.prefix_len()).expect("a subnet's prefix length");
        IpNet::V4(net)
    });
    let v6 = cable.subnet6.map(|subnet| {
        let address = crate::model::validate::nth6(subnet, index as u128 + 1);
        let net = ipnet::Ipv6Net::new(address, subnet.prefix_len()).expect("a prefix length");
        IpNet::V6(net)
    });
    v4.into_iter().chain(v6).collect()
}

/// A port of a namespace published on the host.
#[derive(Clone, Debug, Serialize)]
pub struct PublishedPort {
    /// `None` (`null`): every address of the host.
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub proto: Proto,
    pub namespace: NsName,
    /// The namespace's address on the bridge the port is forwarded to: its
    /// IPv4 one, or for a port published on an IPv6 host address only, its
    /// IPv6 one.
    pub address: IpAddr,
    /// Its IPv6 address, when the port is published in both families.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address6: Option<Ipv6Addr>,
    pub port: u16,
    pub bridge: IfName,
    /// The only sources that reach it (`--allow`); empty: any.
    pub allow: Vec<IpNet>,
}

impl PublishedPort {
    /// Where it is published: `*:8080/tcp`, `192.0.2.1:53/udp`,
    /// `[2001:db8::1]:80/tcp`.
    pub fn from(&self) -> String {
        let host = match self.host_ip {
            None => "*".to_string(),
            Some(IpAddr::V6(ip)) => format!("[{ip}]"),
            Some(ip) => ip.to_string(),
        };
        format!("{host}:{}/{}", self.host_port, self.proto)
    }

    /// Who may reach it: ` from 192.0.2.0/24, 198.51.100.7/32` with
    /// `--allow`; empty: anyone.
    pub fn sources(&self) -> String {
        if self.allow.is_empty() {
            return String::new();
        }
        let nets: Vec<String> = self.allow.iter().map(ToString::to_string).collect();
        format!(" from {}", nets.join(", "))
    }

    /// Where it leads: `10.0.0.2:80`, and `[fd00::2]:80` beside it in
    /// dual stack.
    pub fn to(&self) -> String {
        let at = |ip: IpAddr| match ip {
            IpAddr::V6(ip) => format!("[{ip}]:{}", self.port),
            ip => format!("{ip}:{}", self.port),
        };
        match self.address6 {
            Some(v6) => format!("{} {}", at(self.address), at(IpAddr::V6(v6))),
            None => at(self.address),
        }
    }
}

/// The published ports that `keep(namespace, bridge)` selects, by bridge;
/// each reaches its namespace at the namespace's port on that bridge.
pub fn published(state: &State, keep: impl Fn(&NsName, &IfName) -> bool) -> Vec<PublishedPort> {
    let mut out = Vec::new();
    for (name, bridge) in &state.bridges {
        for p in bridge.published.iter().filter(|p| keep(&p.ns, name)) {
            let Some(port) = bridge.ports.iter().find(|port| port.ns == p.ns) else {
                continue;
            };
            let v6 = port.address6.filter(|_| p.serves(Family::V6));
            let (address, address6) = match (p.serves(Family::V4), v6) {
                (true, v6) => (IpAddr::V4(port.address), v6),
                (false, Some(v6)) => (IpAddr::V6(v6), None),
                (false, None) => continue,
            };
            out.push(PublishedPort {
                host_ip: p.host_ip,
                host_port: p.host_port,
                proto: p.proto,
                namespace: p.ns.clone(),
                address,
                address6,
                port: p.port,
                bridge: name.clone(),
                allow: p.allow.clone(),
            });
        }
    }
    out
}

/// A namespace as `netns list` shows it: from the record, and whether the
/// host has it.
#[derive(Debug, Serialize)]
pub struct ListedNs {
    pub name: String,
    #[serde(flatten)]
    pub origin: Origin,
    /// Whether it exists on the host right now.
    pub present: bool,
    pub interfaces: Vec<ListedIface>,
}

/// An interface nsnet gave a namespace: a bridge port or a cable's end.
#[derive(Debug, Serialize)]
pub struct ListedIface {
    pub ifname: IfName,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<IpNet>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bridge: Option<IfName>,
    /// The other end of a cable: `host` or a namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
}

/// Every namespace the host has or the record names, by name.
pub fn listed(state: &State, host: &Host) -> Vec<ListedNs> {
    let mut names: Vec<String> = host.namespaces.iter().cloned().collect();
    names.extend(state.namespaces.keys().map(ToString::to_string));
    names.sort();
    names.dedup();
    let listed = |name: String| ListedNs {
        origin: Origin::of(state, &name),
        present: host.has_ns(&name),
        interfaces: listed_ifaces(state, &name),
        name,
    };
    names.into_iter().map(listed).collect()
}

fn listed_ifaces(state: &State, ns: &str) -> Vec<ListedIface> {
    let mut out = Vec::new();
    for (name, br) in &state.bridges {
        for port in br.ports.iter().filter(|p| p.ns.as_str() == ns) {
            out.push(ListedIface {
                ifname: port.ifname.clone(),
                address: Some(port_address(br, port)),
                bridge: Some(name.clone()),
                peer: None,
            });
        }
    }
    for cable in &state.cables {
        let ends = [
            (&cable.a, &cable.a_ifname, &cable.b, 0),
            (&cable.b, &cable.b_ifname, &cable.a, 1),
        ];
        for (end, ifname, peer, index) in ends {
            if end.ns() == Some(ns) {
                out.push(ListedIface {
                    ifname: ifname.clone(),
                    address: cable_address(cable, index),
                    bridge: None,
                    peer: Some(peer.to_string()),
                });
            }
        }
    }
    out
}

/// `nsnet status`: the record against the live kernel.
#[derive(Debug, Serialize)]
pub struct Status {
    pub bridges: Vec<BridgeStatus>,
    pub namespaces: Vec<NsStatus>,
    pub published: Vec<PublishedPort>,
    /// Where the host no longer matches nsnet's record, one sentence each.
    pub drift: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct BridgeStatus {
    pub name: String,
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    /// The IPv6 subnet and gateway, in dual stack.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<Net6>,
    pub present: bool,
    /// `null`: no NAT; otherwise the interface it is limited to, or `null`.
    pub nat: Option<NatStatus>,
    pub ports: Vec<PortView>,
    /// Its firewall policy (`nsnet firewall`), when it has one.
    #[serde(skip_serializing_if = "Policy::is_empty")]
    pub policy: Policy,
}

#[derive(Debug, Serialize)]
pub struct NatStatus {
    pub out: Option<IfName>,
}

#[derive(Debug, Serialize)]
pub struct NsStatus {
    pub name: String,
    #[serde(flatten)]
    pub origin: Origin,
    pub present: bool,
    pub interfaces: Vec<IfaceStatus>,
    pub routes: Vec<LiveRoute>,
}

#[derive(Debug, Serialize)]
pub struct IfaceStatus {
    pub ifname: String,
    pub up: bool,
    /// Its IPv4 addresses.
    pub addresses: Vec<IpNet>,
    /// For a veth: where its other end is.
    pub peer: Option<PeerStatus>,
}

#[derive(Debug, Serialize)]
pub struct PeerStatus {
    /// `host`, or the namespace's name.
    pub namespace: String,
    pub ifname: String,
    pub bridge: Option<String>,
    pub addresses: Vec<IpNet>,
}

impl From<Peer> for PeerStatus {
    fn from(peer: Peer) -> PeerStatus {
        PeerStatus {
            namespace: peer.ns.unwrap_or_else(|| "host".into()),
            ifname: peer.ifname,
            bridge: peer.bridge,
            addresses: peer.addresses,
        }
    }
}

/// Builds the status of `state` as `world` and `host` show it.
pub fn build(state: &State, world: &World, host: &Host) -> Status {
    let bridges = state.bridges.iter();
    let mut namespaces = namespaces(state, world);
    // A name the record holds that now stands for a namespace made by hand.
    for ns in &mut namespaces {
        let entry = state.namespaces.iter().find(|(n, _)| n.as_str() == ns.name);
        if entry.is_some_and(|(n, e)| host.namespace(n, e) == Found::Other) {
            ns.origin = Origin::External;
        }
    }
    Status {
        bridges: bridges.map(|(name, br)| bridge(name, br, world)).collect(),
        namespaces,
        published: published(state, |_, _| true),
        drift: drift::drift(state, world, host),
    }
}

fn bridge(name: &IfName, br: &Bridge, world: &World) -> BridgeStatus {
    BridgeStatus {
        name: name.to_string(),
        subnet: br.subnet,
        gateway: br.gateway,
        ipv6: br.ipv6,
        policy: br.policy.clone(),
        present: world.host_iface(name.as_str()).is_some(),
        nat: br.nat.as_ref().map(|n| NatStatus { out: n.out.clone() }),
        ports: ports(br),
    }
}

/// Every namespace the kernel has, then those of the record it has not, by
/// name.
fn namespaces(state: &State, world: &World) -> Vec<NsStatus> {
    let live = world.namespaces.iter();
    let mut out: Vec<NsStatus> = live
        .map(|(name, netns)| live_ns(state, world, name, netns))
        .collect();
    for name in state.namespaces.keys() {
        if !world.namespaces.contains_key(name.as_str()) {
            out.push(NsStatus {
                name: name.to_string(),
                origin: Origin::of(state, name.as_str()),
                present: false,
                interfaces: Vec::new(),
                routes: Vec::new(),
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn live_ns(state: &State, world: &World, name: &str, netns: &Netns) -> NsStatus {
    let iface = |i: &Iface| IfaceStatus {
        ifname: i.ifname.clone(),
        up: i.is_up(),
        addresses: i.addresses_shown(),
        peer: world.peer(Some(name), i).map(PeerStatus::from),
    };
    let ifaces = netns.ifaces.iter().filter(|i| i.ifname != "lo");
    NsStatus {
        name: name.to_string(),
        origin: Origin::of(state, name),
        present: true,
        interfaces: ifaces.map(iface).collect(),
        routes: netns.routes.clone(),
    }
}
