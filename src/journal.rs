//! The journal: what lets the next nsnet finish the rollback of a plan whose
//! process was killed (SIGKILL, a crash, a power cut of the VM) half-way.
//!
//! Before its first step a plan is written to `journal.json` in the state
//! directory, with the record as it will be once the plan succeeds. After
//! every apply and every undo, `journal.applied` holds how many of the plan's
//! first steps are in effect (a tiny file, so a long plan costs no more per
//! step than a short one). The count is written before each step runs, so a
//! step under way when nsnet dies is counted. Both go when the plan has ended: after the record
//! is saved on success, after the rollback on failure.
//!
//! If the journal is still there, the plan did not end. `recover` undoes the
//! steps in effect, last first, unless every step ran and the record was
//! already saved, when there is nothing left to do but drop the journal.

use crate::exec;
use crate::plan::Plan;
use crate::runner::Runner;
use crate::state::State;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::{Path, PathBuf};

#[derive(Serialize, Deserialize)]
struct Entry {
    plan: Plan,
    state_after: State,
}

/// The journal files of a state directory.
pub struct Journal {
    plan: PathBuf,
    applied: PathBuf,
}

fn replace(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, text)?;
    fs::rename(&tmp, path)
}

impl Journal {
    pub fn at(dir: &Path) -> Journal {
        Journal {
            plan: dir.join("journal.json"),
            applied: dir.join("journal.applied"),
        }
    }

    /// Records `plan` and the record it leads to, before its first step.
    pub fn begin(&self, plan: &Plan, state_after: &State) -> Result<()> {
        let entry = Entry {
            plan: plan.clone(),
            state_after: state_after.clone(),
        };
        let text = serde_json::to_string(&entry).expect("a plan serializes");
        replace(&self.applied, "0")
            .and_then(|_| replace(&self.plan, &text))
            .with_context(|| format!("cannot write the journal `{}`", self.plan.display()))
    }

    /// Records that the plan's first `n` steps are in effect.
    pub fn applied(&self, n: usize) {
        if let Err(err) = replace(&self.applied, &n.to_string()) {
            tracing::warn!("cannot update the journal: {err}");
        }
    }

    /// The plan has ended: forget it.
    pub fn end(&self) {
        let _ = fs::remove_file(&self.plan);
        let _ = fs::remove_file(&self.applied);
    }

    /// How many steps of an unfinished plan are in effect, and of how many.
    pub fn pending(&self) -> Option<(usize, usize)> {
        let entry = self.read().ok()??;
        Some((self.count(), entry.plan.steps.len()))
    }

    fn read(&self) -> Result<Option<Entry>> {
        match fs::read_to_string(&self.plan) {
            Ok(text) => Ok(Some(serde_json::from_str(&text).with_context(|| {
                format!(
                    "the journal `{}` is damaged (move it away after checking the host)",
                    self.plan.display()
                )
            })?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read `{}`", self.plan.display())),
        }
    }

    fn count(&self) -> usize {
        fs::read_to_string(&self.applied)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Finishes an unfinished plan; says what it did, if anything.
    pub fn recover(&self, runner: &mut dyn Runner, state: &State) -> Result<Option<String>> {
        let Some(entry) = self.read()? else {
            return Ok(None);
        };
        let (done, total) = (
            self.count().min(entry.plan.steps.len()),
            entry.plan.steps.len(),
        );
        if done == total && *state == entry.state_after {
            self.end();
            return Ok(Some(format!(
                "an earlier nsnet stopped right after completing its {total} steps; nothing to undo"
            )));
        }
        let mut applied = |n| self.applied(n);
        // The last step counted was about to run, or running, or done: its
        // undo may find nothing to undo, so its failure means nothing.
        if let Some(in_doubt) = done.checked_sub(1) {
            for cmd in &entry.plan.steps[in_doubt].undo {
                let _ = runner.run(cmd);
            }
            applied(in_doubt);
        }
        let errors = exec::rollback(&entry.plan, done.saturating_sub(1), runner, &mut applied);
        self.end();
        if !errors.is_empty() {
            let list: Vec<String> = errors.iter().map(|e| format!("[{e}]")).collect();
            bail!(
                "an earlier nsnet was stopped after {done} of {total} steps; undoing them failed for: {} (see `nsnet status`)",
                list.join(" ")
            );
        }
        Ok(Some(format!(
            "an earlier nsnet was stopped after {done} of {total} steps; undid them"
        )))
    }
}
