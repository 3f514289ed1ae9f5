//! nsnet as a CNI plugin. A runtime (podman, containerd, CRI-O) runs nsnet
//! with no arguments, `CNI_COMMAND` and the other CNI_* variables set, and
//! the network configuration on stdin (`"type": "nsnet"`). The request is
//! checked (`request`), goes through the same pipeline as every command
//! (`apply` with the `attach` builder: plan, journal, rollback, record), and
//! the answer is the spec's JSON on stdout (`reply`); free text goes to
//! stderr, for the runtime's logs.

mod check;
pub mod reply;
pub mod request;

use super::apply::{FIREWALL, PUBLISH, apply};
use crate::builders::attach;
use crate::cli::Global;
use crate::exec::runner::System;
use crate::exec::{Cause, ExecError};
use crate::host::Wants;
use crate::host::netlink::Kernel;
use crate::model::state::{Port, State};
use crate::model::validate::InputError;
use ipnet::IpNet;
use reply::{Attached, Code, Failure, Iface};
use request::{Command, Network, Target, at_least};
use serde_json::Value;
use std::io::Read;
use std::net::IpAddr;
use std::path::Path;
use std::process::ExitCode;

/// Whether nsnet was started as a CNI plugin: no arguments, and a runtime's
/// `CNI_COMMAND` in the environment.
pub fn invoked() -> bool {
    std::env::args_os().len() == 1 && std::env::var_os("CNI_COMMAND").is_some()
}

/// Serves one CNI request and returns the exit status: the answer (if any)
/// is on stdout, an error as the spec's JSON there too.
pub fn main() -> ExitCode {
    let mut stdin = String::new();
    let read = std::io::stdin().read_to_string(&mut stdin);
    let version = request::version_of(&stdin);
    let served = match read {
        Ok(_) => serve(&stdin, &|key| std::env::var(key).ok()),
        Err(e) => Err(Failure::new(
            Code::Io,
            format!("cannot read the network configuration on stdin: {e}"),
        )),
    };
    match served {
        Ok(Some(answer)) => {
            println!("{answer}");
            ExitCode::SUCCESS
        }
        Ok(None) => ExitCode::SUCCESS,
        Err(failure) => {
            println!("{}", failure.json(&version));
            match failure.details.is_empty() {
                true => eprintln!("nsnet: {}", failure.msg),
                false => eprintln!("nsnet: {}: {}", failure.msg, failure.details),
            }
            ExitCode::FAILURE
        }
    }
}

/// One request: the answer to print, if the command has one.
fn serve(stdin: &str, var: &dyn Fn(&str) -> Option<String>) -> Result<Option<Value>, Failure> {
    let command = var("CNI_COMMAND").unwrap_or_default();
    let command = Command::parse(&command)?;
    if command == Command::Version {
        // Only CNI_COMMAND counts, and stdin may be empty (0.4.0 sends none).
        let asked = serde_json::from_str::<Value>(stdin)
            .ok()
            .and_then(|v| v.get("cniVersion")?.as_str().map(str::to_string));
        let version = asked.unwrap_or_else(|| request::VERSIONS[4].to_string());
        return Ok(Some(reply::versions(&version)));
    }
    let net = request::network(stdin)?;
    let least = match command {
        Command::Gc | Command::Status => "1.1.0",
        Command::Check => "0.4.0",
        _ => "0.3.0",
    };
    if !at_least(&net.version, least) {
        return Err(Failure::new(
            Code::Version,
            format!(
                "{command:?} needs cniVersion {least} or later; network `{}` says {}",
                net.name, net.version
            ),
        ));
    }
    let target = request::target(command, var)?;
    match (command, target) {
        (Command::Add, Some(t)) => add(&net, &t).map(Some),
        (Command::Del, Some(t)) => del(&net, &t).map(|()| None),
        (Command::Check, Some(t)) => check::check(&net, &t).map(|()| None),
        (Command::Gc, _) => gc(&net).map(|()| None),
        (Command::Status, _) => status(&net).map(|()| None),
        _ => unreachable!("request::target gives ADD, DEL and CHECK a target"),
    }
}

/// The flags a plugin runs with: quiet, and never a dry run.
fn global() -> Global {
    Global {
        dry_run: false,
        explain: false,
        verbose: 0,
        quiet: true,
        json: false,
        step: false,
    }
}

/// An error of the pipeline as the runtime sees it: bad input is an
/// invalid configuration, a signal means try again, anything else a
/// failure (rolled back).
fn failure(err: anyhow::Error) -> Failure {
    if let Some(f) = err.chain().find_map(|e| e.downcast_ref::<Failure>()) {
        return Failure::new(f.code, f.msg.clone());
    }
    let code = if err.chain().any(|e| e.is::<InputError>()) {
        Code::InvalidConfig
    } else if err.chain().any(|e| {
        e.downcast_ref::<ExecError>()
            .is_some_and(|x| matches!(x.cause, Cause::Interrupted(_)))
    }) {
        Code::TryAgain
    } else {
        Code::Failed
    };
    let (msg, whole) = (err.to_string(), format!("{err:#}"));
    Failure {
        code,
        details: if whole == msg { String::new() } else { whole },
        msg,
    }
}

fn network<'a>(net: &'a Network) -> attach::Network<'a> {
    attach::Network {
        name: &net.name,
        bridge: &net.bridge,
        subnet: net.subnet,
        subnet6: net.subnet6,
        gateway: net.gateway,
        gateway6: net.gateway6,
        nat: net.nat,
        default_route: net.default_route,
        deny: &net.deny,
        allow: &net.allow,
        ports: &net.ports,
    }
}

fn add(net: &Network, t: &Target) -> Result<Value, Failure> {
    let (Some(ns), Some(netns)) = (&t.ns, &t.netns) else {
        unreachable!("request::target requires CNI_NETNS for ADD");
    };
    let container = attach::Container {
        id: &t.container,
        ifname: &t.ifname,
        ns,
        netns,
        addresses: &t.addresses,
    };
    let wants = Wants {
        inside: std::slice::from_ref(ns),
        ..PUBLISH
    };
    let mut runner = System::cached();
    let build = |h: &_, s: &State| attach::add(&network(net), &container, h, s);
    let state = apply(&global(), &mut runner, wants, build)
        .map_err(failure)?
        .expect("a real run returns the record");
    let attached = attached(&state, t, netns).map_err(|err| Failure {
        code: Code::Failed,
        msg: "the container is plugged in, but nsnet cannot read back what it made".into(),
        details: format!("{err:#}"),
    })?;
    Ok(reply::result(
        &net.version,
        net.prev_result.as_ref(),
        &attached,
        net.dns.as_ref(),
    ))
}

/// What ADD made, from the record and the kernel (the hardware addresses).
fn attached(state: &State, t: &Target, netns: &str) -> anyhow::Result<Attached> {
    let (bridge, port) = attach::find(state, &t.container, &t.ifname)
        .ok_or_else(|| anyhow::anyhow!("the record has no port for the container"))?;
    let entry = &state.bridges[bridge];
    let mut here = Kernel::here()?;
    let mac = |kernel: &mut Kernel, name: &str| -> anyhow::Result<Option<String>> {
        Ok(kernel.link(Some(name), 0)?.and_then(|(l, _)| l.mac))
    };
    let mut inside = Kernel::inside(Path::new(netns))?;
    let interfaces = vec![
        Iface {
            name: bridge.to_string(),
            mac: mac(&mut here, bridge.as_str())?,
            sandbox: None,
        },
        Iface {
            name: port.host_ifname.to_string(),
            mac: mac(&mut here, port.host_ifname.as_str())?,
            sandbox: None,
        },
        Iface {
            name: t.ifname.to_string(),
            mac: mac(&mut inside, t.ifname.as_str())?,
            sandbox: Some(netns.to_string()),
        },
    ];
    let v4 = IpNet::new(IpAddr::V4(port.address), entry.subnet.prefix_len())?;
    let mut ips = vec![(v4, Some(IpAddr::V4(entry.gateway)))];
    let mut routes = Vec::new();
    if port.default_route {
        routes.push(("0.0.0.0/0".parse()?, IpAddr::V4(entry.gateway)));
    }
    if let (Some(net6), Some(a6)) = (entry.ipv6, port.address6) {
        let v6 = IpNet::new(IpAddr::V6(a6), net6.subnet.prefix_len())?;
        ips.push((v6, Some(IpAddr::V6(net6.gateway))));
        if port.default_route {
            routes.push(("::/0".parse()?, IpAddr::V6(net6.gateway)));
        }
    }
    Ok(Attached {
        interfaces,
        ips,
        routes,
    })
}

fn del(net: &Network, t: &Target) -> Result<(), Failure> {
    let dying = |p: &Port| {
        p.runtime
            .as_ref()
            .is_some_and(|a| a.container == t.container)
            && p.ifname == t.ifname
    };
    settle(&dying);
    let mut runner = System::cached();
    let build = |h: &_, s: &State| attach::del(&net.name, &t.container, &t.ifname, h, s);
    apply(&global(), &mut runner, FIREWALL, build).map_err(failure)?;
    Ok(())
}

fn gc(net: &Network) -> Result<(), Failure> {
    // Without the list, every attachment would look stale: refused.
    let Some(valid) = &net.valid else {
        return Err(Failure::new(
            Code::InvalidConfig,
            format!(
                "GC of network `{}` lists no `cni.dev/valid-attachments`: nsnet removes nothing without it",
                net.name
            ),
        ));
    };
    let valid: Vec<(String, String)> = (valid.iter())
        .map(|k| (k.container.clone(), k.ifname.clone()))
        .collect();
    let listed = |p: &Port| {
        p.runtime.as_ref().is_some_and(|a| {
            a.network == net.name
                && !valid
                    .iter()
                    .any(|(c, i)| *c == a.container && i == p.ifname.as_str())
        })
    };
    settle(&listed);
    let mut runner = System::cached();
    let build = |h: &_, s: &State| attach::gc(&net.name, &valid, h, s);
    apply(&global(), &mut runner, FIREWALL, build).map_err(failure)?;
    Ok(())
}

/// Waits (up to two seconds) for the host ends of the ports `which` picks
/// whose namespace is gone: the kernel destroys a deleted namespace, and the
/// veth ends in it, a moment later, so one seen now may be gone by the time
/// the plan deletes it. A namespace a process still holds keeps its veth:
/// that one is deleted by the plan.
fn settle(which: &dyn Fn(&Port) -> bool) {
    let Ok(state) = crate::exec::store::Store::read_only().load() else {
        return;
    };
    let names: Vec<String> = (state.bridges.values().flat_map(|b| &b.ports))
        .filter(|p| which(p) && !Path::new("/run/netns").join(p.ns.as_str()).exists())
        .map(|p| p.host_ifname.to_string())
        .collect();
    let Ok(mut kernel) = Kernel::here() else {
        return;
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while std::time::Instant::now() < deadline
        && names
            .iter()
            .any(|n| kernel.link(Some(n), 0).is_ok_and(|l| l.is_some()))
    {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// STATUS: whether an ADD could succeed now: the tools are there, and the
/// network's subnet (once made) has a free address.
fn status(net: &Network) -> Result<(), Failure> {
    let unavailable = |msg: String| Failure::new(Code::Unavailable, msg);
    for tool in ["ip", "iptables-restore"] {
        if which::which(tool).is_err() {
            return Err(unavailable(format!(
                "`{tool}` is not installed: install iproute2 and iptables"
            )));
        }
    }
    let state = crate::exec::store::Store::read_only()
        .load()
        .map_err(|e| unavailable(format!("cannot read nsnet's record: {e:#}")))?;
    if let Some(bridge) = state.bridges.get(&net.bridge) {
        // Less the network and broadcast addresses, and the gateway.
        let room = bridge.subnet.hosts().count().saturating_sub(1);
        if bridge.ports.len() >= room {
            return Err(unavailable(format!(
                "bridge `{}` has no free address left in {}",
                net.bridge, bridge.subnet
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
