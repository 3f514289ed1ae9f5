//! `--dns`: name servers for a namespace. `ip netns exec NS` (and so
//! `nsnet netns exec`) shows /etc/netns/NS/resolv.conf as the namespace's
//! /etc/resolv.conf; nsnet writes that file, marked as its own on the first
//! line, never overwrites one it did not write, and removes what it wrote
//! (the file, and the directories it made for it) with the namespace.

use super::Change;
use crate::host::Host;
use crate::host::identity::ETC_NETNS;
use crate::model::state::{Namespace, State};
use crate::model::validate::NsName;
use crate::plan::Step;
use crate::plan::cmd::{Cmd, Tool};
use anyhow::{Result, bail};
use std::net::IpAddr;

/// The first line of every file nsnet writes: how it knows its own.
const MARK: &str = "# written by nsnet";

fn dir(ns: &NsName) -> String {
    format!("{ETC_NETNS}/{ns}")
}

fn file(ns: &NsName) -> String {
    format!("{ETC_NETNS}/{ns}/resolv.conf")
}

/// The file for `servers`.
fn content(ns: &NsName, servers: &[IpAddr]) -> String {
    let mut text = format!("{MARK} for namespace {ns}; it removes this file with the namespace\n");
    for s in servers {
        text.push_str(&format!("nameserver {s}\n"));
    }
    text
}

fn write(ns: &NsName, servers: &[IpAddr]) -> Cmd {
    Cmd {
        stdin: Some(content(ns, servers)),
        ..Cmd::new(Tool::Tee, [file(ns)])
    }
}

/// Gives the namespaces `names` (all in the record) the name servers
/// `servers`, if they do not have those already.
pub fn set(change: &mut Change, host: &Host, names: &[&NsName], servers: &[IpAddr]) -> Result<()> {
    if servers.is_empty() {
        return Ok(());
    }
    let mut servers = servers.to_vec();
    servers.dedup();
    for ns in names {
        let Some(entry) = change.state.namespaces.get(*ns) else {
            bail!(
                "namespace `{ns}` was neither made nor attached by nsnet, so its {} is not nsnet's to write (leave out --dns for it)",
                file(ns)
            );
        };
        if entry.dns == servers {
            continue;
        }
        let existing = host.etc_netns.dirs.get(ns.as_str());
        let old = existing.and_then(|f| f.clone());
        if let Some(text) = &old
            && !text.starts_with(MARK)
        {
            bail!(
                "{} exists and nsnet did not write it: remove it, or leave out --dns",
                file(ns)
            );
        }
        let mut steps = Vec::new();
        if !host.etc_netns.exists && !change.state.etc_netns_made {
            steps.push(
                Step::new(
                    Cmd::new(Tool::Mkdir, [ETC_NETNS]),
                    format!("Make {ETC_NETNS}, where `ip netns exec` looks for a namespace's own /etc files."),
                )
                .undo(Cmd::new(Tool::Rmdir, [ETC_NETNS])),
            );
            change.state.etc_netns_made = true;
        }
        let made_dir = existing.is_none() && !entry.dns_dir;
        if made_dir {
            steps.push(
                Step::new(
                    Cmd::new(Tool::Mkdir, [dir(ns)]),
                    format!(
                        "Make {}: its files replace /etc's inside `ip netns exec {ns}`.",
                        dir(ns)
                    ),
                )
                .undo(Cmd::new(Tool::Rmdir, [dir(ns)])),
            );
        }
        let undo = match &old {
            Some(_) => write(ns, &entry.dns),
            None => Cmd::new(Tool::Rm, [file(ns)]),
        };
        steps.push(
            Step::new(
                write(ns, &servers),
                format!(
                    "Write {}: inside `ip netns exec {ns}` it is /etc/resolv.conf, naming {ns}'s name servers.",
                    file(ns)
                ),
            )
            .undo(undo),
        );
        change.plan.extend(steps);
        let entry = change.state.namespaces.get_mut(*ns).expect("recorded");
        entry.dns = servers.clone();
        entry.dns_dir |= made_dir;
    }
    Ok(())
}

/// The steps that remove what nsnet wrote for namespace `ns` (`entry`):
/// the file and the directory nsnet made for it. Nothing for a file that
/// is gone or no longer nsnet's.
pub fn remove_steps(ns: &NsName, entry: &Namespace, host: &Host) -> Vec<Step> {
    let mut steps = Vec::new();
    if entry.dns.is_empty() {
        return steps;
    }
    let ours = host
        .etc_netns
        .dirs
        .get(ns.as_str())
        .and_then(|f| f.as_deref())
        .is_some_and(|text| text.starts_with(MARK));
    if ours {
        steps.push(
            Step::new(
                Cmd::new(Tool::Rm, [file(ns)]),
                format!("Remove {}, which nsnet wrote for {ns}.", file(ns)),
            )
            .undo(write(ns, &entry.dns)),
        );
        if entry.dns_dir {
            steps.push(
                Step::new(
                    Cmd::new(
                        Tool::Rmdir,
                        ["--ignore-fail-on-non-empty".to_string(), dir(ns)],
                    ),
                    format!(
                        "Remove {}, which nsnet made for it (unless something else is in it now).",
                        dir(ns)
                    ),
                )
                .undo(Cmd::new(Tool::Mkdir, ["-p".to_string(), dir(ns)])),
            );
        }
    }
    steps
}

/// The step that removes /etc/netns when nsnet made it and no namespace
/// of the record (`state`, after the change) has a file there any more:
/// planned once, after every namespace's files.
pub fn etc_netns_step(state: &mut State) -> Option<Step> {
    let others = state.namespaces.values().any(|n| !n.dns.is_empty());
    if !state.etc_netns_made || others {
        return None;
    }
    state.etc_netns_made = false;
    Some(
        Step::new(
            Cmd::new(Tool::Rmdir, ["--ignore-fail-on-non-empty", ETC_NETNS]),
            format!("Remove {ETC_NETNS}, which nsnet made and nothing of it uses any more."),
        )
        .undo(Cmd::new(Tool::Mkdir, ["-p", ETC_NETNS])),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn red() -> NsName {
        "red".parse().unwrap()
    }

    #[test]
    fn on_a_host_without_etc_netns_it_is_made_and_removed_with_the_last_file() {
        let mut state = State::default();
        state.namespaces.insert(red(), Namespace::new(None, true));
        let host = Host::default();
        let mut change = Change::from(&state);
        let servers = ["192.0.2.53".parse().unwrap()];
        set(&mut change, &host, &[&red()], &servers).unwrap();
        assert_eq!(
            change.plan.script(false),
            "mkdir /etc/netns\nmkdir /etc/netns/red\ntee /etc/netns/red/resolv.conf <<'EOF'\n\
             # written by nsnet for namespace red; it removes this file with the namespace\n\
             nameserver 192.0.2.53\nEOF\n"
        );
        assert!(change.state.etc_netns_made);
        let undo: Vec<String> = change
            .plan
            .steps
            .iter()
            .flat_map(|s| &s.undo)
            .map(|c| c.to_string())
            .collect();
        assert_eq!(
            undo,
            [
                "rmdir /etc/netns",
                "rmdir /etc/netns/red",
                "rm /etc/netns/red/resolv.conf"
            ]
        );
        // Once written, removing the namespace removes all three.
        let mut after = change.state.clone();
        let entry = after.namespaces.remove(&red()).unwrap();
        let mut host = Host::default();
        host.etc_netns.exists = true;
        host.etc_netns
            .dirs
            .insert("red".into(), Some(content(&red(), &servers)));
        let mut steps = remove_steps(&red(), &entry, &host);
        steps.extend(etc_netns_step(&mut after));
        let cmds: Vec<String> = steps.iter().map(|s| s.apply.to_string()).collect();
        assert_eq!(
            cmds,
            [
                "rm /etc/netns/red/resolv.conf",
                "rmdir --ignore-fail-on-non-empty /etc/netns/red",
                "rmdir --ignore-fail-on-non-empty /etc/netns"
            ]
        );
        assert!(!after.etc_netns_made);
    }
}
