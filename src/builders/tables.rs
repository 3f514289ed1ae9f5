//! The iptables side of `firewall::reconcile`: the rules the record before a
//! command needs against those the record after it needs, in each family,
//! planned as one `iptables-restore` (or `ip6tables-restore`) per table and
//! direction.
//!
//! - Unordered chains (NSNET-FORWARD, NSNET-DNAT, …) change by difference.
//! - NSNET-POLICY is ordered: when what it should hold differs from what the
//!   host has, it is written whole (declaring an existing chain in a
//!   `--noflush` batch empties it), and its undo writes back what was there.
//! - nsnet's jumps from FORWARD keep their order, first in the chain:
//!   NSNET-USER, NSNET-POLICY, NSNET-FORWARD. One found out of that order is
//!   taken out and put back in place.
//! - NSNET-USER is the user's: its jump and the chain stay while it holds a
//!   rule, and nsnet never writes into it.

use crate::host::{Firewall, Host};
use crate::model::delta;
use crate::model::policy::{self, POLICY, SEQUENCE, USER};
use crate::model::rules::{ChainKey, Family, Rule};
use crate::model::state::State;
use crate::plan::Step;
use crate::plan::cmd::Cmd;
use anyhow::{Result, bail};
use std::collections::BTreeSet;

/// The chain a rule jumps to, if one of nsnet's.
fn target(r: &Rule) -> Option<&str> {
    r.spec
        .rsplit_once("-j ")
        .map(|(_, t)| t)
        .filter(|t| t.starts_with("NSNET-"))
}

/// What the record after a change has in one family's chains: whether a
/// chain of nsnet's is still in use once the change is made.
struct Used<'a> {
    family: Family,
    /// The chains its rules are in, in every family (jumps aside).
    chains: &'a BTreeSet<ChainKey>,
    /// Its jumps from built-in chains, in this family.
    jumps: &'a BTreeSet<&'a Rule>,
}

impl Used<'_> {
    /// Whether a rule is in chain `chain` of `table`, or jumps to it.
    fn holds(&self, table: &str, chain: &str) -> bool {
        self.chains
            .iter()
            .any(|&(f, t, c)| f == self.family && t == table && c == chain)
            || self
                .jumps
                .iter()
                .any(|r| r.table == table && target(r) == Some(chain))
    }
}

/// Removals (in `front`) and additions (in `back`) of rules, in each family
/// whose rules change, or whose ruleset strays from the record's. Only the
/// rules of what the change touches are derived (see `model::delta`).
pub fn rule_steps(
    before: &State,
    after: &State,
    host: &Host,
    front: &mut Vec<Step>,
    back: &mut Vec<Step>,
) -> Result<()> {
    let delta = delta::delta(before, after);
    #[cfg(debug_assertions)]
    assert_eq!(
        delta,
        delta::by_whole_records(before, after),
        "the scoped difference of the rules strays from the whole one"
    );
    for family in Family::BOTH {
        let (gone, added, jumps) = (
            of(&delta.gone, family),
            of(&delta.added, family),
            of(&delta.jumps, family),
        );
        let (old_policy, new_policy) =
            (policy::chain(before, family), policy::chain(after, family));
        let fw = match family {
            Family::V4 => host.firewall.as_ref(),
            Family::V6 => host.firewall6.as_ref(),
        };
        let Some(fw) = fw else {
            if gone.is_empty() && added.is_empty() && old_policy == new_policy {
                continue;
            }
            bail!(
                "internal error: the {} rules were not read before planning them",
                family.tool_name()
            );
        };
        let misplaced = misplaced(&jumps, fw);
        let present = |r: &Rule| fw.has_rule(r.table, &r.saved_line());
        let user_rules = !fw.chain("filter", USER).is_empty();
        // The user's chain stays, with its jump, while it holds rules.
        let keep = |r: &Rule| user_rules && target(r) == Some(USER);
        // A misplaced jump is taken out and put back: out only if it was
        // there before this change (it is in the record before and after).
        let adds: Vec<&Rule> = added
            .iter()
            .copied()
            .filter(|r| !present(r))
            .chain(misplaced.iter().copied())
            .collect::<BTreeSet<&Rule>>()
            .into_iter()
            .collect();
        let dels: Vec<&Rule> = gone
            .iter()
            .copied()
            .filter(|r| present(r) && !keep(r))
            .chain(misplaced.iter().copied().filter(|r| !added.contains(r)))
            .collect::<BTreeSet<&Rule>>()
            .into_iter()
            .collect();
        let used = Used {
            family,
            chains: &delta.used,
            jumps: &jumps,
        };
        let live: Vec<&str> = fw.chain("filter", POLICY);
        let wanted: Vec<String> = new_policy.iter().map(Rule::saved_line).collect();
        let mut policy = match wanted == live {
            true => None,
            false => Some(policy_step(family, &new_policy, &live)),
        };
        for table in ["raw", "nat", "filter"] {
            let adds: Vec<&Rule> = adds.iter().copied().filter(|r| r.table == table).collect();
            let dels: Vec<&Rule> = dels.iter().copied().filter(|r| r.table == table).collect();
            front.extend(removal(family, table, &dels, &used, fw));
            // NSNET-POLICY goes after its jump, and comes before it.
            if table == "filter" && new_policy.is_empty() {
                front.extend(policy.take());
            }
            if table == "filter" {
                back.extend(policy.take());
            }
            back.extend(addition(family, table, &adds, &dels, fw));
        }
    }
    Ok(())
}

/// The rules of `set` in `family`.
fn of(set: &BTreeSet<Rule>, family: Family) -> BTreeSet<&Rule> {
    set.iter().filter(|r| r.family == family).collect()
}

/// nsnet's jumps from FORWARD that sit after one that must come later: they
/// are taken out and put back in place.
fn misplaced<'a>(new: &BTreeSet<&'a Rule>, fw: &Firewall) -> BTreeSet<&'a Rule> {
    let chains = policy::misplaced(&fw.chain("filter", "FORWARD"));
    let jumps = new.iter().copied().filter(|r| r.chain == "FORWARD");
    jumps
        .filter(|r| target(r).is_some_and(|t| chains.contains(&t)))
        .collect()
}

/// Writes NSNET-POLICY whole as `wanted` (or removes it when empty); the
/// undo writes back `live`, what it held before.
fn policy_step(family: Family, wanted: &[Rule], live: &[&str]) -> Step {
    let declare = format!(":{POLICY} - [0:0]");
    let existed = !live.is_empty();
    let apply: Vec<String> = match wanted.is_empty() {
        true => vec![declare.clone(), format!("-X {POLICY}")],
        false => std::iter::once(declare.clone())
            .chain(wanted.iter().map(Rule::saved_line))
            .collect(),
    };
    let undo: Vec<String> = match existed {
        true => std::iter::once(declare)
            .chain(live.iter().map(|l| l.to_string()))
            .collect(),
        false => vec![declare, format!("-X {POLICY}")],
    };
    let why = match wanted.is_empty() {
        true => {
            "No bridge has a firewall policy or a neighbour to be isolated from: NSNET-POLICY goes."
                .to_string()
        }
        false => format!(
            "Write NSNET-POLICY whole, in order (its order matters): replies pass, then each bridge's\n\
             `firewall allow` exceptions (RETURN), its denies (LOG if asked, then REJECT, so a connection\n\
             fails at once), and last the isolation between nsnet's bridges. Only traffic leaving a\n\
             bridge is concerned (`! -o` the bridge): its own namespaces always reach each other. In {}.",
            family.tool_name()
        ),
    };
    Step::new(Cmd::restore(family.restore(), batch("filter", apply)), why)
        .undo(Cmd::restore(family.restore(), batch("filter", undo)))
}

fn batch(table: &str, lines: impl IntoIterator<Item = String>) -> String {
    let mut text = format!("*{table}\n");
    for line in lines {
        text.push_str(&line);
        text.push('\n');
    }
    text.push_str("COMMIT\n");
    text
}

/// The lines that add `adds` to `table`: rules into nsnet's chains first,
/// then the jumps that make them live. A jump from FORWARD goes right after
/// the nsnet jump that precedes it in `SEQUENCE` (or first in the chain),
/// as FORWARD will be once `dels` are gone; other filter and raw jumps go
/// first, nat jumps last (after other tools' DNAT rules).
fn add_lines(table: &str, adds: &[&Rule], dels: &[&Rule], fw: &Firewall) -> Vec<String> {
    let mut ordered: Vec<&Rule> = adds.to_vec();
    ordered.sort_by_key(|r| r.is_jump());
    let gone: BTreeSet<String> = dels.iter().map(|r| r.saved_line()).collect();
    let mut forward: Vec<String> = fw
        .chain(table, "FORWARD")
        .into_iter()
        .filter(|l| !gone.contains(*l))
        .map(String::from)
        .collect();
    let mut lines: Vec<String> = ordered
        .iter()
        .filter(|r| !(r.chain == "FORWARD" && table == "filter"))
        .map(|r| r.add_line())
        .collect();
    if table != "filter" {
        return lines;
    }
    let mut previous: Option<usize> = None;
    for chain in SEQUENCE {
        let spec = format!("{} -j {chain}", crate::model::rules::comment("nsnet"));
        let line = format!("-A FORWARD {spec}");
        if let Some(at) = forward.iter().position(|l| *l == line) {
            previous = Some(at);
            continue;
        }
        let adding = ordered
            .iter()
            .any(|r| r.chain == "FORWARD" && r.saved_line() == line);
        if adding {
            let at = previous.map_or(0, |p| p + 1);
            forward.insert(at, line);
            lines.push(format!("-I FORWARD {} {spec}", at + 1));
            previous = Some(at);
        }
    }
    lines
}

/// Adds `adds` to `table`, declaring the nsnet chains that do not exist yet
/// (NSNET-POLICY excepted: `policy_step` writes it).
fn addition(
    family: Family,
    table: &str,
    adds: &[&Rule],
    dels: &[&Rule],
    fw: &Firewall,
) -> Option<Step> {
    if adds.is_empty() {
        return None;
    }
    let exists = |c: &str| fw.chains.contains(&(table.to_string(), c.to_string()));
    let chains: BTreeSet<&str> = adds
        .iter()
        .flat_map(|r| [Some(r.chain), target(r)])
        .flatten()
        .filter(|c| c.starts_with("NSNET-") && *c != POLICY && !exists(c))
        .collect();
    let apply = chains
        .iter()
        .map(|c| format!(":{c} - [0:0]"))
        .chain(add_lines(table, adds, dels, fw));
    let mut ordered: Vec<&Rule> = adds.to_vec();
    ordered.sort_by_key(|r| r.is_jump());
    let undo = ordered
        .iter()
        .rev()
        .map(|r| r.del_line())
        .chain(chains.iter().map(|c| format!("-X {c}")));
    let why = format!(
        "Add nsnet's {table} rules in one {}-restore: all of them apply, or none. Only nsnet's\n\
         NSNET-* chains change, plus one jump to each from a built-in chain; every rule carries an\n\
         nsnet comment naming the bridge, namespace or port it serves.{}{}",
        family.tool_name(),
        rules_why(table),
        family_why(family, table)
    );
    Some(
        Step::new(Cmd::restore(family.restore(), batch(table, apply)), why)
            .undo(Cmd::restore(family.restore(), batch(table, undo))),
    )
}

/// Deletes `dels` from `table`, and the nsnet chains that end up empty; the
/// user's NSNET-USER goes only with its jump, and only empty.
fn removal(
    family: Family,
    table: &str,
    dels: &[&Rule],
    used: &Used,
    fw: &Firewall,
) -> Option<Step> {
    if dels.is_empty() {
        return None;
    }
    let gone: BTreeSet<String> = dels.iter().map(|r| r.saved_line()).collect();
    let unused = |c: &str| !used.holds(table, c);
    // Each chain once (a bridge of hundreds of ports has hundreds of rules
    // in one chain), then looked through for a rule that stays.
    let named: BTreeSet<&str> = dels
        .iter()
        .flat_map(|r| [Some(r.chain), target(r)])
        .flatten()
        .collect();
    let chains: BTreeSet<&str> = named
        .into_iter()
        .filter(|c| c.starts_with("NSNET-") && *c != POLICY && unused(c))
        .filter(|c| fw.chains.contains(&(table.to_string(), c.to_string())))
        .filter(|c| fw.chain(table, c).iter().all(|line| gone.contains(*line)))
        .collect();
    let mut ordered: Vec<&Rule> = dels.to_vec();
    ordered.sort_by_key(|r| !r.is_jump());
    let apply = ordered
        .iter()
        .map(|r| r.del_line())
        .chain(chains.iter().map(|c| format!("-X {c}")));
    let undo = chains
        .iter()
        .map(|c| format!(":{c} - [0:0]"))
        .chain(undo_adds(table, &ordered, fw));
    let why = format!(
        "Remove the {table} rules nsnet no longer needs, and its chains left empty, in one {}-restore.",
        family.tool_name()
    );
    Some(
        Step::new(Cmd::restore(family.restore(), batch(table, apply)), why)
            .undo(Cmd::restore(family.restore(), batch(table, undo))),
    )
}

/// What puts back deleted rules: each jump from FORWARD at the position it
/// had, the rest as they are added.
fn undo_adds(table: &str, dels: &[&Rule], fw: &Firewall) -> Vec<String> {
    let live = fw.chain(table, "FORWARD");
    let mut jumps: Vec<(usize, &Rule)> = Vec::new();
    let mut lines = Vec::new();
    for r in dels.iter().rev() {
        match live.iter().position(|l| *l == r.saved_line()) {
            Some(at) if r.chain == "FORWARD" => jumps.push((at, r)),
            _ => lines.push(r.add_line()),
        }
    }
    jumps.sort_by_key(|(at, _)| *at);
    lines.extend(
        jumps
            .into_iter()
            .map(|(at, r)| format!("-I FORWARD {} {}", at + 1, r.spec)),
    );
    lines
}

fn rules_why(table: &str) -> &'static str {
    match table {
        "nat" => {
            "\nNSNET-DNAT (from PREROUTING and OUTPUT, only for packets to the host's own addresses, so\n\
             a connection to another machine's port is never hijacked) sends published ports to their\n\
             namespace (one published with --allow, only from those sources). NSNET-POSTROUTING\n\
             masquerades the subnet on its way out, connections from 127.0.0.1, and hairpin\n\
             connections from the subnet back into it."
        }
        "filter" => {
            "\nNSNET-FORWARD accepts traffic between a bridge's namespaces and, with nat or publish, into\n\
             and out of the bridge, even under a FORWARD policy of DROP with br_netfilter on (Docker\n\
             hosts). Ahead of it in FORWARD: NSNET-USER, the user's own chain (empty; nsnet never\n\
             writes in it), then NSNET-POLICY. NSNET-INPUT drops packets from the bridge to the host's\n\
             127.0.0.0/8."
        }
        _ => {
            "\nNSNET-PREROUTING (raw) drops packets from other machines to a port published on loopback only."
        }
    }
}

/// What differs in IPv6: the same chains, in ip6tables.
fn family_why(family: Family, table: &str) -> &'static str {
    match (family, table) {
        (Family::V6, "nat") => {
            "\nIn IPv6 (ip6tables) too: NAT66 masquerades the bridge's IPv6 subnet, as Docker and\n\
             netavark do for a ULA one. [::1] is left out of the DNAT: the kernel never routes a\n\
             packet from ::1 out of an interface (IPv6 has no route_localnet), so it would hang;\n\
             connect to the gateway's IPv6 address or another of the host's instead."
        }
        (Family::V6, _) => "\nIn IPv6 the same rules live in ip6tables.",
        _ => "",
    }
}
