//! The executor: runs a plan's steps in order and, when one fails, runs the
//! undo of every completed step in reverse. A failing undo does not stop the
//! rollback; every such failure is reported with the one that caused it, so
//! the user knows exactly what, if anything, was left behind.

pub mod batch;
pub mod journal;
pub mod runner;
pub mod settle;
pub mod signals;

use crate::exec::runner::{RunError, Runner};
use crate::plan::cmd::Cmd;
use crate::plan::{Plan, Step};
use std::fmt;

/// Why a plan stopped part-way.
#[derive(Debug)]
pub enum Cause {
    /// A command failed.
    Failed(RunError),
    /// A signal arrived (SIGINT, SIGTERM, SIGHUP) before the step ran.
    Interrupted(i32),
}

/// A plan that stopped part-way, after its rollback.
#[derive(Debug)]
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

impl fmt::Display for ExecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cause {
            Cause::Failed(err) => write!(f, "step {} of {}: {err}", self.step, self.steps)?,
            Cause::Interrupted(signal) => write!(
                f,
                "interrupted by {} before step {} of {}",
                crate::exec::signals::name(*signal),
                self.step,
                self.steps
            )?,
        }
        if self.undo_errors.is_empty() {
            write!(
                f,
                "; undid the {} completed step(s), nothing was changed",
                self.undone
            )
        } else {
            write!(f, "; rollback incomplete, these undo commands failed too:")?;
            for err in &self.undo_errors {
                write!(f, " [{err}]")?;
            }
            Ok(())
        }
    }
}

impl std::error::Error for ExecError {}

/// What the executor asks and tells while it runs.
pub struct Watch<'a> {
    /// A signal that arrived, checked before each batch.
    pub interrupted: &'a dyn Fn() -> Option<i32>,
    /// Told which of the plan's first steps are in effect: `(certain,
    /// possibly)` says the first `certain` surely are and those up to
    /// `possibly` may be (a batch under way). Called before each batch runs
    /// and after each undo; the journal keeps it across a crash.
    pub applied: &'a mut dyn FnMut(usize, usize),
    /// `NSNET_FAIL_AT=k`: step k fails, unrun, as if its tool had refused it,
    /// so that tests can roll back from every step against the real system.
    pub fail_at: Option<usize>,
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
        } else {
            let end = group_end(steps, done, watch.fail_at);
            // Written ahead: if nsnet dies while the batch runs, the journal
            // already counts its steps as possibly in effect.
            (watch.applied)(done, end);
            match run_group(runner, &steps[done..end]) {
                Ok(()) => {
                    done = end;
                    continue;
                }
                Err(failure) => Stopped::from_batch(done, failure),
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
        status: "NSNET_FAIL_AT".into(),
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
    applied: &mut dyn FnMut(usize, usize),
) -> Vec<RunError> {
    let undos: Vec<(usize, &Cmd)> = (0..possibly)
        .rev()
        .flat_map(|i| plan.steps[i].undo.iter().map(move |cmd| (i, cmd)))
        .collect();
    // An undo may make again what a step removed asynchronously.
    settle::settle(runner, &plan.steps[..possibly]);
    let mut errors = Vec::new();
    let (mut at, mut told) = (0, usize::MAX);
    while at < undos.len() {
        let (first, cmd) = undos[at];
        let strict = first < certain;
        let key = batch::key(cmd);
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
        applied(certain.min(left), left);
        told = left;
        at = end;
    }
    if told != 0 {
        applied(0, 0);
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::runner::Recorder;

    fn run(
        plan: &Plan,
        rec: &mut Recorder,
        interrupted: &dyn Fn() -> Option<i32>,
    ) -> Result<(), ExecError> {
        let mut applied = |_, _| {};
        let mut watch = Watch {
            interrupted,
            applied: &mut applied,
            fail_at: None,
        };
        execute(plan, rec, &mut watch)
    }

    /// Five steps: `ip apply-N`, undone by `ip undo-N`. Step 3 runs in
    /// namespace `red` and has no undo, so the plan runs as three batches:
    /// steps 1-2, step 3, steps 4-5.
    fn plan() -> Plan {
        let mut plan = Plan::default();
        for n in 1..=5 {
            let ns = (n == 3).then_some("red");
            let step = Step::new(Cmd::ip_in(ns, [format!("apply-{n}")]), "");
            plan.push(if n == 3 {
                step
            } else {
                step.undo(Cmd::ip([format!("undo-{n}")]))
            });
        }
        plan
    }

    fn applies(upto: usize) -> Vec<String> {
        (1..=upto)
            .map(|n| match n {
                3 => "ip -n red apply-3".to_string(),
                n => format!("ip apply-{n}"),
            })
            .collect()
    }

    #[test]
    fn a_plan_that_succeeds_runs_every_step_once_in_order_in_batches() {
        let mut rec = Recorder::default();
        run(&plan(), &mut rec, &|| None).unwrap();
        assert_eq!(rec.calls, applies(5));
        assert_eq!(rec.processes, 3);
    }

    #[test]
    fn failure_at_step_k_undoes_exactly_steps_before_k_in_reverse() {
        for k in 1..=5 {
            let mut rec = Recorder::failing_on([k]);
            let err = run(&plan(), &mut rec, &|| None).unwrap_err();
            let mut expected = applies(k);
            expected.extend(
                (1..k)
                    .rev()
                    .filter(|&n| n != 3)
                    .map(|n| format!("ip undo-{n}")),
            );
            assert_eq!(rec.calls, expected, "failing at step {k}");
            assert_eq!((err.step, err.undone), (k, k - 1));
            assert!(err.undo_errors.is_empty());
        }
    }

    #[test]
    fn a_failing_undo_does_not_stop_the_rollback_and_is_reported() {
        // Fail step 5 (call 5), then the undo of step 4 (call 6).
        let mut rec = Recorder::failing_on([5, 6]);
        let err = run(&plan(), &mut rec, &|| None).unwrap_err();
        assert_eq!(
            rec.calls[5..],
            ["ip undo-4", "ip undo-2", "ip undo-1"].map(String::from)
        );
        assert_eq!(err.undo_errors.len(), 1);
        let text = err.to_string();
        assert!(
            text.starts_with("step 5 of 5: `ip apply-5` failed (in a batch): injected failure"),
            "{text}"
        );
        assert!(
            text.contains("rollback incomplete") && text.contains("`ip undo-4`"),
            "{text}"
        );
    }

    #[test]
    fn undo_runs_as_one_forced_batch_per_namespace() {
        let mut rec = Recorder::failing_on([5]);
        run(&plan(), &mut rec, &|| None).unwrap_err();
        // Three to apply, one for the three undos.
        assert_eq!(rec.processes, 4);
    }

    #[test]
    fn a_signal_stops_before_the_next_batch_and_rolls_back() {
        let mut rec = Recorder::default();
        let calls = std::cell::Cell::new(0);
        // The signal arrives while step 3 (the second batch) runs.
        let interrupted = || {
            calls.set(calls.get() + 1);
            (calls.get() > 2).then_some(15)
        };
        let err = run(&plan(), &mut rec, &interrupted).unwrap_err();
        let mut expected = applies(3);
        expected.extend(["ip undo-2", "ip undo-1"].map(String::from));
        assert_eq!(rec.calls, expected);
        assert_eq!(
            err.to_string(),
            "interrupted by SIGTERM before step 4 of 5; undid the 3 completed step(s), nothing was changed"
        );
    }

    #[test]
    fn the_steps_in_effect_are_told_before_each_batch_and_after_undo() {
        let mut rec = Recorder::failing_on([4]);
        let mut seen = Vec::new();
        let mut applied = |c, p| seen.push((c, p));
        let mut watch = Watch {
            interrupted: &|| None,
            applied: &mut applied,
            fail_at: None,
        };
        execute(&plan(), &mut rec, &mut watch).unwrap_err();
        assert_eq!(seen, [(0, 2), (2, 3), (3, 5), (0, 0)]);
    }

    #[test]
    fn fail_at_k_fails_step_k_unrun_and_splits_its_batch() {
        for k in 1..=5 {
            let mut rec = Recorder::default();
            let mut applied = |_, _| {};
            let mut watch = Watch {
                interrupted: &|| None,
                applied: &mut applied,
                fail_at: Some(k),
            };
            let err = execute(&plan(), &mut rec, &mut watch).unwrap_err();
            assert_eq!((err.step, err.undone), (k, k - 1));
            assert_eq!(rec.calls[..k - 1], applies(k - 1), "fail at {k}");
            assert!(err.to_string().contains("injected failure"));
        }
    }

    #[test]
    fn a_batch_that_dies_unnamed_undoes_its_steps_tolerantly() {
        let mut plan = Plan::default();
        for n in 1..=3 {
            plan.push(
                Step::new(Cmd::ip([format!("apply-{n}")]), "").undo(Cmd::ip([format!("undo-{n}")])),
            );
        }
        // None of the steps surely ran: every undo is tried, and their
        // failures (nothing to undo) are not errors.
        let mut rec = Recorder::failing_on([1, 2, 3]);
        let errors = rollback(&plan, 0, 3, &mut rec, &mut |_, _| {});
        assert_eq!(rec.calls, ["ip undo-3", "ip undo-2", "ip undo-1"]);
        assert!(errors.is_empty());
        // With step 1 certain, its undo's failure is reported.
        let mut rec = Recorder::failing_on([3]);
        let errors = rollback(&plan, 1, 3, &mut rec, &mut |_, _| {});
        assert_eq!(rec.calls, ["ip undo-3", "ip undo-2", "ip undo-1"]);
        assert_eq!(errors.len(), 1);
    }

    #[test]
    fn the_error_names_the_failed_command_and_the_rollback() {
        let mut rec = Recorder::failing_on([2]);
        let err = run(&plan(), &mut rec, &|| None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "step 2 of 5: `ip apply-2` failed (in a batch): injected failure; \
             undid the 1 completed step(s), nothing was changed"
        );
    }

    #[test]
    fn what_vanishes_asynchronously_is_waited_for_at_the_end_and_before_undo() {
        let mut plan = Plan::default();
        let mut del =
            Step::new(Cmd::ip(["netns", "del", "red"]), "").undo(Cmd::ip(["netns", "add", "red"]));
        del.settle = vec!["nv-red".into()];
        plan.push(del);
        plan.push(Step::new(Cmd::sysctl("k", "1"), ""));
        let mut rec = Recorder::default();
        run(&plan, &mut rec, &|| None).unwrap();
        assert_eq!(
            rec.calls,
            ["ip netns del red", "sysctl -w k=1", "ip -j link show"]
        );
        let mut rec = Recorder::failing_on([2]);
        run(&plan, &mut rec, &|| None).unwrap_err();
        assert_eq!(
            rec.calls,
            [
                "ip netns del red",
                "sysctl -w k=1",
                "ip -j link show",
                "ip netns add red"
            ]
        );
    }

    #[test]
    fn a_single_command_runs_without_a_batch() {
        let mut plan = Plan::default();
        plan.push(Step::new(Cmd::ip(["link", "add", "x"]), ""));
        let mut rec = Recorder::failing_on([1]);
        let err = run(&plan, &mut rec, &|| None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "step 1 of 1: `ip link add x` failed (exit status 2): injected failure; \
             undid the 0 completed step(s), nothing was changed"
        );
    }
}
