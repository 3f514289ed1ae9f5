//! The identities of the objects nsnet makes, read off the host: right after
//! a plan has made them (to record them), and before a plan deletes cable
//! ends inside namespaces (to check them). A namespace is known by its
//! `NsStamp` (a `stat` of /run/netns/NAME), a link by its interface index
//! (`ip -j link show`, in the host or in the namespace that holds it).

use super::Host;
use super::identity::Roots;
use super::reader::{indexes, indexes_of};
use crate::exec::runner::Runner;
use crate::model::state::{Identities, NsStamp, State};
use crate::model::validate::NsName;
use anyhow::Result;
use std::collections::{BTreeMap, BTreeSet};

/// Identities as read off the host.
#[derive(Debug, Default)]
pub struct Read {
    namespaces: BTreeMap<String, NsStamp>,
    /// Interface indexes by (namespace, name); the host's under `None`.
    links: BTreeMap<(Option<String>, String), u32>,
}

impl Identities for Read {
    fn namespace(&self, name: &NsName) -> Option<NsStamp> {
        self.namespaces.get(name.as_str()).copied()
    }

    fn link(&self, ns: Option<&str>, ifname: &str) -> Option<u32> {
        let key = (ns.map(String::from), ifname.to_string());
        self.links.get(&key).copied()
    }
}

/// Reads the identity of everything in `state` that has none yet: one
/// `stat` per namespace, one `ip` per namespace holding such a link.
pub fn read(runner: &mut dyn Runner, roots: &Roots, state: &State) -> Result<Read> {
    let (names, links) = state.unstamped();
    let mut read = Read::default();
    for name in names {
        if let Some(stamp) = roots.stamp_of_name(name.as_str()) {
            read.namespaces.insert(name.to_string(), stamp);
        }
    }
    let mut places: BTreeMap<Option<String>, Vec<&str>> = BTreeMap::new();
    for (ns, ifname) in &links {
        places.entry(ns.clone()).or_default().push(ifname.as_str());
    }
    for (ns, names) in places {
        // A namespace that is gone has no links to read.
        if ns
            .as_deref()
            .is_some_and(|n| roots.stamp_of_name(n).is_none())
        {
            continue;
        }
        for (ifname, index) in indexes_of(runner, roots, ns.as_deref(), &names)? {
            read.links.insert((ns.clone(), ifname), index);
        }
    }
    Ok(read)
}

/// Reads into `host.ns_links` the interface index of the first end of every
/// recorded cable between two namespaces: the end nsnet deletes to remove
/// the cable, and which it checks first (one `ip` per namespace).
pub fn read_cable_ends(
    runner: &mut dyn Runner,
    roots: &Roots,
    state: &State,
    host: &mut Host,
) -> Result<()> {
    let inside = state.cables.iter().filter(|c| c.b.ns().is_some());
    let places: BTreeSet<&str> = inside.filter_map(|c| c.a.ns()).collect();
    let present: Vec<&str> = places.into_iter().filter(|n| host.has_ns(n)).collect();
    for ns in present {
        for (ifname, index) in indexes(runner, roots, Some(ns))? {
            host.ns_links.insert((ns.to_string(), ifname), index);
        }
    }
    Ok(())
}
