//! What will drop the traffic nsnet forwards, whatever nsnet's own rules say.
//!
//! nsnet accepts its bridges' traffic in NSNET-FORWARD, jumped to first in
//! the FORWARD chain of the iptables backend `iptables` uses. An accept
//! there ends that chain only: every other base chain on the kernel's
//! forward hook still sees the packet, and a drop in any of them is final.
//! So these stop nsnet's traffic:
//! - the other iptables backend (legacy beside nf_tables, or the reverse)
//!   with a FORWARD policy of DROP, or DROP/REJECT rules in FORWARD;
//! - an nftables table of other software (firewalld, a hand-written
//!   /etc/nftables.conf) with a forward-hook chain whose policy is drop;
//! - in nsnet's own backend, a DROP/REJECT rule put in FORWARD ahead of
//!   nsnet's jumps that matches traffic nsnet accepts (see `shadow`).
//!
//! `gather` reads them (`iptables-save` of both backends, `nft -j list
//! chains`); `check` is pure. doctor reports them, status too, as a network
//! whose paths cannot work.

use crate::exec::runner::Runner;
use crate::plan::cmd::{Cmd, Tool};
use crate::report::shadow::{self, Traffic};
use serde::Deserialize;

/// nsnet's jump from FORWARD, as `iptables-save` prints it.
const JUMP: &str = "-A FORWARD -m comment --comment nsnet -j NSNET-FORWARD";

/// The FORWARD chain of one iptables backend, in order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Forward {
    /// `nf_tables` or `legacy`.
    pub backend: String,
    pub policy: Option<String>,
    /// `-A FORWARD …` lines, in the order the chain runs them.
    pub rules: Vec<String>,
}

impl Forward {
    /// Reads the filter table's FORWARD chain from `iptables-save` output.
    pub fn parse(backend: &str, saved: &str) -> Forward {
        let mut out = Forward {
            backend: backend.to_string(),
            ..Forward::default()
        };
        let mut table = "";
        for line in saved.lines() {
            if let Some(name) = line.strip_prefix('*') {
                table = name;
            } else if table != "filter" {
                continue;
            } else if let Some(rest) = line.strip_prefix(":FORWARD ") {
                out.policy = rest.split_whitespace().next().map(String::from);
            } else if line.starts_with("-A FORWARD ") {
                out.rules.push(line.to_string());
            }
        }
        out
    }

    /// The first rule that drops or rejects, if any (before `end` rules).
    fn first_drop(&self, end: usize) -> Option<&String> {
        self.rules[..end]
            .iter()
            .find(|r| r.ends_with("-j DROP") || r.contains("-j REJECT"))
    }
}

/// A base chain of nftables on the forward hook whose policy is drop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NftDrop {
    pub family: String,
    pub table: String,
    pub chain: String,
}

/// What `check` looks at.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Facts {
    /// The backend `iptables` writes to, with nsnet's rules.
    pub ours: Option<Forward>,
    /// The other backend, if its tools are installed.
    pub other: Option<Forward>,
    /// Forward-hook chains with a drop policy outside iptables-nft's tables.
    pub nft: Vec<NftDrop>,
}

/// One thing that drops nsnet's forwarded traffic, and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub message: String,
    pub fix: String,
}

/// Reads both iptables backends' FORWARD chains and nftables' forward hooks.
pub fn gather(runner: &mut dyn Runner) -> Facts {
    let version = runner
        .run(&Cmd::new(Tool::IptablesSave, ["--version"]))
        .unwrap_or_default();
    let ours = ["nf_tables", "legacy"]
        .into_iter()
        .find(|b| version.contains(&format!("({b})")));
    let save = |runner: &mut dyn Runner, tool| runner.run(&Cmd::new(tool, ["-t", "filter"])).ok();
    let (mine, other, other_tool) = match ours {
        Some("legacy") => ("legacy", "nf_tables", Tool::IptablesNftSave),
        _ => ("nf_tables", "legacy", Tool::IptablesLegacySave),
    };
    Facts {
        ours: save(runner, Tool::IptablesSave).map(|t| Forward::parse(mine, &t)),
        other: save(runner, other_tool).map(|t| Forward::parse(other, &t)),
        nft: runner
            .run(&Cmd::new(Tool::Nft, ["-j", "list", "chains"]))
            .map(|t| nft_drops(&t))
            .unwrap_or_default(),
    }
}

#[derive(Deserialize)]
struct NftList {
    nftables: Vec<NftItem>,
}

#[derive(Deserialize)]
struct NftItem {
    chain: Option<NftChain>,
}

#[derive(Deserialize)]
struct NftChain {
    family: String,
    table: String,
    name: String,
    hook: Option<String>,
    policy: Option<String>,
}

/// The forward-hook chains with a drop policy in `nft -j list chains`,
/// leaving out iptables-nft's own FORWARD (read through iptables-save).
pub fn nft_drops(json: &str) -> Vec<NftDrop> {
    let Ok(list) = serde_json::from_str::<NftList>(json) else {
        return Vec::new();
    };
    list.nftables
        .into_iter()
        .filter_map(|item| item.chain)
        .filter(|c| c.hook.as_deref() == Some("forward") && c.policy.as_deref() == Some("drop"))
        .filter(|c| {
            let iptables = matches!(c.family.as_str(), "ip" | "ip6")
                && c.table == "filter"
                && c.name == "FORWARD";
            !iptables
        })
        .map(|c| NftDrop {
            family: c.family,
            table: c.table,
            chain: c.name,
        })
        .collect()
}

/// Everything in `facts` that drops nsnet's forwarded traffic (`traffic`:
/// what nsnet accepts in IPv4).
pub fn check(facts: &Facts, traffic: &Traffic) -> Vec<Block> {
    let mut out = Vec::new();
    if let Some(ours) = &facts.ours {
        // With nsnet's jump in place, only what runs before it matters.
        if let Some(at) = ours.rules.iter().position(|r| r == JUMP)
            && let Some((rule, bridges)) = ours.rules[..at]
                .iter()
                .filter(|r| shadow::stops(r))
                .find_map(|r| Some((r, Some(traffic.meets(r)).filter(|b| !b.is_empty())?)))
        {
            let spec = shadow::spec(rule);
            let names: Vec<String> = bridges.iter().map(|b| format!("`{b}`")).collect();
            out.push(Block {
                message: format!(
                    "`{rule}` comes before nsnet's jumps in FORWARD ({}): it stops traffic of {} that nsnet accepts, and keeps that place only until nsnet adds its jumps again (they go first)",
                    ours.backend,
                    names.join(", ")
                ),
                fix: format!(
                    "if it is meant for nsnet's namespaces, move it into NSNET-USER, which runs ahead of nsnet's accepts and keeps its place (`iptables -A NSNET-USER {spec} && iptables -D FORWARD {spec}`); if not, delete it (`iptables -D FORWARD {spec}`)"
                ),
            });
        }
    }
    if let Some(other) = &facts.other {
        out.extend(other_backend(other));
    }
    for d in &facts.nft {
        out.push(Block {
            message: format!(
                "nftables chain `{} {} {}` drops forwarded traffic by policy: nsnet's accepts in iptables do not reach it",
                d.family, d.table, d.chain
            ),
            fix: format!(
                "accept nsnet's bridges there (`nft insert rule {} {} {} iifname \"nsnet*\" accept` and the same with oifname), or set its policy to accept",
                d.family, d.table, d.chain
            ),
        });
    }
    out
}

/// What the other iptables backend's FORWARD chain drops: nsnet's accepts
/// are not there, and a drop in either backend is final.
fn other_backend(other: &Forward) -> Vec<Block> {
    let mut out = Vec::new();
    let tool = match other.backend.as_str() {
        "legacy" => "iptables-legacy",
        _ => "iptables-nft",
    };
    if other.policy.as_deref() == Some("DROP") {
        out.push(Block {
            message: format!(
                "the {} backend's FORWARD policy is DROP: nsnet's accepts are in the other backend, and a drop in either is final",
                other.backend
            ),
            fix: format!(
                "`{tool} -P FORWARD ACCEPT`, or keep that firewall in the backend `iptables` uses"
            ),
        });
    }
    if let Some(rule) = other.first_drop(other.rules.len()) {
        out.push(Block {
            message: format!(
                "`{rule}` in the {} backend's FORWARD may drop nsnet's traffic: nsnet's accepts are in the other backend",
                other.backend
            ),
            fix: format!(
                "delete it (`{tool} {}`), or keep that firewall in the backend `iptables` uses",
                rule.replacen("-A ", "-D ", 1)
            ),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::rules::Family;

    /// What nsnet accepts for nsnet0, 10.9.1.0/24, with NAT.
    fn traffic() -> Traffic {
        let state = serde_json::from_str(
            r#"{"bridges": {"nsnet0": {"subnet": "10.9.1.0/24", "gateway": "10.9.1.1", "nat": {}}}}"#,
        )
        .unwrap();
        Traffic::of(&state, Family::V4)
    }

    const OURS: &str = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n\
        -A FORWARD -s 10.9.0.0/16 -j DROP\n\
        -A FORWARD -m comment --comment nsnet -j NSNET-FORWARD\n\
        -A FORWARD -j REJECT --reject-with icmp-port-unreachable\nCOMMIT\n";

    #[test]
    fn a_drop_before_nsnets_jump_blocks_and_one_after_it_does_not() {
        let ours = Forward::parse("nf_tables", OURS);
        assert_eq!(ours.policy.as_deref(), Some("DROP"));
        assert_eq!(ours.rules.len(), 3);
        let facts = Facts {
            ours: Some(ours.clone()),
            ..Facts::default()
        };
        let blocks = check(&facts, &traffic());
        assert_eq!(blocks.len(), 1, "{blocks:?}");
        assert!(
            blocks[0]
                .message
                .starts_with("`-A FORWARD -s 10.9.0.0/16 -j DROP` comes before nsnet's jumps"),
            "{blocks:?}"
        );
        assert!(blocks[0].message.contains("traffic of `nsnet0`"));
        assert!(blocks[0].fix.contains(
            "iptables -A NSNET-USER -s 10.9.0.0/16 -j DROP && iptables -D FORWARD -s 10.9.0.0/16 -j DROP"
        ));
        // A drop for other traffic is none of nsnet's business.
        let none = Facts {
            ours: Some(ours.clone()),
            ..Facts::default()
        };
        assert_eq!(check(&none, &Traffic::default()), vec![]);
        // Without the first rule, the REJECT after the jump is no problem,
        // and a DROP policy in nsnet's own backend is none either.
        let mut after = ours;
        after.rules.remove(0);
        let facts = Facts {
            ours: Some(after),
            ..Facts::default()
        };
        assert_eq!(check(&facts, &traffic()), vec![]);
    }

    #[test]
    fn the_other_backend_blocks_by_policy_or_by_rule() {
        let other = Forward::parse(
            "legacy",
            "*filter\n:FORWARD DROP [0:0]\n-A FORWARD -i eth9 -j REJECT\nCOMMIT\n",
        );
        let blocks = check(
            &Facts {
                other: Some(other),
                ..Facts::default()
            },
            &traffic(),
        );
        assert_eq!(blocks.len(), 2, "{blocks:?}");
        assert!(
            blocks[0]
                .message
                .contains("legacy backend's FORWARD policy is DROP")
        );
        assert_eq!(
            blocks[0].fix,
            "`iptables-legacy -P FORWARD ACCEPT`, or keep that firewall in the backend `iptables` uses"
        );
        assert!(
            blocks[1]
                .fix
                .contains("iptables-legacy -D FORWARD -i eth9 -j REJECT")
        );
        let open = Forward::parse("legacy", "*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n");
        let facts = Facts {
            other: Some(open),
            ..Facts::default()
        };
        assert_eq!(check(&facts, &traffic()), vec![]);
    }

    #[test]
    fn nft_forward_drops_of_other_software_but_not_iptables_own() {
        let json = r#"{"nftables": [{"metainfo": {"version": "1.0.6"}},
            {"chain": {"family": "ip", "table": "filter", "name": "FORWARD", "handle": 1,
              "type": "filter", "hook": "forward", "prio": 0, "policy": "drop"}},
            {"chain": {"family": "inet", "table": "firewalld", "name": "filter_FORWARD",
              "handle": 2, "type": "filter", "hook": "forward", "prio": 10, "policy": "drop"}},
            {"chain": {"family": "inet", "table": "mine", "name": "in", "handle": 3,
              "type": "filter", "hook": "input", "prio": 0, "policy": "drop"}},
            {"chain": {"family": "inet", "table": "mine", "name": "helper", "handle": 4}}]}"#;
        let drops = nft_drops(json);
        assert_eq!(
            drops,
            vec![NftDrop {
                family: "inet".into(),
                table: "firewalld".into(),
                chain: "filter_FORWARD".into()
            }]
        );
        assert!(
            check(
                &Facts {
                    nft: drops,
                    ..Facts::default()
                },
                &traffic()
            )[0]
            .fix
            .contains("nft insert rule inet firewalld filter_FORWARD iifname \"nsnet*\" accept")
        );
        assert_eq!(nft_drops("not json"), vec![]);
    }
}
