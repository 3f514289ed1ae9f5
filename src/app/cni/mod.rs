//! nsnet as a CNI plugin. A runtime (podman, containerd, CRI-O) runs nsnet
//! with no arguments, `CNI_COMMAND` and the other CNI_* variables set, and
//! the network configuration on stdin (`"type": "nsnet"`). The request is
//! checked (`request`), goes through the same pipeline as every command
//! (`apply` with the `attach` builder: plan, journal, rollback, record), and
//! the answer is the spec's JSON on stdout (`reply`); free text goes to
//! stderr, for the runtime's logs. ADD and STATUS are here, CHECK in
//! `check`, DEL and GC (and what they clean up besides) in `leave`.

mod check;
mod leave;
pub mod reply;
pub mod request;

use super::apply::{PUBLISH, Unread, apply};
use crate::builders::attach;
use crate::cli::Global;
use crate::exec::runner::System;
use crate::exec::{Cause, ExecError};
use crate::host::Wants;
use crate::host::netlink::Kernel;
use crate::model::state::State;
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
    let least = match command {
        Command::Gc | Command::Status => "1.1.0",
        Command::Check => "0.4.0",
        _ => "0.3.0",
    };
    let new_enough = |version: &str, name: &str| match at_least(version, least) {
        true => Ok(()),
        false => Err(Failure::new(
            Code::Version,
            format!(
                "{command:?} needs cniVersion {least} or later; network `{name}` says {version}"
            ),
        )),
    };
    // DEL and GC take the configuration as it is, reading only what they
    // need: they must work with one that could not ADD.
    if matches!(command, Command::Del | Command::Gc) {
        let leave = request::leave(stdin)?;
        new_enough(&leave.version, &leave.name)?;
        return match request::target(command, var)? {
            Some(t) => leave::del(&leave.name, &t).map(|()| None),
            None => leave::gc(&leave).map(|()| None),
        };
    }
    let net = request::network(stdin)?;
    new_enough(&net.version, &net.name)?;
    let target = request::target(command, var)?;
    match (command, target) {
        (Command::Add, Some(t)) => add(&net, &t).map(Some),
        (Command::Check, Some(t)) => check::check(&net, &t).map(|()| None),
        (Command::Status, _) => status(&net).map(|()| None),
        _ => unreachable!("request::target gives ADD and CHECK a target"),
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

/// An error of the pipeline as the runtime sees it: bad input, or a
/// configuration at odds with what nsnet has, is an invalid configuration;
/// a namespace gone under the request a bad environment; a signal means
/// try again; anything else a failure (rolled back). `msg` is one line in
/// the configuration's terms; the whole chain, if longer, is `details`.
fn failure(err: anyhow::Error) -> Failure {
    if let Some(f) = err.chain().find_map(|e| e.downcast_ref::<Failure>()) {
        return Failure::new(f.code, f.msg.clone());
    }
    let refused = err
        .chain()
        .find_map(|e| e.downcast_ref::<attach::Refused>());
    let code = if let Some(refused) = refused {
        match refused {
            attach::Refused::Config(_) => Code::InvalidConfig,
            attach::Refused::Namespace(_) => Code::Env,
        }
    } else if err.chain().any(|e| e.is::<InputError>()) {
        Code::InvalidConfig
    } else if err.chain().any(|e| {
        // The host half read, or a signal: the same request may well work.
        e.is::<Unread>()
            || e.downcast_ref::<ExecError>()
                .is_some_and(|x| matches!(x.cause, Cause::Interrupted(_)))
    }) {
        Code::TryAgain
    } else {
        Code::Failed
    };
    let whole = in_config_terms(&format!("{err:#}"));
    let msg = in_config_terms(&err.to_string());
    let line = msg.lines().next().unwrap_or_default().to_string();
    Failure {
        code,
        details: if whole == line { String::new() } else { whole },
        msg: line,
    }
}

/// A message of nsnet's commands as a runtime's user reads it: the command
/// line's options named by the configuration keys and variables that stand
/// for them. Commands quoted in backticks (advice to run at a terminal)
/// stay as they are.
fn in_config_terms(msg: &str) -> String {
    const TERMS: [(&str, &str); 6] = [
        ("--subnet", "`subnet`"),
        ("--gateway", "`gateway`"),
        ("--bridge", "`bridge`"),
        ("--host-ip", "the port mapping's `hostIP`"),
        ("--address", "CNI_ARGS `IP=`"),
        ("--ifname", "CNI_IFNAME"),
    ];
    let mut out = String::new();
    for (i, part) in msg.split('`').enumerate() {
        if i > 0 {
            out.push('`');
        }
        if i % 2 == 1 {
            out.push_str(part);
            continue;
        }
        let mut text = part.to_string();
        for (flag, key) in TERMS {
            text = text.replace(flag, key);
        }
        out.push_str(&text);
    }
    out
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
    leave::reap();
    let (Some(ns), Some(netns)) = (&t.ns, &t.netns) else {
        unreachable!("request::target requires CNI_NETNS for ADD");
    };
    // A process's namespace is looked at under the lock, when the plan is
    // built: the process may have ended while the ADD waited.
    let container = || attach::Container {
        id: &t.container,
        ifname: &t.ifname,
        ns,
        netns,
        identity: t.identity,
        adopt: t.adopt.map(|pid| {
            let ids = crate::builders::netns::AttachIds {
                pid_ns: crate::host::netns_of_pid(pid),
                host_ns: crate::host::own_netns(),
                name_ns: crate::host::netns_of_name(ns.as_str()),
            };
            (pid, ids)
        }),
        addresses: &t.addresses,
    };
    let wants = Wants {
        inside: std::slice::from_ref(ns),
        ..PUBLISH
    };
    let mut runner = System::cached();
    // What the builder refuses never ran: the configuration is at odds with
    // what nsnet has (a bridge's gateway, a host port another holds).
    let refused = std::cell::Cell::new(false);
    let build = |h: &_, s: &State| {
        let change = attach::add(&network(net), &container(), h, s);
        refused.set(change.is_err());
        change
    };
    let state = apply(&global(), &mut runner, wants, build)
        .map_err(|err| match refused.get() {
            true => failure(err).refused(),
            false => failure(err),
        })?
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
