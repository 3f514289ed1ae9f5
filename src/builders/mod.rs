//! Builders: pure functions from parsed arguments, the observed host and
//! nsnet's record to a `Change`: the plan to run and the record as it will be
//! once the plan has run. Nothing here touches the system.

pub mod attach;
pub mod bridge;
pub mod dns;
pub mod firewall;
pub mod forget;
pub mod nat;
pub mod netns;
pub mod policy;
pub mod publish;
pub mod release;
pub mod route;
pub mod routing;
mod tables;
pub mod veth;

use crate::model::state::State;
use crate::plan::Plan;
use anyhow::Result;

pub use release::down;

/// What a command will do.
#[derive(Debug, Default)]
pub struct Change {
    pub plan: Plan,
    /// The record after the plan has run.
    pub state: State,
    /// Things the user should know that are not errors (stderr, unless -q).
    pub notes: Vec<String>,
}

impl Change {
    fn from(state: &State) -> Change {
        Change {
            state: state.clone(),
            ..Change::default()
        }
    }

    /// This change followed by `next`, built on the record this one leaves:
    /// several commands' worth of work as one plan.
    pub fn then(mut self, next: impl FnOnce(&State) -> Result<Change>) -> Result<Change> {
        let next = next(&self.state)?;
        self.plan.extend(next.plan.steps);
        self.notes.extend(next.notes);
        self.state = next.state;
        Ok(self)
    }
}

#[cfg(test)]
mod tests;
