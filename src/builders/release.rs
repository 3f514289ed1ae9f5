//! Taking things away: `release` plans the removal of bridge ports, cables
//! and the namespaces that go with them, for every command that removes
//! something (`bridge down`, `veth del`, `netns del`, `down`), and `down`
//! removes everything nsnet made.
//!
//! A port whose namespace goes too, with no process inside, is not unplugged
//! first: deleting the namespace takes its veth pair with it, and the kernel
//! destroys namespaces in batches, where deleting each veth costs a
//! synchronisation of its own (about 20 ms here). The host ends vanish a
//! moment later: the step lists them in `settle`, and the executor waits.

use super::{Change, bridge, netns, veth};
use crate::host::Host;
use crate::model::state::{Cable, Found, Namespace, NsRoute, Port, State};
use crate::model::validate::{IfName, NsName};
use crate::plan::Step;
use anyhow::{Result, bail};
use std::collections::{BTreeMap, BTreeSet};

/// Plans the removal of `ports` and `cables`, then of the namespaces in
/// `delete` and of every namespace nsnet made only for what was removed.
/// Objects already gone from the host are dropped from the record without a
/// step. A namespace with processes inside is refused unless `force`.
pub fn release(
    change: &mut Change,
    host: &Host,
    ports: &[(IfName, Port)],
    cables: &[Cable],
    delete: &[NsName],
    force: bool,
) -> Result<()> {
    let (unplug, mut touched) = forget_ports(change, host, ports);
    let cable_steps = forget_cables(change, host, cables, &mut touched);
    let unused: Vec<NsName> = touched
        .into_iter()
        .filter(|ns| {
            let implicit = change.state.namespaces.get(ns).is_some_and(|n| !n.explicit);
            implicit && change.state.users(ns) == 0
        })
        .collect();
    let doomed = doomed(change, host, delete.iter().cloned().chain(unused), force)?;
    // Namespaces that die with `ip netns del`: made by nsnet, nobody inside
    // (a set: `down` of hundreds asks of each).
    let dying: BTreeSet<&NsName> = doomed
        .iter()
        .filter(|(n, e)| e.pid.is_none() && host.pids_in(n.as_str()).is_empty())
        .map(|(n, _)| n)
        .collect();
    let dies = |ns: &NsName| dying.contains(ns);
    // Routes through a network that goes, or in a namespace that goes: the
    // kernel would drop them with their interface; they are removed first,
    // by steps of their own, so that a rollback adds them back last, once
    // their interfaces are there again.
    for route in lost_routes(change, host, &dies) {
        change.plan.push(super::route::remove_step(&route));
    }
    // The ports of each namespace that dies, with the steps that made them.
    let mut with_ns: BTreeMap<&NsName, Vec<(&Port, Vec<Step>)>> = BTreeMap::new();
    for (bridge_name, port) in &unplug {
        let bridge = &change.state.bridges[bridge_name];
        match dies(&port.ns) {
            true => with_ns
                .entry(&port.ns)
                .or_default()
                .push((port, bridge::port_steps(bridge_name, bridge, port))),
            false => change
                .plan
                .push(bridge::detach_step(bridge_name, bridge, port)),
        }
    }
    change.plan.extend(cable_steps);
    for (ns, entry) in &doomed {
        change
            .plan
            .extend(super::dns::remove_steps(ns, entry, host));
        let mut step = netns::remove_step(ns, entry);
        for (port, setup) in with_ns.get(ns).into_iter().flatten() {
            step.undo.extend(setup.iter().map(|s| s.apply.clone()));
            step.settle.push(port.host_ifname.to_string());
        }
        change.plan.push(step);
    }
    change
        .plan
        .extend(super::dns::etc_netns_step(&mut change.state));
    Ok(())
}

/// Drops from the record the routes whose namespace is gone or goes, or
/// whose gateway is on no network the namespace keeps; returns those to
/// remove by a step: still in a namespace on the host (not already gone
/// from it, as read).
fn lost_routes(change: &mut Change, host: &Host, dies: &dyn Fn(&NsName) -> bool) -> Vec<NsRoute> {
    let mut lost = Vec::new();
    let state = &change.state;
    let keep = |r: &NsRoute| {
        host.has_ns(r.ns.as_str())
            && !dies(&r.ns)
            && state
                .networks_of(&r.ns)
                .iter()
                .any(|(net, _)| net.contains(&r.via))
    };
    let (kept, gone): (Vec<NsRoute>, Vec<NsRoute>) =
        state.routes.iter().cloned().partition(|r| keep(r));
    for route in gone {
        if host.has_ns(route.ns.as_str()) && super::route::live(&route, host) != Some(false) {
            lost.push(route);
        }
    }
    change.state.routes = kept;
    lost
}

/// Drops `ports` and their published ports from the record; returns the
/// ports still on the host (to unplug) and the namespaces touched.
fn forget_ports(
    change: &mut Change,
    host: &Host,
    ports: &[(IfName, Port)],
) -> (Vec<(IfName, Port)>, Vec<NsName>) {
    let mut touched = Vec::new();
    let mut unplug = Vec::new();
    let mut leaving: BTreeMap<&IfName, Vec<&Port>> = BTreeMap::new();
    for (bridge_name, port) in ports {
        let host_if = &port.host_ifname;
        match host.link(host_if.as_str(), port.ifindex) {
            Found::Ours => unplug.push((bridge_name.clone(), port.clone())),
            Found::Gone => {}
            // nsnet's veth is gone; the name is someone else's now.
            Found::Other => change.notes.push(format!(
                "`{host_if}` is not the interface nsnet made for `{}`'s port on `{bridge_name}`: left alone",
                port.ns
            )),
        }
        leaving.entry(bridge_name).or_default().push(port);
        touched.push(port.ns.clone());
    }
    // Each bridge's lists gone through once, not once for each port.
    for (bridge_name, gone) in leaving {
        let bridge = change
            .state
            .bridges
            .get_mut(bridge_name)
            .expect("bridge recorded");
        let namespaces: BTreeSet<&NsName> = gone.iter().map(|p| &p.ns).collect();
        let mut by_name: BTreeMap<&IfName, Vec<&Port>> = BTreeMap::new();
        for port in &gone {
            by_name.entry(&port.host_ifname).or_default().push(port);
        }
        let goes = |p: &Port| by_name.get(&p.host_ifname).is_some_and(|g| g.contains(&p));
        bridge.ports.retain(|p| !goes(p));
        // Its published ports go with it (their rules too, by reconcile).
        bridge.published.retain(|p| !namespaces.contains(&p.ns));
    }
    (unplug, touched)
}

/// Drops `cables` from the record; returns the steps removing those still on
/// the host, and adds the namespaces they touched to `touched`.
fn forget_cables(
    change: &mut Change,
    host: &Host,
    cables: &[Cable],
    touched: &mut Vec<NsName>,
) -> Vec<Step> {
    let mut steps = Vec::new();
    for cable in cables {
        let (end, ifname, index) = cable.cut_end();
        // Inside a namespace, an index means something only in the very
        // namespace nsnet made: a new one numbers its links from 1 again.
        // Where the name now stands for another namespace, nsnet's cable
        // went with the one deleted, and whatever has the name is not it.
        let found = match end.ns_name() {
            Some(ns) if !same_namespace(&change.state, host, &ns) => {
                host.link_in(Some(ns.as_str()), ifname.as_str(), None)
            }
            _ => host.link_in(end.ns(), ifname.as_str(), index),
        };
        match found {
            Found::Ours => steps.push(veth::remove_step(cable)),
            Found::Gone => {}
            Found::Other => change.notes.push(format!(
                "`{ifname}` in {end} is not the cable end nsnet made to {}: left alone",
                match end == &cable.a {
                    true => &cable.b,
                    false => &cable.a,
                }
            )),
        }
        change.state.cables.retain(|c| c != cable);
        touched.extend([&cable.a, &cable.b].into_iter().filter_map(|e| e.ns_name()));
    }
    steps
}

/// Whether `ns` is still the namespace the record knows: the very one, for a
/// namespace nsnet made or attached; for one it found (a cable into a
/// namespace made by hand), the name is all nsnet knows.
fn same_namespace(state: &State, host: &Host, ns: &NsName) -> bool {
    match state.namespaces.get(ns) {
        Some(entry) => host.namespace(ns, entry) == Found::Ours,
        None => true,
    }
}

/// What `down` says of a namespace or bridge of the record that is not the
/// one nsnet made.
pub fn impostor(what: &str, name: &str) -> String {
    format!(
        "`{name}` is not the {what} nsnet made: left alone; `nsnet forget {name}` drops it from the record"
    )
}

/// The namespaces to delete, each once, dropped from the record: those
/// still on the host, refusing one with processes inside unless `force`.
/// One of the same name that is not nsnet's is left alone and stays in the
/// record, for `nsnet forget`.
fn doomed(
    change: &mut Change,
    host: &Host,
    names: impl Iterator<Item = NsName>,
    force: bool,
) -> Result<Vec<(NsName, Namespace)>> {
    let mut doomed: Vec<(NsName, Namespace)> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for ns in names {
        if !seen.insert(ns.clone()) {
            continue;
        }
        let Some(entry) = change.state.namespaces.remove(&ns) else {
            continue;
        };
        match host.namespace(&ns, &entry) {
            Found::Ours => {}
            Found::Gone => {
                // Deleted by hand: what nsnet wrote for it is still there.
                change
                    .plan
                    .extend(super::dns::remove_steps(&ns, &entry, host));
                continue;
            }
            Found::Other => {
                change.notes.push(impostor("namespace", ns.as_str()));
                change.state.namespaces.insert(ns, entry);
                continue;
            }
        }
        let pids = host.pids_in(ns.as_str());
        if entry.pid.is_none() && !pids.is_empty() && !force {
            let list: Vec<String> = pids.iter().map(u32::to_string).collect();
            bail!(
                "namespace `{ns}` still has processes inside (pid {}): stop them, or add --force to delete it anyway",
                list.join(", ")
            );
        }
        doomed.push((ns, entry));
    }
    Ok(doomed)
}

/// `down`: everything nsnet made: cables, bridge ports, namespaces (attached
/// ones only lose their name), then the bridges; `reconcile` then removes
/// the rules and puts back the sysctls. One release for all, so that every
/// namespace takes its ports with it.
///
/// A container runtime's attachments (CNI) are the runtime's: they stay,
/// with their bridges, NAT and published ports, until the runtime removes
/// them (DEL or GC), and `down` says so.
pub fn down(force: bool, host: &Host, state: &State) -> Result<Change> {
    let mut change = Change::from(state);
    let ports: Vec<(IfName, Port)> = state
        .bridges
        .iter()
        .flat_map(|(name, b)| b.ports.iter().map(move |p| (name.clone(), p.clone())))
        .filter(|(_, p)| p.runtime.is_none())
        .collect();
    let cables = state.cables.clone();
    let all: Vec<NsName> = state.namespaces.keys().cloned().collect();
    release(&mut change, host, &ports, &cables, &all, force)?;
    for (name, bridge) in &state.bridges {
        let kept: Vec<&str> = (bridge.ports.iter())
            .filter_map(|p| p.runtime.as_ref())
            .map(|a| a.container.as_str())
            .collect();
        if kept.is_empty() {
            bridge::remove(&mut change, host, name);
            continue;
        }
        let network = (bridge.ports.iter())
            .find_map(|p| p.runtime.as_ref())
            .map_or("", |a| a.network.as_str());
        change.notes.push(format!(
            "bridge `{name}` is left to the container runtime that uses it: {} container(s) of CNI network `{network}` are on it (the runtime's DEL, e.g. `podman rm`, removes them, and the bridge with the last)",
            kept.len()
        ));
    }
    Ok(change)
}
