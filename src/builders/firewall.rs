//! Planning the host settings nsnet's networks need (bridges, `nat`,
//! `publish`): iptables rules in nsnet's own chains, sysctls and bridge-port
//! hairpin mode. None of it is built step by step; `model::rules` derives it from
//! the record. `reconcile` compares what the
//! record before a command needs with what the record after it needs, and
//! plans exactly the difference, so every command (a `bridge down` too)
//! removes the rules of what it removes and nothing else.
//!
//! The rules are planned in `tables`; here are the sysctls and hairpin mode.
//!
//! Invariants:
//! - nsnet only adds rules to its own chains (`NSNET-…`) and one jump to each
//!   from a built-in chain, all tagged with a comment naming what they serve;
//!   it never flushes a chain but its own ordered NSNET-POLICY, never writes
//!   into NSNET-USER, and never touches a policy.
//! - Rules are written as `iptables-save` prints them, so the saved ruleset
//!   tells which are in place.
//! - One `iptables-restore --noflush -w` per table and direction: a table's
//!   changes apply together or not at all. A chain is declared only when it
//!   does not exist: with --noflush, declaring an existing chain flushes it.
//! - A sysctl is put back only if nsnet changed it, no network still needs
//!   it, and it still holds the value nsnet set.

use super::Change;
use super::tables::rule_steps;
use crate::host::{Host, may_face_a_router};
use crate::model::delta;
use crate::model::rules::{
    FORWARDING, FORWARDING6, accept_ra, accept_ra_of, forwarding6, forwarding6_of, sysctls,
};
use crate::model::state::{Found, State};
use crate::model::validate::IfName;
use crate::plan::Step;
use crate::plan::cmd::Cmd;
use anyhow::Result;
use std::collections::{BTreeMap, BTreeSet};

/// Adds to `change` the steps that take the host's rules, sysctls and
/// hairpin settings from what `before` needs to what `change.state` needs:
/// removals first (before anything they serve goes), additions last.
pub fn reconcile(change: &mut Change, before: &State, host: &Host) -> Result<()> {
    let mut front = Vec::new();
    let mut back = Vec::new();
    rule_steps(before, &change.state, host, &mut front, &mut back)?;
    hairpin_steps(before, &change.state, host, &mut front, &mut back);
    sysctl_steps(before, &mut change.state, host, &mut front, &mut back);
    super::routing::steps(before, &change.state, host, &mut front, &mut back);
    change.plan.steps.splice(0..0, front);
    change.plan.extend(back);
    Ok(())
}

/// Hairpin mode off for ports that no longer need it (if still on a
/// bridge), on for those that now do.
fn hairpin_steps(
    before: &State,
    after: &State,
    host: &Host,
    front: &mut Vec<Step>,
    back: &mut Vec<Step>,
) {
    let (off, on) = delta::hairpins(before, after);
    #[cfg(debug_assertions)]
    {
        use crate::model::rules::hairpins;
        let (old, new) = (hairpins(before), hairpins(after));
        let whole = (&old - &new, &new - &old);
        assert_eq!((off.clone(), on.clone()), whole, "hairpin delta strays");
    }
    // Only nsnet's own veth, still on a bridge: not one made again by hand.
    let ports = before.bridges.values().flat_map(|b| &b.ports);
    let index: BTreeMap<&IfName, Option<u32>> = ports
        .filter(|p| off.contains(&p.host_ifname))
        .map(|p| (&p.host_ifname, p.ifindex))
        .collect();
    let on_a_bridge = |p: &&IfName| {
        let ours = host.link(p.as_str(), index.get(p).copied().flatten()) == Found::Ours;
        ours && host
            .links
            .get(p.as_str())
            .is_some_and(|l| l.master.is_some())
    };
    for port in off.iter().filter(on_a_bridge) {
        front.push(hairpin(port, false));
    }
    for port in &on {
        back.push(hairpin(port, true));
    }
}

/// Sysctls no network needs any more go back to the value saved before
/// nsnet changed them (if still nsnet's); new ones are set, their old value
/// saved in the record. IPv6 forwarding brings its companions (see
/// `ra_keepers`): set before it, put back with it.
fn sysctl_steps(
    before: &State,
    after: &mut State,
    host: &Host,
    front: &mut Vec<Step>,
    back: &mut Vec<Step>,
) {
    let old = sysctls(before);
    if sysctls(after).contains_key(FORWARDING6) && !old.contains_key(FORWARDING6) {
        ra_keepers(before, after, host);
    }
    let new = sysctls(after);
    let mut restore = Vec::new();
    for (key, value) in &old {
        if new.contains_key(key) {
            continue;
        }
        let kept = match key == FORWARDING6 {
            true => forwarding_kept(after, host),
            false => Vec::new(),
        };
        let Some(original) = after.saved.remove(key) else {
            continue;
        };
        if host.sysctls.is(key, value) {
            let why = format!(
                "No nsnet network needs {key} any more: put back the value it had before nsnet."
            );
            restore.push(Step::new(Cmd::sysctl(key, &original), why).undo(Cmd::sysctl(key, value)));
            restore.extend(kept);
        }
    }
    front.splice(0..0, restore);
    let mut set = Vec::new();
    for (key, value) in &new {
        // The accept_ra of an interface that has gone since: nothing to keep.
        if accept_ra_of(key).is_some() && !host.sysctls.contains_key(key) {
            continue;
        }
        let current = host.sysctls.get(key).unwrap_or_else(|| "0".into());
        if current != *value {
            after
                .saved
                .entry(key.clone())
                .or_insert_with(|| current.clone());
            let step = Step::new(Cmd::sysctl(key, value), sysctl_why(key));
            set.push(step.undo(Cmd::sysctl(key, &current)));
        }
    }
    // accept_ra 2 before forwarding goes on: not a moment without RAs.
    set.sort_by_key(|s| s.apply.args.iter().all(|a| !a.contains("accept_ra")));
    back.extend(set);
}

/// IPv6 forwarding is about to go on (unless the host has it on already).
/// An interface that forwards ignores router advertisements when its
/// `accept_ra` is 1, the default: a host that learns its IPv6 default route
/// by SLAAC would lose it when the last advertisement expires (CNI plugins
/// #21, systemd #27639). So each interface that may face a router and has
/// `accept_ra` 1 is recorded, to be set to 2 (take them anyway) and put back
/// to 1 with forwarding. Turning `all.forwarding` on also turns every
/// interface's on, and off again, off: one the host kept on alone is
/// recorded to be turned on again afterwards.
fn ra_keepers(before: &State, after: &mut State, host: &Host) {
    if host.sysctls.is(FORWARDING6, "1") {
        return;
    }
    let ours: BTreeSet<&str> = before
        .links()
        .chain(after.links())
        .map(IfName::as_str)
        .collect();
    let facing: Vec<&str> = host
        .links
        .all()
        .iter()
        .filter(|(name, link)| may_face_a_router(name, link))
        .map(|(name, _)| name.as_str())
        .collect();
    let mut saved = BTreeMap::new();
    for name in facing.iter().filter(|n| !ours.contains(*n)) {
        if host.sysctls.is(&accept_ra(name), "1") {
            saved.insert(accept_ra(name), "1".to_string());
        }
    }
    for name in std::iter::once("default").chain(facing) {
        if host.sysctls.is(&forwarding6(name), "1") {
            saved.insert(forwarding6(name), "1".to_string());
        }
    }
    after.saved.extend(saved);
}

/// After `all.forwarding` is back to 0: the interfaces the host had
/// forwarding on its own (recorded by `ra_keepers`), on again.
fn forwarding_kept(after: &mut State, host: &Host) -> Vec<Step> {
    let keys: Vec<String> = after
        .saved
        .keys()
        .filter(|k| forwarding6_of(k).is_some())
        .cloned()
        .collect();
    let mut steps = Vec::new();
    for key in keys {
        let original = after.saved.remove(&key).unwrap_or_default();
        if host.sysctls.contains_key(&key) {
            let why = format!(
                "Turning IPv6 forwarding off for all turned it off here too, where the host had it on: on again ({key})."
            );
            steps.push(Step::new(Cmd::sysctl(&key, &original), why).undo(Cmd::sysctl(&key, "0")));
        }
    }
    steps
}

fn sysctl_why(key: &str) -> String {
    if key == FORWARDING {
        "Let the host route packets between interfaces (it is a router for the namespaces):\n\
         without ip_forward it drops everything that is neither from it nor for it."
            .into()
    } else if key == FORWARDING6 {
        "Let the host route IPv6 packets between interfaces, for the bridges' IPv6 subnets.\n\
         It sets every interface's forwarding; those that take router advertisements were set to\n\
         accept_ra=2 first, so the host keeps its SLAAC address and default route."
            .into()
    } else if let Some(ifname) = accept_ra_of(key) {
        format!(
            "Keep {ifname} taking router advertisements once IPv6 forwarding is on: with accept_ra=1\n\
             an interface that forwards ignores them, and a route learned from them expires\n\
             (accept_ra=2 takes them anyway; put back to 1 when nsnet turns forwarding off)."
        )
    } else {
        format!(
            "Let 127.0.0.0/8 be routed through the bridge ({key}), so that a connection to\n\
             127.0.0.1 on the host can be DNATed to a namespace. Set on this bridge only, never on\n\
             `all`; the NSNET-INPUT rule drops what namespaces send to the host's 127.0.0.0/8."
        )
    }
}

fn hairpin(port: &IfName, on: bool) -> Step {
    let set = |on: bool| {
        Cmd::ip([
            "link",
            "set",
            port.as_str(),
            "type",
            "bridge_slave",
            "hairpin",
            if on { "on" } else { "off" },
        ])
    };
    let why = if on {
        format!(
            "Hairpin mode on {port}: the bridge may send a frame back out of the port it came in by.\n\
             Where br_netfilter passes bridged traffic through iptables, a namespace reaching its own\n\
             published port through a host address is DNATed back to itself that way."
        )
    } else {
        format!("{port} no longer serves a published port: hairpin mode off again.")
    };
    Step::new(set(on), why).undo(set(!on))
}
