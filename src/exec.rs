//! The executor: runs a plan's steps in order and, when one fails, runs the
//! undo of every completed step in reverse. A failing undo does not stop the
//! rollback; every such failure is reported with the one that caused it, so
//! the user knows exactly what, if anything, was left behind.

use crate::plan::Plan;
use crate::runner::{RunError, Runner};
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
                crate::signals::name(*signal),
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
    /// A signal that arrived, checked before each step.
    pub interrupted: &'a dyn Fn() -> Option<i32>,
    /// Told how many of the plan's first steps may be in effect: before each
    /// apply (the step about to run counts) and after each undo. The journal
    /// keeps this across a crash.
    pub applied: &'a mut dyn FnMut(usize),
}

/// Runs `plan`; on failure, or when a signal arrived before a step, rolls
/// back and returns what happened.
pub fn execute(plan: &Plan, runner: &mut dyn Runner, watch: &mut Watch) -> Result<(), ExecError> {
    for (done, step) in plan.steps.iter().enumerate() {
        let cause = match (watch.interrupted)() {
            Some(signal) => Cause::Interrupted(signal),
            None => {
                // Written ahead: if nsnet dies while the step runs, the
                // journal already counts it (as possibly in effect).
                (watch.applied)(done + 1);
                match runner.run(&step.apply) {
                    Ok(_) => continue,
                    Err(err) => Cause::Failed(err),
                }
            }
        };
        let undo_errors = rollback(plan, done, runner, watch.applied);
        return Err(ExecError {
            step: done + 1,
            steps: plan.steps.len(),
            cause,
            undone: done,
            undo_errors,
        });
    }
    Ok(())
}

/// Undoes the first `done` steps of `plan`, last first, and collects failures.
pub fn rollback(
    plan: &Plan,
    done: usize,
    runner: &mut dyn Runner,
    applied: &mut dyn FnMut(usize),
) -> Vec<RunError> {
    let mut errors = Vec::new();
    for (index, step) in plan.steps[..done].iter().enumerate().rev() {
        for cmd in &step.undo {
            if let Err(err) = runner.run(cmd) {
                tracing::warn!("undo failed: {err}");
                errors.push(err);
            }
        }
        applied(index);
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::Cmd;
    use crate::plan::Step;
    use crate::runner::Recorder;

    fn run(
        plan: &Plan,
        rec: &mut Recorder,
        interrupted: &dyn Fn() -> Option<i32>,
    ) -> Result<(), ExecError> {
        let mut applied = |_| {};
        let mut watch = Watch {
            interrupted,
            applied: &mut applied,
        };
        execute(plan, rec, &mut watch)
    }

    /// Five steps: `ip apply-N`, undone by `ip undo-N` (step 3 has no undo).
    fn plan() -> Plan {
        let mut plan = Plan::default();
        for n in 1..=5 {
            let step = Step::new(Cmd::ip([format!("apply-{n}")]), "");
            plan.push(if n == 3 {
                step
            } else {
                step.undo(Cmd::ip([format!("undo-{n}")]))
            });
        }
        plan
    }

    #[test]
    fn a_plan_that_succeeds_runs_every_step_once_in_order() {
        let mut rec = Recorder::default();
        run(&plan(), &mut rec, &|| None).unwrap();
        assert_eq!(
            rec.calls,
            [
                "ip apply-1",
                "ip apply-2",
                "ip apply-3",
                "ip apply-4",
                "ip apply-5"
            ]
        );
    }

    #[test]
    fn failure_at_step_k_undoes_exactly_steps_before_k_in_reverse() {
        for k in 1..=5 {
            let mut rec = Recorder::failing_on([k]);
            let err = run(&plan(), &mut rec, &|| None).unwrap_err();
            let mut expected: Vec<String> = (1..=k).map(|n| format!("ip apply-{n}")).collect();
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
            text.starts_with("step 5 of 5: `ip apply-5` failed"),
            "{text}"
        );
        assert!(
            text.contains("rollback incomplete") && text.contains("`ip undo-4`"),
            "{text}"
        );
    }

    #[test]
    fn a_signal_stops_before_the_next_step_and_rolls_back() {
        let mut rec = Recorder::default();
        let calls = std::cell::Cell::new(0);
        // The signal arrives while step 3 runs: step 4 is not started.
        let interrupted = || {
            calls.set(calls.get() + 1);
            (calls.get() > 3).then_some(15)
        };
        let err = run(&plan(), &mut rec, &interrupted).unwrap_err();
        assert_eq!(
            rec.calls,
            [
                "ip apply-1",
                "ip apply-2",
                "ip apply-3",
                "ip undo-2",
                "ip undo-1"
            ]
        );
        assert_eq!(
            err.to_string(),
            "interrupted by SIGTERM before step 4 of 5; undid the 3 completed step(s), nothing was changed"
        );
    }

    #[test]
    fn the_count_of_applied_steps_follows_applies_and_undos() {
        let mut rec = Recorder::failing_on([4]);
        let mut seen = Vec::new();
        let mut applied = |n| seen.push(n);
        let mut watch = Watch {
            interrupted: &|| None,
            applied: &mut applied,
        };
        execute(&plan(), &mut rec, &mut watch).unwrap_err();
        assert_eq!(seen, [1, 2, 3, 4, 2, 1, 0]);
    }

    #[test]
    fn the_error_names_the_failed_command_and_the_rollback() {
        let mut rec = Recorder::failing_on([2]);
        let err = run(&plan(), &mut rec, &|| None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "step 2 of 5: `ip apply-2` failed (exit status 2): injected failure; \
             undid the 1 completed step(s), nothing was changed"
        );
    }
}
