//! Builders: pure functions from parsed arguments, the observed host and
//! nsnet's record to a `Change`: the plan to run and the record as it will be
//! once the plan has run. Nothing here touches the system.

pub mod bridge;
pub mod firewall;
pub mod nat;
pub mod netns;
pub mod publish;
pub mod rules;
pub mod veth;

use crate::host::Host;
use crate::plan::Plan;
use crate::state::{Cable, Port, State};
use crate::validate::{IfName, NsName};
use anyhow::{Result, bail};

/// What a command will do.
#[derive(Debug, Default)]
pub struct Change {
    pub plan: Plan,
    /// The record after the plan has run.
    pub state: State,
    /// Things the user should know that are not errors (stderr, unless -q).
    pub notes: Vec<String>,
}

impl Change {
    fn from(state: &State) -> Change {
        Change {
            state: state.clone(),
            ..Change::default()
        }
    }
}

/// Plans the removal of `ports` and `cables`, then of the namespaces in
/// `delete` and of every namespace nsnet made only for what was removed.
/// Objects already gone from the host are dropped from the record without a
/// step. A namespace with processes inside is refused unless `force`.
fn release(
    change: &mut Change,
    host: &Host,
    ports: &[(IfName, Port)],
    cables: &[Cable],
    delete: &[NsName],
    force: bool,
) -> Result<()> {
    let mut touched: Vec<NsName> = Vec::new();
    for (bridge_name, port) in ports {
        let bridge = &change.state.bridges[bridge_name];
        if host.has_ns(port.ns.as_str()) && host.links.contains_key(port.host_ifname.as_str()) {
            change
                .plan
                .push(bridge::detach_step(bridge_name, bridge, port));
        }
        let bridge = change
            .state
            .bridges
            .get_mut(bridge_name)
            .expect("bridge recorded");
        bridge.ports.retain(|p| p != port);
        // Its published ports go with it (their rules too, by reconcile).
        bridge.published.retain(|p| p.ns != port.ns);
        touched.push(port.ns.clone());
    }
    for cable in cables {
        let present = |e: &crate::validate::End| e.ns().is_none_or(|n| host.has_ns(n));
        if present(&cable.a) && present(&cable.b) {
            change.plan.push(veth::remove_step(cable));
        }
        change.state.cables.retain(|c| c != cable);
        touched.extend([&cable.a, &cable.b].into_iter().filter_map(|e| match e {
            crate::validate::End::Ns(n) => Some(n.clone()),
            crate::validate::End::Host => None,
        }));
    }
    let unused = touched.into_iter().filter(|ns| {
        let implicit = change.state.namespaces.get(ns).is_some_and(|n| !n.explicit);
        implicit && change.state.users(ns) == 0
    });
    let mut doomed: Vec<NsName> = Vec::new();
    for ns in delete.iter().cloned().chain(unused) {
        if !doomed.contains(&ns) {
            doomed.push(ns);
        }
    }
    for ns in doomed {
        let Some(entry) = change.state.namespaces.remove(&ns) else {
            continue;
        };
        if !host.has_ns(ns.as_str()) {
            continue;
        }
        let pids = host.pids_in(ns.as_str());
        if entry.pid.is_none() && !pids.is_empty() && !force {
            let list: Vec<String> = pids.iter().map(u32::to_string).collect();
            bail!(
                "namespace `{ns}` still has processes inside (pid {}): stop them, or add --force to delete it anyway",
                list.join(", ")
            );
        }
        change.plan.push(netns::remove_step(&ns, &entry));
    }
    Ok(())
}

#[cfg(test)]
mod tests;

/// `down`: everything nsnet made, in order: cables, then each bridge with its
/// ports, then the namespaces left (attached ones only lose their name);
/// `reconcile` then removes the rules and puts back the sysctls.
pub fn down(force: bool, host: &Host, state: &State) -> Result<Change> {
    let mut change = Change::from(state);
    let cables = state.cables.clone();
    release(&mut change, host, &[], &cables, &[], force)?;
    for name in state.bridges.keys() {
        let next = bridge::down(name, &[], force, host, &change.state)?;
        change.plan.extend(next.plan.steps);
        change.notes.extend(next.notes);
        change.state = next.state;
    }
    let rest: Vec<NsName> = change.state.namespaces.keys().cloned().collect();
    release(&mut change, host, &[], &[], &rest, force)?;
    Ok(change)
}
