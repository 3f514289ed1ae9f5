//! `netns`: named network namespaces, created or attached to a running
//! process's namespace, and their removal.

use super::Change;
use super::release::release;
use crate::host::Host;
use crate::model::state::{Found, Namespace, State, replaced};
use crate::model::validate::NsName;
use crate::plan::cmd::Cmd;
use crate::plan::{Step, host_first, teardown};
use anyhow::{Result, bail};

/// The steps that make namespace `ns` with its loopback up.
pub fn create_steps(ns: &NsName) -> Vec<Step> {
    let name = ns.as_str();
    vec![
        Step::new(
            Cmd::ip(["netns", "add", name]),
            format!(
                "Create namespace {ns}: a network stack of its own (interfaces, routes, firewall),\n\
                 like a separate machine in the same room. `ip netns` names it in /run/netns."
            ),
        )
        .undo(Cmd::ip(["netns", "del", name])),
        Step::new(
            Cmd::ip_in(Some(name), ["link", "set", "lo", "up"]),
            format!("A new namespace's loopback is down: bring it up so that programs in {ns} reach 127.0.0.1."),
        ),
    ]
}

/// Plans making `ns` when the host lacks it, for a bridge port or a cable:
/// recorded as made for them, unless the record already knows it (deleted by
/// hand, it is made again). An attached namespace that is gone cannot be.
pub fn ensure(change: &mut Change, host: &Host, ns: &NsName) -> Result<()> {
    let Some(entry) = change.state.namespaces.get_mut(ns) else {
        // Not nsnet's: one the user made is used as it is.
        if !host.has_ns(ns.as_str()) {
            change.plan.extend(create_steps(ns));
            let entry = Namespace::new(None, false);
            change.state.namespaces.insert(ns.clone(), entry);
        }
        return Ok(());
    };
    match host.namespace(ns, entry) {
        Found::Ours => {}
        Found::Other => bail!(replaced("namespace", ns.as_str())),
        // Named by this very plan (a runtime's container named after it,
        // see `attach::add`): the name is there once the plan has run.
        Found::Gone if entry.pid.is_some() && entry.stamp.is_none() => {}
        Found::Gone if entry.pid.is_some() => bail!(
            "namespace `{ns}` was attached to a process and is gone (`nsnet netns detach {ns}` clears it)"
        ),
        Found::Gone => {
            change.plan.extend(create_steps(ns));
            entry.stamp = None;
        }
    }
    Ok(())
}

/// The step that removes namespace `ns` as recorded in `entry`.
pub fn remove_step(ns: &NsName, entry: &Namespace) -> Step {
    let del = Cmd::ip(["netns", "del", ns.as_str()]);
    match entry.pid {
        None => teardown(
            del,
            &create_steps(ns),
            format!("Delete namespace {ns}; what is still inside it goes with it."),
        ),
        Some(pid) => Step::new(
            del,
            format!("Remove the name {ns} only: process {pid} keeps its namespace, untouched."),
        )
        .undo(attach_cmd(ns, pid)),
    }
}

fn attach_cmd(ns: &NsName, pid: u32) -> Cmd {
    Cmd::ip([
        "netns".into(),
        "attach".into(),
        ns.to_string(),
        pid.to_string(),
    ])
}

/// `netns add`: creates the namespaces that do not exist yet.
pub fn add(names: &[NsName], host: &Host, state: &State) -> Result<Change> {
    let mut change = Change::from(state);
    for ns in names {
        if change.state.namespaces.contains_key(ns) {
            ensure(&mut change, host, ns)?;
            let entry = change.state.namespaces.get_mut(ns).expect("recorded");
            entry.explicit = true;
        } else if host.has_ns(ns.as_str()) {
            change.notes.push(format!(
                "namespace `{ns}` already exists and was not made by nsnet; left as it is"
            ));
        } else {
            change.plan.extend(create_steps(ns));
            change
                .state
                .namespaces
                .insert(ns.clone(), Namespace::new(None, true));
        }
    }
    change.plan.steps = host_first(std::mem::take(&mut change.plan.steps));
    Ok(change)
}

/// `netns del`: removes namespaces nsnet created, their bridge ports and
/// cables first (a namespace kept alive by a process would otherwise keep its
/// veths, and their host ends, too).
pub fn del(names: &[NsName], force: bool, host: &Host, state: &State) -> Result<Change> {
    let mut change = Change::from(state);
    for ns in names {
        match state.namespaces.get(ns) {
            Some(entry) if entry.pid.is_some() => {
                bail!(
                    "namespace `{ns}` is attached to a process, not created by nsnet (use `nsnet netns detach {ns}`)"
                )
            }
            None if host.has_ns(ns.as_str()) => bail!(
                "namespace `{ns}` was not created by nsnet, which deletes only what it made (use `ip netns del {ns}`)"
            ),
            _ => {}
        }
    }
    for ns in names {
        if change.state.namespaces.contains_key(ns) {
            remove_users(&mut change, host, ns, force)?;
        }
    }
    Ok(change)
}

/// `netns attach`: names the network namespace of process `pid`.
///
/// `pid_ns` is the identity of that process's namespace (`None`: no such
/// process), `host_ns` nsnet's own, `name_ns` that of an existing `name`.
pub fn attach(
    name: &NsName,
    pid: u32,
    ids: &AttachIds,
    host: &Host,
    state: &State,
) -> Result<Change> {
    let mut change = Change::from(state);
    let target = match &ids.pid_ns {
        Ok(target) => *target,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "there is no process with pid {pid} (check the pid, e.g. `docker inspect -f '{{{{.State.Pid}}}}' NAME`)"
        ),
        Err(e) => {
            bail!("cannot read the network namespace of process {pid} (/proc/{pid}/ns/net): {e}")
        }
    };
    if Some(target) == ids.host_ns {
        bail!("process {pid} runs in the host's own network namespace: there is nothing to attach");
    }
    if host.has_ns(name.as_str()) {
        if ids.name_ns == Some(target) {
            return Ok(change);
        }
        bail!(
            "namespace `{name}` already exists (choose another name, or `nsnet netns detach {name}` first)"
        );
    }
    change.plan.push(
        Step::new(
            attach_cmd(name, pid),
            format!(
                "Make process {pid}'s network namespace usable as {name} (`ip netns exec {name}`, `ip -n {name}`):\n\
                 a bind mount of /proc/{pid}/ns/net under /run/netns. A bind mount, not a symlink, names the\n\
                 namespace itself, so the name can never come to mean another process's namespace."
            ),
        )
        .undo(Cmd::ip(["netns", "del", name.as_str()])),
    );
    change
        .state
        .namespaces
        .insert(name.clone(), Namespace::new(Some(pid), true));
    Ok(change)
}

/// Identities of network namespaces, as `(device, inode)` of their nsfs file.
#[derive(Debug)]
pub struct AttachIds {
    pub pid_ns: std::io::Result<(u64, u64)>,
    pub host_ns: Option<(u64, u64)>,
    pub name_ns: Option<(u64, u64)>,
}

/// `netns detach`: removes the name and what nsnet put in the namespace,
/// leaving the process and its namespace running.
pub fn detach(name: &NsName, host: &Host, state: &State) -> Result<Change> {
    let mut change = Change::from(state);
    match state.namespaces.get(name) {
        Some(entry) if entry.pid.is_some() => remove_users(&mut change, host, name, false)?,
        Some(_) => bail!(
            "namespace `{name}` was created by nsnet, not attached (use `nsnet netns del {name}`)"
        ),
        None if host.has_ns(name.as_str()) => {
            bail!(
                "namespace `{name}` was not attached by nsnet (use `ip netns del {name}` to remove the name)"
            )
        }
        None => {}
    }
    Ok(change)
}

/// Releases everything in `ns` and then `ns` itself.
fn remove_users(change: &mut Change, host: &Host, ns: &NsName, force: bool) -> Result<()> {
    let ports: Vec<_> = change
        .state
        .bridges
        .iter()
        .flat_map(|(b, br)| {
            br.ports
                .iter()
                .filter(|p| &p.ns == ns)
                .map(|p| (b.clone(), p.clone()))
        })
        .collect();
    let cables: Vec<_> = change
        .state
        .cables
        .iter()
        .filter(|c| c.touches(ns))
        .cloned()
        .collect();
    release(
        change,
        host,
        &ports,
        &cables,
        std::slice::from_ref(ns),
        force,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<NsName> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn host_with(namespaces: &[&str]) -> Host {
        Host {
            namespaces: namespaces.iter().map(|s| s.to_string()).collect(),
            ..Host::default()
        }
    }

    #[test]
    fn add_creates_missing_namespaces_with_loopback_up() {
        let change = add(
            &names(&["red", "blue"]),
            &host_with(&["blue"]),
            &State::default(),
        )
        .unwrap();
        assert_eq!(
            change.plan.script(false),
            "ip netns add red\nip -n red link set lo up\n"
        );
        assert_eq!(change.notes.len(), 1, "blue exists and is not ours");
        assert!(change.state.namespaces.contains_key(&names(&["red"])[0]));
    }

    #[test]
    fn del_refuses_namespaces_nsnet_did_not_create() {
        let err = del(
            &names(&["other"]),
            false,
            &host_with(&["other"]),
            &State::default(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "namespace `other` was not created by nsnet, which deletes only what it made (use `ip netns del other`)"
        );
    }

    #[test]
    fn del_refuses_while_processes_run_unless_forced() {
        let state = add(&names(&["red"]), &Host::default(), &State::default())
            .unwrap()
            .state;
        let mut host = host_with(&["red"]);
        host.pids.insert("red".into(), vec![42]);
        let err = del(&names(&["red"]), false, &host, &state).unwrap_err();
        assert!(err.to_string().contains("(pid 42)"), "{err}");
        let change = del(&names(&["red"]), true, &host, &state).unwrap();
        assert_eq!(change.plan.script(false), "ip netns del red\n");
        assert!(change.state.namespaces.is_empty());
    }

    #[test]
    fn del_of_a_missing_namespace_is_a_no_op() {
        let change = del(
            &names(&["gone"]),
            false,
            &Host::default(),
            &State::default(),
        )
        .unwrap();
        assert!(change.plan.steps.is_empty());
    }

    #[test]
    fn attach_checks_the_process() {
        let red = &names(&["box"])[0];
        let ids = |pid_ns| AttachIds {
            pid_ns,
            host_ns: Some((1, 1)),
            name_ns: None,
        };
        let (host, none) = (Host::default(), State::default());
        let gone = std::io::Error::from(std::io::ErrorKind::NotFound);
        let err = attach(red, 7, &ids(Err(gone)), &host, &none).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("there is no process with pid 7"),
            "{err}"
        );
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let err = attach(red, 7, &ids(Err(denied)), &host, &none).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot read the network namespace of process 7"),
            "{err}"
        );
        let err = attach(red, 7, &ids(Ok((1, 1))), &host, &none).unwrap_err();
        assert!(err.to_string().contains("host's own network namespace"));
        let ids = ids(Ok((1, 2)));
        let change = attach(red, 7, &ids, &Host::default(), &State::default()).unwrap();
        assert_eq!(change.plan.script(false), "ip netns attach box 7\n");
        let detached = detach(red, &host_with(&["box"]), &change.state).unwrap();
        assert_eq!(detached.plan.script(false), "ip netns del box\n");
        assert_eq!(
            detached.plan.steps[0].undo[0].to_string(),
            "ip netns attach box 7"
        );
    }
}
