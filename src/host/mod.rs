//! Reading the live host: namespaces (/run/netns), links and IPv4 routes (from
//! `ip -j`, never parsed text), and which processes run in which namespace.
//! Builders take a `Host` value and never read the system themselves.

pub mod live;

use crate::exec::runner::Runner;
use crate::model::rules::{FORWARDING, route_localnet};
use crate::plan::cmd::{Cmd, Tool};
use anyhow::{Context, Result};
use ipnet::Ipv4Net;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Where `ip netns` keeps its named namespaces.
pub const NETNS_DIR: &str = "/run/netns";

/// What the host looks like right now, as far as builders need to know.
#[derive(Clone, Debug, Default)]
pub struct Host {
    /// Named network namespaces.
    pub namespaces: BTreeSet<String>,
    /// Interfaces in the host's namespace, by name.
    pub links: BTreeMap<String, Link>,
    /// IPv4 destinations routed in any table, but the default route.
    pub routes: Vec<Route>,
    /// Processes running inside each named namespace (filled on request).
    pub pids: BTreeMap<String, Vec<u32>>,
    /// The iptables rules (filled on request).
    pub firewall: Option<Firewall>,
    /// `net.ipv4.ip_forward` and each bridge's `route_localnet`, by key.
    pub sysctls: BTreeMap<String, String>,
    /// What could not be read, in a best-effort observation.
    pub warnings: Vec<String>,
}

/// What `iptables-save` shows: chains and rules, per table.
#[derive(Clone, Debug, Default)]
pub struct Firewall {
    /// `(table, chain)` for every chain, built-in or not.
    pub chains: BTreeSet<(String, String)>,
    /// `(table, line)` for every rule, as saved: `-A CHAIN …`.
    pub rules: BTreeSet<(String, String)>,
    /// `(table, chain)` → policy, for built-in chains.
    pub policies: BTreeMap<(String, String), String>,
}

impl Firewall {
    /// Parses `iptables-save` output.
    pub fn parse(text: &str) -> Firewall {
        let mut fw = Firewall::default();
        let mut table = String::new();
        for line in text.lines() {
            if let Some(name) = line.strip_prefix('*') {
                table = name.to_string();
            } else if let Some(chain) = line.strip_prefix(':') {
                let mut words = chain.split_whitespace();
                let name = words.next().unwrap_or_default().to_string();
                if let Some(policy) = words.next().filter(|p| *p != "-") {
                    fw.policies
                        .insert((table.clone(), name.clone()), policy.to_string());
                }
                fw.chains.insert((table.clone(), name));
            } else if line.starts_with("-A ") {
                fw.rules.insert((table.clone(), line.to_string()));
            }
        }
        fw
    }
}

/// What to read besides namespaces, links, routes and sysctls.
#[derive(Clone, Copy, Debug, Default)]
pub struct Wants {
    /// Which processes run in which namespace (a pass over /proc).
    pub pids: bool,
    /// The iptables rules (one `iptables-save`).
    pub firewall: bool,
    /// For a dry run: what cannot be read (the rules, without root) is taken
    /// as empty, with a warning, instead of failing.
    pub best_effort: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
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
    pub fn has_ns(&self, name: &str) -> bool {
        self.namespaces.contains(name)
    }

    /// Whether `addr` is an address of this host (loopback included).
    pub fn is_local(&self, addr: std::net::Ipv4Addr) -> bool {
        addr.is_loopback() || self.routes.iter().any(|r| r.local && r.dst.contains(&addr))
    }

    /// Processes inside namespace `name`, as far as they could be seen.
    pub fn pids_in(&self, name: &str) -> &[u32] {
        self.pids.get(name).map(Vec::as_slice).unwrap_or(&[])
    }
}

#[derive(Deserialize)]
struct JsonLink {
    ifname: String,
    master: Option<String>,
    linkinfo: Option<JsonLinkInfo>,
}

#[derive(Deserialize)]
struct JsonLinkInfo {
    info_kind: Option<String>,
}

#[derive(Deserialize)]
struct JsonRoute {
    dst: String,
    dev: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// Reads namespaces, links, routes and the sysctls nsnet may change, and
/// what else `wants` asks for.
pub fn observe(runner: &mut dyn Runner, wants: Wants) -> Result<Host> {
    let namespaces = namespaces(Path::new(NETNS_DIR))?;
    let text = runner.run(&Cmd::ip(["-j", "-d", "link", "show"]))?;
    let links: Vec<JsonLink> =
        serde_json::from_str(&text).context("cannot read `ip -j -d link show`")?;
    let links: BTreeMap<String, Link> = links
        .into_iter()
        .map(|l| {
            let kind = l.linkinfo.and_then(|i| i.info_kind);
            (
                l.ifname,
                Link {
                    kind,
                    master: l.master,
                },
            )
        })
        .collect();
    let text = runner.run(&Cmd::ip(["-j", "-4", "route", "show", "table", "all"]))?;
    let routes: Vec<JsonRoute> =
        serde_json::from_str(&text).context("cannot read `ip -j -4 route show table all`")?;
    let routes = routes
        .into_iter()
        .filter_map(|r| {
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
        })
        .collect();
    let pids = match wants.pids {
        true => pids_by_namespace(&namespaces),
        false => BTreeMap::new(),
    };
    let mut warnings = Vec::new();
    let firewall = match wants.firewall {
        false => None,
        true => match runner.run(&Cmd::new(Tool::IptablesSave, [] as [&str; 0])) {
            Ok(text) => Some(Firewall::parse(&text)),
            Err(err) if wants.best_effort => {
                warnings.push(format!(
                    "cannot read the iptables rules ({err}); the plan assumes none of nsnet's are in place"
                ));
                Some(Firewall::default())
            }
            Err(err) => return Err(err.into()),
        },
    };
    let mut keys = vec![FORWARDING.to_string()];
    for (name, link) in &links {
        if link.kind.as_deref() == Some("bridge") {
            keys.push(route_localnet(name));
        }
    }
    let sysctls = keys
        .into_iter()
        .filter_map(|key| {
            let value = std::fs::read_to_string(sysctl_path(&key)).ok()?;
            Some((key, value.trim().to_string()))
        })
        .collect();
    Ok(Host {
        namespaces,
        links,
        routes,
        pids,
        firewall,
        sysctls,
        warnings,
    })
}

/// Where sysctl `key` lives under /proc/sys.
fn sysctl_path(key: &str) -> std::path::PathBuf {
    let relative = if key.contains('/') {
        key.to_string()
    } else {
        key.replace('.', "/")
    };
    Path::new("/proc/sys").join(relative)
}

fn namespaces(dir: &Path) -> Result<BTreeSet<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot list `{}`", dir.display())),
    };
    Ok(entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect())
}

/// The namespace identity (device and inode of its nsfs file) behind a path.
fn identity(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// The identity of the network namespace of process `pid`.
pub fn netns_of_pid(pid: u32) -> std::io::Result<(u64, u64)> {
    let meta = std::fs::metadata(Path::new("/proc").join(pid.to_string()).join("ns/net"))?;
    Ok((meta.dev(), meta.ino()))
}

/// The identity of the namespace nsnet itself runs in: the host's.
pub fn own_netns() -> Option<(u64, u64)> {
    identity(Path::new("/proc/self/ns/net"))
}

/// The identity of the named namespace `name`.
pub fn netns_of_name(name: &str) -> Option<(u64, u64)> {
    identity(&Path::new(NETNS_DIR).join(name))
}

/// For each named namespace, the processes whose network namespace it is
/// (what `ip netns pids` reports), from one pass over /proc.
fn pids_by_namespace(names: &BTreeSet<String>) -> BTreeMap<String, Vec<u32>> {
    let by_identity: BTreeMap<(u64, u64), &String> = names
        .iter()
        .filter_map(|n| Some((netns_of_name(n)?, n)))
        .collect();
    let mut pids: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    let Ok(proc) = std::fs::read_dir("/proc") else {
        return pids;
    };
    for entry in proc.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some(name) = netns_of_pid(pid).ok().and_then(|id| by_identity.get(&id)) {
            pids.entry((*name).clone()).or_default().push(pid);
        }
    }
    pids
}
