//! Policy routing for `nat up --via`: the subnet's traffic leaves through
//! the NAT's `out` via a gateway of its own, whatever the host's default
//! route. Two `ip rule`s for the subnet, in order: the main table without
//! its default routes (`suppress_prefixlength 0`: the subnet still reaches
//! the host's local networks, its own neighbours included), then a table of
//! its own holding one default route via the gateway. The host's own
//! traffic keeps its routes. Derived from the record like the firewall:
//! `reconcile` removes what the record no longer asks for, first, and adds
//! what it newly asks for, last.

use crate::host::Host;
use crate::model::state::{State, Via};
use crate::model::validate::IfName;
use crate::plan::cmd::Cmd;
use crate::plan::{Step, teardown};
use ipnet::Ipv4Net;
use std::collections::BTreeSet;

/// One subnet's routing: (bridge, subnet, out, via).
type Routed = (IfName, Ipv4Net, IfName, Via);

fn routed(state: &State) -> BTreeSet<Routed> {
    let mut out = BTreeSet::new();
    for (name, bridge) in &state.bridges {
        let Some(nat) = &bridge.nat else { continue };
        if let (Some(via), Some(dev)) = (nat.via, &nat.out) {
            out.insert((name.clone(), bridge.subnet, dev.clone(), via));
        }
    }
    out
}

fn route(verb: &str, (_, _, dev, via): &Routed) -> Cmd {
    let (gw, table) = (via.gateway.to_string(), via.table.to_string());
    Cmd::ip([
        "route",
        verb,
        "default",
        "via",
        &gw,
        "dev",
        dev.as_str(),
        "table",
        &table,
    ])
}

fn main_rule(verb: &str, (_, subnet, _, via): &Routed) -> Cmd {
    let (from, prio) = (subnet.to_string(), via.priority.to_string());
    Cmd::ip([
        "rule",
        verb,
        "from",
        &from,
        "lookup",
        "main",
        "suppress_prefixlength",
        "0",
        "priority",
        &prio,
    ])
}

fn table_rule(verb: &str, (_, subnet, _, via): &Routed) -> Cmd {
    let (from, table, prio) = (
        subnet.to_string(),
        via.table.to_string(),
        (via.priority + 1).to_string(),
    );
    Cmd::ip([
        "rule", verb, "from", &from, "lookup", &table, "priority", &prio,
    ])
}

/// The steps that set up `r`, in order.
fn add_steps(r: &Routed) -> Vec<Step> {
    let (bridge, subnet, dev, via) = r;
    vec![
        Step::new(
            route("add", r),
            format!(
                "Routing table {} of {bridge}'s own: everything via {} through {dev}.",
                via.table, via.gateway
            ),
        )
        .undo(route("del", r)),
        Step::new(
            main_rule("add", r),
            format!(
                "Traffic from {subnet} first looks in the main table without its default routes\n\
                 (suppress_prefixlength 0), so it still reaches the host's local networks."
            ),
        )
        .undo(main_rule("del", r)),
        Step::new(
            table_rule("add", r),
            format!(
                "Then in table {}: whatever else {subnet} sends goes via {}; the host's own\n\
                 traffic keeps its routes.",
                via.table, via.gateway
            ),
        )
        .undo(table_rule("del", r)),
    ]
}

/// Removes what `before` routed and `after` does not (into `front`, rules
/// first), and adds what `after` newly routes (into `back`). Rules and
/// routes already gone from the host are not deleted again.
pub fn steps(
    before: &State,
    after: &State,
    host: &Host,
    front: &mut Vec<Step>,
    back: &mut Vec<Step>,
) {
    let (old, new) = (routed(before), routed(after));
    for r in old.difference(&new) {
        let setup = add_steps(r);
        let (_, subnet, _, via) = r;
        let present = |priority: u32| {
            host.rules
                .iter()
                .any(|(p, from)| *p == priority && from == &subnet.to_string())
        };
        if present(via.priority + 1) {
            front.push(teardown(
                table_rule("del", r),
                &setup[2..],
                "Drop the subnet's rule for its own table.",
            ));
        }
        if present(via.priority) {
            front.push(teardown(
                main_rule("del", r),
                &setup[1..2],
                "Drop the subnet's rule for the main table.",
            ));
        }
        if host.has_table(via.table) {
            front.push(teardown(
                route("del", r),
                &setup[..1],
                format!("Empty routing table {}.", via.table),
            ));
        }
    }
    for r in new.difference(&old) {
        back.extend(add_steps(r));
    }
}
