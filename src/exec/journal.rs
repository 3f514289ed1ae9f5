//! The journal: what lets the next nsnet finish the rollback of a plan whose
//! process was killed (SIGKILL, a crash, a power cut of the VM) half-way.
//!
//! Before its first step a plan is written to `journal.json` in the state
//! directory, with the serial its record will have once the plan succeeds
//! (not the record: a command on a host of a thousand namespaces would
//! write it out twice). Before
//! every batch and after every undo, `journal.applied` holds two counts,
//! `CERTAIN POSSIBLY`: the plan's first CERTAIN steps are in effect, and the
//! steps up to POSSIBLY may be (a batch was under way). It is a tiny file,
//! so a long plan costs no more per batch than a short one. Both files go
//! when the plan has ended: after the record is saved on success, after the
//! rollback on failure.
//!
//! If the journal is still there, the plan did not end. `recover` undoes the
//! steps that may be in effect (tolerating failures for those in doubt),
//! last first, unless every step ran and the record was already saved, when
//! there is nothing left to do but drop the journal.

use crate::exec;
use crate::exec::files::{self, FileError};
use crate::exec::orphan;
use crate::exec::runner::RunError;
use crate::exec::runner::Runner;
use crate::model::state::State;
use crate::plan::Plan;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::{Path, PathBuf};

/// Recovery that could not undo everything: what failed, kept as errors.
#[derive(Debug, thiserror::Error)]
#[error(
    "an earlier nsnet was stopped after {done} of {total} steps; undoing them failed for: {} (see `nsnet status`)",
    errors.iter().map(|e| format!("[{e}]")).collect::<Vec<_>>().join(" ")
)]
pub struct Unrecovered {
    pub done: usize,
    pub total: usize,
    pub errors: Vec<RunError>,
}

#[derive(Deserialize)]
struct Entry {
    plan: Plan,
    /// The record's serial once the plan has run and its record is saved.
    #[serde(default)]
    serial_after: Option<u64>,
    /// The record itself, as an earlier nsnet wrote it instead.
    #[serde(default)]
    state_after: Option<State>,
}

/// `Entry` as it is written: borrowed, not a copy of the plan.
#[derive(Serialize)]
struct EntryOf<'a> {
    plan: &'a Plan,
    serial_after: u64,
}

/// The journal files of a state directory.
pub struct Journal {
    plan: PathBuf,
    applied: PathBuf,
    child: PathBuf,
}

impl Journal {
    pub fn at(dir: &Path) -> Journal {
        Journal {
            plan: dir.join("journal.json"),
            applied: dir.join("journal.applied"),
            child: dir.join("journal.child"),
        }
    }

    /// Records `plan` and the serial of the record it leads to, before its
    /// first step.
    pub fn begin(&self, plan: &Plan, serial_after: u64) -> Result<()> {
        let entry = EntryOf { plan, serial_after };
        let written = files::replace(&self.applied, "0")
            .and_then(|()| files::replace_json(&self.plan, &entry));
        if written.is_err() {
            self.end();
        }
        written.context("the journal cannot be written, so the plan does not run")
    }

    /// Records that the plan's first `certain` steps are in effect and
    /// those up to `possibly` may be.
    pub fn applied(&self, certain: usize, possibly: usize) -> Result<(), FileError> {
        files::replace(&self.applied, &format!("{certain} {possibly}"))
    }

    /// The plan has ended: forget it.
    pub fn end(&self) {
        let _ = fs::remove_file(&self.plan);
        let _ = fs::remove_file(&self.applied);
        let _ = fs::remove_file(&self.child);
    }

    /// Where the runner notes the tool at work while a plan or a recovery
    /// runs (see `orphan`).
    pub fn child_path(&self) -> PathBuf {
        self.child.clone()
    }

    /// How many steps of an unfinished plan may be in effect, and of how many.
    pub fn pending(&self) -> Option<(usize, usize)> {
        let entry = self.read().ok()??;
        let total = entry.plan.steps.len();
        Some((self.counts().map_or(total, |c| c.1.min(total)), total))
    }

    fn read(&self) -> Result<Option<Entry>> {
        let Some(text) = files::read(&self.plan)? else {
            return Ok(None);
        };
        Ok(Some(serde_json::from_str(&text).with_context(|| {
            format!(
                "the journal `{}` is damaged (move it away after checking the host)",
                self.plan.display()
            )
        })?))
    }

    /// `(certain, possibly)`. A single count (an older nsnet's journal)
    /// means its last step was in doubt.
    /// `None` when the counts cannot be read: then nothing is trusted, and
    /// every step counts as possibly in effect.
    fn counts(&self) -> Option<(usize, usize)> {
        let text = files::read(&self.applied).ok()??;
        let numbers: Vec<usize> = text
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        match numbers[..] {
            [certain, possibly] => Some((certain.min(possibly), possibly)),
            [n] => Some((n.saturating_sub(1), n)),
            _ => None,
        }
    }

    /// Finishes an unfinished plan; says what it did, if anything.
    pub fn recover(&self, runner: &mut dyn Runner, state: &State) -> Result<Option<Recovered>> {
        let Some(entry) = self.read()? else {
            return Ok(None);
        };
        // The killed nsnet's last tool may not have died with it yet: no undo
        // may race it.
        if let Some(pid) = orphan::stop(&self.child) {
            tracing::info!("stopped tool process {pid} of the earlier nsnet before undoing");
        }
        let total = entry.plan.steps.len();
        let (certain, possibly) = self.counts().unwrap_or((0, total));
        let (certain, done) = (certain.min(total), possibly.min(total));
        // Every step ran and the record that says so was saved.
        let saved = match (entry.serial_after, &entry.state_after) {
            (Some(serial), _) => state.serial == serial,
            (None, Some(after)) => state.same_objects(after),
            (None, None) => false,
        };
        if done == total && saved {
            self.end();
            return Ok(Some(Recovered {
                message: format!(
                    "an earlier nsnet stopped right after completing its {total} steps; nothing to undo"
                ),
                plan: entry.plan,
            }));
        }
        let mut applied = |c, p| self.applied(c, p);
        let errors = exec::rollback(&entry.plan, certain, done, runner, &mut applied);
        self.end();
        if !errors.is_empty() {
            return Err(Unrecovered {
                done,
                total,
                errors,
            }
            .into());
        }
        Ok(Some(Recovered {
            message: format!(
                "an earlier nsnet was stopped after {done} of {total} steps; undid them"
            ),
            plan: entry.plan,
        }))
    }
}

/// What a recovery did, and the plan it undid.
#[derive(Debug)]
pub struct Recovered {
    pub message: String,
    pub plan: Plan,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::runner::Recorder;
    use crate::plan::Step;
    use crate::plan::cmd::Cmd;

    fn dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("nsnet-journal-{name}-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// The record the plan would have left: not the one on disk.
    fn after() -> State {
        let mut state = State::default();
        let entry = crate::model::state::Namespace::new(None, true);
        state.namespaces.insert("red".parse().unwrap(), entry);
        state
    }

    fn plan() -> Plan {
        let mut plan = Plan::default();
        for n in 1..=4 {
            plan.push(
                Step::new(Cmd::ip([format!("apply-{n}")]), "").undo(Cmd::ip([format!("undo-{n}")])),
            );
        }
        plan
    }

    #[test]
    fn a_batch_cut_short_is_undone_tolerantly_and_the_rest_strictly() {
        let dir = dir("batch");
        let journal = Journal::at(&dir);
        journal.begin(&plan(), 1).unwrap();
        // Steps 1 and 2 surely ran; the batch of 3 and 4 was under way.
        journal.applied(2, 4).unwrap();
        // undo-4 and undo-3 fail (never applied): not errors.
        let mut rec = Recorder::failing_on([1, 2]);
        let message = journal.recover(&mut rec, &State::default()).unwrap();
        assert_eq!(
            rec.calls,
            ["ip undo-4", "ip undo-3", "ip undo-2", "ip undo-1"]
        );
        assert_eq!(
            message.map(|r| r.message).as_deref(),
            Some("an earlier nsnet was stopped after 4 of 4 steps; undid them")
        );

        assert_eq!(journal.pending(), None, "the journal is gone");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_older_single_count_leaves_its_last_step_in_doubt() {
        let dir = dir("old");
        let journal = Journal::at(&dir);
        journal.begin(&plan(), 1).unwrap();
        fs::write(dir.join("journal.applied"), "2").unwrap();
        assert_eq!(journal.counts(), Some((1, 2)));
        // The in-doubt step's undo may fail; the certain one's may not.
        let mut rec = Recorder::failing_on([2]);
        let err = journal.recover(&mut rec, &State::default()).unwrap_err();
        assert_eq!(rec.calls, ["ip undo-2", "ip undo-1"]);
        assert!(err.to_string().contains("`ip undo-1`"), "{err}");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_plan_that_ran_is_undone_unless_its_record_was_saved() {
        let dir = dir("serial");
        let journal = Journal::at(&dir);
        let record = |serial| State { serial, ..after() };
        // Every step ran, the record was not saved (its serial is the one
        // before): all undone.
        journal.begin(&plan(), 8).unwrap();
        journal.applied(4, 4).unwrap();
        let mut rec = Recorder::default();
        let undid = journal.recover(&mut rec, &record(7)).unwrap().unwrap();
        assert_eq!(rec.calls.len(), 4);
        assert!(undid.message.ends_with("undid them"), "{}", undid.message);
        // Saved: nothing to undo, and the journal goes.
        journal.begin(&plan(), 8).unwrap();
        journal.applied(4, 4).unwrap();
        let mut rec = Recorder::default();
        let kept = journal.recover(&mut rec, &record(8)).unwrap().unwrap();
        assert!(rec.calls.is_empty(), "{:?}", rec.calls);
        assert!(
            kept.message.ends_with("nothing to undo"),
            "{}",
            kept.message
        );
        assert_eq!(journal.pending(), None);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_earlier_nsnets_journal_with_the_whole_record_is_understood() {
        let dir = dir("earlier");
        let journal = Journal::at(&dir);
        let entry = serde_json::json!({ "plan": plan(), "state_after": after() });
        fs::write(dir.join("journal.json"), entry.to_string()).unwrap();
        journal.applied(4, 4).unwrap();
        // The record on disk holds the objects the plan led to (its
        // identities aside): saved, nothing to undo.
        let mut rec = Recorder::default();
        let message = journal.recover(&mut rec, &after()).unwrap().unwrap();
        assert!(rec.calls.is_empty(), "{:?}", rec.calls);
        assert!(message.message.ends_with("nothing to undo"));
        fs::write(dir.join("journal.json"), entry.to_string()).unwrap();
        journal.applied(4, 4).unwrap();
        let mut rec = Recorder::default();
        journal.recover(&mut rec, &State::default()).unwrap();
        assert_eq!(rec.calls.len(), 4, "not saved: undone");
        fs::remove_dir_all(dir).unwrap();
    }
}
