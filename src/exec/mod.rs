//! The executor: runs a plan's steps in order and, when one fails, runs the
//! undo of every completed step in reverse. A failing undo does not stop the
//! rollback; every such failure is reported with the one that caused it, so
//! the user knows exactly what, if anything, was left behind.

pub mod batch;
pub mod files;
pub mod inproc;
pub mod journal;
pub mod nfbatch;
pub mod nfdump;
pub mod nfrule;
pub mod orphan;
pub mod rulecache;
pub mod runner;
pub mod settle;
pub mod signals;
pub mod store;

use crate::exec::files::FileError;
use crate::exec::runner::{Exit, RunError, Runner};
use crate::plan::cmd::Cmd;
use crate::plan::{Plan, Step};

/// Why a plan stopped part-way.
#[derive(Debug)]
pub enum Cause {
    /// A command failed.
    Failed(RunError),
    /// A signal arrived (SIGINT, SIGTERM, SIGHUP) before the step ran.
    Interrupted(i32),
    /// The journal could not record that the step was about to run (a full
    /// or read-only state directory), so it did not run.
    Unrecorded(FileError),
    /// `--step`: the user stopped before the step (`q`, or end of input).
    Declined,
}

/// An error and its sources on one line (`cannot write `X`: No space left
/// on device`), for an error shown inside another's message.
fn with_sources(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        text.push_str(&format!(": {e}"));
        source = e.source();
    }
    text
}

/// A plan that stopped part-way, after its rollback. Its one-line message
/// names the step, its command and error, then the rollback:
/// "step 3 of 9: `ip …` failed (exit status 2): …; undid the 2 completed
/// step(s), nothing was changed". The failed command stays reachable as
/// `cause`, not as a `source`: the line already says it, and a source would
/// be printed again after it.
#[derive(Debug, thiserror::Error)]
#[error("{}; {}", self.what(), self.rollback())]
pub struct ExecError {
    /// The 1-based number of the step that failed or was not run, and the
    /// plan's length.
    pub step: usize,
    pub steps: usize,
    pub cause: Cause,
    /// How many completed steps were rolled back.
    pub undone: usize,
    /// Undo commands that failed too, in the order they were tried.
    pub undo_errors: Vec<RunError>,
}

impl ExecError {
    fn what(&self) -> String {
        match &self.cause {
            Cause::Failed(err) => format!("step {} of {}: {err}", self.step, self.steps),
            Cause::Interrupted(signal) => format!(
                "interrupted by {} before step {} of {}",
                crate::exec::signals::name(*signal),
                self.step,
                self.steps
            ),
            Cause::Unrecorded(err) => format!(
                "step {} of {} not run: the journal could not record it ({})",
                self.step,
                self.steps,
                with_sources(err)
            ),
            Cause::Declined => format!("stopped before step {} of {}", self.step, self.steps),
        }
    }

    fn rollback(&self) -> String {
        if self.undo_errors.is_empty() {
            return format!(
                "undid the {} completed step(s), nothing was changed",
                self.undone
            );
        }
        let failed: Vec<String> = self.undo_errors.iter().map(|e| format!("[{e}]")).collect();
        format!(
            "rollback incomplete, these undo commands failed too: {}",
            failed.join(" ")
        )
    }
}

/// `--step`'s question before a step: (the step, its 1-based number, the
/// plan's length) -> whether to run it.
pub type Ask<'a> = dyn FnMut(&Step, usize, usize) -> bool + 'a;

/// What the executor asks and tells while it runs.
pub struct Watch<'a> {
    /// A signal that arrived, checked before each batch.
    pub interrupted: &'a dyn Fn() -> Option<i32>,
    /// Told which of the plan's first steps are in effect: `(certain,
    /// possibly)` says the first `certain` surely are and those up to
    /// `possibly` may be (a batch under way). Called before each batch runs
    /// and after each undo; the journal keeps it across a crash.
    /// A plan whose progress cannot be recorded does not go on: an error
    /// stops it before the batch, and what ran is rolled back.
    pub applied: &'a mut dyn FnMut(usize, usize) -> Result<(), FileError>,
    /// `NSNET_FAIL_AT=k`: step k fails, unrun, as if its tool had refused it,
    /// so that tests can roll back from every step against the real system.
    pub fail_at: Option<usize>,
    /// `--step`: asked before each step (1-based number, plan length)
    /// whether to run it; `false` stops the plan and rolls it back. Each
    /// step then runs alone, never batched.
    pub ask: Option<&'a mut Ask<'a>>,
    /// `NSNET_KILL_AT=k`: nsnet kills itself with SIGKILL just before step
    /// k, as a crash or `kill -9` would, leaving the journal to `recover`.
    pub kill_at: Option<usize>,
}

/// Runs `plan`; on failure, or when a signal arrived before a batch, rolls
/// back and returns what happened. Consecutive steps that can share a
/// process (`batch::key`) run as one batch.
pub fn execute(plan: &Plan, runner: &mut dyn Runner, watch: &mut Watch) -> Result<(), ExecError> {
    let steps = &plan.steps;
    let mut done = 0;
    while done < steps.len() {
        let stopped = if let Some(signal) = (watch.interrupted)() {
            Stopped::at(done, Cause::Interrupted(signal))
        } else if watch.fail_at == Some(done + 1) {
            Stopped::at(done, Cause::Failed(injected(&steps[done].apply)))
        } else if let Some(ask) = watch.ask.as_mut()
            && !ask(&steps[done], done + 1, steps.len())
        {
            Stopped::at(done, Cause::Declined)
        } else {
            if watch.kill_at == Some(done + 1) {
                let me = rustix::process::getpid();
                let _ = rustix::process::kill_process(me, rustix::process::Signal::KILL);
            }
            let end = match watch.ask {
                Some(_) => done + 1,
                None => group_end(steps, done, watch.fail_at.or(watch.kill_at)),
            };
            // Written ahead: if nsnet dies while the batch runs, the journal
            // already counts its steps as possibly in effect.
            if let Err(unrecorded) = (watch.applied)(done, end) {
                Stopped::at(done, Cause::Unrecorded(unrecorded))
            } else {
                match run_group(runner, &steps[done..end]) {
                    Ok(()) => {
                        done = end;
                        continue;
                    }
                    Err(failure) => Stopped::from_batch(done, failure),
                }
            }
        };
        let undo_errors = rollback(
            plan,
            stopped.certain,
            stopped.possibly,
            runner,
            watch.applied,
        );
        return Err(ExecError {
            step: stopped.step,
            steps: steps.len(),
            cause: stopped.cause,
            undone: stopped.possibly,
            undo_errors,
        });
    }
    settle::settle(runner, steps);
    Ok(())
}

/// Where a plan stopped: the step that failed or did not run (1-based), why,
/// and how many steps before it are surely or possibly in effect.
struct Stopped {
    step: usize,
    cause: Cause,
    certain: usize,
    possibly: usize,
}

impl Stopped {
    fn at(done: usize, cause: Cause) -> Stopped {
        Stopped {
            step: done + 1,
            cause,
            certain: done,
            possibly: done,
        }
    }

    /// A batch that began at step `start` (0-based) failed.
    fn from_batch(start: usize, failure: batch::Failure) -> Stopped {
        let (index, error) = failure
            .failed
            .into_iter()
            .next()
            .expect("a failure names a command");
        Stopped {
            step: start + index + 1,
            cause: Cause::Failed(error),
            certain: start + failure.certain,
            possibly: start + failure.possibly,
        }
    }
}

fn injected(cmd: &Cmd) -> RunError {
    RunError::Failed {
        cmd: cmd.to_string(),
        status: Exit::Injected,
        stderr: "injected failure".into(),
    }
}

/// The end (exclusive) of the batch that starts at `start`: the steps after
/// it that share its key, stopping short of a step that is to fail.
fn group_end(steps: &[Step], start: usize, fail_at: Option<usize>) -> usize {
    let Some(key) = batch::key(&steps[start].apply) else {
        return start + 1;
    };
    let mut end = start + 1;
    while end < steps.len()
        && fail_at != Some(end + 1)
        && batch::key(&steps[end].apply).as_ref() == Some(&key)
    {
        end += 1;
    }
    end
}

/// Runs the apply commands of `steps`, alone or as one batch.
fn run_group(runner: &mut dyn Runner, steps: &[Step]) -> Result<(), batch::Failure> {
    let cmds: Vec<&Cmd> = steps.iter().map(|s| &s.apply).collect();
    run_cmds(runner, &cmds, false, "run")
}

/// Runs `cmds`, which share a batch key when there are several, logging each
/// as `LABEL: CMD` so that `-v` shows the plan's own commands.
fn run_cmds(
    runner: &mut dyn Runner,
    cmds: &[&Cmd],
    force: bool,
    label: &str,
) -> Result<(), batch::Failure> {
    for cmd in cmds {
        tracing::info!("{label}: {cmd}");
    }
    let key = match cmds {
        [_, _, ..] => batch::key(cmds[0]),
        _ => None,
    };
    match key {
        None => runner.run(cmds[0]).map(drop).map_err(|err| batch::Failure {
            failed: vec![(0, err)],
            certain: 0,
            possibly: 0,
        }),
        Some(key) => runner
            .run(&batch::join(&key, cmds, force))
            .map(drop)
            .map_err(|err| batch::failure(&key, cmds, err)),
    }
}

/// Undoes the first `possibly` steps of `plan`, last first, batching what it
/// can, and collects failures. The undos of steps from `certain` on are
/// tried but may fail (their step may not have run): those failures are not
/// errors. A failing undo never stops the rest.
pub fn rollback(
    plan: &Plan,
    certain: usize,
    possibly: usize,
    runner: &mut dyn Runner,
    applied: &mut dyn FnMut(usize, usize) -> Result<(), FileError>,
) -> Vec<RunError> {
    // A rollback goes on whatever happens to the journal: it only gets
    // shorter, and the rollback's result is reported either way.
    let mut note = |certain, possibly| {
        if let Err(err) = applied(certain, possibly) {
            tracing::debug!(
                "cannot update the journal during rollback: {}",
                with_sources(&err)
            );
        }
    };
    let undos: Vec<(usize, &Cmd)> = (0..possibly)
        .rev()
        .flat_map(|i| plan.steps[i].undo.iter().map(move |cmd| (i, cmd)))
        .collect();
    // An undo may make again what a step removed asynchronously.
    settle::settle(runner, &plan.steps[..possibly]);
    let mut errors = Vec::new();
    // The journal last said `possibly`: nothing to tell if that is already 0.
    let (mut at, mut told) = (0, possibly);
    while at < undos.len() {
        let (first, cmd) = undos[at];
        let strict = first < certain;
        let key = batch::key(cmd).filter(batch::joins_in_undo);
        let mut end = at + 1;
        while end < undos.len()
            && key.is_some()
            && (undos[end].0 < certain) == strict
            && batch::key(undos[end].1) == key
        {
            end += 1;
        }
        let cmds: Vec<&Cmd> = undos[at..end].iter().map(|(_, c)| *c).collect();
        if let Err(failure) = run_cmds(runner, &cmds, true, "undo") {
            for (_, err) in failure.failed {
                tracing::warn!("undo failed: {err}");
                if strict {
                    errors.push(err);
                }
            }
        }
        // The last step touched is undone unless more of its undo follows.
        let last = undos[end - 1].0;
        let partly = undos.get(end).is_some_and(|(i, _)| *i == last);
        let left = last + usize::from(partly);
        note(certain.min(left), left);
        told = left;
        at = end;
    }
    if told != 0 {
        note(0, 0);
    }
    errors
}

#[cfg(test)]
mod tests;
