//! The state directory: nsnet's record (`state.json`) and the lock that
//! keeps two nsnet processes from interleaving changes. The record is only
//! written while holding the lock, and replaced atomically (see `files`):
//! a record that cannot be saved leaves the old one whole, and the caller
//! rolls its plan back.

use crate::exec::files::{self, FileError};
use crate::model::state::{DEFAULT_DIR, State};
use anyhow::{Context, Result};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The state directory, and the lock on it while this process holds one.
pub struct Store {
    dir: PathBuf,
    _lock: Option<File>,
}

impl Store {
    pub fn dir() -> PathBuf {
        std::env::var_os("NSNET_STATE_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DIR))
    }

    /// Opens the store without locking, for commands that only read.
    pub fn read_only() -> Store {
        Store {
            dir: Store::dir(),
            _lock: None,
        }
    }

    /// Opens the store and takes its lock, waiting for any other nsnet; a
    /// wait that `interrupted` ends (a signal) gives up.
    pub fn locked(interrupted: &dyn Fn() -> Option<i32>) -> Result<Store> {
        let dir = Store::dir();
        // Not allowed to make or open them: most likely not root.
        let as_root = |e: FileError| match e {
            FileError::Io(_, _, ref io) if io.kind() == std::io::ErrorKind::PermissionDenied => {
                anyhow::Error::new(e).context("run nsnet as root")
            }
            e => e.into(),
        };
        files::ensure_dir(&dir).map_err(as_root)?;
        let path = dir.join("lock");
        let file = files::open(
            &path,
            OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .mode(0o600),
        )
        .map_err(as_root)?;
        let mut pause = Duration::from_millis(1);
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) => {}
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(e).with_context(|| format!("cannot lock `{}`", path.display()));
                }
            }
            if let Some(signal) = interrupted() {
                anyhow::bail!(
                    "interrupted by signal {signal} while waiting for another nsnet to finish (`{}` is locked)",
                    path.display()
                );
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
        Ok(Store {
            dir,
            _lock: Some(file),
        })
    }

    fn path(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    /// The record; an absent file is an empty record.
    pub fn load(&self) -> Result<State> {
        load(&self.path())
    }

    /// Replaces the record atomically. Compact, not pretty: at 1,000
    /// namespaces the pretty record is more than twice the size, and its
    /// writing and reading were a third of what one command cost (`jq .`
    /// shows it indented).
    pub fn save(&self, state: &State) -> Result<()> {
        Ok(files::replace_json(&self.path(), state)?)
    }
}

fn load(path: &Path) -> Result<State> {
    let Some(text) = files::read(path)? else {
        return Ok(State::default());
    };
    let damaged = || {
        format!(
            "`{}` is damaged (move it away to start afresh)",
            path.display()
        )
    };
    let state: State = serde_json::from_str(&text).with_context(damaged)?;
    if let Err(why) = state.check() {
        return Err(damaged_at(path, &why));
    }
    Ok(state)
}

/// The error for a record that names what nsnet could never have made.
fn damaged_at(path: &Path, why: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "`{}` is damaged: {why}; nothing was run (move it away to start afresh)",
        path.display()
    )
}

/// `damaged_at` for the record in the state directory, for what only the
/// host shows (a name that is the host's uplink).
pub fn damaged(why: String) -> anyhow::Error {
    damaged_at(&Store::dir().join("state.json"), &why)
}
