//! Which of the host's own FORWARD rules meet the traffic nsnet accepts.
//!
//! nsnet's jumps go first in FORWARD and its accepts end the chain for its
//! bridges' traffic. So a DROP or REJECT a user (or a tutorial) *appends*
//! to FORWARD never sees that traffic: it is shadowed, silently, as it is
//! beside Docker. One put *ahead* of nsnet's jumps does see it, but only
//! until nsnet adds its jumps again (after `nsnet down`, they go first).
//! The place for such a rule is NSNET-USER, or `nsnet firewall deny`.
//!
//! `Traffic::of` describes, per bridge, the connections nsnet accepts (by
//! interfaces and addresses); `Traffic::meets` tells whether a rule's
//! `-i`/`-o`/`-s`/`-d` matches (negations and `+` wildcards included) can
//! all hold for one of them. Other matches (ports, states) are taken as
//! possible. Pure: the rules come as `iptables-save` prints them.

use crate::model::rules::Family;
use crate::model::state::State;
use crate::model::validate::IfName;
use ipnet::IpNet;

/// An interface a flow passes: any, this one, or any but this one.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Iface {
    Any,
    Is(String),
    Not(String),
}

/// Connections nsnet accepts in FORWARD for one bridge: coming in on
/// `input`, going out on `output`, from `src` to `dst` (`None`: anywhere).
#[derive(Clone, Debug)]
struct Flow {
    bridge: IfName,
    input: Iface,
    output: Iface,
    src: Option<IpNet>,
    dst: Option<IpNet>,
}

/// What nsnet accepts in one family's FORWARD chain.
#[derive(Clone, Debug, Default)]
pub struct Traffic {
    family: Option<Family>,
    flows: Vec<Flow>,
}

impl Traffic {
    /// Between a bridge's namespaces; out of it with NAT; into it to a
    /// published port. Bridges without a subnet in `family` have none.
    pub fn of(state: &State, family: Family) -> Traffic {
        let mut flows = Vec::new();
        for (name, bridge) in &state.bridges {
            let subnet = match family {
                Family::V4 => Some(IpNet::V4(bridge.subnet)),
                Family::V6 => bridge.ipv6.map(|n| IpNet::V6(n.subnet)),
            };
            let Some(subnet) = subnet else { continue };
            let flow = |input, output, src, dst| Flow {
                bridge: name.clone(),
                input,
                output,
                src,
                dst,
            };
            let on = Iface::Is(name.to_string());
            flows.push(flow(on.clone(), on.clone(), Some(subnet), Some(subnet)));
            if let Some(nat) = &bridge.nat {
                let out = match &nat.out {
                    Some(out) => Iface::Is(out.to_string()),
                    None => Iface::Not(name.to_string()),
                };
                flows.push(flow(on.clone(), out, Some(subnet), None));
            }
            if bridge.published.iter().any(|p| p.serves(family)) {
                flows.push(flow(Iface::Any, on, None, Some(subnet)));
            }
        }
        Traffic {
            family: Some(family),
            flows,
        }
    }

    /// The bridges whose accepted traffic the rule `line` (`-A FORWARD …`)
    /// can match, each once.
    pub fn meets(&self, line: &str) -> Vec<IfName> {
        let rule = Matches::parse(line);
        let mut out: Vec<IfName> = Vec::new();
        for f in &self.flows {
            let fits = iface_fits(rule.input.as_ref(), &f.input)
                && iface_fits(rule.output.as_ref(), &f.output)
                && net_fits(rule.src.as_ref(), f.src, self.family)
                && net_fits(rule.dst.as_ref(), f.dst, self.family);
            if fits && !out.contains(&f.bridge) {
                out.push(f.bridge.clone());
            }
        }
        out
    }
}

/// Whether `line` drops or rejects what it matches.
pub fn stops(line: &str) -> bool {
    matches!(
        Matches::parse(line).target.as_deref(),
        Some("DROP" | "REJECT")
    )
}

/// Whether `line` names no interface or address: a catch-all, such as the
/// `-j REJECT` a distribution ends FORWARD with, meant for whatever no
/// earlier rule accepted.
pub fn catch_all(line: &str) -> bool {
    let m = Matches::parse(line);
    m.input.is_none() && m.output.is_none() && m.src.is_none() && m.dst.is_none()
}

/// The rule's own text after `-A CHAIN `.
pub fn spec(line: &str) -> &str {
    line.splitn(3, ' ').nth(2).unwrap_or_default()
}

/// Its `-d` destination, when given without `!`.
pub fn destination(line: &str) -> Option<IpNet> {
    let m = Matches::parse(line);
    m.dst
        .filter(|d| !d.negated)
        .and_then(|d| d.value.parse().ok())
}

/// One match: its value and whether it was negated with `!`.
#[derive(Debug)]
struct Match {
    negated: bool,
    value: String,
}

/// The matches of a rule this module reads, and its target.
#[derive(Debug, Default)]
struct Matches {
    input: Option<Match>,
    output: Option<Match>,
    src: Option<Match>,
    dst: Option<Match>,
    target: Option<String>,
}

impl Matches {
    fn parse(line: &str) -> Matches {
        let words = words(line);
        let mut m = Matches::default();
        let mut negated = false;
        let mut i = 0;
        while i < words.len() {
            let word = words[i].as_str();
            if word == "!" {
                negated = true;
                i += 1;
                continue;
            }
            let value = words.get(i + 1).cloned();
            let slot = match word {
                "-i" => Some(&mut m.input),
                "-o" => Some(&mut m.output),
                "-s" => Some(&mut m.src),
                "-d" => Some(&mut m.dst),
                _ => None,
            };
            if let (Some(slot), Some(value)) = (slot, value.clone()) {
                *slot = Some(Match { negated, value });
                i += 1;
            } else if word == "-j" {
                m.target = value;
                i += 1;
            }
            negated = false;
            i += 1;
        }
        m
    }
}

/// The words of a saved rule, a double-quoted comment as one.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// Whether interface `name` matches iptables' `pattern` (`br+`: any name
/// starting with `br`).
fn iface_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('+') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

/// Whether some interface the flow passes satisfies the rule's match.
fn iface_fits(rule: Option<&Match>, flow: &Iface) -> bool {
    let Some(m) = rule else { return true };
    match flow {
        Iface::Any => true,
        Iface::Is(name) => iface_matches(&m.value, name) != m.negated,
        // Any interface but `name`: all of them match a negation but for
        // the one name, and a pattern matches one of them unless it is
        // exactly `name`.
        Iface::Not(name) => m.negated || m.value != *name,
    }
}

/// Whether some address of the flow's (`None`: any in `family`)
/// satisfies the rule's match. A match nsnet cannot read is taken as never
/// holding: no finding is better than a wrong one.
fn net_fits(rule: Option<&Match>, flow: Option<IpNet>, family: Option<Family>) -> bool {
    let Some(m) = rule else { return true };
    let Ok(net) = m.value.parse::<IpNet>() else {
        return false;
    };
    if family.is_some_and(|f| Family::of(net.addr()) != f) {
        return false;
    }
    match (flow, m.negated) {
        (None, _) => true,
        (Some(f), false) => net.contains(&f) || f.contains(&net),
        (Some(f), true) => !net.contains(&f),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> State {
        serde_json::from_str(
            r#"{"bridges": {
                "nsnet0": {"subnet": "10.200.0.0/24", "gateway": "10.200.0.1", "nat": {},
                           "ipv6": {"subnet": "fd00:1::/64", "gateway": "fd00:1::1"}},
                "br2": {"subnet": "10.77.0.0/24", "gateway": "10.77.0.1"}}}"#,
        )
        .unwrap()
    }

    fn meets(line: &str) -> Vec<String> {
        let traffic = Traffic::of(&state(), Family::V4);
        traffic.meets(line).iter().map(|b| b.to_string()).collect()
    }

    #[test]
    fn the_tutorials_appended_rejects_meet_the_natted_bridge_only() {
        // The fourth tutorial's appendix: containers may not reach these.
        assert_eq!(
            meets("-A FORWARD -d 192.168.0.0/16 -j REJECT --reject-with icmp-port-unreachable"),
            ["nsnet0"]
        );
        assert_eq!(
            meets("-A FORWARD -s 10.200.0.0/24 -d 10.0.0.0/8 -j REJECT"),
            ["nsnet0"]
        );
        assert_eq!(meets("-A FORWARD -i br+ -j DROP"), ["br2"]);
        assert_eq!(
            meets("-A FORWARD -d 10.77.0.5/32 -j DROP"),
            ["br2", "nsnet0"]
        );
        assert_eq!(meets("-A FORWARD -i nsnet0 -o eth0 -j DROP"), ["nsnet0"]);
    }

    #[test]
    fn rules_for_other_traffic_meet_nothing() {
        for line in [
            "-A FORWARD -i docker0 -o docker0 -j DROP",
            "-A FORWARD -s 172.17.0.0/16 -d 10.0.0.0/8 -j REJECT",
            "-A FORWARD -i nsnet0 -o nsnet0 -d 8.8.8.8/32 -j DROP",
            "-A FORWARD ! -i nsnet0 -o eth0 -j DROP",
            "-A FORWARD -i eth0 -o eth1 -j DROP",
            "-A FORWARD -m comment --comment \"-s 10.200.0.0/24\" -d 2001:db8::/32 -j DROP",
        ] {
            assert_eq!(meets(line), Vec::<String>::new(), "{line}");
        }
    }

    #[test]
    fn ipv6_traffic_is_the_dual_stack_bridges_only() {
        let traffic = Traffic::of(&state(), Family::V6);
        assert_eq!(
            traffic.meets("-A FORWARD -d 2001:db8::/32 -j REJECT").len(),
            1
        );
        assert!(traffic.meets("-A FORWARD -i br2 -j DROP").is_empty());
    }

    #[test]
    fn targets_specs_and_destinations() {
        let line = "-A FORWARD -d 10.0.0.0/8 -m comment --comment \"a b\" -j REJECT --reject-with icmp-port-unreachable";
        assert!(stops(line) && !catch_all(line));
        assert!(catch_all(
            "-A FORWARD -j REJECT --reject-with icmp-host-prohibited"
        ));
        assert!(!stops("-A FORWARD -d 10.0.0.0/8 -j ACCEPT"));
        assert!(spec(line).starts_with("-d 10.0.0.0/8 -m comment"));
        assert_eq!(destination(line), Some("10.0.0.0/8".parse().unwrap()));
        assert_eq!(destination("-A FORWARD ! -d 10.0.0.0/8 -j DROP"), None);
    }
}
