//! Reading every namespace's interfaces, addresses and routes from the live
//! kernel (one `ip -j -batch -` per namespace, deserialised, never parsed by
//! hand), and working out where each veth's other end is: the kernel reports
//! a peer as (namespace id, ifindex), and the ids are local to the namespace
//! that reports them. Addresses are `IpNet`s of either family.

use crate::exec::runner::Runner;
use crate::host::identity::Roots;
use crate::host::netlink::{self, Kernel};
use crate::model::state::State;
use crate::plan::cmd::{Cmd, Tool};
use anyhow::{Context, Result};
use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

/// One interface as `ip -j addr show` reports it.
#[derive(Clone, Debug, Deserialize)]
pub struct Iface {
    pub ifindex: u32,
    pub ifname: String,
    #[serde(default)]
    pub link_index: Option<u32>,
    #[serde(default)]
    pub link_netnsid: Option<i32>,
    #[serde(default)]
    pub master: Option<String>,
    #[serde(default)]
    pub flags: Vec<String>,
    /// Its addresses with their prefix length, IPv4 and IPv6, as listed.
    #[serde(default, rename = "addr_info", deserialize_with = "addresses")]
    pub addresses: Vec<IpNet>,
}

impl Iface {
    /// Its IPv4 addresses, in the kernel's order.
    pub fn ipv4_addresses(&self) -> Vec<IpNet> {
        let v4 = self.addresses.iter().filter(|a| matches!(a, IpNet::V4(_)));
        v4.copied().collect()
    }

    /// Its addresses that mean something beyond the link: IPv4, then IPv6
    /// but link-local (fe80::/10, which every IPv6 interface has).
    pub fn addresses_shown(&self) -> Vec<IpNet> {
        let v6 = self.addresses.iter().filter(|a| match a {
            IpNet::V6(n) => n.addr().segments()[0] & 0xffc0 != 0xfe80,
            IpNet::V4(_) => false,
        });
        let mut shown = self.ipv4_addresses();
        shown.extend(v6.copied());
        shown
    }

    /// Whether it has address `net` (address and prefix length).
    pub fn has_address(&self, net: IpNet) -> bool {
        self.addresses.contains(&net)
    }

    pub fn is_up(&self) -> bool {
        self.flags.iter().any(|f| f == "UP")
    }
}

/// `addr_info` entries as `local/prefixlen`; entries without a local address
/// are skipped.
fn addresses<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    #[derive(Deserialize)]
    struct AddrInfo {
        local: Option<IpAddr>,
        prefixlen: u8,
    }
    let infos = Vec::<AddrInfo>::deserialize(d)?;
    let net = |a: AddrInfo| Some(IpNet::new(a.local?, a.prefixlen));
    let nets = infos.into_iter().filter_map(net);
    nets.collect::<Result<_, _>>()
        .map_err(serde::de::Error::custom)
}

/// One route of a namespace, shown as `ip route` would print its start:
/// `default via 10.200.0.1 dev eth0`, `10.200.0.0/24 dev eth0`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct LiveRoute {
    /// `default`, a prefix, or an address (a host route).
    pub dst: String,
    #[serde(default)]
    pub gateway: Option<IpAddr>,
    #[serde(default)]
    pub dev: Option<String>,
    /// Set for a route outside the main table.
    #[serde(default, skip_serializing)]
    pub table: Option<String>,
    /// `local`, `multicast`, …; `None` for a plain (unicast) route.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

impl LiveRoute {
    /// A route `ip route` would list for the main table: unicast, in the
    /// main table, not to link-local or multicast space.
    fn is_shown(&self) -> bool {
        let link_local = self.dst.starts_with("fe80:") || self.dst.starts_with("ff");
        self.table.is_none() && self.kind.is_none() && !link_local
    }
}

impl fmt::Display for LiveRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.dst)?;
        if let Some(gw) = self.gateway {
            write!(f, " via {gw}")?;
        }
        if let Some(dev) = &self.dev {
            write!(f, " dev {dev}")?;
        }
        Ok(())
    }
}

/// As its text: scripts read `routes[]` as strings.
impl Serialize for LiveRoute {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[derive(Deserialize)]
struct JsonNsid {
    nsid: i32,
    name: Option<String>,
}

#[derive(Deserialize)]
struct JsonNetns {
    name: String,
    id: Option<i32>,
}

/// One network namespace: the host's (`name` None) or a named one.
#[derive(Clone, Debug, Default)]
pub struct Netns {
    pub ifaces: Vec<Iface>,
    pub routes: Vec<LiveRoute>,
    /// Names of the namespaces this one knows by id.
    pub ids: BTreeMap<i32, String>,
}

/// The host and every named namespace that could be read.
#[derive(Clone, Debug, Default)]
pub struct World {
    pub host: Netns,
    pub namespaces: BTreeMap<String, Netns>,
    /// Of the processes the record attached names to, those that have exited.
    pub exited: BTreeSet<u32>,
}

/// Where a veth's other end is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// `None` for the host's namespace.
    pub ns: Option<String>,
    pub ifname: String,
    /// The bridge the other end is plugged into, if any.
    pub bridge: Option<String>,
    /// Its IPv4 addresses.
    pub addresses: Vec<IpNet>,
}

/// What one namespace is asked, in one `ip -j [-n NS] -batch -`: each line
/// prints one JSON array (`[]` when empty), in this order. `route show`
/// lists IPv4 routes unless told otherwise. The host names the namespaces it
/// knows by id with `netns list`, a named namespace with `netns list-id`.
pub fn questions(ns: Option<&str>) -> Cmd {
    let mut args = vec!["-j".to_string()];
    let ids = match ns {
        Some(ns) => {
            args.extend(["-n".to_string(), ns.to_string()]);
            "netns list-id"
        }
        None => "netns list",
    };
    args.extend(["-batch".to_string(), "-".to_string()]);
    Cmd {
        stdin: Some(format!(
            "addr show\nroute show\n{ids}\nroute show table all root ::/0\n"
        )),
        ..Cmd::new(Tool::Ip, args)
    }
}

/// The JSON documents of a batch's output, one per question, in order.
struct Answers<'a> {
    cmd: &'a Cmd,
    values: serde_json::StreamDeserializer<'a, serde_json::de::StrRead<'a>, serde_json::Value>,
}

impl Answers<'_> {
    fn next<T: for<'de> Deserialize<'de>>(&mut self, what: &str) -> Result<T> {
        let context = || format!("cannot read the output of `{}` ({what})", self.cmd);
        let value = self.values.next().transpose().with_context(context)?;
        let value = value.with_context(|| format!("{}: it printed nothing", context()))?;
        serde_json::from_value(value).with_context(context)
    }
}

/// The interfaces and routes of named namespace `ns`.
pub fn read_netns(runner: &mut dyn Runner, roots: &Roots, ns: &str) -> Result<Netns> {
    read(runner, roots, Some(ns))
}

fn read(runner: &mut dyn Runner, roots: &Roots, ns: Option<&str>) -> Result<Netns> {
    if roots.kernel {
        return read_kernel(roots, ns);
    }
    let cmd = questions(ns);
    let text = runner.run(&cmd)?;
    let mut answers = Answers {
        cmd: &cmd,
        values: serde_json::Deserializer::from_str(&text).into_iter(),
    };
    let ifaces: Vec<Iface> = answers.next("addr show")?;
    let routes: Vec<LiveRoute> = answers.next("route show")?;
    let ids = match ns {
        Some(_) => {
            let ids: Vec<JsonNsid> = answers.next("netns list-id")?;
            let id = |i: JsonNsid| Some((i.nsid, i.name?));
            ids.into_iter().filter_map(id).collect()
        }
        None => {
            let named: Vec<JsonNetns> = answers.next("netns list")?;
            let id = |n: JsonNetns| Some((n.id?, n.name));
            named.into_iter().filter_map(id).collect()
        }
    };
    // IPv6 routes: `root ::/0` selects the family, which a batch line
    // cannot with `-6`. Absent from captures made before they were asked.
    let mut routes = routes;
    if let Some(Ok(value)) = answers.values.next() {
        let routes6: Vec<LiveRoute> = serde_json::from_value(value)
            .with_context(|| format!("cannot read the IPv6 routes of `{}`", answers.cmd))?;
        routes.extend(routes6.into_iter().filter(LiveRoute::is_shown));
    }
    Ok(Netns {
        ifaces,
        routes,
        ids,
    })
}

/// `read_kernel` of each of `names`, a few at a time: each read enters a
/// namespace and waits on a handful of dumps, and a status of a thousand
/// namespaces would otherwise wait on each in turn. A namespace that cannot
/// be read (gone since it was listed) is left out.
fn read_kernel_each(roots: &Roots, names: &[String]) -> BTreeMap<String, Netns> {
    const AT_ONCE: usize = 4;
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(AT_ONCE));
    let share = names.len().div_ceil(workers).max(1);
    std::thread::scope(|s| {
        let reading: Vec<_> = names
            .chunks(share)
            .map(|part| {
                s.spawn(move || {
                    let read =
                        |name: &String| Some((name.clone(), read_kernel(roots, Some(name)).ok()?));
                    part.iter().filter_map(read).collect::<Vec<_>>()
                })
            })
            .collect();
        // A reader that panicked has read nothing to show.
        reading
            .into_iter()
            .flat_map(|r| r.join().unwrap_or_default())
            .collect()
    })
}

/// `read` over netlink: the same answers as the `ip -j` batch, in-process.
fn read_kernel(roots: &Roots, ns: Option<&str>) -> Result<Netns> {
    let mut kernel = match ns {
        Some(name) => Kernel::inside(&roots.netns.join(name))?,
        None => Kernel::here()?,
    };
    let links = kernel.links_and_addresses()?;
    let names = netlink::names(&links);
    let mut routes: Vec<LiveRoute> = Vec::new();
    let families: &[bool] = match roots.ipv6() {
        true => &[false, true],
        false => &[false],
    };
    for &v6 in families {
        for r in kernel.routes(v6, &|i| names.get(&i).cloned())? {
            let route = LiveRoute {
                dst: r.dst_text(),
                gateway: r.gateway,
                table: r.table_name(),
                kind: r.kind_name(),
                dev: r.dev,
            };
            // `ip route show`: the main table; its IPv6 routes as `is_shown`.
            if route.table.is_none() && (!v6 || route.is_shown()) {
                routes.push(route);
            }
        }
    }
    let own = roots.proc.join("self/ns/net");
    let mut ids = BTreeMap::new();
    match ns {
        // `netns list`: the id the host knows each named namespace by.
        None => {
            for name in roots.namespaces()? {
                if let Ok(Some(id)) = kernel.nsid_of(&roots.netns.join(&name)) {
                    ids.insert(id, name);
                }
            }
        }
        // The names of the ids its cables name, but the host's (which has
        // none): looked up only for a cable to another named namespace.
        Some(_) => {
            let host = kernel.nsid_of(&own).ok().flatten();
            let mut unknown: BTreeSet<i32> = links
                .iter()
                .filter_map(|l| l.link_netnsid)
                .filter(|id| Some(*id) != host)
                .collect();
            // Most namespaces have no such cable: /run/netns, which names
            // every namespace, is listed only for one that has.
            let names = match unknown.is_empty() {
                true => BTreeSet::new(),
                false => roots.namespaces()?,
            };
            for name in names {
                if unknown.is_empty() {
                    break;
                }
                if let Ok(Some(id)) = kernel.nsid_of(&roots.netns.join(&name))
                    && unknown.remove(&id)
                {
                    ids.insert(id, name);
                }
            }
        }
    }
    let ifaces = links
        .into_iter()
        .map(|l| Iface {
            ifindex: l.ifindex,
            // As `ip` shows it: a peer by index only in another namespace.
            link_index: l.link_index.filter(|_| l.link_netnsid.is_some()),
            link_netnsid: l.link_netnsid,
            master: l.master,
            flags: match l.up {
                true => vec!["UP".to_string()],
                false => Vec::new(),
            },
            addresses: l.addresses,
            ifname: l.ifname,
        })
        .collect();
    Ok(Netns {
        ifaces,
        routes,
        ids,
    })
}

/// Reads the host and each of `names`, and which of the processes `state`
/// attached names to have exited; a namespace that cannot be read (gone
/// since it was listed) is left out.
pub fn read_world(runner: &mut dyn Runner, names: &[String], state: &State) -> Result<World> {
    read_world_in(runner, &Roots::system(), names, state)
}

/// `read_world`, with the filesystem read under `roots`.
pub fn read_world_in(
    runner: &mut dyn Runner,
    roots: &Roots,
    names: &[String],
    state: &State,
) -> Result<World> {
    let host = read(runner, roots, None)?;
    let mut namespaces = BTreeMap::new();
    if roots.kernel {
        namespaces = read_kernel_each(roots, names);
    } else {
        for name in names {
            if let Ok(ns) = read(runner, roots, Some(name)) {
                namespaces.insert(name.clone(), ns);
            }
        }
    }
    let exited = roots.exited(state.namespaces.values().filter_map(|e| e.pid));
    Ok(World {
        host,
        namespaces,
        exited,
    })
}

impl World {
    /// The interfaces of namespace `ns` (`None`: the host), as read.
    pub fn netns(&self, ns: Option<&str>) -> Option<&Netns> {
        match ns {
            None => Some(&self.host),
            Some(name) => self.namespaces.get(name),
        }
    }

    /// The interface `ifname` of the host.
    pub fn host_iface(&self, ifname: &str) -> Option<&Iface> {
        self.host.ifaces.iter().find(|i| i.ifname == ifname)
    }

    /// The other end of veth `iface`, which lives in `ns` (`None`: the host).
    pub fn peer(&self, ns: Option<&str>, iface: &Iface) -> Option<Peer> {
        let index = iface.link_index?;
        let here = self.netns(ns)?;
        // Where the kernel says the peer is, as a name; an id without a name
        // seen from a named namespace is (usually) the host's, checked below.
        let there: Option<String> = match iface.link_netnsid {
            None => ns.map(str::to_string),
            Some(id) => here.ids.get(&id).cloned(),
        };
        let netns = self.netns(there.as_deref())?;
        let other = netns.ifaces.iter().find(|i| {
            i.ifindex == index && self.points_back(there.as_deref(), i, ns, iface.ifindex)
        })?;
        Some(Peer {
            ns: there,
            ifname: other.ifname.clone(),
            bridge: other.master.clone(),
            addresses: other.addresses_shown(),
        })
    }

    /// Whether `iface` (in `ns`) names `(back_ns, back_index)` as its peer.
    fn points_back(
        &self,
        ns: Option<&str>,
        iface: &Iface,
        back_ns: Option<&str>,
        back_index: u32,
    ) -> bool {
        if iface.link_index != Some(back_index) {
            return false;
        }
        let Some(here) = self.netns(ns) else {
            return false;
        };
        match (iface.link_netnsid, back_ns) {
            (None, _) => ns == back_ns,
            (Some(id), Some(name)) => here.ids.get(&id).map(String::as_str) == Some(name),
            // The host has no name: an id with no name, seen from a named namespace.
            (Some(id), None) => ns.is_some() && !here.ids.contains_key(&id),
        }
    }
}
