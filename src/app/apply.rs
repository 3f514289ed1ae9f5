//! The pipeline every command that changes the host goes through: catch
//! signals, lock and read nsnet's record, finish a plan an earlier, killed
//! nsnet left (the journal), observe the host, build the change, reconcile
//! the firewall and sysctls with the new record, then print the plan
//! (`--dry-run`, `--explain`) or execute it and save the new record.

use crate::builders::{Change, firewall};
use crate::cli::Global;
use crate::exec::journal::Journal;
use crate::exec::runner::System;
use crate::exec::signals::Interrupts;
use crate::exec::store::Store;
use crate::exec::{Watch, execute};
use crate::host::{self, Host, Wants};
use crate::model::rules::{self, Family};
use crate::model::state::State;
use crate::model::validate::NsName;
use crate::plan::{Plan, Step};
use crate::report::forward;
use crate::report::shadow::Traffic;
use crate::report::status::{self, Status};
use crate::report::style::{self, Progress, Tone};
use anyhow::Result;

/// What the host is read for: processes in namespaces (to refuse deleting a
/// busy one), the iptables rules (to plan the firewall's difference) and
/// the listening sockets (so a published port never takes a served one).
/// The ip6tables rules are read when the record has some (every bridge
/// with IPv6 has), or once the change turns out to need some.
pub const PLAIN: Wants = Wants {
    inside: &[],
    rules: false,
    pids: false,
    firewall: false,
    firewall6: false,
    sockets: false,
    best_effort: false,
    by_name: false,
};
pub const PIDS: Wants = Wants {
    pids: true,
    ..PLAIN
};
pub const FIREWALL: Wants = Wants {
    firewall: true,
    ..PLAIN
};
pub const PUBLISH: Wants = Wants {
    firewall: true,
    sockets: true,
    ..PLAIN
};

/// Part of the host could not be read when a builder asked: nothing was
/// built on the answer, and the same command may well succeed again.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot read the host's interfaces or routes ({0}); nothing was changed: run the command again"
)]
pub struct Unread(pub String);

/// Builds a change, reconciles the host settings it implies, and prints or
/// executes it. Returns the new record after a real run, `None` after a dry
/// run. The firewall is read when `wants` says so or the record has rules. A
/// real run first finishes any plan an earlier, killed nsnet left unfinished.
pub fn apply(
    g: &Global,
    runner: &mut System,
    wants: Wants,
    build: impl FnOnce(&Host, &State) -> Result<Change>,
) -> Result<Option<State>> {
    let dry = g.dry_run || g.explain;
    // From here on a signal is noted, not fatal: a plan under way rolls back.
    let interrupts = match dry {
        true => Interrupts::default(),
        false => Interrupts::catch()?,
    };
    let store = match dry {
        true => Store::read_only(),
        false => Store::locked(&|| interrupts.received())?,
    };
    // The rule cache is written back only under the lock, before it goes.
    if let (false, Some(cache)) = (dry, runner.rules.as_mut()) {
        cache.keep_in(&Store::dir());
    }
    let result = apply_locked(g, runner, &interrupts, &store, wants, build);
    if let Some(cache) = runner.rules.as_mut() {
        cache.store();
    }
    result
}

/// `apply` once the lock is held (or, in a dry run, not needed).
fn apply_locked(
    g: &Global,
    runner: &mut System,
    interrupts: &Interrupts,
    store: &Store,
    wants: Wants,
    build: impl FnOnce(&Host, &State) -> Result<Change>,
) -> Result<Option<State>> {
    let dry = g.dry_run || g.explain;
    let journal = Journal::at(&Store::dir());
    let mut state = store.load()?;
    if !dry {
        runner.children = Some(journal.child_path());
        let recovered = journal.recover(runner, &state);
        runner.children = None;
        if let Some(recovered) = recovered? {
            notes(g, std::iter::once(&recovered.message));
            restamp(runner, store, &state, &recovered.plan)?;
            // The recovery may have saved a record of its own.
            state = store.load()?;
        }
    }
    let state = state;
    let had = rules::families(&state);
    // Only namespaces nsnet did not make need reading inside: its own hold
    // what the record says.
    let mut foreign: Vec<NsName> = wants
        .inside
        .iter()
        .filter(|n| state.namespaces.get(*n).is_none_or(|e| e.pid.is_some()))
        .cloned()
        .collect();
    // And those nsnet added routes in: a route can go without nsnet (an
    // interface taken down and up drops it), and is then not deleted again.
    for route in &state.routes {
        if !foreign.contains(&route.ns) {
            foreign.push(route.ns.clone());
        }
    }
    let routed = state
        .bridges
        .values()
        .any(|b| b.nat.as_ref().is_some_and(|n| n.via.is_some()));
    let wants = Wants {
        inside: &foreign,
        rules: wants.rules || routed,
        firewall: wants.firewall || !had.is_empty(),
        firewall6: wants.firewall6 || had.contains(&Family::V6),
        best_effort: dry,
        // A change reads the interfaces it touches, not every one.
        by_name: true,
        ..wants
    };
    let mut host = host::observe(runner, wants)?;
    host::stamps::read_cable_ends(runner, &host::Roots::system(), &state, &mut host)?;
    warn(g, &host);
    if let Some(uplink) = state.links().find(|l| host.uplinks.contains(l.as_str())) {
        return Err(crate::exec::store::damaged(format!(
            "it names `{uplink}`, the interface of the host's default route, as an interface nsnet made"
        )));
    }
    // An interface or route that could not be read was taken as absent: nothing
    // built on that answer may run, and an error it led to is not the one
    // to show.
    let unread = |host: &host::Host| host.unread().map(|why| anyhow::Error::new(Unread(why)));
    let mut change = build(&host, &state).map_err(|err| unread(&host).unwrap_or(err))?;
    if host.ipv6 && rules::families(&change.state).contains(&Family::V6) {
        host::read_firewall6(runner, &mut host, dry)?;
    }
    firewall::reconcile(&mut change, &state, &host)?;
    if let Some(err) = unread(&host) {
        return Err(err);
    }
    notes(g, change.notes.iter());
    if dry {
        print!("{}", change.plan.script(g.explain));
        return Ok(None);
    }
    // The serial is the store's, not a builder's: compared without it, and
    // the record a plan saves is told from every earlier one by the next
    // (see `exec::journal`).
    change.state.serial = state.serial;
    if change.plan.steps.is_empty() && change.state == state {
        return Ok(Some(change.state));
    }
    change.state.serial += 1;
    // Every tool the plan and its undo need, found (and trusted) before
    // anything runs: the host is read without them.
    for step in &change.plan.steps {
        for cmd in std::iter::once(&step.apply).chain(&step.undo) {
            runner.resolve(cmd.tool)?;
        }
    }
    if let Err(err) = run_plan(g, runner, &journal, interrupts, &change) {
        if let Err(why) = restamp(runner, store, &state, &change.plan) {
            tracing::warn!("after the rollback: {why:#}");
        }
        return Err(err);
    }
    // What the plan made is recorded with its identity, which only the host
    // can tell now; an object nsnet cannot identify later, it cannot remove.
    let saved = host::stamps::read(runner, &host::Roots::system(), &change.state)
        .map(|ids| change.state.stamp(&ids))
        .and_then(|()| store.save(&change.state));
    if let Err(err) = saved {
        return Err(unsaved(runner, &journal, &change, err));
    }
    journal.end();
    Ok(Some(change.state))
}

/// After a rollback of `plan`: what it deleted and its undo made again has
/// a new identity, which the record `old` learns (saved only if changed).
/// Only what the plan deleted is read again: nothing else is adopted.
pub fn restamp(runner: &mut System, store: &Store, old: &State, plan: &Plan) -> Result<()> {
    let deleted = plan.deletions();
    let mut state = old.clone();
    state.unstamp(&deleted.namespaces, &deleted.links);
    if state == *old {
        return Ok(());
    }
    let ids = host::stamps::read(runner, &host::Roots::system(), &state)?;
    state.stamp(&ids);
    if state != *old {
        store.save(&state)?;
    }
    Ok(())
}

/// The plan ran but its record could not be saved (a full or read-only
/// state directory): nothing may stay on the host that no record names, so
/// the whole plan is undone.
fn unsaved(
    runner: &mut System,
    journal: &Journal,
    change: &Change,
    err: anyhow::Error,
) -> anyhow::Error {
    let steps = change.plan.steps.len();
    let mut applied = |certain, possibly| journal.applied(certain, possibly);
    let errors = crate::exec::rollback(&change.plan, steps, steps, runner, &mut applied);
    journal.end();
    let undone = match errors.is_empty() {
        true => format!("undid its {steps} step(s), nothing was changed"),
        false => {
            let failed: Vec<String> = errors.iter().map(|e| format!("[{e}]")).collect();
            format!(
                "rollback incomplete, these undo commands failed too: {}",
                failed.join(" ")
            )
        }
    };
    err.context(format!(
        "the plan ran but its record could not be saved; {undone}"
    ))
}

/// Executes the change's plan with the journal written ahead of each batch
/// and a progress line; on failure the plan has been rolled back and the
/// journal is closed.
fn run_plan(
    g: &Global,
    runner: &mut System,
    journal: &Journal,
    interrupts: &Interrupts,
    change: &Change,
) -> Result<()> {
    journal.begin(&change.plan, change.state.serial)?;
    // Each tool is noted while it runs: if nsnet is killed, the next one
    // stops that tool before it undoes anything (see `exec::orphan`).
    runner.children = Some(journal.child_path());
    let interrupted = || interrupts.received();
    let mut progress = Progress::new(change.plan.steps.len(), g.quiet || g.json || g.step);
    let mut applied = |certain, possibly| {
        progress.show(possibly);
        journal.applied(certain, possibly)
    };
    let mut ask =
        |step: &Step, k: usize, n: usize| ask_step(step, k, n) && interrupts.received().is_none();
    let mut watch = Watch {
        ask: match g.step {
            true => Some(&mut ask),
            false => None,
        },
        interrupted: &interrupted,
        applied: &mut applied,
        fail_at: fail_at(std::env::var("NSNET_FAIL_AT").ok().as_deref()),
        kill_at: std::env::var("NSNET_KILL_AT")
            .ok()
            .and_then(|k| k.parse().ok()),
    };
    let result = execute(&change.plan, runner, &mut watch);
    runner.children = None;
    if let Err(err) = result {
        journal.end();
        return Err(err.into());
    }
    Ok(())
}

/// The step `NSNET_FAIL_AT` makes fail in this plan: `K`, step K of every
/// plan; `K@P`, step K of the P-th plan this process runs (a CNI DEL runs
/// two: the attachment's, then the removal of unused bridges).
fn fail_at(var: Option<&str>) -> Option<usize> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static PLANS: AtomicUsize = AtomicUsize::new(0);
    let this = PLANS.fetch_add(1, Ordering::Relaxed) + 1;
    let (step, plan) = match var?.split_once('@') {
        Some((k, p)) => (k.parse().ok()?, Some(p.parse::<usize>().ok()?)),
        None => (var?.parse().ok()?, None),
    };
    plan.is_none_or(|p| p == this).then_some(step)
}

/// `--step`: shows step `k` of `n` (why, then the command) on stderr and
/// reads a line from stdin: empty (Enter) runs it; `q`, or the end of the
/// input, stops the plan, which is then rolled back. Anything else asks
/// again.
fn ask_step(step: &Step, k: usize, n: usize) -> bool {
    use std::io::{BufRead, Write};
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "\nstep {k} of {n}:");
    for line in step.why.lines() {
        let _ = writeln!(err, "  # {line}");
    }
    for line in step.apply.to_string().lines() {
        let _ = writeln!(err, "  {line}");
    }
    loop {
        let _ = write!(err, "[Enter: run it, q: stop and undo] ");
        let _ = err.flush();
        let mut answer = String::new();
        match std::io::stdin().lock().read_line(&mut answer) {
            Ok(0) | Err(_) => {
                let _ = writeln!(err);
                return false;
            }
            Ok(_) => match answer.trim() {
                "" => return true,
                "q" | "quit" => return false,
                _ => continue,
            },
        }
    }
}

/// Reads the record and the live kernel into a `Status`. Without root the
/// rules cannot be read: drift in them goes unreported, with a warning.
pub fn observe_status(g: &Global, runner: &mut System) -> Result<Status> {
    let state = Store::read_only().load()?;
    let wants = Wants {
        firewall: true,
        firewall6: true,
        best_effort: true,
        ..PLAIN
    };
    let mut host = host::observe(runner, wants)?;
    host::stamps::read_cable_ends(runner, &host::Roots::system(), &state, &mut host)?;
    warn(g, &host);
    let names: Vec<String> = host.namespaces.iter().cloned().collect();
    let world = host::live::read_world(runner, &names, &state)?;
    let mut status = status::build(&state, &world, &host);
    // The record can match the host exactly while another firewall drops
    // every packet nsnet forwards: that is a network whose paths cannot work.
    if !state.bridges.is_empty() {
        let traffic = Traffic::of(&state, Family::V4);
        for block in forward::check(&forward::gather(runner), &traffic) {
            status.drift.push(format!(
                "traffic through nsnet's bridges is dropped: {} (fix: {})",
                block.message, block.fix
            ));
        }
    }
    if let Some((done, total)) = Journal::at(&Store::dir()).pending() {
        status.drift.insert(
            0,
            format!("an nsnet was stopped mid-plan with {done} of {total} steps in effect: run `nsnet recover`"),
        );
    }
    Ok(status)
}

/// Prints what the host reading warned about (unless `-q`).
pub fn warn(g: &Global, host: &Host) {
    if !g.quiet {
        for warning in &host.warnings {
            let label = style::paint("warning:", Tone::Warn, style::colour(false));
            eprintln!("nsnet: {label} {warning}");
        }
    }
}

/// Prints notes about a change or a recovery (unless `-q`).
pub fn notes<'a>(g: &Global, notes: impl Iterator<Item = &'a String>) {
    if !g.quiet {
        for note in notes {
            eprintln!("nsnet: {note}");
        }
    }
}
