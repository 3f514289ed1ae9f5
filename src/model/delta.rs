//! What a change asks of the firewall and of hairpin mode, derived from
//! what it touches only: the rules and hairpin ports one record needs and
//! the other does not. `rules::rules` derives every rule of a record, a
//! few per published port; a command that adds one port to a bridge of
//! five hundred should not write out a thousand rules twice to find the
//! three that differ.
//!
//! Invariant: `delta(a, b)` is exactly the difference of `rules::rules(a)`
//! and `rules::rules(b)` (checked against it in every debug build, so every
//! integration test checks it too). It holds because every rule is derived
//! from one of: a bridge (its own rules, tagged with its name), one
//! published port of it in one family (tagged with its namespace, host port
//! and protocol), or the record as a whole (the rules between bridges, and
//! the jumps from built-in chains). Rules of two different sources are
//! never alike, so a source both records hold alike adds nothing to the
//! difference, and only those that differ are written out.

use crate::model::ports::Proto;
use crate::model::rules::{self, ChainKey, Family, Rule, Serving, Unit};
use crate::model::state::{Bridge, State};
use crate::model::validate::{IfName, NsName};
use std::collections::{BTreeMap, BTreeSet};

/// How the rules of two records differ.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Delta {
    /// Rules the first record needs and the second does not.
    pub gone: BTreeSet<Rule>,
    /// Rules the second record needs and the first did not.
    pub added: BTreeSet<Rule>,
    /// Every jump from a built-in chain the second record needs.
    pub jumps: BTreeSet<Rule>,
    /// Every chain of nsnet's a rule of the second record is in (the
    /// jumps aside: see `jumps`).
    pub used: BTreeSet<ChainKey>,
}

/// The rules `before` and `after` do not share, with what `after` needs
/// of the built-in chains.
pub fn delta(before: &State, after: &State) -> Delta {
    let mut d = Delta::default();
    for (name, b0, b1) in changed(before, after) {
        let scope = Scope::of(b0, b1);
        let units0 = b0.map(|b| scope.units(b)).unwrap_or_default();
        let units1 = b1.map(|b| scope.units(b)).unwrap_or_default();
        let (mut r0, mut r1) = (BTreeSet::new(), BTreeSet::new());
        for (b, r) in [(b0, &mut r0), (b1, &mut r1)] {
            let Some(b) = b else { continue };
            let serving = Serving::of_bridge(b);
            debug_assert_eq!(serving, Serving::of(&rules::units(b)), "serving strays");
            rules::bridge_rules(name, b, serving, r);
        }
        let (u0, u1) = (by_tag(&units0), by_tag(&units1));
        let tags: BTreeSet<&Tag> = u0.keys().chain(u1.keys()).collect();
        for tag in tags {
            let (g0, g1) = (u0.get(tag), u1.get(tag));
            if g0 == g1 {
                continue;
            }
            for unit in g0.into_iter().flatten() {
                rules::unit_rules(name, unit, &mut r0);
            }
            for unit in g1.into_iter().flatten() {
                rules::unit_rules(name, unit, &mut r1);
            }
        }
        split(r0, r1, &mut d);
    }
    let (c0, c1) = (rules::chains(before), rules::chains(after));
    let (j0, j1) = (rules::jumps(before, &c0), rules::jumps(after, &c1));
    let (mut a0, mut a1) = (BTreeSet::new(), BTreeSet::new());
    rules::across(before, &mut a0);
    rules::across(after, &mut a1);
    a0.extend(j0);
    a1.extend(j1.iter().cloned());
    split(a0, a1, &mut d);
    d.used = c1;
    d.jumps = j1;
    d
}

/// The bridges `before` and `after` do not hold alike, each as it is in
/// either (`None`: not there).
fn changed<'a>(
    before: &'a State,
    after: &'a State,
) -> Vec<(&'a IfName, Option<&'a Bridge>, Option<&'a Bridge>)> {
    let names: BTreeSet<&IfName> = before.bridges.keys().chain(after.bridges.keys()).collect();
    names
        .into_iter()
        .map(|name| (name, before.bridges.get(name), after.bridges.get(name)))
        .filter(|(_, b0, b1)| b0 != b1)
        .collect()
}

/// The namespaces of a bridge whose published ports' rules (and hairpin
/// ports) may differ between two versions of it: those with a port or a
/// published port in the stretch where the two lists differ. Outside it
/// the lists are alike entry for entry, so any other namespace has the
/// same ports and published ports, in the same order, in both, and so the
/// same rules. A bridge only one record has, or that differs in anything
/// but those two lists, is taken whole.
enum Scope<'a> {
    Whole,
    Only(BTreeSet<&'a NsName>),
}

impl<'a> Scope<'a> {
    fn of(b0: Option<&'a Bridge>, b1: Option<&'a Bridge>) -> Scope<'a> {
        let (Some(b0), Some(b1)) = (b0, b1) else {
            return Scope::Whole;
        };
        // Every field named: one added later is compared too.
        let Bridge {
            subnet,
            gateway,
            ipv6,
            ports: _,
            nat,
            published: _,
            policy,
            ifindex,
            network,
        } = b0;
        let alike = *subnet == b1.subnet
            && *gateway == b1.gateway
            && *ipv6 == b1.ipv6
            && *nat == b1.nat
            && *policy == b1.policy
            && *ifindex == b1.ifindex
            && *network == b1.network;
        if !alike {
            return Scope::Whole;
        }
        let mut names = BTreeSet::new();
        let (p0, p1) = differing(&b0.ports, &b1.ports);
        names.extend(p0.iter().chain(p1).map(|p| &p.ns));
        let (q0, q1) = differing(&b0.published, &b1.published);
        names.extend(q0.iter().chain(q1).map(|p| &p.ns));
        Scope::Only(names)
    }

    fn takes(&self, ns: &NsName) -> bool {
        match self {
            Scope::Whole => true,
            Scope::Only(names) => names.contains(ns),
        }
    }

    /// The bridge's units of the namespaces in scope.
    fn units<'b>(&self, bridge: &'b Bridge) -> Vec<Unit<'b>> {
        rules::units_where(bridge, |ns| self.takes(ns))
    }
}

/// What is left of two lists once the entries they begin and end with
/// alike are taken off.
fn differing<'a, T: PartialEq>(a: &'a [T], b: &'a [T]) -> (&'a [T], &'a [T]) {
    let front = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let (a, b) = (&a[front..], &b[front..]);
    let alike = |(x, y): &(&T, &T)| x == y;
    let back = a.iter().rev().zip(b.iter().rev()).take_while(alike).count();
    (&a[..a.len() - back], &b[..b.len() - back])
}

/// What a published port's rules are tagged with: its family, namespace,
/// host port and protocol.
type Tag<'a> = (Family, &'a NsName, u16, Proto);

/// A bridge's published ports by the tag their rules carry.
fn by_tag<'a>(units: &[Unit<'a>]) -> BTreeMap<Tag<'a>, BTreeSet<Unit<'a>>> {
    let mut by: BTreeMap<Tag, BTreeSet<Unit>> = BTreeMap::new();
    for unit in units {
        let p = unit.published;
        let tag = (unit.family, &p.ns, p.host_port, p.proto);
        by.entry(tag).or_default().insert(*unit);
    }
    by
}

/// Adds what `old` has and `new` lacks to the gone rules, the reverse to
/// the added ones.
fn split(old: BTreeSet<Rule>, new: BTreeSet<Rule>, d: &mut Delta) {
    d.gone.extend(old.difference(&new).cloned());
    d.added.extend(new.difference(&old).cloned());
}

/// The ports that need hairpin mode in `before` and not in `after` (to
/// turn off), and the reverse (to turn on), of the bridges that differ.
pub fn hairpins(before: &State, after: &State) -> (BTreeSet<IfName>, BTreeSet<IfName>) {
    let (mut off, mut on) = (BTreeSet::new(), BTreeSet::new());
    for (_, b0, b1) in changed(before, after) {
        let scope = Scope::of(b0, b1);
        let of = |b| rules::bridge_hairpins_where(b, |ns| scope.takes(ns));
        let old = b0.map(of).unwrap_or_default();
        let new = b1.map(of).unwrap_or_default();
        off.extend(old.difference(&new).map(|p| (*p).clone()));
        on.extend(new.difference(&old).map(|p| (*p).clone()));
    }
    // A port that moved from one bridge to another keeps hairpin mode.
    let moved: BTreeSet<IfName> = off.intersection(&on).cloned().collect();
    off.retain(|p| !moved.contains(p));
    on.retain(|p| !moved.contains(p));
    (off, on)
}

/// `delta` as the whole records give it: what it must equal.
pub fn by_whole_records(before: &State, after: &State) -> Delta {
    let (old, new) = (rules::rules(before), rules::rules(after));
    Delta {
        gone: old.difference(&new).cloned().collect(),
        added: new.difference(&old).cloned().collect(),
        jumps: new.iter().filter(|r| r.is_jump()).cloned().collect(),
        used: new
            .iter()
            .filter(|r| !r.is_jump())
            .map(|r| (r.family, r.table, r.chain))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn port(ns: &str, last: u8) -> Value {
        json!({"ns": ns, "ifname": "eth0", "host_ifname": format!("nv-{ns}"),
               "address": format!("10.200.0.{last}"), "address6": format!("fd00::{last}"),
               "default_route": true})
    }

    fn published(ns: &str, host_port: u16, extra: Value) -> Value {
        let mut p = json!({"ns": ns, "host_port": host_port, "port": 80, "proto": "tcp"});
        for (k, v) in extra.as_object().unwrap() {
            p[k] = v.clone();
        }
        p
    }

    /// A dual-stack bridge with NAT, three namespaces and `published`;
    /// a second bridge `other` that `nsnet0` may reach.
    fn record(published: Vec<Value>, ports: Vec<Value>) -> State {
        serde_json::from_value(json!({
            "bridges": {
                "nsnet0": {
                    "subnet": "10.200.0.0/24", "gateway": "10.200.0.1",
                    "ipv6": {"subnet": "fd00::/64", "gateway": "fd00::1"},
                    "ports": ports, "nat": {}, "published": published,
                    "policy": {"allow": ["10.201.0.0/24"]}
                },
                "other": {"subnet": "10.201.0.0/24", "gateway": "10.201.0.1", "ports": []}
            }
        }))
        .expect("a record")
    }

    fn ports() -> Vec<Value> {
        vec![port("red", 2), port("blue", 3), port("green", 4)]
    }

    #[test]
    fn the_delta_of_two_records_is_the_difference_of_all_their_rules() {
        let base = vec![
            published("red", 8080, json!({})),
            published(
                "blue",
                8081,
                json!({"allow": ["192.0.2.0/24", "2001:db8::/32"]}),
            ),
            published("green", 8082, json!({"host_ip": "127.0.0.1"})),
        ];
        let one_more = [base.clone(), vec![published("red", 9090, json!({}))]].concat();
        // The same namespace, host port and protocol on two host addresses:
        // their accepts in FORWARD are one rule, which stays while either does.
        let twice = [
            base.clone(),
            vec![
                published("red", 7070, json!({"host_ip": "192.0.2.10"})),
                published("red", 7070, json!({"host_ip": "192.0.2.11"})),
            ],
        ]
        .concat();
        let once = [
            base.clone(),
            vec![published("red", 7070, json!({"host_ip": "192.0.2.10"}))],
        ]
        .concat();
        let mut moved = ports();
        moved[1] = port("blue", 9);
        // The same lists on a bridge without IPv6: no IPv6 unit is left.
        let mut no6 = record(base.clone(), ports());
        for (name, bridge) in no6.bridges.iter_mut() {
            if name.as_str() == "nsnet0" {
                bridge.ipv6 = None;
            }
        }
        let records = [
            State::default(),
            record(base.clone(), ports()),
            record(one_more, ports()),
            record(twice, ports()),
            record(once, ports()),
            record(base.clone(), moved),
            record(Vec::new(), ports()),
            record(base.clone(), ports()[..2].to_vec()),
            // Lists that differ in the middle, or only in their order.
            record(base.clone(), vec![port("red", 2), port("green", 4)]),
            record(base.iter().rev().cloned().collect(), ports()),
            record(base, ports().into_iter().rev().collect()),
            no6,
        ];
        for a in &records {
            for b in &records {
                assert_eq!(delta(a, b), by_whole_records(a, b));
                let (old, new) = (rules::hairpins(a), rules::hairpins(b));
                assert_eq!(hairpins(a, b), (&old - &new, &new - &old));
            }
        }
        // Not vacuous: one more port is its DNAT and its accept in each family.
        let d = delta(&records[1], &records[2]);
        assert!(d.gone.is_empty());
        assert_eq!(d.added.len(), 4, "{:#?}", d.added);
        assert!(
            delta(&records[3], &records[4])
                .gone
                .iter()
                .all(|r| r.table == "nat")
        );
    }

    #[test]
    fn hairpin_mode_changes_only_on_the_ports_whose_namespace_publishes_or_stops() {
        let a = record(vec![published("red", 8080, json!({}))], ports());
        let b = record(vec![published("blue", 8080, json!({}))], ports());
        let (off, on) = hairpins(&a, &b);
        let names = |s: BTreeSet<IfName>| s.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert_eq!(names(off), ["nv-red"]);
        assert_eq!(names(on), ["nv-blue"]);
        assert_eq!(hairpins(&a, &a), Default::default());
    }
}
