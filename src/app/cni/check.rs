//! CHECK: is the attachment still as nsnet made it? The container's
//! interface with its addresses and default routes, the host end on the
//! bridge, the bridge itself, the addresses `prevResult` lists, and the
//! rules and settings nsnet keeps for the record. Nothing is changed: any
//! nsnet command (or the runtime's DEL and ADD) puts things back.

use super::reply::{Code, Failure};
use super::request::{Network, Target};
use crate::app::apply::PLAIN;
use crate::builders::attach;
use crate::exec::runner::System;
use crate::exec::store::Store;
use crate::host::netlink::{Kernel, Link};
use crate::host::{self, Wants};
use crate::model::state::{Found, State};
use ipnet::IpNet;
use serde_json::Value;
use std::net::IpAddr;
use std::path::Path;

pub fn check(net: &Network, t: &Target) -> Result<(), Failure> {
    let Some(prev) = &net.prev_result else {
        return Err(Failure::new(
            Code::InvalidConfig,
            "CHECK needs the ADD's result as `prevResult`",
        ));
    };
    let netns = t
        .netns
        .as_deref()
        .expect("request::target requires CNI_NETNS for CHECK");
    let state = Store::read_only()
        .load()
        .map_err(|e| Failure::new(Code::Failed, format!("cannot read nsnet's record: {e:#}")))?;
    let problems = problems(net, t, netns, prev, &state)
        .map_err(|e| Failure::new(Code::Failed, format!("cannot read the host: {e:#}")))?;
    match problems.first() {
        None => Ok(()),
        Some(Err(unknown)) => Err(Failure::new(Code::Unknown, unknown.clone())),
        Some(Ok(first)) => Err(Failure {
            code: Code::Drifted,
            msg: first.clone(),
            details: match problems.len() {
                1 => String::new(),
                _ => (problems.iter().flatten().cloned())
                    .collect::<Vec<_>>()
                    .join("; "),
            },
        }),
    }
}

/// What is wrong, each as one line; `Err` for an attachment nsnet lacks.
fn problems(
    net: &Network,
    t: &Target,
    netns: &str,
    prev: &Value,
    state: &State,
) -> anyhow::Result<Vec<Result<String, String>>> {
    let Some((bridge, port)) = attach::find(state, &t.container, &t.ifname) else {
        return Ok(vec![Err(format!(
            "nsnet has no attachment of container `{}` with `{}`",
            t.container, t.ifname
        ))]);
    };
    let entry = &state.bridges[bridge];
    let mut out = Vec::new();
    if bridge != &net.bridge {
        out.push(format!(
            "the container is on bridge `{bridge}`, not on `{}` of network `{}`",
            net.bridge, net.name
        ));
    }
    let mut here = Kernel::here()?;
    let found = |link: &Option<(Link, Option<u32>)>, recorded: Option<u32>| {
        Found::of(link.as_ref().map(|(l, _)| Some(l.ifindex)), Some(recorded))
    };
    let live_bridge = here.link(Some(bridge.as_str()), 0)?;
    if found(&live_bridge, entry.ifindex) != Found::Ours {
        out.push(format!(
            "bridge `{bridge}` is not the one nsnet made, or is gone"
        ));
    }
    let live_port = here.link(Some(port.host_ifname.as_str()), 0)?;
    match (&live_port, &live_bridge) {
        (Some((l, master)), Some((b, _))) if found(&live_port, port.ifindex) == Found::Ours => {
            if *master != Some(b.ifindex) {
                out.push(format!("`{}` is no longer on bridge `{bridge}`", l.ifname));
            }
            if !l.up {
                out.push(format!("`{}` is down", l.ifname));
            }
        }
        _ => out.push(format!(
            "the host end `{}` of the container's cable is gone or replaced",
            port.host_ifname
        )),
    }
    let mut inside = Kernel::inside(Path::new(netns))?;
    let links = inside.links_and_addresses()?;
    let Some(iface) = links.iter().find(|l| l.ifname == t.ifname.as_str()) else {
        out.push(format!("the container has no `{}`", t.ifname));
        return Ok(out.into_iter().map(Ok).collect());
    };
    if !iface.up {
        out.push(format!("`{}` in the container is down", t.ifname));
    }
    let mut wanted: Vec<IpNet> = vec![IpNet::new(
        IpAddr::V4(port.address),
        entry.subnet.prefix_len(),
    )?];
    if let (Some(net6), Some(a6)) = (entry.ipv6, port.address6) {
        wanted.push(IpNet::new(IpAddr::V6(a6), net6.subnet.prefix_len())?);
    }
    wanted.extend(listed(prev, t, netns));
    wanted.dedup();
    for address in wanted {
        if !iface.addresses.contains(&address) {
            out.push(format!("`{}` in the container lacks {address}", t.ifname));
        }
    }
    if port.default_route {
        let name_of = |i: u32| (links.iter().find(|l| l.ifindex == i)).map(|l| l.ifname.clone());
        let mut gateways = vec![IpAddr::V4(entry.gateway)];
        gateways.extend(entry.ipv6.map(|n| IpAddr::V6(n.gateway)));
        for gateway in gateways {
            let routes = inside.routes(gateway.is_ipv6(), &name_of)?;
            let has = routes.iter().any(|r| {
                r.dst.is_none_or(|d| d.prefix_len() == 0)
                    && r.gateway == Some(gateway)
                    && r.dev.as_deref() == Some(t.ifname.as_str())
            });
            if !has {
                out.push(format!(
                    "the container has no default route via {gateway} on `{}`",
                    t.ifname
                ));
            }
        }
    }
    // The rules and settings the record implies, as `status` checks them.
    let wants = Wants {
        firewall: true,
        firewall6: entry.ipv6.is_some(),
        by_name: true,
        best_effort: true,
        ..PLAIN
    };
    let host = host::observe(&mut System::cached(), wants)?;
    // This attachment's network only: its bridge's rules and settings, and
    // the jumps to nsnet's chains, not another network's drift.
    let own = State {
        bridges: std::iter::once((bridge.clone(), entry.clone())).collect(),
        saved: state.saved.clone(),
        ..State::default()
    };
    for drift in crate::report::status::firewall_drift(&own, &host) {
        out.push(format!(
            "nsnet's firewall drifted: {drift} (`nsnet status` shows all)"
        ));
    }
    Ok(out.into_iter().map(Ok).collect())
}

/// The addresses `prevResult` gives interface `ifname` of the container.
fn listed(prev: &Value, t: &Target, netns: &str) -> Vec<IpNet> {
    let interfaces = prev.get("interfaces").and_then(Value::as_array);
    let ours = |i: usize| {
        interfaces
            .and_then(|list| list.get(i))
            .is_some_and(|iface| {
                iface.get("name").and_then(Value::as_str) == Some(t.ifname.as_str())
                    && iface.get("sandbox").and_then(Value::as_str) == Some(netns)
            })
    };
    (prev
        .get("ips")
        .and_then(Value::as_array)
        .into_iter()
        .flatten())
    .filter(|ip| {
        ip.get("interface")
            .and_then(Value::as_u64)
            .is_some_and(|i| ours(i as usize))
    })
    .filter_map(|ip| ip.get("address")?.as_str()?.parse().ok())
    .collect()
}
