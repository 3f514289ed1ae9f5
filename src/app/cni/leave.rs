//! How attachments leave: DEL and GC, each in two plans (the attachments,
//! then the bridges their networks no longer need), the retry when the
//! kernel takes a veth away under a plan, and the unplugging of attachments
//! whose container is gone without a DEL. What the runtime asked for
//! (the first plan) decides the answer; the rest is best effort, tried
//! again by every later request.

use super::reply::{Code, Failure};
use super::request::{Leave, Target};
use super::{failure, global};
use crate::app::apply::{FIREWALL, apply};
use crate::builders::{Change, attach};
use crate::exec::runner::System;
use crate::exec::store::Store;
use crate::host::Host;
use crate::host::netlink::Kernel;
use crate::model::state::{Port, State};
use std::path::Path;
use std::time::{Duration, Instant};

/// DEL: the attachment goes in one plan; then, in another, the bridges
/// its network no longer needs (see `retire`).
pub fn del(network: &str, t: &Target) -> Result<(), Failure> {
    let dying = |p: &Port| {
        p.runtime
            .as_ref()
            .is_some_and(|a| a.container == t.container)
            && p.ifname == t.ifname
    };
    let build = |h: &_, s: &State| attach::del(network, &t.container, &t.ifname, h, s);
    unplug(&dying, &build)?;
    reap();
    retire();
    Ok(())
}

/// GC: every attachment of the network the runtime does not list goes in
/// one plan; then the bridges no network needs any more (see `retire`).
pub fn gc(leave: &Leave) -> Result<(), Failure> {
    // Without the list, every attachment would look stale: refused.
    let Some(valid) = &leave.valid else {
        return Err(Failure::new(
            Code::InvalidConfig,
            format!(
                "GC of network `{}` lists no `cni.dev/valid-attachments`: nsnet removes nothing without it",
                leave.name
            ),
        ));
    };
    let valid: Vec<(String, String)> = (valid.iter())
        .map(|k| (k.container.clone(), k.ifname.clone()))
        .collect();
    let stale = |p: &Port| {
        p.runtime.as_ref().is_some_and(|a| {
            a.network == leave.name
                && !valid
                    .iter()
                    .any(|(c, i)| *c == a.container && i == p.ifname.as_str())
        })
    };
    let build = |h: &_, s: &State| attach::gc(&leave.name, &valid, h, s);
    unplug(&stale, &build)?;
    reap();
    retire();
    Ok(())
}

/// nsnet's record as it is now, read without the lock (`None`: unreadable;
/// the plan that follows reads it again under the lock and says why).
fn record() -> Option<State> {
    Store::read_only().load().ok()
}

/// The host ends of the ports `which` picks whose namespace is gone: the
/// kernel removes them with the namespace, a moment after it is deleted.
fn orphaned(which: &dyn Fn(&Port) -> bool) -> Vec<String> {
    let Some(state) = record() else {
        return Vec::new();
    };
    (state.bridges.values().flat_map(|b| &b.ports))
        .filter(|p| which(p) && !Path::new("/run/netns").join(p.ns.as_str()).exists())
        .map(|p| p.host_ifname.to_string())
        .collect()
}

/// Runs a DEL's or GC's plan (`build`) for the ports `which` picks. The
/// runtime may delete a container's namespace just before or while the
/// plan runs, and the kernel then removes its veth a moment later, under
/// the plan's feet: the plan is rolled back and tried once more once the
/// kernel is done.
fn unplug(
    which: &dyn Fn(&Port) -> bool,
    build: &dyn Fn(&Host, &State) -> anyhow::Result<Change>,
) -> Result<(), Failure> {
    let run = || {
        settle(which);
        apply(&global(), &mut System::cached(), FIREWALL, build)
    };
    match run() {
        Ok(_) => Ok(()),
        Err(_) if !orphaned(which).is_empty() => run().map(|_| ()).map_err(failure),
        Err(err) => Err(failure(err)),
    }
}

/// Waits (up to two seconds) for the host ends of the ports `which` picks
/// whose namespace is gone (see `orphaned`), so one seen now is not gone by
/// the time the plan deletes it. A namespace a process still holds keeps
/// its veth: that one is deleted by the plan.
fn settle(which: &dyn Fn(&Port) -> bool) {
    let names = orphaned(which);
    let Ok(mut kernel) = Kernel::here() else {
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline
        && names
            .iter()
            .any(|n| kernel.link(Some(n), 0).is_ok_and(|l| l.is_some()))
    {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Removes the bridges of CNI networks that have no attachment left, with
/// their NAT and rules. Best effort: the attachment is gone already, and a
/// DEL must not fail for what another container shared; what the host
/// refuses now stays in the record, and goes with a later DEL or GC.
fn retire() {
    let idle = |s: &State| {
        s.bridges
            .values()
            .any(|b| b.network.is_some() && b.ports.is_empty())
    };
    if !record().is_some_and(|s| idle(&s)) {
        return;
    }
    let build = |h: &_, s: &State| attach::retire(h, s);
    if let Err(err) = apply(&global(), &mut System::cached(), FIREWALL, build) {
        eprintln!("nsnet: warning: an unused bridge stays for now: {err:#}");
    }
}

/// Unplugs the attachments whose container is gone while nsnet's name
/// still holds its namespace: those nsnet named from a process
/// (`/proc/PID/ns/net`) that has exited, or whose pid is now another
/// process's. A runtime that never sends DEL (`ctr run -d` never does)
/// would otherwise leave the namespace, its veth and its address alive for
/// good. Best effort, like `retire`: what the host refuses waits for the
/// next request.
pub fn reap() {
    let Some(state) = record() else {
        return;
    };
    let gone = |p: &Port| {
        let Some(entry) = state.namespaces.get(&p.ns) else {
            return false;
        };
        let (Some(pid), Some(stamp)) = (entry.pid, entry.stamp) else {
            return false;
        };
        p.runtime.is_some()
            && crate::host::netns_of_pid(pid).map_or(true, |id| id != (stamp.dev, stamp.ino))
    };
    let dead: Vec<(&str, &str, &crate::model::validate::IfName)> = (state.bridges.values())
        .flat_map(|b| &b.ports)
        .filter(|p| gone(p))
        .filter_map(|p| {
            let a = p.runtime.as_ref()?;
            Some((a.network.as_str(), a.container.as_str(), &p.ifname))
        })
        .collect();
    for (network, container, ifname) in dead {
        let build = |h: &_, s: &State| attach::del(network, container, ifname, h, s);
        if let Err(err) = apply(&global(), &mut System::cached(), FIREWALL, build) {
            eprintln!(
                "nsnet: warning: container `{container}` is gone but its attachment stays for now: {err:#}"
            );
        }
    }
}
