//! The firewall policy nsnet derives from its record, and the chain it
//! leaves to the user. In FORWARD, nsnet's jumps come first and in this
//! order:
//!
//! 1. `NSNET-USER`: the user's. nsnet creates it empty and never adds,
//!    changes or removes a rule in it; rules there see every packet nsnet
//!    would accept, before nsnet does (Docker's DOCKER-USER). It stays, with
//!    its jump, while it holds a rule.
//! 2. `NSNET-POLICY`: each bridge's `firewall allow` (RETURN) and `deny`
//!    (LOG, REJECT) rules, then the isolation between nsnet's bridges. Its
//!    order matters, so it is written whole whenever it changes.
//! 3. `NSNET-FORWARD`: nsnet's accepts (see `rules`).
//!
//! Replies (RELATED, ESTABLISHED) leave NSNET-POLICY at once: a policy
//! stops connections being opened, never their answers.

use crate::model::rules::{Family, Rule, Sink, comment};
use crate::model::state::{Bridge, State};
use crate::model::validate::IfName;
use ipnet::IpNet;

/// The user's chain.
pub const USER: &str = "NSNET-USER";
/// nsnet's ordered policy chain.
pub const POLICY: &str = "NSNET-POLICY";

/// nsnet's chains jumped to from FORWARD, in the order they must run.
pub const SEQUENCE: [&str; 3] = [USER, POLICY, crate::model::rules::FORWARD];

/// nsnet's chains whose jump in FORWARD (`forward`: the chain's rules in
/// order, as saved) comes before the jump to a chain it must follow.
pub fn misplaced(forward: &[&str]) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut last = None;
    for chain in SEQUENCE {
        let line = format!("-A FORWARD {} -j {chain}", comment("nsnet"));
        let Some(at) = forward.iter().position(|l| *l == line) else {
            continue;
        };
        if last.is_some_and(|l| at < l) {
            out.push(chain);
        } else {
            last = Some(at);
        }
    }
    out
}

/// How many refused connections a `--log` deny logs per minute at most.
const LOG_RATE: &str = "5/min";

/// The subnet of `bridge` in `family`, if it has one.
fn subnet(bridge: &Bridge, family: Family) -> Option<IpNet> {
    match family {
        Family::V4 => Some(IpNet::V4(bridge.subnet)),
        Family::V6 => bridge.ipv6.map(|n| IpNet::V6(n.subnet)),
    }
}

/// `-d NET ` as iptables-save prints it: nothing for a /0 (every
/// destination), which it never prints.
fn dest(net: &IpNet) -> String {
    match net.prefix_len() {
        0 => String::new(),
        _ => format!("-d {net} "),
    }
}

fn in_family(net: &IpNet, family: Family) -> bool {
    matches!(
        (net, family),
        (IpNet::V4(_), Family::V4) | (IpNet::V6(_), Family::V6)
    )
}

/// The bridges with a subnet in `family`.
fn bridges(state: &State, family: Family) -> Vec<(&IfName, &Bridge, IpNet)> {
    let with = state.bridges.iter();
    with.filter_map(|(n, b)| Some((n, b, subnet(b, family)?)))
        .collect()
}

/// NSNET-POLICY's rules in `family`, in order; empty when no bridge has a
/// policy and there are fewer than two bridges to isolate.
pub fn chain(state: &State, family: Family) -> Vec<Rule> {
    let bridges = bridges(state, family);
    let any_policy = bridges.iter().any(|(_, b, _)| {
        let nets = b
            .policy
            .allow
            .iter()
            .chain(b.policy.deny.iter().map(|d| &d.to));
        nets.into_iter().any(|n| in_family(n, family))
    });
    if !any_policy && bridges.len() < 2 {
        return Vec::new();
    }
    let reject = match family {
        Family::V4 => "-j REJECT --reject-with icmp-port-unreachable",
        Family::V6 => "-j REJECT --reject-with icmp6-port-unreachable",
    };
    let rule = |spec: String| Rule::new(family, "filter", POLICY, spec);
    let mut out = vec![rule(format!(
        "-m conntrack --ctstate RELATED,ESTABLISHED {} -j RETURN",
        comment("nsnet")
    ))];
    for (name, bridge, _) in &bridges {
        let tag = comment(&format!("nsnet:firewall:{name}"));
        for net in bridge.policy.allow.iter().filter(|n| in_family(n, family)) {
            out.push(rule(format!(
                "{}-i {name} ! -o {name} {tag} -j RETURN",
                dest(net)
            )));
        }
        for deny in bridge
            .policy
            .deny
            .iter()
            .filter(|d| in_family(&d.to, family))
        {
            let net = deny.to;
            if deny.log {
                out.push(rule(format!(
                    "{}-i {name} ! -o {name} -m limit --limit {LOG_RATE} {tag} -j LOG --log-prefix \"nsnet deny {name}: \"", dest(&net)
                )));
            }
            out.push(rule(format!(
                "{}-i {name} ! -o {name} {tag} {reject}",
                dest(&net)
            )));
        }
    }
    for (name, _, _) in &bridges {
        let tag = comment(&format!("nsnet:isolate:{name}"));
        for (other, _, _) in bridges.iter().filter(|(o, _, _)| o != name) {
            out.push(rule(format!("-i {name} -o {other} {tag} {reject}")));
        }
    }
    out
}

/// The accepts an `allow` of another nsnet bridge's subnet needs in
/// NSNET-FORWARD: the connections one way, their replies the other.
pub(crate) fn allowed_bridges(state: &State, family: Family, out: &mut impl Sink) {
    let bridges = bridges(state, family);
    for (name, bridge, _) in &bridges {
        let tag = comment(&format!("nsnet:firewall:{name}"));
        for net in &bridge.policy.allow {
            let to = bridges
                .iter()
                .filter(|(o, _, sub)| o != name && (net.contains(sub) || sub.contains(net)));
            for (other, _, _) in to {
                out.rule(family, "filter", "NSNET-FORWARD", || {
                    format!("{}-i {name} -o {other} {tag} -j ACCEPT", dest(net))
                });
                out.rule(family, "filter", "NSNET-FORWARD", || {
                    format!("-i {other} -o {name} -m conntrack --ctstate RELATED,ESTABLISHED {tag} -j ACCEPT")
                });
            }
        }
    }
}
