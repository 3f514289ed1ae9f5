//! Plans: the ordered steps a command will take, each a command to apply and
//! the commands that undo it. A plan is plain data, built without touching the
//! system, so it can be printed (`--dry-run`, `--explain`), compared with a
//! literal in tests, or handed to the executor.
//!
//! Invariant: running the `undo` of every applied step, last step first,
//! returns the system to where it was before the plan. A step's `undo` is
//! empty only when it adds nothing of its own or when an earlier step's undo
//! removes what it changed (deleting a veth takes its addresses and routes
//! with it), so rollback runs no redundant command.

pub mod cmd;

use crate::plan::cmd::Cmd;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// One change to the system.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// What to run.
    pub apply: Cmd,
    /// What puts things back once `apply` has succeeded, in order.
    pub undo: Vec<Cmd>,
    /// Why the step exists, in the tutorials' terms: the `--explain` text.
    pub why: String,
    /// Host interfaces that vanish a moment after `apply` (veth ends whose
    /// namespace was deleted): the executor waits for them to be gone before
    /// it returns, and before it runs this step's undo.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub settle: Vec<String>,
}

impl Step {
    pub fn new(apply: Cmd, why: impl Into<String>) -> Step {
        Step {
            apply,
            undo: Vec::new(),
            why: why.into(),
            settle: Vec::new(),
        }
    }

    /// Sets the command that reverses this step.
    pub fn undo(mut self, cmd: Cmd) -> Step {
        self.undo = vec![cmd];
        self
    }

    /// Sets several commands that, in order, reverse this step: a deletion is
    /// undone by re-creating the object and its configuration.
    pub fn undo_all(mut self, cmds: impl IntoIterator<Item = Cmd>) -> Step {
        self.undo = cmds.into_iter().collect();
        self
    }
}

/// What a plan deletes, by name: should it be rolled back, these are made
/// again, each under a new identity.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Deletions {
    /// Named namespaces (`ip netns del NAME`).
    pub namespaces: std::collections::BTreeSet<String>,
    /// Links by namespace (`None`: the host) and name (`ip [-n NS] link
    /// del NAME`, and the host ends a namespace's deletion takes along).
    pub links: std::collections::BTreeSet<(Option<String>, String)>,
}

impl Plan {
    pub fn deletions(&self) -> Deletions {
        let mut out = Deletions::default();
        for step in &self.steps {
            let cmd = &step.apply;
            let args = &cmd.args[if cmd.netns().is_some() { 2 } else { 0 }..];
            match args {
                [netns, del, name] if netns == "netns" && del == "del" => {
                    out.namespaces.insert(name.clone());
                }
                [link, del, name] if link == "link" && del == "del" => {
                    out.links
                        .insert((cmd.netns().map(String::from), name.clone()));
                }
                _ => {}
            }
            out.links
                .extend(step.settle.iter().map(|l| (None, l.clone())));
        }
        out
    }
}

/// An ordered list of steps.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub steps: Vec<Step>,
}

impl Plan {
    pub fn push(&mut self, step: Step) {
        self.steps.push(step);
    }

    pub fn extend(&mut self, steps: impl IntoIterator<Item = Step>) {
        self.steps.extend(steps);
    }

    /// The plan as a shell script, one command per line. With `explain`, each
    /// command is preceded by a `#` line saying what it does and why.
    pub fn script(&self, explain: bool) -> String {
        let mut out = String::new();
        if self.steps.is_empty() {
            out.push_str("# nothing to do: the host already matches\n");
        }
        for step in &self.steps {
            if explain {
                for line in step.why.lines() {
                    let _ = writeln!(out, "# {line}");
                }
            }
            let _ = writeln!(out, "{}", step.apply);
        }
        out
    }
}

/// `steps` with those that run in the host moved ahead of those that run
/// inside a namespace (`ip -n NS`), each kept in its order, so that the
/// executor can run them as one host batch and one batch per namespace.
/// Only for steps where nothing in the host depends on what is done inside a
/// namespace, as when namespaces are made and plugged in: the host makes the
/// namespace and moves the veth end in, then the namespace configures it.
pub fn host_first(steps: Vec<Step>) -> Vec<Step> {
    let (host, inside): (Vec<Step>, Vec<Step>) =
        steps.into_iter().partition(|s| s.apply.netns().is_none());
    host.into_iter().chain(inside).collect()
}

/// The steps that rebuild an object, folded into one teardown step: `apply`
/// removes the object, and its undo replays the setup commands in order.
pub fn teardown(apply: Cmd, setup: &[Step], why: impl Into<String>) -> Step {
    Step::new(apply, why).undo_all(setup.iter().map(|s| s.apply.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        let mut plan = Plan::default();
        plan.push(
            Step::new(Cmd::ip(["netns", "add", "red"]), "a namespace\nis a room")
                .undo(Cmd::ip(["netns", "del", "red"])),
        );
        plan.push(Step::new(
            Cmd::ip_in(Some("red"), ["link", "set", "lo", "up"]),
            "loopback",
        ));
        plan
    }

    #[test]
    fn script_is_one_command_per_line() {
        assert_eq!(
            plan().script(false),
            "ip netns add red\nip -n red link set lo up\n"
        );
    }

    #[test]
    fn explain_puts_the_reason_before_each_command() {
        assert_eq!(
            plan().script(true),
            "# a namespace\n# is a room\nip netns add red\n# loopback\nip -n red link set lo up\n"
        );
    }

    #[test]
    fn an_empty_plan_says_so_as_a_comment() {
        assert_eq!(
            Plan::default().script(false),
            "# nothing to do: the host already matches\n"
        );
    }

    #[test]
    fn host_first_keeps_each_side_in_order() {
        let step = |ns: Option<&str>, what: &str| Step::new(Cmd::ip_in(ns, [what]), "");
        let steps = vec![
            step(None, "a"),
            step(Some("red"), "b"),
            step(None, "c"),
            step(Some("red"), "d"),
            step(Some("blue"), "e"),
        ];
        let order: Vec<String> = host_first(steps)
            .iter()
            .map(|s| s.apply.to_string())
            .collect();
        assert_eq!(
            order,
            ["ip a", "ip c", "ip -n red b", "ip -n red d", "ip -n blue e"]
        );
    }

    #[test]
    fn teardown_replays_setup_as_its_undo() {
        let steps = plan().steps;
        let step = teardown(Cmd::ip(["netns", "del", "red"]), &steps, "remove");
        let undo: Vec<String> = step.undo.iter().map(ToString::to_string).collect();
        assert_eq!(undo, ["ip netns add red", "ip -n red link set lo up"]);
    }

    #[test]
    fn deletions_name_what_a_rollback_makes_again() {
        let mut plan = Plan::default();
        let mut del = Step::new(Cmd::ip(["netns", "del", "red"]), "");
        del.settle.push("nv-red".into());
        plan.push(del);
        plan.push(Step::new(
            Cmd::ip_in(Some("blue"), ["link", "del", "vc-red"]),
            "",
        ));
        plan.push(Step::new(Cmd::ip(["link", "del", "nsnet0"]), ""));
        plan.push(Step::new(Cmd::ip(["link", "set", "x", "up"]), ""));
        let d = plan.deletions();
        assert_eq!(d.namespaces, ["red".to_string()].into());
        let links: Vec<(Option<&str>, &str)> = d
            .links
            .iter()
            .map(|(n, l)| (n.as_deref(), l.as_str()))
            .collect();
        assert_eq!(
            links,
            [(None, "nsnet0"), (None, "nv-red"), (Some("blue"), "vc-red")]
        );
    }
}
