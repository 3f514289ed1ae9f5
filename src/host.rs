//! Reading the live host: namespaces (/run/netns), links and IPv4 routes (from
//! `ip -j`, never parsed text), and which processes run in which namespace.
//! Builders take a `Host` value and never read the system themselves.

use crate::cmd::Cmd;
use crate::runner::Runner;
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
}

impl Host {
    pub fn has_ns(&self, name: &str) -> bool {
        self.namespaces.contains(name)
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
}

/// Reads namespaces, links and routes; with `with_pids`, also scans /proc.
pub fn observe(runner: &mut dyn Runner, with_pids: bool) -> Result<Host> {
    let namespaces = namespaces(Path::new(NETNS_DIR))?;
    let text = runner.run(&Cmd::ip(["-j", "-d", "link", "show"]))?;
    let links: Vec<JsonLink> =
        serde_json::from_str(&text).context("cannot read `ip -j -d link show`")?;
    let links = links
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
            Some(Route { dst, dev: r.dev })
        })
        .collect();
    let pids = if with_pids {
        pids_by_namespace(&namespaces)
    } else {
        BTreeMap::new()
    };
    Ok(Host {
        namespaces,
        links,
        routes,
        pids,
    })
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
