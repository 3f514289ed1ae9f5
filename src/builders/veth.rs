//! `veth`: a cable (veth pair) straight between two namespaces, or between a
//! namespace and the host, with addresses from an optional subnet.

use super::release::release;
use super::{Change, netns};
use crate::host::Host;
use crate::model::names;
use crate::model::state::{Cable, State};
use crate::model::validate::{self, CableEnd, End, IfName, InputError, NsName};
use crate::plan::cmd::Cmd;
use crate::plan::{Step, teardown};
use anyhow::{Result, bail};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// The steps that lay `cable` and configure both its ends.
pub fn cable_steps(cable: &Cable) -> Vec<Step> {
    let (a, b) = (&cable.a, &cable.b);
    let (a_if, b_if) = (cable.a_ifname.as_str(), cable.b_ifname.as_str());
    // Make the pair from one side and move the peer to the other in the same
    // call; the host has no name to move a peer into, so start from the host.
    let (side, near, far, far_ns) = match (a.ns(), b.ns()) {
        (None, Some(b_ns)) => (None, a_if, b_if, b_ns),
        (Some(a_ns), None) => (None, b_if, a_if, a_ns),
        (Some(a_ns), Some(b_ns)) => (Some(a_ns), a_if, b_if, b_ns),
        (None, None) => unreachable!("a cable has a namespace at one end at least"),
    };
    let mut steps = vec![
        Step::new(
            Cmd::ip_in(side, ["link", "add", near, "type", "veth", "peer", "name", far, "netns", far_ns]),
            format!(
                "Make a veth pair, a virtual cable with an end in {a} ({a_if}) and one in {b} ({b_if}):\n\
                 what goes in one end comes out of the other."
            ),
        )
        .undo(Cmd::ip_in(side, ["link", "del", near])),
    ];
    if let Some(subnet) = cable.subnet {
        let mut hosts = subnet.hosts();
        for (end, ifname) in [(a, a_if), (b, b_if)] {
            let addr = format!(
                "{}/{}",
                hosts.next().expect("a /30 has two hosts"),
                subnet.prefix_len()
            );
            steps.push(Step::new(
                Cmd::ip_in(end.ns(), ["addr", "add", &addr, "dev", ifname]),
                format!(
                    "Address {ifname} in {end}. The /{} prefix adds a link-scope route: the other end's\n\
                     address on {subnet} is reached directly through the cable.",
                    subnet.prefix_len()
                ),
            ));
        }
    }
    if let Some(subnet6) = cable.subnet6 {
        for (k, (end, ifname)) in [(a, a_if), (b, b_if)].into_iter().enumerate() {
            let addr = format!(
                "{}/{}",
                validate::nth6(subnet6, k as u128 + 1),
                subnet6.prefix_len()
            );
            steps.push(Step::new(
                Cmd::ip_in(end.ns(), ["addr", "add", &addr, "dev", ifname, "nodad"]),
                format!(
                    "The IPv6 address of {ifname} in {end} on {subnet6}, usable at once (`nodad`: no\n\
                     duplicate address detection; nsnet chose it and knows it is unique)."
                ),
            ));
        }
    }
    for (end, ifname) in [(a, a_if), (b, b_if)] {
        steps.push(Step::new(
            Cmd::ip_in(end.ns(), ["link", "set", ifname, "up"]),
            format!("Bring {ifname} up in {end}: a veth carries traffic only with both ends up."),
        ));
    }
    steps
}

/// The step that removes `cable`: deleting one end deletes both.
pub fn remove_step(cable: &Cable) -> Step {
    let (end, ifname, _) = cable.cut_end();
    teardown(
        Cmd::ip_in(end.ns(), ["link", "del", ifname.as_str()]),
        &cable_steps(cable),
        format!(
            "Remove the cable between {} and {}: deleting one end of a veth pair deletes both.",
            cable.a, cable.b
        ),
    )
}

/// `veth add A B`: a cable whose ends nsnet names (`vc-PEER`).
pub fn add(
    a: &End,
    b: &End,
    subnet: Option<Ipv4Net>,
    subnet6: Option<Ipv6Net>,
    host: &Host,
    state: &State,
) -> Result<Change> {
    let end = |e: &End| CableEnd {
        end: e.clone(),
        ifname: None,
    };
    add_named(&end(a), &end(b), subnet, subnet6, host, state)
}

/// `veth add A[:IF] B[:IF]`: lays a cable between `a` and `b`, creating
/// missing namespaces; a namespace's end takes the name asked for, or
/// `vc-PEER`.
pub fn add_named(
    a_end: &CableEnd,
    b_end: &CableEnd,
    subnet: Option<Ipv4Net>,
    subnet6: Option<Ipv6Net>,
    host: &Host,
    state: &State,
) -> Result<Change> {
    let (a, b) = (&a_end.end, &b_end.end);
    let a_ifname = a_end.ifname.clone().unwrap_or_else(|| names::cable(b));
    let b_ifname = b_end.ifname.clone().unwrap_or_else(|| names::cable(a));
    let mut change = Change::from(state);
    if a == b {
        bail!(InputError::SameEnds(a.to_string()));
    }
    // A cable with an end in a namespace deleted by hand went with it.
    let gone = |e: &End| e.ns().is_some_and(|n| !host.has_ns(n));
    if let Some(existing) = state.cables.iter().find(|c| c.joins(a, b)) {
        if gone(&existing.a) || gone(&existing.b) {
            change.notes.push(format!(
                "the cable between `{a}` and `{b}` was broken by hand; laying it again"
            ));
            change.state.cables.retain(|c| !c.joins(a, b));
        } else if existing.subnet == subnet
            && existing.subnet6 == subnet6
            && [a_end, b_end].into_iter().all(|e| {
                e.ifname
                    .as_ref()
                    .is_none_or(|name| existing.ifname_at(&e.end) == Some(name))
            })
        {
            // The same cable, each end named as asked (or not asked).
            return Ok(change);
        } else if existing.subnet == subnet && existing.subnet6 == subnet6 {
            bail!(
                "a cable between `{a}` and `{b}` already exists with ends named `{}` and `{}` (remove it with `nsnet veth del {a} {b}` first)",
                existing.a_ifname,
                existing.b_ifname
            );
        } else {
            bail!(
                "a cable between `{a}` and `{b}` already exists with another subnet (remove it with `nsnet veth del {a} {b}` first)"
            );
        }
    }
    for (end, ifname) in [(a, &a_ifname), (b, &b_ifname)] {
        if let End::Ns(ns) = end
            && let Some(holder) = holder(&change.state, ns, ifname)
        {
            bail!(
                "namespace `{ns}` already has `{ifname}` ({holder}): name this end otherwise, as `{ns}:eth1`"
            );
        }
    }
    let cable = Cable {
        a: a.clone(),
        b: b.clone(),
        a_ifname,
        b_ifname,
        subnet,
        subnet6,
        a_index: None,
        b_index: None,
    };
    if subnet6.is_some() && !host.ipv6 {
        bail!(InputError::NoIpv6);
    }
    for (end, ifname) in [(a, &cable.a_ifname), (b, &cable.b_ifname)] {
        match end {
            End::Host => host_end_free(ifname, subnet, subnet6, host)?,
            End::Ns(ns) => {
                netns::ensure(&mut change, host, ns)?;
            }
        }
    }
    change.plan.extend(cable_steps(&cable));
    change.state.cables.push(cable);
    Ok(change)
}

/// What in the record already has interface `ifname` in namespace `ns`: a
/// port on a bridge, or a cable's end.
fn holder(state: &State, ns: &NsName, ifname: &IfName) -> Option<String> {
    let port = state.bridges.iter().find_map(|(name, b)| {
        b.ports
            .iter()
            .any(|p| &p.ns == ns && &p.ifname == ifname)
            .then(|| format!("its port on bridge `{name}`"))
    });
    let cable = || {
        state.cables.iter().find_map(|c| {
            let ends = [(&c.a, &c.a_ifname, &c.b), (&c.b, &c.b_ifname, &c.a)];
            ends.into_iter()
                .any(|(end, name, _)| end.ns() == Some(ns.as_str()) && name == ifname)
                .then(|| format!("its cable between `{}` and `{}`", c.a, c.b))
        })
    };
    port.or_else(cable)
}

/// The host end of a cable needs a free interface name and, with a subnet,
/// one that overlaps no route of the host.
fn host_end_free(
    ifname: &IfName,
    subnet: Option<Ipv4Net>,
    subnet6: Option<Ipv6Net>,
    host: &Host,
) -> Result<()> {
    if host.links.contains(ifname.as_str()) {
        bail!(
            "interface `{ifname}` already exists on the host (remove it, or rename the namespace)"
        );
    }
    let routes = host.routes.iter().map(|r| IpNet::V4(r.dst));
    let routes = routes.chain(host.routes6.get().dests.iter().map(|r| IpNet::V6(*r)));
    let wanted = subnet
        .map(IpNet::V4)
        .into_iter()
        .chain(subnet6.map(IpNet::V6));
    for subnet in wanted {
        validate::free_of(subnet, routes.clone())?;
    }
    Ok(())
}

/// `veth del`: removes the cable between `a` and `b`, and the namespaces
/// nsnet made only for it.
pub fn del(a: &End, b: &End, force: bool, host: &Host, state: &State) -> Result<Change> {
    let mut change = Change::from(state);
    let cables: Vec<Cable> = state
        .cables
        .iter()
        .filter(|c| c.joins(a, b))
        .cloned()
        .collect();
    if cables.is_empty() {
        change.notes.push(format!(
            "there is no cable between `{a}` and `{b}`; nothing to do"
        ));
    }
    release(&mut change, host, &[], &cables, &[], force)?;
    Ok(change)
}
