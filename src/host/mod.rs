//! Reading the live host into values the rest of nsnet takes as input: `Host`
//! (what builders and doctor see: the host's links and IPv4 routes from
//! `ip -j`, the named namespaces, sysctls and, on request, the firewall and
//! which processes run where) from `observe`, and in `live` every namespace's
//! interfaces, addresses and routes for `status`. Builders take these values
//! and never read the system themselves.
//!
//! Tools are run only through a `Runner`, and the filesystem is read only
//! through `identity::Roots`, so all of it runs on captured fixtures in tests.
//! JSON from `ip -j` is deserialised, never parsed by hand; `iptables` has
//! no JSON, so `iptables` parses `iptables-save` text.

pub mod asked;
pub mod identity;
pub mod iptables;
pub mod links;
pub mod live;
pub mod netlink;
pub mod nsstamps;
pub mod reader;
pub mod routes6;
pub mod sockets;
pub mod stamps;
pub mod sysctls;

#[cfg(test)]
pub mod fixture;
#[cfg(test)]
mod tests;

pub use identity::{NETNS_DIR, NsId, Roots, netns_of_name, netns_of_pid, own_netns};
pub use iptables::Firewall;
pub use links::Links;
pub use nsstamps::NsStamps;
pub use routes6::{Routes6, V6};
pub use sysctls::Sysctls;

use crate::exec::runner::Runner;
use crate::model::rules::Family;
use crate::model::state::{Found, Namespace};
use crate::model::validate::NsName;
use anyhow::Result;
use ipnet::Ipv4Net;
use reader::{JsonLink, JsonRoute, Reader};
use std::collections::{BTreeMap, BTreeSet};

/// What the host looks like right now, as far as builders need to know.
#[derive(Clone, Debug, Default)]
pub struct Host {
    /// Named network namespaces.
    pub namespaces: BTreeSet<String>,
    /// Their stamps (see `NsStamp`), each read as it is asked for.
    pub ns_stamps: NsStamps,
    /// Interface indexes of links inside named namespaces that the record
    /// names (the namespace ends of cables), by (namespace, interface).
    pub ns_links: BTreeMap<(String, String), u32>,
    /// The interfaces the host's default routes leave through.
    pub uplinks: BTreeSet<String>,
    /// Whether the kernel has IPv6 (not booted with `ipv6.disable=1`).
    pub ipv6: bool,
    /// IPv6 routes: destinations, the host's own addresses, tables (read
    /// when first asked, by a command that changes the host).
    pub routes6: Routes6,
    /// Interfaces in the host's namespace, by name (all read, or each as asked).
    pub links: Links,
    /// IPv4 destinations routed in any table, but the default route.
    pub routes: Vec<Route>,
    /// Processes running inside each named namespace (filled on request).
    pub pids: BTreeMap<String, Vec<u32>>,
    /// The iptables rules (filled on request).
    pub firewall: Option<Firewall>,
    /// The ip6tables rules (filled on request, on a host with IPv6).
    pub firewall6: Option<Firewall>,
    /// The sysctls nsnet may change, read as they are asked for.
    pub sysctls: Sysctls,
    /// Listening TCP and bound UDP sockets of the host (filled on request).
    pub listeners: Vec<sockets::Listener>,
    /// What could not be read, in a best-effort observation.
    pub warnings: Vec<String>,
    /// Interfaces and routes of the namespaces `Wants::inside` names, those
    /// that exist.
    pub inside: BTreeMap<String, live::Netns>,
    /// /etc/netns and the `resolv.conf` files in it.
    pub etc_netns: identity::EtcNetns,
    /// Routing tables other than main that hold IPv4 routes (see
    /// `has_table` for either family).
    pub tables: BTreeSet<u32>,
    /// The tables IPv4 rules look up (when the rules are read).
    pub rule_tables: BTreeSet<u32>,
    /// IPv4 rules (filled on request): (priority, `from` as a CIDR or `all`).
    pub rules: Vec<(u32, String)>,
}

/// What to read besides namespaces, links, routes and sysctls.
#[derive(Clone, Copy, Debug, Default)]
pub struct Wants<'a> {
    /// Namespaces nsnet did not make whose interfaces and routes a command
    /// must know (one `ip -n` each), those that exist.
    pub inside: &'a [NsName],
    /// Which processes run in which namespace (a pass over /proc).
    pub pids: bool,
    /// The iptables rules (one `iptables-save`).
    pub firewall: bool,
    /// The ip6tables rules too (one `ip6tables-save`, if the host has IPv6).
    pub firewall6: bool,
    /// The host's listening sockets and who holds them (/proc/net, /proc).
    pub sockets: bool,
    /// For a dry run: what cannot be read (the rules, without root) is taken
    /// as empty, with a warning, instead of failing.
    pub best_effort: bool,
    /// The IPv4 `ip rule`s (one `ip rule show`).
    pub rules: bool,
    /// Interfaces read one at a time, those a command asks about, rather
    /// than all at once (from the kernel only; see `Links`).
    pub by_name: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub ifindex: u32,
    /// `bridge`, `veth`, …; `None` for plain devices.
    pub kind: Option<String>,
    pub master: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub dst: Ipv4Net,
    pub dev: Option<String>,
    /// A `local` route: `dst` is an address of this host.
    pub local: bool,
}

impl Host {
    /// Whether routing table `table` holds routes of either family.
    pub fn has_table(&self, table: u32) -> bool {
        self.tables.contains(&table) || self.routes6.get().tables.contains(&table)
    }

    /// Why part of the host could not be read when a builder asked, if it
    /// could not: a plan built on that answer must not run.
    pub fn unread(&self) -> Option<String> {
        self.links.failure().or_else(|| self.routes6.failure())
    }

    pub fn has_ns(&self, name: &str) -> bool {
        self.namespaces.contains(name)
    }

    /// Whether `addr` is an address of this host (loopback included).
    pub fn is_local(&self, addr: std::net::IpAddr) -> bool {
        match addr {
            std::net::IpAddr::V4(a) => {
                a.is_loopback() || self.routes.iter().any(|r| r.local && r.dst.contains(&a))
            }
            std::net::IpAddr::V6(a) => a.is_loopback() || self.routes6.get().local.contains(&a),
        }
    }

    /// What is behind namespace name `name` against the record's `entry`.
    pub fn namespace(&self, name: &NsName, entry: &Namespace) -> Found {
        let live = self
            .has_ns(name.as_str())
            .then(|| self.ns_stamps.get(name.as_str()));
        Found::of(live, Some(entry.stamp))
    }

    /// What is behind host interface name `name` against `ifindex`.
    pub fn link(&self, name: &str, ifindex: Option<u32>) -> Found {
        let live = self.links.get(name).map(|l| Some(l.ifindex));
        Found::of(live, Some(ifindex))
    }

    /// What is behind interface `ifname` of namespace `ns` (`None`: the
    /// host) against `ifindex`. A namespace's links are known only as far
    /// as `read_cable_ends` read them.
    pub fn link_in(&self, ns: Option<&str>, ifname: &str, ifindex: Option<u32>) -> Found {
        let Some(ns) = ns else {
            return self.link(ifname, ifindex);
        };
        let key = (ns.to_string(), ifname.to_string());
        let live = self.ns_links.get(&key).map(|i| Some(*i));
        Found::of(live, Some(ifindex))
    }

    /// Processes inside namespace `name`, as far as they could be seen.
    pub fn pids_in(&self, name: &str) -> &[u32] {
        self.pids.get(name).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// Reads namespaces, links, routes and the sysctls nsnet may change, and
/// what else `wants` asks for, from the real host.
pub fn observe(runner: &mut dyn Runner, wants: Wants) -> Result<Host> {
    observe_in(runner, &Roots::system(), wants)
}

/// `observe`, with the filesystem read under `roots`.
pub fn observe_in(runner: &mut dyn Runner, roots: &Roots, wants: Wants) -> Result<Host> {
    let namespaces = roots.namespaces()?;
    let ns_stamps = NsStamps::under(roots);
    let mut reader = Reader::new(roots)?;
    let links = match (wants.by_name, roots.kernel) {
        (true, true) => Links::asking(netlink::Kernel::here()?),
        _ => Links::from(read_links(runner, &mut reader)?),
    };
    let (routes, uplinks, tables) = read_routes(runner, &mut reader, &links)?;
    let (rules, rule_tables) = match wants.rules {
        true => read_rules(runner, &mut reader)?,
        false => (Vec::new(), BTreeSet::new()),
    };
    let ipv6 = roots.ipv6();
    let routes6 = match (ipv6, wants.by_name && roots.kernel) {
        (false, _) => Routes6::default(),
        (true, true) => Routes6::asking(),
        // Only destinations are needed: no interface is named.
        (true, false) => Routes6::from(V6::of(&reader.routes(runner, true, &|_| None)?)),
    };
    let pids = match wants.pids {
        true => roots.pids_by_namespace(&namespaces),
        false => BTreeMap::new(),
    };
    let mut warnings = Vec::new();
    let firewall = match wants.firewall {
        false => None,
        true => Some(read_firewall(
            runner,
            Family::V4,
            wants.best_effort,
            &mut warnings,
        )?),
    };
    let firewall6 = match wants.firewall6 && ipv6 {
        false => None,
        true => Some(read_firewall(
            runner,
            Family::V6,
            wants.best_effort,
            &mut warnings,
        )?),
    };
    let sysctls = Sysctls::under(roots);
    let listeners = match wants.sockets {
        true => roots.listeners(),
        false => Vec::new(),
    };
    let mut inside = BTreeMap::new();
    for ns in wants
        .inside
        .iter()
        .filter(|n| namespaces.contains(n.as_str()))
    {
        inside.insert(
            ns.to_string(),
            live::read_netns(runner, roots, ns.as_str())?,
        );
    }
    Ok(Host {
        tables,
        rule_tables,
        rules,
        inside,
        etc_netns: roots.etc_netns(),
        listeners,
        namespaces,
        ns_stamps,
        ns_links: BTreeMap::new(),
        uplinks,
        ipv6,
        routes6,
        links,
        routes,
        pids,
        firewall,
        firewall6,
        sysctls,
        warnings,
    })
}

/// The host's interfaces, by name, with their kind and master.
fn read_links(runner: &mut dyn Runner, reader: &mut Reader) -> Result<BTreeMap<String, Link>> {
    let links = reader.links(runner)?;
    let link = |l: JsonLink| {
        let kind = l.linkinfo.and_then(|i| i.info_kind);
        let (ifindex, master) = (l.ifindex, l.master);
        (
            l.ifname,
            Link {
                ifindex,
                kind,
                master,
            },
        )
    };
    Ok(links.into_iter().map(link).collect())
}

/// The host's IPv4 routes in every table but default routes, and the
/// interfaces the default routes leave through.
fn read_routes(
    runner: &mut dyn Runner,
    reader: &mut Reader,
    links: &Links,
) -> Result<(Vec<Route>, BTreeSet<String>, BTreeSet<u32>)> {
    let routes = reader.routes(runner, false, &|index| links.name_of(index))?;
    let tables = tables_of(&routes);
    let uplinks = routes
        .iter()
        // The host's own default routes: the main table's, not those of a
        // table of a subnet's own (`nat up --via`).
        .filter(|r| r.dst == "default" && r.table.as_deref().is_none_or(|t| t == "main"))
        .filter_map(|r| r.dev.clone())
        .collect();
    let route = |r: JsonRoute| {
        let dst = match r.dst.parse::<Ipv4Net>() {
            Ok(net) => net,
            Err(_) => Ipv4Net::new(r.dst.parse().ok()?, 32).ok()?,
        };
        let local = r.kind.as_deref() == Some("local");
        Some(Route {
            dst,
            dev: r.dev,
            local,
        })
    };
    Ok((
        routes.into_iter().filter_map(route).collect(),
        uplinks,
        tables,
    ))
}

/// The numbers of the tables `routes` are in (main, which `ip` does not
/// name, left out).
fn tables_of(routes: &[JsonRoute]) -> BTreeSet<u32> {
    let number = |name: &str| match name {
        "local" => Some(255),
        "main" => Some(254),
        "default" => Some(253),
        n => n.parse().ok(),
    };
    routes
        .iter()
        .filter_map(|r| r.table.as_deref().and_then(number))
        .collect()
}

/// IPv4 rules as (priority, `from`).
type Rules = Vec<(u32, String)>;

/// The IPv4 rules, and the tables they look up.
fn read_rules(runner: &mut dyn Runner, reader: &mut Reader) -> Result<(Rules, BTreeSet<u32>)> {
    let rules = reader.rules(runner)?;
    let tables = rules
        .iter()
        .filter_map(|r| r.table.as_deref()?.parse().ok())
        .collect();
    let rules = rules
        .into_iter()
        .map(|r| {
            let from = match (r.src, r.srclen) {
                (Some(src), Some(len)) => format!("{src}/{len}"),
                (Some(src), None) if src != "all" => format!("{src}/32"),
                _ => "all".to_string(),
            };
            (r.priority, from)
        })
        .collect();
    Ok((rules, tables))
}

/// The rules of `family`; in a best-effort read, rules that cannot be read
/// are none, with a warning.
fn read_firewall(
    runner: &mut dyn Runner,
    family: Family,
    best_effort: bool,
    warnings: &mut Vec<String>,
) -> Result<Firewall> {
    match iptables::read(runner, family.save()) {
        Ok(fw) => Ok(fw),
        Err(err) if best_effort => {
            warnings.push(format!(
                "cannot read the {} rules ({err}); the plan assumes none of nsnet's are in place",
                family.tool_name()
            ));
            Ok(Firewall::default())
        }
        Err(err) => Err(err.into()),
    }
}

/// Reads the ip6tables rules into `host` if they are not there yet: a
/// command learns only once it is built whether it has IPv6 rules to plan.
pub fn read_firewall6(runner: &mut dyn Runner, host: &mut Host, best_effort: bool) -> Result<()> {
    if host.firewall6.is_none() {
        let fw = read_firewall(runner, Family::V6, best_effort, &mut host.warnings)?;
        host.firewall6 = Some(fw);
    }
    Ok(())
}

/// Whether interface `name` may face a router that sends it advertisements:
/// anything but loopback, a bridge and a bridge's port (a namespace behind
/// a bridge is no router the host should listen to).
pub fn may_face_a_router(name: &str, link: &Link) -> bool {
    name != "lo" && link.kind.as_deref() != Some("bridge") && link.master.is_none()
}
