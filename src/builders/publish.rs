//! `publish`: ports of namespaces reachable through ports of the host. The
//! builder records the mappings; `firewall::reconcile` makes the rules.

use super::Change;
use crate::host::Host;
use crate::model::ports::{HostPort, Mapping};
use crate::model::rules::Family;
use crate::model::state::{Found, Port, Published, State};
use crate::model::validate::{IfName, InputError, NsName};
use anyhow::{Result, bail};
use ipnet::IpNet;
use std::net::IpAddr;

/// Arguments of `publish add`, parsed.
pub struct Add<'a> {
    pub ns: &'a NsName,
    pub mappings: &'a [Mapping],
    pub host_ip: Option<IpAddr>,
    /// The bridge to publish through; by default the namespace's first.
    pub bridge: Option<&'a IfName>,
    /// Publish even over a port a host program or another tool's rule holds.
    pub force: bool,
    /// Only these sources reach the ports (`--allow`); empty: any. `None`
    /// (`bridge up --publish`): any for a new mapping, and an existing one
    /// keeps its sources.
    pub allow: Option<&'a [IpNet]>,
}

/// `publish add`: records the mappings, refusing a host port another
/// namespace (or another mapping) already holds, and, unless `force`, one a
/// program on the host listens on or another tool's DNAT already takes.
pub fn add(args: &Add, host: &Host, state: &State) -> Result<Change> {
    let mut change = Change::from(state);
    let ns = args.ns;
    let bridge = match args.bridge {
        Some(name) => named_bridge(ns, name, state)?,
        None => first_bridge(ns, host, state)?,
    };
    let entry = &state.bridges[&bridge];
    super::bridge::owned(&bridge, entry, host)?;
    // A port made by this very plan (`bridge up --publish`) is not there yet.
    let fine = |p: &Port| match host.link(p.host_ifname.as_str(), p.ifindex) {
        Found::Ours => true,
        Found::Gone => p.ifindex.is_none(),
        Found::Other => false,
    };
    if let Some(port) = entry.ports.iter().find(|p| &p.ns == ns)
        && !fine(port)
    {
        bail!(
            "`{ns}` is no longer plugged into `{bridge}` as nsnet made it (its cable `{}` was removed or replaced by hand): `nsnet bridge up {ns} --bridge {bridge}` plugs it in again",
            port.host_ifname
        );
    }
    if let Some(ip) = args.host_ip {
        if ip == IpAddr::V6(std::net::Ipv6Addr::LOCALHOST) {
            bail!(InputError::Loopback6);
        }
        if ip.is_ipv6() && entry.ipv6.is_none() {
            bail!(InputError::NoIpv6Here { ip, bridge });
        }
        if !host.is_local(ip) {
            bail!(InputError::NotLocal(ip));
        }
    }
    // The families it is published in: IPv6 too where the bridge has it.
    let families: Vec<Family> = Family::BOTH
        .into_iter()
        .filter(|f| *f == Family::V4 || entry.ipv6.is_some())
        .filter(|f| args.host_ip.is_none_or(|ip| Family::of(ip) == *f))
        .collect();
    let allow = sources(
        args.allow.unwrap_or_default(),
        &families,
        args.host_ip,
        &bridge,
    )?;
    for m in args.mappings {
        let wanted = Published {
            ns: ns.clone(),
            host_ip: args.host_ip,
            host_port: m.host_port,
            port: m.port,
            proto: m.proto,
            allow: allow.clone(),
        };
        if change.state.published().any(|p| *p == wanted) {
            continue;
        }
        // The same mapping with other sources: the new list replaces the old.
        let same = |p: &Published| {
            Published {
                allow: allow.clone(),
                ..p.clone()
            } == wanted
        };
        if let Some(p) = change
            .state
            .bridges
            .get_mut(&bridge)
            .and_then(|b| b.published.iter_mut().find(|p| same(p)))
        {
            if args.allow.is_none() {
                continue;
            }
            let from = |nets: &[IpNet]| match nets.is_empty() {
                true => "any source".to_string(),
                false => nets
                    .iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            };
            change.notes.push(format!(
                "host port {}/{} now reached from {} (was: {})",
                p.host_port,
                p.proto,
                from(&allow),
                from(&p.allow)
            ));
            p.allow = allow.clone();
            continue;
        }
        if let Some(other) = change.state.published().find(|p| p.clashes(&wanted)) {
            let at = other.host_ip.map(|ip| format!("{ip}:")).unwrap_or_default();
            bail!(
                "host port {at}{}/{} is already published for `{}` (free it with `nsnet publish del {} {}/{}`)",
                other.host_port,
                other.proto,
                other.ns,
                other.ns,
                other.host_port,
                other.proto
            );
        }
        if let Some(holder) = taken(&wanted, &families, host) {
            let at = wanted
                .host_ip
                .map(|ip| format!("{ip}:"))
                .unwrap_or_default();
            let port = format!("{at}{}/{}", wanted.host_port, wanted.proto);
            if !args.force {
                bail!(
                    "host port {port} is taken: {holder} (choose another host port, or add --force to publish over it)"
                );
            }
            change.notes.push(format!(
                "warning: publishing host port {port} with --force, though it is taken: {holder}"
            ));
        }
        let entry = change
            .state
            .bridges
            .get_mut(&bridge)
            .expect("bridge recorded");
        entry.published.push(wanted);
    }
    if !allow.is_empty() {
        for family in &families {
            if !allow.iter().any(|n| Family::of(n.addr()) == *family) {
                change.notes.push(format!(
                    "not published in {}: no {} source is allowed",
                    family.name(),
                    family.name()
                ));
            }
        }
        let lo: IpNet = "127.0.0.0/8".parse().expect("a CIDR");
        let on_lo = args.host_ip.is_none_or(|ip| ip.is_loopback());
        if families.contains(&Family::V4)
            && on_lo
            && allow.iter().any(|n| n.addr().is_ipv4())
            && !allow.iter().any(|n| n.contains(&lo) || lo.contains(n))
        {
            change.notes.push(
                "from this host over 127.0.0.1 it is refused (that source is not allowed): add --allow 127.0.0.1 to use it from here".into(),
            );
        }
    }
    let v6_served = allow.is_empty() || allow.iter().any(|n| n.addr().is_ipv6());
    if let Some(v6) = entry.ipv6.filter(|_| args.host_ip.is_none() && v6_served) {
        let ports: Vec<String> = args
            .mappings
            .iter()
            .map(|m| m.host_port.to_string())
            .collect();
        let gw = v6.gateway;
        change.notes.push(format!(
            "published on IPv4 and IPv6, but not on [::1]: the kernel never routes a packet from ::1 out of an interface (IPv6 has no route_localnet); from this host use 127.0.0.1 or [{gw}]:{}",
            ports.join(",")
        ));
    }
    Ok(change)
}

/// `--allow`'s sources, sorted, each once; every one of a family the ports
/// are published in (the bridge's, narrowed by `--host-ip`).
fn sources(
    given: &[IpNet],
    families: &[Family],
    host_ip: Option<IpAddr>,
    bridge: &IfName,
) -> Result<Vec<IpNet>, InputError> {
    let mut allow = given.to_vec();
    allow.sort();
    allow.dedup();
    for net in &allow {
        if !families.contains(&Family::of(net.addr())) {
            let only = families.first().copied().unwrap_or(Family::V4);
            let why = match host_ip {
                Some(ip) => format!("--host-ip `{ip}` is {}", only.name()),
                None => format!("bridge `{bridge}` has no IPv6 subnet"),
            };
            return Err(InputError::AllowNoFamily {
                net: *net,
                only: only.name(),
                why,
            });
        }
    }
    Ok(allow)
}

/// Who else holds the host port `p` wants, said for an error: a program
/// listening on it (on its address or on all), or a DNAT or REDIRECT rule
/// of another tool (Docker's, one made by hand) in the nat table, which
/// would see the connections first or instead.
fn taken(p: &Published, families: &[Family], host: &Host) -> Option<String> {
    let host_ip = p.host_ip;
    if let Some(l) = host
        .listeners
        .iter()
        .find(|l| l.takes(p.proto, p.host_port, host_ip))
    {
        let who = match &l.holder {
            Some((pid, name)) => format!("`{name}` (pid {pid})"),
            None => "a program".to_string(),
        };
        return Some(format!("{who} listens on {}:{}", shown(l.addr), l.port));
    }
    let rulesets = families.iter().filter_map(|f| match f {
        Family::V4 => host.firewall.as_ref(),
        Family::V6 => host.firewall6.as_ref(),
    });
    // Most rules of a busy host (kube-proxy's thousands) name no such
    // port: a look for the text first, before the words.
    let dport = format!("--dport {}", p.host_port);
    let rule = rulesets
        .flat_map(|fw| fw.order())
        .filter(|(table, line)| *table == "nat" && !line.starts_with("-A NSNET-"))
        .map(|(_, line)| line)
        .find(|line| line.contains(&dport) && forwards(line, p));
    rule.map(|line| format!("another tool's rule forwards it: `{line}`"))
}

/// Whether nat rule `line` redirects connections to `p`'s host port.
fn forwards(line: &str, p: &Published) -> bool {
    let port = p.host_port.to_string();
    let words: Vec<&str> = line.split_whitespace().collect();
    let has = |a: &str, b: &str| words.windows(2).any(|w| w[0] == a && w[1] == b);
    let proto = p.proto.to_string();
    let redirects = has("-j", "DNAT") || has("-j", "REDIRECT");
    // A rule for one destination address leaves the others alone.
    let other_address = words
        .windows(2)
        .find(|w| w[0] == "-d")
        .and_then(|w| {
            w[1].strip_suffix("/32")
                .or_else(|| w[1].strip_suffix("/128"))
        })
        .zip(p.host_ip)
        .is_some_and(|(d, ip)| d != ip.to_string());
    redirects && has("-p", &proto) && has("--dport", &port) && !other_address
}

/// An address as a person writes it with a port: IPv6 in brackets.
fn shown(addr: std::net::IpAddr) -> String {
    match addr {
        std::net::IpAddr::V4(a) => a.to_string(),
        std::net::IpAddr::V6(a) => format!("[{a}]"),
    }
}

/// `--bridge NAME`: it must be an nsnet bridge the namespace is on.
fn named_bridge(ns: &NsName, name: &IfName, state: &State) -> Result<IfName> {
    let on = state
        .bridges
        .get(name)
        .is_some_and(|b| b.ports.iter().any(|p| &p.ns == ns));
    if !on {
        bail!(
            "namespace `{ns}` is not on nsnet bridge `{name}` (put it there with `nsnet bridge up {ns} --bridge {name}`)"
        );
    }
    Ok(name.clone())
}

/// No `--bridge`: the bridge of the namespace's default route, else its first.
fn first_bridge(ns: &NsName, host: &Host, state: &State) -> Result<IfName> {
    let ports = state
        .bridges
        .iter()
        .flat_map(|(b, br)| br.ports.iter().map(move |p| (b, p)));
    let mut ports: Vec<_> = ports.filter(|(_, p)| &p.ns == ns).collect();
    ports.sort_by_key(|(_, p)| !p.default_route);
    match ports.first() {
        Some((b, _)) => Ok((*b).clone()),
        None if host.has_ns(ns.as_str()) => bail!(
            "namespace `{ns}` is on no nsnet bridge (put it on one with `nsnet bridge up {ns}`)"
        ),
        None => {
            // Most likely a typo: name the namespaces it could have meant.
            let mut known: Vec<String> = state
                .bridges
                .values()
                .flat_map(|b| b.ports.iter().map(|p| format!("`{}`", p.ns)))
                .collect();
            known.sort();
            known.dedup();
            match known.is_empty() {
                true => bail!(
                    "namespace `{ns}` does not exist and is on no nsnet bridge (make one with `nsnet bridge up {ns}`)"
                ),
                false => bail!(
                    "namespace `{ns}` does not exist and is on no nsnet bridge; those on one are {}",
                    known.join(", ")
                ),
            }
        }
    }
}

/// `publish del`: forgets the namespace's mappings of these host ports.
pub fn del(ns: &NsName, ports: &[HostPort], state: &State) -> Result<Change> {
    let mut change = Change::from(state);
    for hp in ports {
        let mut found = false;
        for bridge in change.state.bridges.values_mut() {
            let before = bridge.published.len();
            bridge
                .published
                .retain(|p| !(&p.ns == ns && p.host_port == hp.port && p.proto == hp.proto));
            found |= bridge.published.len() != before;
        }
        if !found {
            change.notes.push(format!(
                "`{ns}` has no published port {}/{}; nothing to do for it",
                hp.port, hp.proto
            ));
        }
    }
    Ok(change)
}
