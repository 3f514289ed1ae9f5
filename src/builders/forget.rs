//! `forget`: drops entries from nsnet's record and touches nothing on the
//! host but nsnet's own rules for them. It is the way back to a clean record
//! when a name nsnet recorded now stands for something else (a namespace or
//! bridge deleted and made again by hand), which nsnet leaves alone.
//!
//! What is still the very object nsnet made is forgotten only with `force`,
//! and then stays on the host, no longer nsnet's: `down` will not remove it.

use super::Change;
use crate::host::Host;
use crate::model::state::{Cable, Found, State};
use crate::model::validate::{End, IfName, NsName};
use anyhow::{Result, bail};

/// One thing of the record that `forget` drops.
enum Entry {
    Namespace(NsName),
    Bridge(IfName),
    /// A port, by its bridge and namespace.
    Port(IfName, NsName),
    Cable(Cable),
}

/// `forget NAME...`: each NAME a namespace (with its ports and cables), a
/// bridge (with its ports), or the host end of a port or cable.
pub fn forget(names: &[String], force: bool, host: &Host, state: &State) -> Result<Change> {
    let mut change = Change::from(state);
    let mut entries = Vec::new();
    for name in names {
        entries.extend(resolve(name, state)?);
    }
    for entry in &entries {
        let (what, found) = verdict(entry, host, state);
        if found == Found::Ours {
            if !force {
                bail!(
                    "{what} is still the one nsnet made: `nsnet down` (or `bridge down`, `netns del`, `veth del`) removes it; `nsnet forget --force` forgets it and leaves it on the host"
                );
            }
            change.notes.push(format!(
                "{what} is left on the host; nsnet no longer manages it"
            ));
        }
    }
    for entry in entries {
        match entry {
            Entry::Namespace(ns) => {
                change.state.namespaces.remove(&ns);
            }
            Entry::Bridge(name) => {
                change.state.bridges.remove(&name);
            }
            Entry::Port(bridge, ns) => {
                if let Some(b) = change.state.bridges.get_mut(&bridge) {
                    b.ports.retain(|p| p.ns != ns);
                    b.published.retain(|p| p.ns != ns);
                }
            }
            Entry::Cable(cable) => change.state.cables.retain(|c| *c != cable),
        }
    }
    // Routes through what was forgotten are no longer nsnet's either.
    let kept: Vec<_> = change
        .state
        .routes
        .iter()
        .filter(|r| {
            let nets = change.state.networks_of(&r.ns);
            nets.iter().any(|(net, _)| net.contains(&r.via))
        })
        .cloned()
        .collect();
    change.state.routes = kept;
    Ok(change)
}

/// The entries `name` stands for; an error naming what the record holds
/// when it stands for none.
fn resolve(name: &str, state: &State) -> Result<Vec<Entry>> {
    let mut entries = Vec::new();
    if let Ok(ns) = name.parse::<NsName>() {
        let on_bridges = state
            .bridges
            .iter()
            .filter(|(_, b)| b.ports.iter().any(|p| p.ns == ns));
        entries.extend(on_bridges.map(|(b, _)| Entry::Port(b.clone(), ns.clone())));
        let cables = state.cables.iter().filter(|c| c.touches(&ns));
        entries.extend(cables.cloned().map(Entry::Cable));
        if state.namespaces.contains_key(&ns) {
            entries.push(Entry::Namespace(ns));
        }
    }
    if let Ok(ifname) = name.parse::<IfName>() {
        if state.bridges.contains_key(&ifname) {
            entries.push(Entry::Bridge(ifname.clone()));
        }
        for (b, bridge) in &state.bridges {
            let ports = bridge.ports.iter().filter(|p| p.host_ifname == ifname);
            entries.extend(ports.map(|p| Entry::Port(b.clone(), p.ns.clone())));
        }
        for c in &state.cables {
            let host_end = |end: &End, n: &IfName| end.ns().is_none() && n == &ifname;
            if host_end(&c.a, &c.a_ifname) || host_end(&c.b, &c.b_ifname) {
                entries.push(Entry::Cable(c.clone()));
            }
        }
    }
    if entries.is_empty() {
        bail!(
            "`{name}` is no namespace, bridge or interface in nsnet's record (see `nsnet status`)"
        );
    }
    Ok(entries)
}

/// What the entry is, in words, and what the host has under its name.
fn verdict(entry: &Entry, host: &Host, state: &State) -> (String, Found) {
    match entry {
        Entry::Namespace(ns) => (
            format!("namespace `{ns}`"),
            host.namespace(ns, &state.namespaces[ns]),
        ),
        Entry::Bridge(name) => (
            format!("bridge `{name}`"),
            host.link(name.as_str(), state.bridges[name].ifindex),
        ),
        Entry::Port(bridge, ns) => {
            let port = state.bridges[bridge].ports.iter().find(|p| &p.ns == ns);
            let port = port.expect("resolved from the record");
            (
                format!("`{ns}`'s port `{}` on `{bridge}`", port.host_ifname),
                host.link(port.host_ifname.as_str(), port.ifindex),
            )
        }
        Entry::Cable(cable) => {
            let (end, ifname, index) = cable.cut_end();
            (
                format!("the cable between {} and {}", cable.a, cable.b),
                host.link_in(end.ns(), ifname.as_str(), index),
            )
        }
    }
}
