//! Runs one parsed command through the pipeline: lock and read nsnet's record,
//! observe the host, build the change, reconcile the firewall and sysctls with
//! it, then print the plan (`--dry-run`, `--explain`) or execute it and save
//! the new record.

pub mod lab;
pub mod manual;
pub mod output;
pub mod usage;

use crate::builders::{self, Change, bridge, firewall, nat, netns, publish, veth};
use crate::cli::{
    BridgeCmd, Cli, Command, Global, GraphFormat, NatCmd, NetnsCmd, PublishCmd, VethCmd,
};
use crate::exec::journal::Journal;
use crate::exec::runner::System;
use crate::exec::signals::Interrupts;
use crate::exec::{Watch, execute};
use crate::host::live;
use crate::host::{self, Host, Wants};
use crate::model::ports::{Mapping, NsMapping};
use crate::model::state::{State, Store};
use crate::model::validate::NsName;
use crate::plan::cmd::Tool;
use crate::report::status::{self, Status};
use crate::report::style::{self, Progress, Tone};
use crate::report::{doctor, render};
use anyhow::{Result, bail};
use std::ffi::OsString;
use std::process::ExitCode;

const PIDS: Wants = Wants {
    pids: true,
    ..PLAIN
};
const FIREWALL: Wants = Wants {
    firewall: true,
    ..PLAIN
};
const PLAIN: Wants = Wants {
    pids: false,
    firewall: false,
    best_effort: false,
};

/// Runs `cli`; the exit code is nsnet's own (0) or, for `netns exec`, the
/// command's.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let g = &cli.global;
    let mut runner = System::default();
    let r = &mut runner;
    match &cli.command {
        Command::Netns(cmd) => match cmd {
            NetnsCmd::Add { names } => {
                if let Some(state) = apply(g, r, PLAIN, |h, s| netns::add(names, h, s))? {
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
            NetnsCmd::Exec { name, command } => {
                return exec(g, &mut runner, name.as_str(), command);
            }
            NetnsCmd::Attach { name, pid } => {
                let ids = netns::AttachIds {
                    pid_ns: host::netns_of_pid(*pid),
                    host_ns: host::own_netns(),
                    name_ns: host::netns_of_name(name.as_str()),
                };
                apply(g, r, PLAIN, |h, s| netns::attach(name, *pid, ids, h, s))?;
            }
            NetnsCmd::Detach { name } => {
                apply(g, r, PLAIN, |h, s| netns::detach(name, h, s))?;
            }
        },
        Command::Veth(cmd) => match cmd {
            VethCmd::Add { a, b, subnet } => {
                if let Some(state) = apply(g, r, PLAIN, |h, s| veth::add(a, b, *subnet, h, s))? {
                    output::cable(g, &state, a, b)?;
                }
            }
            VethCmd::Del { a, b, force } => {
                apply(g, r, PIDS, |h, s| veth::del(a, b, *force, h, s))?;
            }
        },
        Command::Bridge(cmd) => match cmd {
            BridgeCmd::Up(args) => {
                let up = bridge::Up {
                    bridge: &args.bridge,
                    subnet: args.subnet,
                    ifname: &args.ifname,
                    namespaces: &args.namespaces,
                };
                let network = |h: &Host, s: &State| {
                    let mut change = bridge::up(&up, h, s)?;
                    if args.nat {
                        change = change.then(|s| nat::up(&args.bridge, args.out.as_ref(), h, s))?;
                    }
                    for (ns, mappings) in by_namespace(&args.publish) {
                        let add = publish::Add {
                            ns,
                            mappings: &mappings,
                            host_ip: None,
                            bridge: Some(&args.bridge),
                        };
                        change = change.then(|s| publish::add(&add, h, s))?;
                    }
                    Ok(change)
                };
                if let Some(state) = apply(g, r, FIREWALL, network)? {
                    output::bridge(g, &state, &args.bridge)?;
                }
            }
            BridgeCmd::Down(args) => {
                apply(g, r, PIDS, |h, s| {
                    bridge::down(&args.bridge, &args.namespaces, args.force, h, s)
                })?;
            }
        },
        Command::Nat(cmd) => match cmd {
            NatCmd::Up { bridge, out } => {
                apply(g, r, FIREWALL, |h, s| nat::up(bridge, out.as_ref(), h, s))?;
            }
            NatCmd::Down { bridge } => {
                apply(g, r, FIREWALL, |_, s| nat::down(bridge, s))?;
            }
        },
        Command::Publish(cmd) => match cmd {
            PublishCmd::Add {
                ns,
                mappings,
                host_ip,
                bridge,
            } => {
                let args = publish::Add {
                    ns,
                    mappings,
                    host_ip: *host_ip,
                    bridge: bridge.as_ref(),
                };
                if let Some(state) = apply(g, r, FIREWALL, |h, s| publish::add(&args, h, s))? {
                    output::published(g, &state, Some(ns))?;
                }
            }
            PublishCmd::Del { ns, ports } => {
                apply(g, r, FIREWALL, |_, s| publish::del(ns, ports, s))?;
            }
            PublishCmd::List => output::published(g, &Store::read_only().load()?, None)?,
        },
        Command::Status => {
            let status = observe_status(g, r)?;
            if g.json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{}", render::status_text(&status));
            }
        }
        Command::Graph { format } => {
            let status = observe_status(g, r)?;
            print!(
                "{}",
                match format {
                    GraphFormat::Text => render::graph_text(&status),
                    GraphFormat::Dot => render::graph_dot(&status),
                    GraphFormat::Mermaid => render::graph_mermaid(&status),
                }
            );
        }
        Command::Doctor => return doctor(g, r),
        Command::Recover => {
            let store = Store::locked()?;
            let journal = Journal::at(&Store::dir());
            match journal.recover(r, &store.load()?)? {
                Some(message) => println!("{message}"),
                None => println!("nothing to recover: no nsnet plan was left unfinished"),
            }
        }
        Command::Down { force } => {
            apply(g, r, PIDS, |h, s| builders::down(*force, h, s))?;
        }
        Command::Lab { command } => crate::app::lab::run(command, g.quiet, g.dry_run, g.explain)?,
        Command::Completions { shell } => {
            crate::app::manual::completions(*shell, &mut std::io::stdout())?
        }
        Command::Man { command, dir } => match dir {
            Some(dir) => {
                for path in crate::app::manual::man_pages(dir)? {
                    if !g.quiet {
                        println!("{}", path.display());
                    }
                }
            }
            None => {
                use std::io::Write;
                std::io::stdout().write_all(&crate::app::manual::man_page(command)?)?;
            }
        },
    }
    Ok(ExitCode::SUCCESS)
}

/// `doctor`: prints every finding; exit status 1 if any would break nsnet.
fn doctor(g: &Global, runner: &mut System) -> Result<ExitCode> {
    let state = Store::read_only().load()?;
    // Without `ip` there is nothing to observe; the finding says so.
    let host = host::observe(runner, PLAIN).unwrap_or_default();
    let facts = doctor::gather(runner);
    let findings = doctor::check(&facts, &host, &state);
    if g.json {
        println!("{}", serde_json::to_string_pretty(&findings)?);
    } else {
        for f in findings
            .iter()
            .filter(|f| !g.quiet || f.level != doctor::Level::Ok)
        {
            let on = style::colour(true);
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
    Ok(if broken {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Reads the record and the live kernel into a `Status`. Without root the
/// rules cannot be read: drift in them goes unreported, with a warning.
fn observe_status(g: &Global, runner: &mut System) -> Result<Status> {
    let state = Store::read_only().load()?;
    let wants = Wants {
        firewall: true,
        best_effort: true,
        ..PLAIN
    };
    let host = host::observe(runner, wants)?;
    warn(g, &host);
    let names: Vec<String> = host.namespaces.iter().cloned().collect();
    let world = live::read_world(runner, &names, &state)?;
    let mut status = status::build(&state, &world, &host);
    if let Some((done, total)) = Journal::at(&Store::dir()).pending() {
        status.drift.insert(
            0,
            format!("an nsnet was stopped mid-plan with {done} of {total} steps in effect: run `nsnet recover`"),
        );
    }
    Ok(status)
}

fn warn(g: &Global, host: &Host) {
    if !g.quiet {
        for warning in &host.warnings {
            let label = style::paint("warning:", Tone::Warn, style::colour(false));
            eprintln!("nsnet: {label} {warning}");
        }
    }
}

/// Builds a change, reconciles the host settings it implies, and prints or
/// executes it. Returns the new record after a real run, `None` after a dry
/// run. The firewall is read when `wants` says so or the record has rules. A
/// real run first finishes any plan an earlier, killed nsnet left unfinished.
fn apply(
    g: &Global,
    runner: &mut System,
    wants: Wants,
    build: impl FnOnce(&Host, &State) -> Result<Change>,
) -> Result<Option<State>> {
    let dry = g.dry_run || g.explain;
    // From here on a signal is noted, not fatal: a plan under way rolls back.
    let interrupts = if dry {
        Interrupts::default()
    } else {
        Interrupts::catch()?
    };
    let store = if dry {
        Store::read_only()
    } else {
        Store::locked()?
    };
    let journal = Journal::at(&Store::dir());
    if !dry {
        let recovered = journal.recover(runner, &store.load()?)?;
        notes(g, recovered.iter());
    }
    let state = store.load()?;
    let wants = Wants {
        firewall: wants.firewall || !crate::model::rules::rules(&state).is_empty(),
        best_effort: dry,
        ..wants
    };
    let host = host::observe(runner, wants)?;
    warn(g, &host);
    let mut change = build(&host, &state)?;
    firewall::reconcile(&mut change, &state, &host)?;
    notes(g, change.notes.iter());
    if dry {
        print!("{}", change.plan.script(g.explain));
        return Ok(None);
    }
    if change.plan.steps.is_empty() && change.state == state {
        return Ok(Some(change.state));
    }
    journal.begin(&change.plan, &change.state)?;
    let interrupted = || interrupts.received();
    let mut progress = Progress::new(change.plan.steps.len(), g.quiet || g.json);
    let mut applied = |certain, possibly| {
        journal.applied(certain, possibly);
        progress.show(possibly);
    };
    let mut watch = Watch {
        interrupted: &interrupted,
        applied: &mut applied,
        fail_at: std::env::var("NSNET_FAIL_AT")
            .ok()
            .and_then(|k| k.parse().ok()),
    };
    let result = execute(&change.plan, runner, &mut watch);
    if let Err(err) = result {
        journal.end();
        return Err(err.into());
    }
    store.save(&change.state)?;
    journal.end();
    Ok(Some(change.state))
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

fn notes<'a>(g: &Global, notes: impl Iterator<Item = &'a String>) {
    if !g.quiet {
        for note in notes {
            eprintln!("nsnet: {note}");
        }
    }
}

/// `netns exec`: replaces nsnet with `ip netns exec NAME CMD…`, so the
/// command's exit status and signals are its own.
fn exec(g: &Global, runner: &mut System, name: &str, command: &[OsString]) -> Result<ExitCode> {
    let ip = runner.resolve(Tool::Ip)?;
    if g.dry_run || g.explain {
        let words: Vec<String> = command
            .iter()
            .map(|w| crate::plan::cmd::quote(&w.to_string_lossy()))
            .collect();
        if g.explain {
            println!(
                "# Run the command with {name} as its network namespace: it sees only {name}'s interfaces and routes."
            );
        }
        println!(
            "ip netns exec {} {}",
            crate::plan::cmd::quote(name),
            words.join(" ")
        );
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
