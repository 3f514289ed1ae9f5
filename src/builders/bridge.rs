//! `bridge`: a Linux bridge with the gateway address, and namespaces plugged
//! into it through veth pairs, each with an address and a default route.

use super::release::release;
use super::{Change, netns};
use crate::host::Host;
use crate::model::names;
use crate::model::state::{Bridge, Found, Port, State};
use crate::model::validate::{IfName, InputError, NsName};
use crate::plan::cmd::Cmd;
use crate::plan::{Step, host_first, teardown};
use anyhow::{Result, bail};
use ipnet::Ipv4Net;
use std::net::Ipv4Addr;

/// Where nsnet looks for a free /24 when no --subnet is given, in order.
const POOLS: [(Ipv4Addr, u8); 3] = [
    (Ipv4Addr::new(10, 200, 0, 0), 16),
    (Ipv4Addr::new(172, 30, 0, 0), 16),
    (Ipv4Addr::new(192, 168, 200, 0), 21),
];

/// The steps that make bridge `name` with its gateway address, up.
pub fn create_steps(name: &IfName, bridge: &Bridge) -> Vec<Step> {
    let br = name.as_str();
    let gw = format!("{}/{}", bridge.gateway, bridge.subnet.prefix_len());
    vec![
        Step::new(
            Cmd::ip(["link", "add", br, "type", "bridge"]),
            format!(
                "Create bridge {br}: a virtual switch for the namespaces and, at the same time,\n\
                 an interface of the host (the tutorials' \"double role\")."
            ),
        )
        .undo(Cmd::ip(["link", "del", br])),
        Step::new(
            Cmd::ip(["addr", "add", &gw, "dev", br]),
            format!(
                "Give the host's side of the bridge the subnet's first address, {}: the gateway\n\
                 of the namespaces. The /{} prefix adds a link-scope route on the host: all of\n\
                 {} is reached directly through {br}, with no router in between.",
                bridge.gateway,
                bridge.subnet.prefix_len(),
                bridge.subnet
            ),
        ),
        Step::new(
            Cmd::ip(["link", "set", br, "up"]),
            format!("Bring {br} up: a bridge forwards nothing while it is down."),
        ),
    ]
}

/// The steps that plug `port` into bridge `name`.
pub fn port_steps(name: &IfName, bridge: &Bridge, port: &Port) -> Vec<Step> {
    let (br, ns, ifname, host_if) = (
        name.as_str(),
        port.ns.as_str(),
        port.ifname.as_str(),
        port.host_ifname.as_str(),
    );
    let addr = format!("{}/{}", port.address, bridge.subnet.prefix_len());
    let gw = bridge.gateway.to_string();
    let mut steps = vec![
        Step::new(
            Cmd::ip(["link", "add", host_if, "type", "veth", "peer", "name", ifname, "netns", ns]),
            format!(
                "Make a veth pair, a virtual cable: {host_if} stays on the host, its other end goes\n\
                 straight into {ns} and is named {ifname} there."
            ),
        )
        .undo(Cmd::ip(["link", "del", host_if])),
        Step::new(
            Cmd::ip(["link", "set", host_if, "master", br]),
            format!("Plug the host end into {br}, like a cable into a switch port."),
        ),
        Step::new(
            Cmd::ip(["link", "set", host_if, "up"]),
            "Bring the host end up so that the bridge passes frames through it.",
        ),
        Step::new(
            Cmd::ip_in(Some(ns), ["addr", "add", &addr, "dev", ifname]),
            format!(
                "Give {ns} its address on the bridge's subnet. The /{} prefix adds a link-scope\n\
                 route in {ns}: every address of {} is reached directly through {ifname}.",
                bridge.subnet.prefix_len(),
                bridge.subnet
            ),
        ),
        Step::new(
            Cmd::ip_in(Some(ns), ["link", "set", ifname, "up"]),
            format!("Bring {ifname} up inside {ns}."),
        ),
    ];
    if port.default_route {
        steps.push(Step::new(
            Cmd::ip_in(Some(ns), ["route", "add", "default", "via", &gw]),
            format!(
                "Send everything outside the subnet to the gateway, the host's address on {br}:\n\
                 the host then routes it on (and `nsnet nat up` lets it reach the outside)."
            ),
        ));
    }
    steps
}

/// The step that unplugs `port`: deleting the host end takes the whole pair,
/// and the namespace's address and routes on it, with it.
pub fn detach_step(name: &IfName, bridge: &Bridge, port: &Port) -> Step {
    teardown(
        Cmd::ip(["link", "del", port.host_ifname.as_str()]),
        &port_steps(name, bridge, port),
        format!(
            "Unplug {} from {name}: deleting one end of a veth pair deletes both, and with {} go\n\
             its address and routes.",
            port.ns, port.ifname
        ),
    )
}

/// Arguments of `bridge up`, parsed.
pub struct Up<'a> {
    pub bridge: &'a IfName,
    pub subnet: Option<Ipv4Net>,
    pub ifname: &'a IfName,
    pub namespaces: &'a [NsName],
}

/// `bridge up`: makes whatever of the bridge, namespaces and ports is missing.
pub fn up(args: &Up, host: &Host, state: &State) -> Result<Change> {
    let mut change = Change::from(state);
    let name = args.bridge;
    let mut bridge = match state.bridges.get(name) {
        Some(bridge) => existing(args, bridge, host)?,
        None => {
            let bridge = new_bridge(args, host, state)?;
            change.plan.extend(create_steps(name, &bridge));
            bridge
        }
    };
    forget_stale_ports(&mut change, &mut bridge, args.namespaces, host);
    let wanted = joining(args, &bridge, state)?;
    let addresses = allocate(&bridge, wanted.len())?;
    let mark = change.plan.steps.len();
    for (ns, address) in wanted.into_iter().zip(addresses) {
        let host_ifname = names::port(ns, args.ifname);
        if host.links.contains_key(host_ifname.as_str()) {
            bail!(
                "interface `{host_ifname}`, which nsnet would use for `{ns}`, already exists on the host (remove it, or rename the namespace)"
            );
        }
        netns::ensure(&mut change, host, ns)?;
        // A namespace has one default route: through its first bridge.
        let default_route = !state
            .bridges
            .iter()
            .any(|(other, b)| other != name && b.ports.iter().any(|p| &p.ns == ns));
        let port = Port {
            ns: ns.clone(),
            ifname: args.ifname.clone(),
            host_ifname,
            address,
            default_route,
            ifindex: None,
        };
        change.plan.extend(port_steps(name, &bridge, &port));
        bridge.ports.push(port);
    }
    // One host batch, then one per namespace (see `host_first`).
    let ports = change.plan.steps.split_off(mark);
    change.plan.extend(host_first(ports));
    change.state.bridges.insert(name.clone(), bridge);
    Ok(change)
}

/// A bridge nsnet made before: the same subnet, and still on the host.
fn existing(args: &Up, bridge: &Bridge, host: &Host) -> Result<Bridge> {
    let name = args.bridge;
    if args.subnet.is_some_and(|s| s != bridge.subnet) {
        bail!(InputError::SubnetInUse {
            bridge: name.clone(),
            subnet: bridge.subnet,
        });
    }
    owned(name, bridge, host)?;
    Ok(bridge.clone())
}

/// Refuses to change bridge `name` unless it is the very one nsnet made.
pub fn owned(name: &IfName, bridge: &Bridge, host: &Host) -> Result<()> {
    match host.link(name.as_str(), bridge.ifindex) {
        Found::Ours => Ok(()),
        // Made by this very plan (`bridge up --nat`): not on the host yet.
        Found::Gone if bridge.ifindex.is_none() => Ok(()),
        Found::Gone => bail!(
            "bridge `{name}` was made by nsnet but is gone from the host (run `nsnet bridge down --bridge {name}` to clear it)"
        ),
        Found::Other => bail!(
            "bridge `{name}` is not the bridge nsnet made (deleted and made again by hand?): nsnet leaves it alone; `nsnet forget {name}` drops it from the record"
        ),
    }
}

/// A new bridge: a name no interface has, the subnet asked for (if free) or
/// the first free default one, its first address as the gateway.
fn new_bridge(args: &Up, host: &Host, state: &State) -> Result<Bridge> {
    let name = args.bridge;
    if host.links.contains_key(name.as_str()) {
        bail!(
            "interface `{name}` exists and was not created by nsnet (choose another --bridge name)"
        );
    }
    let subnet = match args.subnet {
        Some(subnet) => {
            check_free(subnet, host, state)?;
            subnet
        }
        None => choose_subnet(host, state)?,
    };
    let gateway = subnet.hosts().next().expect("a /30 or larger has hosts");
    Ok(Bridge {
        subnet,
        gateway,
        ports: Vec::new(),
        nat: None,
        published: Vec::new(),
        ifindex: None,
    })
}

/// A port whose veth is gone (deleted by hand, or with its namespace) is
/// stale: forgets it, so the namespace is plugged in afresh.
fn forget_stale_ports(change: &mut Change, bridge: &mut Bridge, names: &[NsName], host: &Host) {
    for ns in names {
        let stale =
            |p: &Port| &p.ns == ns && host.link(p.host_ifname.as_str(), p.ifindex) != Found::Ours;
        if bridge.ports.iter().any(stale) {
            change.notes.push(match host.has_ns(ns.as_str()) {
                true => format!(
                    "`{ns}`'s cable to the bridge was removed by hand; plugging it in again"
                ),
                false => format!("namespace `{ns}` was deleted by hand; making it again"),
            });
            bridge.ports.retain(|p| !stale(p));
        }
    }
}

/// The namespaces of `args` not yet on the bridge, each once, in order;
/// refuses one that has the interface name on another bridge already.
fn joining<'a>(args: &Up<'a>, bridge: &Bridge, state: &State) -> Result<Vec<&'a NsName>> {
    let mut wanted: Vec<&NsName> = Vec::new();
    for ns in args.namespaces {
        if wanted.contains(&ns) || bridge.ports.iter().any(|p| &p.ns == ns) {
            continue;
        }
        if let Some((other, _)) = state
            .port_named(ns, args.ifname)
            .filter(|(b, _)| *b != args.bridge)
        {
            bail!(
                "namespace `{ns}` already has `{}` on bridge `{other}` (use --ifname to give it another interface)",
                args.ifname
            );
        }
        wanted.push(ns);
    }
    Ok(wanted)
}

/// `bridge down`: unplugs `namespaces`, or with none, removes the whole bridge.
pub fn down(
    name: &IfName,
    namespaces: &[NsName],
    force: bool,
    host: &Host,
    state: &State,
) -> Result<Change> {
    let mut change = Change::from(state);
    let Some(bridge) = state.bridges.get(name) else {
        if host.links.contains_key(name.as_str()) {
            bail!("bridge `{name}` was not created by nsnet, which removes only what it made");
        }
        return Ok(change);
    };
    let ports: Vec<(IfName, Port)> = bridge
        .ports
        .iter()
        .filter(|p| namespaces.is_empty() || namespaces.contains(&p.ns))
        .map(|p| (name.clone(), p.clone()))
        .collect();
    for ns in namespaces {
        if !ports.iter().any(|(_, p)| &p.ns == ns) {
            change.notes.push(format!(
                "namespace `{ns}` is not on bridge `{name}`; nothing to do for it"
            ));
        }
    }
    release(&mut change, host, &ports, &[], &[], force)?;
    if namespaces.is_empty() {
        remove(&mut change, host, name);
    }
    Ok(change)
}

/// Deletes bridge `name`, whose ports are gone, and forgets it.
pub fn remove(change: &mut Change, host: &Host, name: &IfName) {
    let Some(bridge) = change.state.bridges.remove(name) else {
        return;
    };
    match host.link(name.as_str(), bridge.ifindex) {
        Found::Ours => {}
        Found::Gone => return,
        Found::Other => {
            // Kept, bare, for `nsnet forget`: what nsnet served through it
            // (its NAT, published ports) goes all the same.
            change
                .notes
                .push(super::release::impostor("bridge", name.as_str()));
            let bare = Bridge {
                ports: Vec::new(),
                nat: None,
                published: Vec::new(),
                ..bridge
            };
            change.state.bridges.insert(name.clone(), bare);
            return;
        }
    }
    change.plan.push(teardown(
        Cmd::ip(["link", "del", name.as_str()]),
        &create_steps(name, &bridge),
        format!(
            "Delete bridge {name}; its gateway address and the route to its subnet go with it."
        ),
    ));
}

/// The first /24 of the pools that overlaps no route and no nsnet bridge.
fn choose_subnet(host: &Host, state: &State) -> Result<Ipv4Net> {
    for (base, prefix) in POOLS {
        let pool = Ipv4Net::new(base, prefix).expect("valid pool");
        for subnet in pool.subnets(24).expect("pools are wider than /24") {
            if check_free(subnet, host, state).is_ok() {
                return Ok(subnet);
            }
        }
    }
    bail!(
        "no free /24 left in 10.200.0.0/16, 172.30.0.0/16 or 192.168.200.0/21 (give one with --subnet)"
    )
}

/// Refuses a subnet that overlaps a host route or another nsnet bridge.
fn check_free(subnet: Ipv4Net, host: &Host, state: &State) -> Result<(), InputError> {
    let overlaps =
        |net: &Ipv4Net| net.contains(&subnet.network()) || subnet.contains(&net.network());
    let taken = host
        .routes
        .iter()
        .map(|r| r.dst)
        .chain(state.bridges.values().map(|b| b.subnet));
    for route in taken {
        if overlaps(&route) {
            return Err(InputError::Overlap { subnet, route });
        }
    }
    Ok(())
}

/// The `n` lowest free host addresses of the bridge's subnet after the gateway.
fn allocate(bridge: &Bridge, n: usize) -> Result<Vec<Ipv4Addr>, InputError> {
    let used = |a: &Ipv4Addr| *a == bridge.gateway || bridge.ports.iter().any(|p| p.address == *a);
    let free: Vec<Ipv4Addr> = bridge.subnet.hosts().filter(|a| !used(a)).take(n).collect();
    if free.len() < n {
        let room = bridge.subnet.hosts().count() as u64 - 1;
        return Err(InputError::SubnetFull {
            subnet: bridge.subnet,
            room,
            wanted: (bridge.ports.len() + n) as u64,
        });
    }
    Ok(free)
}
