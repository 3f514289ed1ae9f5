//! `route`: routes inside a namespace, as the second tutorial adds one to
//! the LAN before any default route. Each goes through a gateway on one of
//! the networks nsnet gave the namespace (a bridge's subnet, a cable's), is
//! recorded, and goes when its network or its namespace goes (`release`).

use super::Change;
use crate::host::Host;
use crate::model::state::{Dest, NsRoute, State};
use crate::model::validate::NsName;
use crate::plan::{Step, teardown};
use anyhow::{Result, bail};
use std::net::IpAddr;

/// The step that adds `route`.
pub fn add_step(route: &NsRoute) -> Step {
    Step::new(
        route.cmd("add"),
        format!(
            "In {}, send packets for {} to {}, a neighbour on one of its networks, which forwards them.",
            route.ns, route.to, route.via
        ),
    )
    .undo(route.cmd("del"))
}

/// The step that removes `route`.
pub fn remove_step(route: &NsRoute) -> Step {
    teardown(
        route.cmd("del"),
        &[add_step(route)],
        format!(
            "In {}, forget the route to {} via {}.",
            route.ns, route.to, route.via
        ),
    )
}

/// Whether `route` is in its namespace, as read (`host.inside`, which holds
/// every namespace the record has routes in); `None` when not read.
pub fn live(route: &NsRoute, host: &Host) -> Option<bool> {
    let netns = host.inside.get(route.ns.as_str())?;
    let dest = |dst: &str| -> Option<Dest> {
        match dst {
            "default" => Some(Dest::Default),
            _ => match dst.parse::<ipnet::IpNet>() {
                Ok(net) => Some(Dest::Net(net)),
                Err(_) => Some(Dest::Net(dst.parse::<IpAddr>().ok()?.into())),
            },
        }
    };
    Some(
        netns
            .routes
            .iter()
            .any(|r| r.gateway == Some(route.via) && dest(&r.dst) == Some(route.to)),
    )
}

/// `route add NS DEST via GW`.
pub fn add(ns: &NsName, to: Dest, via: IpAddr, host: &Host, state: &State) -> Result<Change> {
    let mut change = Change::from(state);
    if !host.has_ns(ns.as_str()) {
        bail!(
            "namespace `{ns}` does not exist (make it with `nsnet netns add {ns}` or `nsnet bridge up {ns}`)"
        );
    }
    if !to.fits(via) {
        bail!(
            "`{to}` and gateway `{via}` are of different families: a route goes through a gateway of its own family"
        );
    }
    let networks = state.networks_of(ns);
    if networks.is_empty() {
        bail!(
            "namespace `{ns}` is on no network of nsnet's, so no gateway is in reach (put it on one with `nsnet bridge up {ns}` or `nsnet veth add`)"
        );
    }
    if !networks.iter().any(|(net, _)| net.contains(&via)) {
        let list: Vec<String> = networks
            .iter()
            .map(|(net, ifname)| format!("{net} on {ifname}"))
            .collect();
        bail!(
            "gateway `{via}` is on no network of `{ns}` ({}): a route goes through a neighbour on one of them",
            list.join(", ")
        );
    }
    let own = own_address(state, ns, via) || networks.iter().any(|(net, _)| net.network() == via);
    if own {
        bail!(
            "gateway `{via}` is `{ns}`'s own address or its network's: name a neighbour on it (its gateway, another namespace)"
        );
    }
    let route = NsRoute {
        ns: ns.clone(),
        to,
        via,
    };
    let same_dest = |r: &&NsRoute| &r.ns == ns && r.to == to && r.via.is_ipv4() == via.is_ipv4();
    match state.routes.iter().find(same_dest) {
        // Recorded: nothing to do, unless it went from the namespace (an
        // interface taken down and up drops its routes): then add it again.
        Some(r) if r.via == via => {
            if live(r, host) == Some(false) {
                change.plan.push(add_step(r));
            }
            return Ok(change);
        }
        Some(r) => bail!(
            "`{ns}` already has a route to {to} via {} (remove it with `nsnet route del {ns} {to}` first)",
            r.via
        ),
        None => {}
    }
    if to == Dest::Default
        && let Some((bridge, gateway)) = port_default(state, ns, via)
    {
        bail!(
            "`{ns}` already has a default route via {gateway}, from bridge `{bridge}` (remove it with `nsnet route del {ns} default`, or put it on the bridge with --no-default-route)"
        );
    }
    change.plan.push(add_step(&route));
    change.state.routes.push(route);
    Ok(change)
}

/// `route del NS DEST`: the route nsnet added, or the default route a
/// bridge port gave the namespace (the port then has none).
pub fn del(ns: &NsName, to: Dest, host: &Host, state: &State) -> Result<Change> {
    let mut change = Change::from(state);
    let present = host.has_ns(ns.as_str());
    let mine: Vec<NsRoute> = state
        .routes
        .iter()
        .filter(|r| &r.ns == ns && r.to == to)
        .cloned()
        .collect();
    for route in &mine {
        if present && live(route, host) != Some(false) {
            change.plan.push(remove_step(route));
        }
        change.state.routes.retain(|r| r != route);
    }
    let mut from_port = false;
    if to == Dest::Default {
        for (name, bridge) in change.state.bridges.iter_mut() {
            let Some(port) = bridge
                .ports
                .iter_mut()
                .find(|p| &p.ns == ns && p.default_route)
            else {
                continue;
            };
            port.default_route = false;
            from_port = true;
            let mut gateways = vec![IpAddr::V4(bridge.gateway)];
            gateways.extend(bridge.ipv6.map(|n| IpAddr::V6(n.gateway)));
            if present {
                for via in gateways {
                    let route = NsRoute {
                        ns: ns.clone(),
                        to,
                        via,
                    };
                    if live(&route, host) != Some(false) {
                        change.plan.push(remove_step(&route));
                    }
                }
            }
            change.notes.push(format!(
                "`{ns}` no longer has the default route its port on `{name}` gave it"
            ));
        }
    }
    if mine.is_empty() && !from_port {
        change.notes.push(format!(
            "`{ns}` has no route to {to} from nsnet; nothing to do"
        ));
    }
    Ok(change)
}

/// Whether `addr` is one of the addresses nsnet gave `ns`.
fn own_address(state: &State, ns: &NsName, addr: IpAddr) -> bool {
    let ports = state.bridges.values().flat_map(|b| &b.ports);
    let port = ports
        .filter(|p| &p.ns == ns)
        .any(|p| IpAddr::V4(p.address) == addr || p.address6.map(IpAddr::V6) == Some(addr));
    // A cable's first end has its subnet's first address, the other the next.
    let cable = state.cables.iter().any(|c| {
        [(&c.a, 0usize), (&c.b, 1)].into_iter().any(|(end, k)| {
            end.ns() == Some(ns.as_str())
                && (c.subnet.and_then(|n| n.hosts().nth(k)).map(IpAddr::V4) == Some(addr)
                    || c.subnet6
                        .map(|n| IpAddr::V6(crate::model::validate::nth6(n, k as u128 + 1)))
                        == Some(addr))
        })
    });
    port || cable
}

/// The bridge whose port gave `ns` its default route in `via`'s family, and
/// that route's gateway.
fn port_default(state: &State, ns: &NsName, via: IpAddr) -> Option<(String, IpAddr)> {
    state.bridges.iter().find_map(|(name, b)| {
        b.ports.iter().find(|p| &p.ns == ns && p.default_route)?;
        let gateway = match via {
            IpAddr::V4(_) => IpAddr::V4(b.gateway),
            IpAddr::V6(_) => IpAddr::V6(b.ipv6?.gateway),
        };
        Some((name.to_string(), gateway))
    })
}
