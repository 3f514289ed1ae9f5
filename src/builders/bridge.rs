//! `bridge`: a Linux bridge with the gateway address, and namespaces plugged
//! into it through veth pairs, each with an address and a default route.

use super::release::release;
use super::{Change, netns};
use crate::host::Host;
use crate::model::names;
use crate::model::state::{Bridge, Found, Net6, Port, State, replaced};
use crate::model::validate::{self, IfName, InputError, NsAddress, NsName, nth6};
use crate::plan::cmd::Cmd;
use crate::plan::{Step, host_first, teardown};
use anyhow::{Result, bail};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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
    let mac = names::bridge_mac(name);
    let mut steps = vec![
        Step::new(
            Cmd::ip(["link", "add", br, "address", &mac, "type", "bridge"]),
            format!(
                "Create bridge {br}: a virtual switch for the namespaces and, at the same time,\n\
                 an interface of the host (the tutorials' \"double role\"). Its MAC address is\n\
                 fixed: left to itself a bridge takes the lowest of its ports' and changes when\n\
                 a lower one joins, and where br_netfilter is loaded (any Docker host) frames\n\
                 still sent to the old one are dropped: the namespaces would lose their gateway."
            ),
        )
        .undo(Cmd::ip(["link", "del", br])),
        Step::new(
            Cmd::ip(["addr", "add", &gw, "dev", br]),
            format!(
                "Give the host's side of the bridge {}, {}: the gateway\n\
                 of the namespaces. The /{} prefix adds a link-scope route on the host: all of\n\
                 {} is reached directly through {br}, with no router in between.",
                match bridge.subnet.hosts().next() == Some(bridge.gateway) {
                    true => "the subnet's first address",
                    false => "the address asked for",
                },
                bridge.gateway,
                bridge.subnet.prefix_len(),
                bridge.subnet
            ),
        ),
        Step::new(
            Cmd::ip(["link", "set", br, "up"]),
            format!("Bring {br} up: a bridge forwards nothing while it is down."),
        ),
    ];
    if let Some(net6) = bridge.ipv6 {
        let gw6 = format!("{}/{}", net6.gateway, net6.subnet.prefix_len());
        steps.insert(
            2,
            Step::new(
                Cmd::ip(["addr", "add", &gw6, "dev", br, "nodad"]),
                format!(
                    "The host's IPv6 address on {br}, {}: the namespaces' IPv6 gateway. `nodad` skips\n\
                     duplicate address detection, which would keep the address \"tentative\" (unusable)\n\
                     for a second or more: nsnet chose it and knows it is unique.",
                    net6.gateway
                ),
            ),
        );
    }
    steps
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
    let v6 = bridge.ipv6.zip(port.address6);
    if let Some((net6, address6)) = v6 {
        let addr6 = format!("{address6}/{}", net6.subnet.prefix_len());
        steps.insert(
            4,
            Step::new(
                Cmd::ip_in(Some(ns), ["addr", "add", &addr6, "dev", ifname, "nodad"]),
                format!(
                    "And its IPv6 address on {}, usable at once (`nodad`: no duplicate address\n\
                     detection, which hairpin mode can fool into calling it a duplicate).",
                    net6.subnet
                ),
            ),
        );
    }
    if port.default_route {
        steps.push(Step::new(
            Cmd::ip_in(Some(ns), ["route", "add", "default", "via", &gw]),
            format!(
                "Send everything outside the subnet to the gateway, the host's address on {br}:\n\
                 the host then routes it on (and `nsnet nat up` lets it reach the outside)."
            ),
        ));
        if let Some((net6, _)) = v6 {
            let gw6 = net6.gateway.to_string();
            steps.push(Step::new(
                Cmd::ip_in(Some(ns), ["-6", "route", "add", "default", "via", &gw6]),
                "The same for IPv6: everything outside the IPv6 subnet goes to the host's address.",
            ));
        }
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
    /// An IPv6 subnet: dual stack.
    pub subnet6: Option<Ipv6Net>,
    /// Dual stack with a ULA /64 nsnet chooses (when `subnet6` is `None`).
    pub ipv6: bool,
    pub ifname: &'a IfName,
    /// Whether `ifname` was asked for (`--ifname`), not the default `eth0`.
    pub ifname_given: bool,
    pub namespaces: &'a [NsName],
    /// The host's address on a new bridge (`--gateway`), per family;
    /// `None`: the subnet's first.
    pub gateway: Option<Ipv4Addr>,
    pub gateway6: Option<Ipv6Addr>,
    /// Addresses asked for namespaces (`--address NS=IP`).
    pub addresses: &'a [NsAddress],
    /// Whether new ports give their namespace a default route (the first
    /// port of a namespace does, unless `--no-default-route`).
    pub default_route: bool,
}

impl<'a> Up<'a> {
    /// `bridge up NS... --bridge BRIDGE --ifname IFNAME`, no other option.
    pub fn plain(bridge: &'a IfName, ifname: &'a IfName, namespaces: &'a [NsName]) -> Up<'a> {
        Up {
            bridge,
            subnet: None,
            subnet6: None,
            ipv6: false,
            ifname,
            ifname_given: false,
            namespaces,
            gateway: None,
            gateway6: None,
            addresses: &[],
            default_route: true,
        }
    }
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
            for (other, b) in &state.bridges {
                change.notes.push(format!(
                    "`{name}` and `{other}` are isolated: their namespaces cannot open connections to each other's (`nsnet firewall allow --bridge {name} {}` opens the way from {name} to {other})",
                    b.subnet
                ));
            }
            bridge
        }
    };
    forget_stale_ports(&mut change, &mut bridge, args.namespaces, host);
    let wanted = joining(args, &bridge, state)?;
    let chosen = chosen(args, &bridge)?;
    let addresses = allocate(&bridge, &wanted, &chosen)?;
    let addresses6 = allocate6(&bridge, &wanted, &chosen)?;
    let mark = change.plan.steps.len();
    for ((ns, address), address6) in wanted.into_iter().zip(addresses).zip(addresses6) {
        // Only a namespace nsnet did not make is read and deferred to.
        let foreign = state.namespaces.get(ns).is_none_or(|e| e.pid.is_some());
        let inside = host.inside.get(ns.as_str()).filter(|_| foreign);
        let ifname = port_ifname(args, ns, inside, &mut change.notes)?;
        let host_ifname = names::port(ns, &ifname);
        if host.links.contains(host_ifname.as_str()) {
            bail!(
                "interface `{host_ifname}`, which nsnet would use for `{ns}`, already exists on the host (remove it, or rename the namespace)"
            );
        }
        netns::ensure(&mut change, host, ns)?;
        // A namespace has one default route: through its first bridge.
        let mut default_route = args.default_route
            && !state
                .bridges
                .iter()
                .any(|(other, b)| other != name && b.ports.iter().any(|p| &p.ns == ns));
        // A namespace nsnet did not make (a container's) keeps its own.
        let own = inside.and_then(|live| {
            live.routes
                .iter()
                .find(|r| r.dst == "default" && r.table.is_none())
        });
        if let Some(route) = own.filter(|_| default_route) {
            default_route = false;
            change.notes.push(format!(
                "`{ns}` keeps its own default route ({route}); nsnet adds only the route to {}",
                bridge.subnet
            ));
        }
        let port = Port {
            ns: ns.clone(),
            ifname,
            host_ifname,
            address,
            address6,
            default_route,
            ifindex: None,
            runtime: None,
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
            subnet: bridge.subnet.into(),
        });
    }
    match bridge.ipv6 {
        Some(net6) if args.subnet6.is_some_and(|s| s != net6.subnet) => {
            bail!(InputError::SubnetInUse {
                bridge: name.clone(),
                subnet: net6.subnet.into(),
            })
        }
        None if args.subnet6.is_some() || args.ipv6 => bail!(
            "bridge `{name}` has no IPv6 subnet, and nsnet does not add one to a bridge in use (`nsnet bridge down --bridge {name}` first, or choose another --bridge)"
        ),
        _ => {}
    }
    let moved = args.gateway.is_some_and(|g| g != bridge.gateway)
        || args
            .gateway6
            .is_some_and(|g| bridge.ipv6.is_none_or(|n| n.gateway != g));
    if moved {
        bail!(
            "bridge `{name}` has gateway {}, and nsnet does not move the gateway of a bridge in use (leave out --gateway, or `nsnet bridge down --bridge {name}` first)",
            bridge.gateway
        );
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
        Found::Other => bail!(replaced("bridge", name.as_str())),
    }
}

/// A new bridge: a name no interface has, the subnet asked for (if free) or
/// the first free default one, its first address as the gateway.
fn new_bridge(args: &Up, host: &Host, state: &State) -> Result<Bridge> {
    let name = args.bridge;
    if host.links.contains(name.as_str()) {
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
    let gateway = match args.gateway {
        Some(gateway) if args.subnet.is_none() => bail!(InputError::NeedsSubnet {
            option: "--gateway",
            address: gateway.into(),
        }),
        Some(gateway) => {
            host_address("--gateway".into(), gateway.into(), subnet.into())?;
            gateway
        }
        None => subnet.hosts().next().expect("a /30 or larger has hosts"),
    };
    let ipv6 = new_net6(args, host, state)?;
    Ok(Bridge {
        subnet,
        gateway,
        ipv6,
        ports: Vec::new(),
        nat: None,
        published: Vec::new(),
        policy: Default::default(),
        ifindex: None,
        network: None,
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

/// The interface `ns` gets on the bridge: `--ifname`, or `eth0`. In a
/// namespace nsnet did not make (a container's) that has that name already,
/// the next free `ethN`, said in a note; with `--ifname`, a refusal naming
/// one that is free.
fn port_ifname(
    args: &Up,
    ns: &NsName,
    inside: Option<&crate::host::live::Netns>,
    notes: &mut Vec<String>,
) -> Result<IfName> {
    let Some(live) = inside else {
        return Ok(args.ifname.clone());
    };
    let has = |name: &str| live.ifaces.iter().any(|i| i.ifname == name);
    if !has(args.ifname.as_str()) {
        return Ok(args.ifname.clone());
    }
    let free = (0..)
        .map(|k| format!("eth{k}"))
        .find(|name| !has(name))
        .expect("some ethN is free");
    let free: IfName = free.parse()?;
    let taken = args.ifname;
    if args.ifname_given {
        bail!(
            "namespace `{ns}` already has an interface `{taken}` (choose another --ifname, such as `{free}`)"
        );
    }
    notes.push(format!(
        "`{ns}` already has `{taken}`: its port on `{}` is `{free}`",
        args.bridge
    ));
    Ok(free)
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
        if host.links.contains(name.as_str()) {
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
                policy: Default::default(),
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
    let routes = host.routes.iter().map(|r| r.dst);
    let taken = routes.chain(state.bridges.values().map(|b| b.subnet));
    validate::free_of(subnet.into(), taken.map(IpNet::V4))
}

/// The IPv6 side of a new bridge: the subnet asked for, or with `--ipv6` a
/// ULA /64 of the bridge's own; its `::1` is the gateway.
fn new_net6(args: &Up, host: &Host, state: &State) -> Result<Option<Net6>> {
    if args.subnet6.is_none() && !args.ipv6 {
        if let Some(gateway) = args.gateway6 {
            bail!(InputError::NeedsSubnet {
                option: "--gateway",
                address: gateway.into(),
            });
        }
        return Ok(None);
    }
    if !host.ipv6 {
        bail!(InputError::NoIpv6);
    }
    let subnet = match args.subnet6 {
        Some(subnet) => {
            check_free6(subnet, host, state)?;
            subnet
        }
        None => choose_ula(args.bridge, host, state)?,
    };
    let gateway = match args.gateway6 {
        Some(gateway) => {
            host_address("--gateway".into(), gateway.into(), subnet.into())?;
            gateway
        }
        None => nth6(subnet, 1),
    };
    Ok(Some(Net6 { subnet, gateway }))
}

/// A unique local /64 (RFC 4193: fd00::/8, a 40-bit global ID, a 16-bit
/// subnet ID) for bridge `name`. The global ID is a hash (FNV-1a) of the
/// name, so the same bridge gets the same subnet every time; the first
/// subnet ID that overlaps no route of the host and no nsnet bridge wins.
fn choose_ula(name: &IfName, host: &Host, state: &State) -> Result<Ipv6Net> {
    let hash = names::fnv1a(name.as_str().as_bytes());
    let global = u128::from(hash & 0xff_ffff_ffff);
    for id in 0..=0xffff_u128 {
        let base = (0xfd << 120) | (global << 80) | (id << 64);
        let subnet = Ipv6Net::new(Ipv6Addr::from(base), 64).expect("a /64");
        if check_free6(subnet, host, state).is_ok() {
            return Ok(subnet);
        }
    }
    bail!("no free IPv6 /64 left for bridge `{name}` (give one with --subnet)")
}

/// Refuses an IPv6 subnet that overlaps a host route or another nsnet bridge.
fn check_free6(subnet: Ipv6Net, host: &Host, state: &State) -> Result<(), InputError> {
    let bridges = state
        .bridges
        .values()
        .filter_map(|b| b.ipv6.map(|n| n.subnet));
    let cables = state.cables.iter().filter_map(|c| c.subnet6);
    let taken = host
        .routes6
        .get()
        .dests
        .iter()
        .copied()
        .chain(bridges)
        .chain(cables);
    validate::free_of(subnet.into(), taken.map(IpNet::V6))
}

/// Each joining namespace's IPv6 address: the one asked for, or the lowest
/// free after the gateway; all `None` for a bridge without IPv6.
fn allocate6(
    bridge: &Bridge,
    wanted: &[&NsName],
    chosen: &Chosen,
) -> Result<Vec<Option<Ipv6Addr>>, InputError> {
    let Some(net6) = bridge.ipv6 else {
        return Ok(vec![None; wanted.len()]);
    };
    let used = |a: &Ipv6Addr| {
        *a == net6.gateway
            || bridge.ports.iter().any(|p| p.address6 == Some(*a))
            || chosen.values().any(|(_, six)| *six == Some(*a))
    };
    let size = 1u128 << (128 - u32::from(net6.subnet.prefix_len())).min(127);
    let mut free = (2..size).map(|k| nth6(net6.subnet, k)).filter(|a| !used(a));
    let mut out = Vec::new();
    for ns in wanted {
        match chosen.get(*ns).and_then(|(_, six)| *six) {
            Some(a) => out.push(Some(a)),
            None => match free.next() {
                Some(a) => out.push(Some(a)),
                None => {
                    return Err(InputError::SubnetFull {
                        subnet: net6.subnet.into(),
                        room: (size - 2).min(u128::from(u64::MAX)) as u64,
                        wanted: (bridge.ports.len() + wanted.len()) as u64,
                    });
                }
            },
        }
    }
    Ok(out)
}

/// Each joining namespace's address: the one asked for, or the lowest free
/// host address that is not the gateway.
fn allocate(
    bridge: &Bridge,
    wanted: &[&NsName],
    chosen: &Chosen,
) -> Result<Vec<Ipv4Addr>, InputError> {
    let used = |a: &Ipv4Addr| {
        *a == bridge.gateway
            || bridge.ports.iter().any(|p| p.address == *a)
            || chosen.values().any(|(four, _)| *four == Some(*a))
    };
    let mut free = bridge.subnet.hosts().filter(|a| !used(a));
    let mut out = Vec::new();
    for ns in wanted {
        match chosen.get(*ns).and_then(|(four, _)| *four) {
            Some(a) => out.push(a),
            None => match free.next() {
                Some(a) => out.push(a),
                None => {
                    let room = bridge.subnet.hosts().count() as u64 - 1;
                    return Err(InputError::SubnetFull {
                        subnet: bridge.subnet.into(),
                        room,
                        wanted: (bridge.ports.len() + wanted.len()) as u64,
                    });
                }
            },
        }
    }
    Ok(out)
}

/// The addresses asked for with `--address`, by namespace and family.
type Chosen = BTreeMap<NsName, (Option<Ipv4Addr>, Option<Ipv6Addr>)>;

/// `--address NS=IP`, checked: a namespace being plugged in, an address of
/// the bridge's subnet that is neither the gateway nor another's, each
/// once. A namespace already on the bridge with that very address is fine.
fn chosen(args: &Up, bridge: &Bridge) -> Result<Chosen, InputError> {
    let mut out = Chosen::new();
    let name = args.bridge;
    for NsAddress { ns, address } in args.addresses {
        let what = format!("--address for `{ns}`");
        if !args.namespaces.contains(ns) {
            return Err(InputError::AddressNotJoining(ns.to_string()));
        }
        let port = bridge.ports.iter().find(|p| &p.ns == ns);
        let subnet: IpNet = match address {
            IpAddr::V4(_) => bridge.subnet.into(),
            IpAddr::V6(_) => match bridge.ipv6 {
                Some(net6) => net6.subnet.into(),
                None => {
                    return Err(InputError::NotInSubnet {
                        what,
                        address: *address,
                        subnet: bridge.subnet.into(),
                        why: "the bridge has no IPv6 subnet",
                    });
                }
            },
        };
        host_address(what.clone(), *address, subnet)?;
        if let Some(port) = port {
            let has = match address {
                IpAddr::V4(a) => port.address == *a,
                IpAddr::V6(a) => port.address6 == Some(*a),
            };
            if has {
                continue;
            }
            return Err(InputError::AddressTaken {
                what,
                address: *address,
                holder: format!("not `{ns}`'s, which has {}", port.address),
                bridge: name.clone(),
            });
        }
        let gateway = match address {
            IpAddr::V4(a) => *a == bridge.gateway,
            IpAddr::V6(a) => bridge.ipv6.is_some_and(|n| n.gateway == *a),
        };
        let holder = if gateway {
            Some("the gateway".to_string())
        } else {
            let other = bridge.ports.iter().find(|p| match address {
                IpAddr::V4(a) => p.address == *a,
                IpAddr::V6(a) => p.address6 == Some(*a),
            });
            let asked = out.iter().find(|(other, (four, six))| {
                *other != ns
                    && match address {
                        IpAddr::V4(a) => *four == Some(*a),
                        IpAddr::V6(a) => *six == Some(*a),
                    }
            });
            other
                .map(|p| format!("`{}`'s", p.ns))
                .or(asked.map(|(o, _)| format!("asked for `{o}`")))
        };
        if let Some(holder) = holder {
            return Err(InputError::AddressTaken {
                what,
                address: *address,
                holder,
                bridge: name.clone(),
            });
        }
        let entry = out.entry(ns.clone()).or_default();
        let again = match address {
            IpAddr::V4(a) => entry.0.replace(*a).is_some(),
            IpAddr::V6(a) => entry.1.replace(*a).is_some(),
        };
        if again {
            return Err(InputError::TwiceInFamily {
                option: "--address",
                second: *address,
            });
        }
    }
    Ok(out)
}

/// Refuses an address that is not a host address of `subnet`: outside it,
/// its network address, or (IPv4) its broadcast address.
fn host_address(what: String, address: IpAddr, subnet: IpNet) -> Result<(), InputError> {
    let why = if !subnet.contains(&address) {
        Some("it is outside it")
    } else if address == subnet.network() {
        Some("it is the subnet's own address")
    } else if address.is_ipv4() && address == subnet.broadcast() {
        Some("it is the broadcast address")
    } else {
        None
    };
    match why {
        Some(why) => Err(InputError::NotInSubnet {
            what,
            address,
            subnet,
            why,
        }),
        None => Ok(()),
    }
}
