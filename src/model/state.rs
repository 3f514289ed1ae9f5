//! nsnet's record of what it created: namespaces, bridges and their ports,
//! cables. It lives in /run/nsnet (a tmpfs: it vanishes on reboot together
//! with everything it describes), is replaced atomically, and is only written
//! while holding the lock, so two nsnet processes never interleave changes.
//!
//! The record is what makes "never delete what nsnet did not create" hold:
//! teardown removes only what is written here.

use crate::model::ports::Proto;
use crate::model::rules::Family;
use crate::model::validate::{End, IfName, NsName};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Where nsnet keeps its record unless `NSNET_STATE_DIR` says otherwise.
pub const DEFAULT_DIR: &str = "/run/nsnet";

/// Everything nsnet has made and not yet removed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    #[serde(default)]
    pub namespaces: BTreeMap<NsName, Namespace>,
    #[serde(default)]
    pub bridges: BTreeMap<IfName, Bridge>,
    #[serde(default)]
    pub cables: Vec<Cable>,
    /// Routes added inside namespaces (`route add`), each through a gateway
    /// on one of nsnet's networks of that namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<NsRoute>,
    /// Whether nsnet made /etc/netns itself (removed with the last file).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub etc_netns_made: bool,
    /// Host settings nsnet changed, with the value each had before, so the
    /// last network that needs one can put it back.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub saved: BTreeMap<String, String>,
    /// One more with every plan that changed the record: how the journal
    /// tells whether its plan's record was saved without a copy of it (see
    /// `exec::journal`). 0 in a record no plan has saved.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub serial: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A route inside a namespace: to `to`, through gateway `via`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NsRoute {
    pub ns: NsName,
    pub to: Dest,
    pub via: IpAddr,
}

impl NsRoute {
    /// The `ip -n NS [-6] route VERB DEST via GW` command.
    pub fn cmd(&self, verb: &str) -> crate::plan::cmd::Cmd {
        let mut args = Vec::new();
        if self.via.is_ipv6() {
            args.push("-6".to_string());
        }
        args.extend([
            "route".to_string(),
            verb.to_string(),
            self.to.to_string(),
            "via".to_string(),
            self.via.to_string(),
        ]);
        crate::plan::cmd::Cmd::ip_in(Some(self.ns.as_str()), args)
    }
}

/// Where a route leads: everywhere else (`default`) or a network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Dest {
    Default,
    Net(IpNet),
}

impl Dest {
    /// Whether it can be reached through a gateway of `via`'s family.
    pub fn fits(&self, via: IpAddr) -> bool {
        match self {
            Dest::Default => true,
            Dest::Net(net) => net.addr().is_ipv4() == via.is_ipv4(),
        }
    }
}

impl std::str::FromStr for Dest {
    type Err = crate::model::validate::InputError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "default" => Ok(Dest::Default),
            // `0.0.0.0/0` and `::/0` are what `default` means.
            _ => crate::model::validate::destination(s).map(|net| match net.prefix_len() {
                0 => Dest::Default,
                _ => Dest::Net(net),
            }),
        }
    }
}

impl TryFrom<String> for Dest {
    type Error = crate::model::validate::InputError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Dest> for String {
    fn from(d: Dest) -> String {
        d.to_string()
    }
}

impl std::fmt::Display for Dest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dest::Default => f.write_str("default"),
            Dest::Net(net) => write!(f, "{net}"),
        }
    }
}

/// A namespace nsnet created or attached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Namespace {
    /// Set for `netns attach`: the process whose namespace this name points to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Asked for by name (`netns add`/`attach`), so it stays until `netns
    /// del`. Otherwise it was made for a bridge port or a cable and goes when
    /// the last of those goes.
    pub explicit: bool,
    /// Which namespace the name stood for when nsnet made it (`None` until
    /// the plan that makes it has run, or when it could not be read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stamp: Option<NsStamp>,
    /// Its name servers (`--dns`), written to /etc/netns/NS/resolv.conf.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<IpAddr>,
    /// Whether nsnet made /etc/netns/NS for that file (and removes it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dns_dir: bool,
}

impl Namespace {
    /// A namespace about to be made (`pid: None`) or attached.
    pub fn new(pid: Option<u32>, explicit: bool) -> Namespace {
        Namespace {
            pid,
            explicit,
            stamp: None,
            dns: Vec::new(),
            dns_dir: false,
        }
    }
}

/// What tells one namespace behind /run/netns/NAME from another of the same
/// name: the device and inode of its nsfs file, and the moment the kernel
/// made that inode (ctime, in nanoseconds). The inode number alone is not
/// enough: the kernel gives a new namespace the lowest free number, so a
/// namespace deleted and made again by hand often gets the old one back.
/// While /run/netns/NAME is mounted the inode is pinned and its time fixed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NsStamp {
    pub dev: u64,
    pub ino: u64,
    pub born: i64,
}

/// A bridge nsnet created, and the namespaces it connects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bridge {
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    /// The bridge's IPv6 subnet and gateway, in dual stack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<Net6>,
    #[serde(default)]
    pub ports: Vec<Port>,
    /// Outbound NAT for the bridge's subnet (`nat up`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nat: Option<Nat>,
    /// Ports of its namespaces published on the host (`publish add`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub published: Vec<Published>,
    /// What its namespaces may not reach, and the exceptions (`firewall`).
    #[serde(default, skip_serializing_if = "Policy::is_empty")]
    pub policy: Policy,
    /// The bridge's interface index on the host (see `Port::ifindex`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ifindex: Option<u32>,
    /// The CNI network whose first ADD made the bridge: it goes with that
    /// network's last attachment (DEL or GC), and `nsnet down` leaves it
    /// to the runtime while the runtime has containers on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
}

/// A bridge's firewall policy: destinations its namespaces cannot open
/// connections to (`deny`), and exceptions to that and to the isolation
/// between nsnet's bridges (`allow`), evaluated first. Only traffic leaving the bridge is
/// concerned: its namespaces always reach each other (a deny of 10.0.0.0/8
/// with the bridge in it, under br_netfilter, would cut them apart), and
/// replies are never stopped. Both kept sorted, each destination once.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<IpNet>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<Deny>,
}

impl Policy {
    pub fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }
}

/// A destination a bridge's namespaces cannot reach.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Deny {
    pub to: IpNet,
    /// Log each refused connection first (rate-limited, prefix `nsnet`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub log: bool,
}

/// An IPv6 subnet and the host's address in it, the namespaces' gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Net6 {
    pub subnet: Ipv6Net,
    pub gateway: Ipv6Addr,
}

/// Outbound NAT: the subnet is masqueraded on its way out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nat {
    /// Only through this interface; `None`: through any but the bridge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out: Option<IfName>,
    /// The subnet leaves through `out` via this gateway, by a routing table
    /// of its own (`--via`), whatever the host's own default route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<Via>,
}

/// Policy routing for a bridge's subnet: `ip rule`s at `priority` (the
/// main table without its default routes, so the subnet still reaches the
/// host's local networks) and `priority + 1` (table `table`, whose default
/// route goes via `gateway` through the NAT's `out`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Via {
    pub gateway: Ipv4Addr,
    pub table: u32,
    pub priority: u32,
}

/// A port of a namespace reachable through a port of the host.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Published {
    pub ns: NsName,
    /// Only this host address; `None`: every address of the host, in each
    /// family the namespace has an address in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub port: u16,
    pub proto: Proto,
    /// Only connections from these sources reach it (`--allow`), on every
    /// path; empty: from anywhere. Sorted, each once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<IpNet>,
}

impl Published {
    /// Whether it is published in `family` (given the namespace has an
    /// address in it): all of them, or the family of its one address, and
    /// with `--allow`, only where a source of that family is allowed.
    pub fn serves(&self, family: Family) -> bool {
        self.host_ip.is_none_or(|ip| Family::of(ip) == family)
            && (self.allow.is_empty() || self.allow.iter().any(|n| Family::of(n.addr()) == family))
    }

    /// The sources allowed in `family`; `None`: any.
    pub fn sources(&self, family: Family) -> Option<Vec<IpNet>> {
        (!self.allow.is_empty()).then(|| {
            self.allow
                .iter()
                .filter(|n| Family::of(n.addr()) == family)
                .copied()
                .collect()
        })
    }

    /// Whether the host may reach it over IPv4 loopback: it serves IPv4 on
    /// 127.0.0.1 (all addresses, or that one), from sources that include
    /// 127.0.0.0/8 (or any).
    pub fn from_loopback(&self) -> bool {
        let lo = IpNet::V4(Ipv4Net::new(Ipv4Addr::new(127, 0, 0, 0), 8).expect("a prefix length"));
        self.serves(Family::V4)
            && self.host_ip.is_none_or(|ip| ip.is_loopback())
            && self
                .sources(Family::V4)
                .is_none_or(|nets| nets.iter().any(|n| n.contains(&lo) || lo.contains(n)))
    }

    /// Whether the two claim the same host port: same protocol and port, and
    /// addresses that overlap (no address means all of them).
    pub fn clashes(&self, other: &Published) -> bool {
        self.proto == other.proto
            && self.host_port == other.host_port
            && (self.host_ip.is_none() || other.host_ip.is_none() || self.host_ip == other.host_ip)
    }
}

/// One namespace on a bridge, through a veth pair.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Port {
    pub ns: NsName,
    /// The veth end inside the namespace (`eth0`).
    pub ifname: IfName,
    /// The veth end on the host, enslaved to the bridge.
    pub host_ifname: IfName,
    pub address: Ipv4Addr,
    /// Its IPv6 address, when the bridge has an IPv6 subnet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address6: Option<Ipv6Addr>,
    /// Whether this port gave the namespace its default route: only the
    /// first port of a namespace does, as a namespace has one default route.
    pub default_route: bool,
    /// The host end's interface index: the kernel numbers the links of a
    /// namespace from a counter and does not hand an index out again while
    /// the counter has not wrapped, so a link of the same name made later by
    /// someone else has another one. `None` until the plan has run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ifindex: Option<u32>,
    /// Set for a container a runtime plugged in through CNI: the port is the
    /// runtime's, made by its ADD and removed by its DEL or GC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<Attachment>,
}

/// What a runtime attached through CNI: container `container` on network
/// `network`, its namespace at `netns` (the port's `ns` names it in
/// /run/netns). The port's `ifname` completes the CNI attachment key
/// (container id, interface).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub network: String,
    pub container: String,
    pub netns: String,
}

/// A veth pair straight between two ends (`veth add`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cable {
    #[serde(with = "end_text")]
    pub a: End,
    #[serde(with = "end_text")]
    pub b: End,
    pub a_ifname: IfName,
    pub b_ifname: IfName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<Ipv4Net>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet6: Option<Ipv6Net>,
    /// The interface index of each end, in its own namespace (the host's
    /// or a named one): see `Port::ifindex`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub a_index: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub b_index: Option<u32>,
}

impl Cable {
    /// The end nsnet deletes to remove the cable (deleting one end of a veth
    /// pair deletes both), with its name and recorded index: the host's end
    /// if the cable has one (the host's namespace never changes), else the
    /// first.
    pub fn cut_end(&self) -> (&End, &IfName, Option<u32>) {
        match self.b {
            End::Host => (&self.b, &self.b_ifname, self.b_index),
            End::Ns(_) => (&self.a, &self.a_ifname, self.a_index),
        }
    }

    /// The name of its end at `end`, if it has one there.
    pub fn ifname_at(&self, end: &End) -> Option<&IfName> {
        match end {
            e if *e == self.a => Some(&self.a_ifname),
            e if *e == self.b => Some(&self.b_ifname),
            _ => None,
        }
    }

    /// Whether this cable joins `x` and `y`, in either order.
    pub fn joins(&self, x: &End, y: &End) -> bool {
        (&self.a == x && &self.b == y) || (&self.a == y && &self.b == x)
    }

    pub fn touches(&self, ns: &NsName) -> bool {
        [&self.a, &self.b]
            .iter()
            .any(|e| e.ns() == Some(ns.as_str()))
    }
}

/// Identities read off the host: of the named namespace `name`, and of link
/// `ifname` in namespace `ns` (`None`: the host's).
pub trait Identities {
    fn namespace(&self, name: &NsName) -> Option<NsStamp>;
    fn link(&self, ns: Option<&str>, ifname: &str) -> Option<u32>;
}

/// What is behind a recorded name on the host now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Found {
    /// Nothing of that name.
    Gone,
    /// The very object nsnet made.
    Ours,
    /// Something else of the same name (made again by hand, or never
    /// nsnet's): nsnet neither deletes nor changes it.
    Other,
}

impl Found {
    /// From what the host has under the name and the recorded identity: an
    /// object whose identity nsnet never learnt is not taken for its own.
    pub fn of<T: PartialEq>(live: Option<T>, recorded: Option<T>) -> Found {
        match (live, recorded) {
            (None, _) => Found::Gone,
            (Some(live), Some(recorded)) if live == recorded => Found::Ours,
            (Some(_), _) => Found::Other,
        }
    }
}

/// What nsnet says of a recorded namespace or bridge whose name now stands
/// for something else (`what`: `namespace`, `bridge`), in status and when it
/// refuses to use it.
pub fn replaced(what: &str, name: &str) -> String {
    format!(
        "{what} `{name}` is not the {what} nsnet made (deleted and made again by hand?): nsnet leaves it alone; `nsnet forget {name}` drops it from the record"
    )
}

mod end_text {
    use crate::model::validate::End;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(end: &End, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(end)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<End, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl State {
    /// Every published port, of every bridge.
    pub fn published(&self) -> impl Iterator<Item = &Published> {
        self.bridges.values().flat_map(|b| &b.published)
    }

    /// What in the record nsnet could never have made, if anything: a bridge
    /// named `lo`, or a host-side veth name that is not the one nsnet derives
    /// for that port or cable (`nv-…`, `vc-…`). Such a record is damaged (a
    /// stale file, a hostile edit): acting on it could delete the host's own
    /// interfaces, so nothing runs.
    pub fn check(&self) -> Result<(), String> {
        for (name, bridge) in &self.bridges {
            if name.as_str() == "lo" {
                return Err("it names bridge `lo`, the loopback interface".into());
            }
            for p in &bridge.ports {
                let derived = crate::model::names::port(&p.ns, &p.ifname);
                if p.host_ifname != derived {
                    return Err(format!(
                        "its port of `{}` on `{name}` is `{}`, where nsnet would have made `{derived}`",
                        p.ns, p.host_ifname
                    ));
                }
            }
        }
        // A namespace's end may carry the name the user gave it (`NS:IF`);
        // the host's end never does: it is how nsnet knows its own.
        for c in &self.cables {
            let ends = [(&c.a, &c.a_ifname, &c.b), (&c.b, &c.b_ifname, &c.a)];
            for (end, ifname, peer) in ends {
                let derived = crate::model::names::cable(peer);
                if *end == End::Host && *ifname != derived {
                    return Err(format!(
                        "its cable between `{}` and `{}` has host end `{ifname}`, where nsnet would have made `{derived}`",
                        c.a, c.b
                    ));
                }
            }
        }
        Ok(())
    }

    /// Fills in the identity of every object that has none yet, as `found`
    /// reads it off the host after the plan that made it has run. What
    /// `found` cannot read (gone already) stays unknown, and an unknown
    /// object is never taken for nsnet's.
    pub fn stamp(&mut self, found: &dyn Identities) {
        for (name, ns) in &mut self.namespaces {
            if ns.stamp.is_none() {
                ns.stamp = found.namespace(name);
            }
        }
        for (name, bridge) in &mut self.bridges {
            if bridge.ifindex.is_none() {
                bridge.ifindex = found.link(None, name.as_str());
            }
            for p in bridge.ports.iter_mut().filter(|p| p.ifindex.is_none()) {
                p.ifindex = found.link(None, p.host_ifname.as_str());
            }
        }
        for c in &mut self.cables {
            if c.a_index.is_none() {
                c.a_index = found.link(c.a.ns(), c.a_ifname.as_str());
            }
            if c.b_index.is_none() {
                c.b_index = found.link(c.b.ns(), c.b_ifname.as_str());
            }
        }
    }

    /// Forgets the identity of the namespaces and links of these names
    /// (links by namespace, `None` for the host's), and of every link inside
    /// those namespaces: when a plan that deleted them is rolled back, its
    /// undo makes them again, under new identities, which `stamp` then reads.
    pub fn unstamp(
        &mut self,
        namespaces: &BTreeSet<String>,
        links: &BTreeSet<(Option<String>, String)>,
    ) {
        let gone = |ns: Option<&str>, name: &str| {
            ns.is_some_and(|n| namespaces.contains(n))
                || links.contains(&(ns.map(String::from), name.to_string()))
        };
        for (name, ns) in &mut self.namespaces {
            if namespaces.contains(name.as_str()) {
                ns.stamp = None;
            }
        }
        for (name, bridge) in &mut self.bridges {
            if gone(None, name.as_str()) {
                bridge.ifindex = None;
            }
            for p in &mut bridge.ports {
                if gone(None, p.host_ifname.as_str()) {
                    p.ifindex = None;
                }
            }
        }
        for c in &mut self.cables {
            if gone(c.a.ns(), c.a_ifname.as_str()) || gone(c.b.ns(), c.b_ifname.as_str()) {
                (c.a_index, c.b_index) = (None, None);
            }
        }
    }

    /// Whether the two records name the same objects, whatever identities
    /// they know for them (a plan's record before and after `stamp`).
    pub fn same_objects(&self, other: &State) -> bool {
        let strip = |s: &State| {
            let mut s = s.clone();
            let everything = s.namespaces.keys().map(|n| n.to_string()).collect();
            let links = s.links().map(|l| (None, l.to_string())).collect();
            s.unstamp(&everything, &links);
            s
        };
        strip(self) == strip(other)
    }

    /// What `stamp` must read: (namespace, interface) pairs of links and the
    /// named namespaces that have no identity yet.
    pub fn unstamped(&self) -> (Vec<NsName>, Vec<(Option<String>, IfName)>) {
        let namespaces = self.namespaces.iter().filter(|(_, n)| n.stamp.is_none());
        let mut links = Vec::new();
        for (name, bridge) in &self.bridges {
            if bridge.ifindex.is_none() {
                links.push((None, name.clone()));
            }
            let ports = bridge.ports.iter().filter(|p| p.ifindex.is_none());
            links.extend(ports.map(|p| (None, p.host_ifname.clone())));
        }
        for c in &self.cables {
            if c.a_index.is_none() {
                links.push((c.a.ns().map(String::from), c.a_ifname.clone()));
            }
            if c.b_index.is_none() {
                links.push((c.b.ns().map(String::from), c.b_ifname.clone()));
            }
        }
        (namespaces.map(|(n, _)| n.clone()).collect(), links)
    }

    /// The names of the host's interfaces the record says nsnet made:
    /// bridges, the host ends of ports and of cables.
    pub fn links(&self) -> impl Iterator<Item = &IfName> {
        let bridges = self.bridges.iter();
        let bridges = bridges
            .flat_map(|(n, b)| std::iter::once(n).chain(b.ports.iter().map(|p| &p.host_ifname)));
        let cables = self.cables.iter().flat_map(|c| {
            let a = c.a.ns().is_none().then_some(&c.a_ifname);
            let b = c.b.ns().is_none().then_some(&c.b_ifname);
            a.into_iter().chain(b)
        });
        bridges.chain(cables)
    }

    /// The networks nsnet gave namespace `ns`, with the interface on each:
    /// its bridges' subnets and its cables' (both families).
    pub fn networks_of(&self, ns: &NsName) -> Vec<(IpNet, &IfName)> {
        let mut out = Vec::new();
        for bridge in self.bridges.values() {
            for port in bridge.ports.iter().filter(|p| &p.ns == ns) {
                out.push((IpNet::V4(bridge.subnet), &port.ifname));
                if let Some(net6) = bridge.ipv6 {
                    out.push((IpNet::V6(net6.subnet), &port.ifname));
                }
            }
        }
        for c in &self.cables {
            for (end, ifname) in [(&c.a, &c.a_ifname), (&c.b, &c.b_ifname)] {
                if end.ns() == Some(ns.as_str()) {
                    out.extend(c.subnet.map(|n| (IpNet::V4(n), ifname)));
                    out.extend(c.subnet6.map(|n| (IpNet::V6(n), ifname)));
                }
            }
        }
        out
    }

    /// How many ports and cables use namespace `ns`.
    pub fn users(&self, ns: &NsName) -> usize {
        let ports = self.bridges.values().flat_map(|b| &b.ports);
        ports.filter(|p| &p.ns == ns).count() + self.cables.iter().filter(|c| c.touches(ns)).count()
    }

    /// The bridge and port through which `ns` has interface `ifname`, if any.
    pub fn port_named(&self, ns: &NsName, ifname: &IfName) -> Option<(&IfName, &Port)> {
        self.bridges.iter().find_map(|(name, bridge)| {
            let port = bridge
                .ports
                .iter()
                .find(|p| &p.ns == ns && &p.ifname == ifname)?;
            Some((name, port))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_through_json() {
        let mut state = State::default();
        let red: NsName = "red".parse().unwrap();
        state
            .namespaces
            .insert(red.clone(), Namespace::new(None, false));
        state.cables.push(Cable {
            a: End::Host,
            b: End::Ns(red.clone()),
            a_ifname: "vc-red".parse().unwrap(),
            b_ifname: "vc-host".parse().unwrap(),
            subnet: Some("10.0.0.0/24".parse().unwrap()),
            subnet6: None,
            a_index: None,
            b_index: None,
        });
        let text = serde_json::to_string(&state).unwrap();
        assert!(text.contains(r#""a":"host""#), "{text}");
        assert_eq!(serde_json::from_str::<State>(&text).unwrap(), state);
        assert_eq!(state.users(&red), 1);
    }

    #[test]
    fn a_record_naming_what_nsnet_never_makes_is_damaged() {
        let port = |host: &str| {
            format!(
                r#"{{"bridges":{{"nsnet0":{{"subnet":"10.200.0.0/24","gateway":"10.200.0.1","ports":[
                {{"ns":"red","ifname":"eth0","host_ifname":"{host}","address":"10.200.0.2","default_route":true}}]}}}}}}"#
            )
        };
        let ok: State = serde_json::from_str(&port("nv-red")).unwrap();
        assert_eq!(ok.check(), Ok(()));
        let uplink: State = serde_json::from_str(&port("eth0")).unwrap();
        assert_eq!(
            uplink.check(),
            Err(
                "its port of `red` on `nsnet0` is `eth0`, where nsnet would have made `nv-red`"
                    .into()
            )
        );
        let lo: State = serde_json::from_str(
            r#"{"bridges":{"lo":{"subnet":"10.200.0.0/24","gateway":"10.200.0.1"}}}"#,
        )
        .unwrap();
        assert_eq!(
            lo.check(),
            Err("it names bridge `lo`, the loopback interface".into())
        );
        let cable: State = serde_json::from_str(
            r#"{"cables":[{"a":"host","b":"red","a_ifname":"eth0","b_ifname":"vc-host"}]}"#,
        )
        .unwrap();
        assert!(
            cable
                .check()
                .unwrap_err()
                .contains("where nsnet would have made `vc-red`")
        );
    }

    #[test]
    fn a_record_with_a_bad_name_is_rejected() {
        let text = r#"{"namespaces":{"a b":{"explicit":true}}}"#;
        assert!(serde_json::from_str::<State>(text).is_err());
    }
}
