//! `nat`: outbound NAT for a bridge's subnet. The builder only records the
//! wish; `firewall::reconcile` turns it into rules and sysctls, and with
//! `--via`, into the routing table and rules of the subnet's own (see
//! `routing`).

use super::Change;
use crate::host::Host;
use crate::model::state::{Nat, State, Via};
use crate::model::validate::{IfName, InputError};
use anyhow::{Result, bail};
use std::net::Ipv4Addr;

/// Tables nsnet picks from when `--table` is not given.
const TABLES: std::ops::RangeInclusive<u32> = 100..=252;
/// Where nsnet looks for two free rule priorities, ahead of `main` (32766).
const PRIORITIES: std::ops::RangeInclusive<u32> = 9000..=9999;

/// `nat up`: masquerade the bridge's subnet on its way out (through `out`
/// only, or any interface but the bridge).
/// As `bridge up --nat` asks it: a `--via` that `nat up` set for the same
/// `out` is kept, not undone by a re-run that does not mention it.
pub fn up(bridge: &IfName, out: Option<&IfName>, host: &Host, state: &State) -> Result<Change> {
    let kept = state
        .bridges
        .get(bridge)
        .and_then(|b| b.nat.as_ref())
        .filter(|n| n.out.as_ref() == out)
        .and_then(|n| n.via);
    let (gateway, table) = (kept.map(|v| v.gateway), kept.map(|v| v.table));
    up_via(bridge, out, gateway, table, host, state)
}

/// `nat up --out IF --via GW [--table N]`: also send the subnet's traffic
/// out through `out` via `gateway`, by a routing table of its own.
pub fn up_via(
    bridge: &IfName,
    out: Option<&IfName>,
    gateway: Option<Ipv4Addr>,
    table: Option<u32>,
    host: &Host,
    state: &State,
) -> Result<Change> {
    let mut change = Change::from(state);
    let Some(entry) = change.state.bridges.get(bridge) else {
        bail!(
            "bridge `{bridge}` was not made by nsnet (make it with `nsnet bridge up NS... --bridge {bridge}`)"
        );
    };
    super::bridge::owned(bridge, entry, host)?;
    if let Some(out) = out {
        if out == bridge {
            bail!(InputError::OutIsBridge(out.to_string()));
        }
        if !host.links.contains(out.as_str()) {
            bail!("interface `{out}` does not exist on the host (see `ip link`)");
        }
    }
    let via = match (gateway, out) {
        (None, _) => {
            if table.is_some() {
                bail!("--table needs --via: the gateway the subnet's own table routes through");
            }
            None
        }
        (Some(gw), None) => {
            bail!("--via {gw} needs --out: the interface the gateway is reached through")
        }
        (Some(gw), Some(out)) => Some(via(bridge, out, gw, table, host, state)?),
    };
    let entry = change.state.bridges.get_mut(bridge).expect("checked");
    entry.nat = Some(Nat {
        out: out.cloned(),
        via,
    });
    Ok(change)
}

/// The table and rule priorities for `gateway`: those the bridge has
/// already for it, else `table` (if free) or the first free one, and the
/// first two free priorities.
fn via(
    bridge: &IfName,
    out: &IfName,
    gateway: Ipv4Addr,
    table: Option<u32>,
    host: &Host,
    state: &State,
) -> Result<Via> {
    let reached = host
        .routes
        .iter()
        .any(|r| !r.local && r.dev.as_deref() == Some(out.as_str()) && r.dst.contains(&gateway));
    if !reached {
        bail!(
            "gateway `{gateway}` is on no network of `{out}` (see `ip route show dev {out}`): --via names a neighbour through --out"
        );
    }
    let current = state.bridges[bridge].nat.as_ref().and_then(|n| n.via);
    if let Some(v) = current.filter(|v| v.gateway == gateway && table.is_none_or(|t| t == v.table))
    {
        return Ok(v);
    }
    let ours = |f: &dyn Fn(&Via) -> bool| {
        state
            .bridges
            .iter()
            .filter(|(name, _)| *name != bridge)
            .filter_map(|(_, b)| b.nat.as_ref()?.via)
            .any(|v| f(&v))
    };
    let used =
        |t: u32| host.has_table(t) || host.rule_tables.contains(&t) || ours(&|v| v.table == t);
    let table = match table {
        Some(t) if t == 0 || (253..=255).contains(&t) || used(t) => bail!(
            "routing table {t} is in use (the kernel's own, or holding routes): choose another --table, or leave it out"
        ),
        Some(t) => t,
        None => TABLES.into_iter().find(|t| !used(*t)).ok_or_else(|| {
            anyhow::anyhow!("no free routing table in 100-252: give one with --table")
        })?,
    };
    let taken = |p: u32| {
        host.rules.iter().any(|(q, _)| *q == p) || ours(&|v| v.priority == p || v.priority + 1 == p)
    };
    let priority = PRIORITIES
        .step_by(2)
        .find(|p| !taken(*p) && !taken(p + 1))
        .ok_or_else(|| anyhow::anyhow!("no two free ip rule priorities in 9000-9999"))?;
    Ok(Via {
        gateway,
        table,
        priority,
    })
}

/// `nat down`: no more NAT for the bridge.
pub fn down(bridge: &IfName, state: &State) -> Result<Change> {
    let mut change = Change::from(state);
    if let Some(entry) = change.state.bridges.get_mut(bridge) {
        entry.nat = None;
    }
    Ok(change)
}
