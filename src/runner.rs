//! Runners: the only code that starts processes. `System` runs the real tools,
//! found by absolute path in trusted system directories and started with an
//! argument vector and a scrubbed environment; `Recorder` writes down what it
//! was asked to run and can be told to fail, for tests of plans and rollback.

use crate::cmd::{Cmd, Tool};
use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use thiserror::Error;

/// Directories nsnet takes its tools from, and nothing else: not the caller's
/// PATH, which `sudo -E` or a script could point anywhere.
pub const TRUSTED_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Debug, Error)]
pub enum RunError {
    #[error(
        "`{program}` is not installed (install the `{package}` package, e.g. `apt-get install {package}`)"
    )]
    Missing {
        program: &'static str,
        package: &'static str,
    },
    #[error("refusing to run `{path}`: it is writable by users other than root")]
    Untrusted { path: PathBuf },
    #[error("cannot start `{cmd}`: {source}")]
    Spawn {
        cmd: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{cmd}` failed ({status}): {stderr}")]
    Failed {
        cmd: String,
        status: String,
        stderr: String,
    },
}

/// Runs commands to completion and returns their standard output.
pub trait Runner {
    fn run(&mut self, cmd: &Cmd) -> Result<String, RunError>;
}

/// Runs the real programs.
#[derive(Default)]
pub struct System {
    paths: HashMap<Tool, PathBuf>,
}

impl System {
    /// The absolute path of `tool`, checked once per process.
    pub fn resolve(&mut self, tool: Tool) -> Result<PathBuf, RunError> {
        if let Some(path) = self.paths.get(&tool) {
            return Ok(path.clone());
        }
        let path = which::which_in(tool.program(), Some(TRUSTED_PATH), "/").map_err(|_| {
            RunError::Missing {
                program: tool.program(),
                package: tool.package(),
            }
        })?;
        let mode = std::fs::metadata(&path)
            .map(|m| m.permissions().mode())
            .unwrap_or(0o022);
        if mode & 0o022 != 0 {
            return Err(RunError::Untrusted { path });
        }
        self.paths.insert(tool, path.clone());
        Ok(path)
    }
}

impl Runner for System {
    fn run(&mut self, cmd: &Cmd) -> Result<String, RunError> {
        let path = self.resolve(cmd.tool)?;
        tracing::info!("run: {cmd}");
        let spawn_error = |source| RunError::Spawn {
            cmd: cmd.to_string(),
            source,
        };
        let mut child = Command::new(&path)
            .args(&cmd.args)
            .env_clear()
            .env("PATH", TRUSTED_PATH)
            .env("LC_ALL", "C")
            .stdin(if cmd.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Out of the terminal's process group: Ctrl-C reaches nsnet, which
            // rolls back, and never kills a command (an undo) half-way.
            .process_group(0)
            .spawn()
            .map_err(spawn_error)?;
        if let (Some(text), Some(mut stdin)) = (&cmd.stdin, child.stdin.take()) {
            // A batch is small: the program reads it all before writing much.
            stdin.write_all(text.as_bytes()).map_err(spawn_error)?;
        }
        let output = child.wait_with_output().map_err(spawn_error)?;
        if output.status.success() {
            return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stderr = stderr.split_whitespace().collect::<Vec<_>>().join(" ");
        let status = match output.status.code() {
            Some(code) => format!("exit status {code}"),
            None => "killed by a signal".to_string(),
        };
        tracing::debug!("failed: {cmd}: {status}: {stderr}");
        Err(RunError::Failed {
            cmd: cmd.to_string(),
            status,
            stderr: if stderr.is_empty() {
                "no error output".into()
            } else {
                stderr
            },
        })
    }
}

/// Records every command and succeeds, except for the calls it is told to
/// fail (counted from 1 over all calls, undo commands included).
#[cfg(test)]
#[derive(Debug, Default)]
pub struct Recorder {
    pub calls: Vec<String>,
    pub fail_on: Vec<usize>,
}

#[cfg(test)]
impl Recorder {
    pub fn failing_on(calls: impl IntoIterator<Item = usize>) -> Recorder {
        Recorder {
            calls: Vec::new(),
            fail_on: calls.into_iter().collect(),
        }
    }
}

#[cfg(test)]
impl Runner for Recorder {
    fn run(&mut self, cmd: &Cmd) -> Result<String, RunError> {
        self.calls.push(cmd.to_string());
        if self.fail_on.contains(&self.calls.len()) {
            return Err(RunError::Failed {
                cmd: cmd.to_string(),
                status: "exit status 2".into(),
                stderr: "injected failure".into(),
            });
        }
        Ok(String::new())
    }
}

/// Wraps a runner so that its `fail_at`-th command fails without running,
/// as if the tool had refused it: `NSNET_FAIL_AT=k` (tests and the
/// reliability script) makes step k of a plan fail, to exercise the rollback
/// of every step against the real system.
pub struct FailAt<'a> {
    pub inner: &'a mut dyn Runner,
    pub fail_at: usize,
    pub count: usize,
}

impl Runner for FailAt<'_> {
    fn run(&mut self, cmd: &Cmd) -> Result<String, RunError> {
        self.count += 1;
        if self.count == self.fail_at {
            return Err(RunError::Failed {
                cmd: cmd.to_string(),
                status: "NSNET_FAIL_AT".into(),
                stderr: "injected failure".into(),
            });
        }
        self.inner.run(cmd)
    }
}
