//! One function per command: its arguments become its builder's input, the
//! change goes through `apply`, and the result is printed. Commands that
//! only read (list, status, graph, doctor) observe and print.

use super::apply::{self, FIREWALL, PIDS, PLAIN, PUBLISH, apply};
use super::{Ctx, output};
use crate::builders::policy::{self, Edit};
use crate::builders::{self, Change, bridge, nat, netns, publish, route, veth};
use crate::cli::{
    BridgeDown, BridgeUp, FirewallCmd, GraphFormat, NatCmd, NetnsCmd, PublishCmd, RouteCmd, VethCmd,
};
use crate::exec::journal::Journal;
use crate::exec::store::Store;
use crate::host::{self, Host};
use crate::model::ports::{Mapping, NsMapping};
use crate::model::state::State;
use crate::model::validate::{self, IfName, InputError, NsName};
use crate::plan::cmd::{Tool, quote};
use crate::report::style::{self, Tone};
use crate::report::{doctor, render};
use anyhow::{Result, bail};
use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::LazyLock;

/// The interface a namespace gets on a bridge unless told otherwise.
static ETH0: LazyLock<IfName> = LazyLock::new(|| "eth0".parse().expect("a valid name"));

pub fn netns(cx: &mut Ctx, cmd: &NetnsCmd) -> Result<ExitCode> {
    let (g, r) = (cx.global, &mut cx.runner);
    match cmd {
        NetnsCmd::Add { names, dns } => {
            let build = |h: &Host, s: &State| {
                let mut change = netns::add(names, h, s)?;
                let named: Vec<&NsName> = names.iter().collect();
                builders::dns::set(&mut change, h, &named, dns)?;
                Ok(change)
            };
            if let Some(state) = apply(g, r, PLAIN, build)? {
                output::namespaces(g, &state, &host::observe(r, PLAIN)?, Some(names))?;
            }
        }
        NetnsCmd::Del { names, force } => {
            apply(g, r, PIDS, |h, s| netns::del(names, *force, h, s))?;
        }
        NetnsCmd::List => {
            let state = Store::read_only().load()?;
            output::namespaces(g, &state, &host::observe(r, PLAIN)?, None)?;
        }
        NetnsCmd::Exec { name, command } => return exec(cx, name, command),
        NetnsCmd::Attach { name, pid } => {
            let ids = netns::AttachIds {
                pid_ns: host::netns_of_pid(*pid),
                host_ns: host::own_netns(),
                name_ns: host::netns_of_name(name.as_str()),
            };
            apply(g, r, PLAIN, |h, s| netns::attach(name, *pid, &ids, h, s))?;
        }
        NetnsCmd::Detach { name } => {
            apply(g, r, PLAIN, |h, s| netns::detach(name, h, s))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn veth(cx: &mut Ctx, cmd: &VethCmd) -> Result<ExitCode> {
    let (g, r) = (cx.global, &mut cx.runner);
    match cmd {
        VethCmd::Add { a, b, subnet, dns } => {
            let (v4, v6) = validate::by_family(subnet)?;
            let build = |h: &Host, s: &State| {
                let mut change = veth::add_named(a, b, v4, v6, h, s)?;
                let ends: Vec<NsName> = [&a.end, &b.end]
                    .iter()
                    .filter_map(|e| e.ns_name())
                    .collect();
                let named: Vec<&NsName> = ends.iter().collect();
                builders::dns::set(&mut change, h, &named, dns)?;
                Ok(change)
            };
            if let Some(state) = apply(g, r, PLAIN, build)? {
                output::cable(g, &state, &a.end, &b.end)?;
            }
        }
        VethCmd::Del { a, b, force } => {
            apply(g, r, PIDS, |h, s| veth::del(&a.end, &b.end, *force, h, s))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

impl<'a> TryFrom<&'a BridgeUp> for bridge::Up<'a> {
    type Error = InputError;

    fn try_from(args: &'a BridgeUp) -> Result<Self, InputError> {
        let (subnet, subnet6) = validate::by_family(&args.subnet)?;
        let (gateway, gateway6) = validate::addresses_by_family("--gateway", &args.gateway)?;
        Ok(bridge::Up {
            bridge: &args.bridge,
            subnet,
            subnet6,
            ipv6: args.ipv6,
            ifname: args.ifname.as_ref().unwrap_or(&ETH0),
            ifname_given: args.ifname.is_some(),
            namespaces: &args.namespaces,
            gateway,
            gateway6,
            addresses: &args.address,
            default_route: !args.no_default_route,
        })
    }
}

/// `bridge up`, with `--nat` and `--publish` composed into the same plan.
pub fn bridge_up(cx: &mut Ctx, args: &BridgeUp) -> Result<ExitCode> {
    let up = bridge::Up::try_from(args)?;
    let network = |h: &Host, s: &State| {
        let mut change = bridge::up(&up, h, s)?;
        let named: Vec<&NsName> = args.namespaces.iter().collect();
        builders::dns::set(&mut change, h, &named, &args.dns)?;
        if args.nat {
            change = change.then(|s| nat::up(&args.bridge, args.out.as_ref(), h, s))?;
        }
        for (ns, mappings) in by_namespace(&args.publish) {
            let add = publish::Add {
                ns,
                mappings: &mappings,
                host_ip: None,
                bridge: Some(&args.bridge),
                force: false,
                allow: None,
            };
            change = change.then(|s| publish::add(&add, h, s))?;
        }
        Ok::<Change, anyhow::Error>(change)
    };
    let wants = host::Wants {
        inside: &args.namespaces,
        ..PUBLISH
    };
    if let Some(state) = apply(cx.global, &mut cx.runner, wants, network)? {
        output::bridge(cx.global, &state, &args.bridge)?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn bridge_down(cx: &mut Ctx, args: &BridgeDown) -> Result<ExitCode> {
    let (bridge, names, force) = (&args.bridge, &args.namespaces, args.force);
    apply(cx.global, &mut cx.runner, PIDS, |h, s| {
        bridge::down(bridge, names, force, h, s)
    })?;
    Ok(ExitCode::SUCCESS)
}

pub fn nat(cx: &mut Ctx, cmd: &NatCmd) -> Result<ExitCode> {
    let (g, r) = (cx.global, &mut cx.runner);
    match cmd {
        NatCmd::Up {
            bridge,
            out,
            via,
            table,
        } => {
            let wants = host::Wants {
                rules: via.is_some(),
                ..FIREWALL
            };
            apply(g, r, wants, |h, s| {
                nat::up_via(bridge, out.as_ref(), *via, *table, h, s)
            })?
        }
        NatCmd::Down { bridge } => apply(g, r, FIREWALL, |_, s| nat::down(bridge, s))?,
    };
    Ok(ExitCode::SUCCESS)
}

pub fn route(cx: &mut Ctx, cmd: &RouteCmd) -> Result<ExitCode> {
    let (g, r) = (cx.global, &mut cx.runner);
    match cmd {
        RouteCmd::Add { ns, to, via, .. } => {
            if let Some(state) = apply(g, r, PLAIN, |h, s| route::add(ns, *to, *via, h, s))? {
                output::routes(g, &state, ns)?;
            }
        }
        RouteCmd::Del { ns, to } => {
            apply(g, r, PLAIN, |h, s| route::del(ns, *to, h, s))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn publish(cx: &mut Ctx, cmd: &PublishCmd) -> Result<ExitCode> {
    let (g, r) = (cx.global, &mut cx.runner);
    match cmd {
        PublishCmd::Add {
            ns,
            mappings,
            host_ip,
            bridge,
            force,
            allow,
        } => {
            let args = publish::Add {
                ns,
                mappings,
                host_ip: *host_ip,
                bridge: bridge.as_ref(),
                force: *force,
                allow: Some(allow),
            };
            if let Some(state) = apply(g, r, PUBLISH, |h, s| publish::add(&args, h, s))? {
                output::published(g, &state, Some(ns))?;
            }
        }
        PublishCmd::Del { ns, ports } => {
            apply(g, r, FIREWALL, |_, s| publish::del(ns, ports, s))?;
        }
        PublishCmd::List => output::published(g, &Store::read_only().load()?, None)?,
    }
    Ok(ExitCode::SUCCESS)
}

pub fn firewall(cx: &mut Ctx, cmd: &FirewallCmd) -> Result<ExitCode> {
    let (g, r) = (cx.global, &mut cx.runner);
    let (bridge, nets, edit) = match cmd {
        FirewallCmd::Deny { bridge, nets, log } => (bridge, nets, Edit::Deny { log: *log }),
        FirewallCmd::Allow { bridge, nets } => (bridge, nets, Edit::Allow),
        FirewallCmd::Del { bridge, nets } => (bridge, nets, Edit::Del),
        FirewallCmd::List { bridge } => {
            let state = Store::read_only().load()?;
            output::policies(g, &state, bridge.as_ref())?;
            return Ok(ExitCode::SUCCESS);
        }
    };
    let build = |h: &Host, s: &State| policy::edit(bridge, nets, edit, h, s);
    if let Some(state) = apply(g, r, FIREWALL, build)? {
        output::policies(g, &state, Some(bridge))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `--publish` mappings grouped by namespace, in the order first named.
fn by_namespace(all: &[NsMapping]) -> Vec<(&NsName, Vec<Mapping>)> {
    let mut groups: Vec<(&NsName, Vec<Mapping>)> = Vec::new();
    for m in all {
        match groups.iter_mut().find(|(ns, _)| *ns == &m.ns) {
            Some((_, list)) => list.push(m.mapping),
            None => groups.push((&m.ns, vec![m.mapping])),
        }
    }
    groups
}

pub fn status(cx: &mut Ctx) -> Result<ExitCode> {
    let status = apply::observe_status(cx.global, &mut cx.runner)?;
    if cx.global.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print!("{}", render::status_text(&status));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn graph(cx: &mut Ctx, format: GraphFormat) -> Result<ExitCode> {
    let status = apply::observe_status(cx.global, &mut cx.runner)?;
    print!(
        "{}",
        match format {
            GraphFormat::Text => render::graph_text(&status),
            GraphFormat::Dot => render::graph_dot(&status),
            GraphFormat::Mermaid => render::graph_mermaid(&status),
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// `doctor`: prints every finding; exit status 1 if any would break nsnet.
pub fn doctor(cx: &mut Ctx) -> Result<ExitCode> {
    let (g, r) = (cx.global, &mut cx.runner);
    let state = Store::read_only().load()?;
    // Without `ip` there is nothing to observe; the finding says so.
    let host = host::observe(r, PLAIN).unwrap_or_default();
    let facts = doctor::gather(r);
    let findings = doctor::check(&facts, &host, &state);
    if g.json {
        println!("{}", serde_json::to_string_pretty(&findings)?);
    } else {
        let on = style::colour(true);
        for f in findings
            .iter()
            .filter(|f| !g.quiet || f.level != doctor::Level::Ok)
        {
            let level = match f.level {
                doctor::Level::Ok => style::paint("ok  ", Tone::Good, on),
                doctor::Level::Warn => style::paint("warn", Tone::Warn, on),
                doctor::Level::Fail => style::paint("FAIL", Tone::Bad, on),
            };
            println!("{level}  {}: {}", f.check, f.message);
            if let Some(fix) = &f.fix {
                println!("      fix: {fix}");
            }
        }
    }
    let broken = findings.iter().any(|f| f.level == doctor::Level::Fail);
    Ok(ExitCode::from(u8::from(broken)))
}

pub fn recover(cx: &mut Ctx) -> Result<ExitCode> {
    let store = Store::locked(&|| None)?;
    let journal = Journal::at(&Store::dir());
    cx.runner.children = Some(journal.child_path());
    let old = store.load()?;
    match journal.recover(&mut cx.runner, &old)? {
        Some(recovered) => {
            super::apply::restamp(&mut cx.runner, &store, &old, &recovered.plan)?;
            println!("{}", recovered.message);
        }
        None => println!("nothing to recover: no nsnet plan was left unfinished"),
    }
    Ok(ExitCode::SUCCESS)
}

pub fn down(cx: &mut Ctx, force: bool) -> Result<ExitCode> {
    apply(cx.global, &mut cx.runner, PIDS, |h, s| {
        builders::down(force, h, s)
    })?;
    Ok(ExitCode::SUCCESS)
}

pub fn forget(cx: &mut Ctx, names: &[String], force: bool) -> Result<ExitCode> {
    apply(cx.global, &mut cx.runner, PLAIN, |h, s| {
        builders::forget::forget(names, force, h, s)
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `man`: one page to stdout, or every page into `--dir`.
pub fn man(cx: &mut Ctx, command: &[String], dir: Option<&std::path::Path>) -> Result<ExitCode> {
    match dir {
        Some(dir) => {
            for path in super::manual::man_pages(dir)? {
                if !cx.global.quiet {
                    println!("{}", path.display());
                }
            }
        }
        None => {
            use std::io::Write;
            std::io::stdout().write_all(&super::manual::man_page(command)?)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `netns exec`: replaces nsnet with `ip netns exec NAME CMD…`, so the
/// command's exit status and signals are its own.
fn exec(cx: &mut Ctx, name: &NsName, command: &[OsString]) -> Result<ExitCode> {
    let (g, name) = (cx.global, name.as_str());
    let ip = cx.runner.resolve(Tool::Ip)?;
    if g.dry_run || g.explain {
        let words: Vec<String> = command
            .iter()
            .map(|w| quote(&w.to_string_lossy()))
            .collect();
        if g.explain {
            println!(
                "# Run the command with {name} as its network namespace: it sees only {name}'s interfaces and routes."
            );
        }
        println!("ip netns exec {} {}", quote(name), words.join(" "));
        return Ok(ExitCode::SUCCESS);
    }
    if host::netns_of_name(name).is_none() {
        bail!("namespace `{name}` does not exist (create it with `nsnet netns add {name}`)");
    }
    use std::os::unix::process::CommandExt;
    let err = std::process::Command::new(ip)
        .args(["netns", "exec", name])
        .args(command)
        .exec();
    bail!("cannot run `ip netns exec {name}`: {err}")
}
