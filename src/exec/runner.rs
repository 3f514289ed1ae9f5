//! Runners: the code that runs the tools plans and readings need (`netns exec`
//! and `lab` are the exceptions: they replace nsnet with the user's command,
//! so its exit status and signals are the user's). `System` runs the real tools
//! (and sends the one request of a hairpin setting itself: see `inproc`, and
//! a restore that only deletes rules as one transaction: see `nfbatch`),
//! found by absolute path in trusted system directories and started with an
//! argument vector and a scrubbed environment; `Recorder` writes down what it
//! was asked to run and can be told to fail, for tests of plans and rollback.

use crate::exec::nfdump::{self, Print};
use crate::exec::rulecache::{self, RuleCache};
use crate::exec::{inproc, nfbatch, nfrule, orphan};
use crate::model::rules::Family;
use crate::plan::cmd::{Cmd, Tool};
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
        status: Exit,
        stderr: String,
    },
}

/// How a command that failed ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Exit {
    /// It exited with this non-zero status.
    #[error("exit status {0}")]
    Code(i32),
    /// A signal ended it.
    #[error("killed by a signal")]
    Signal,
    /// It was one line of a batch that `ip` or `sysctl` named as failing.
    #[error("in a batch")]
    InBatch,
    /// It never ran: `NSNET_FAIL_AT` made this step fail.
    #[error("NSNET_FAIL_AT")]
    Injected,
}

/// Runs commands to completion and returns their standard output.
pub trait Runner {
    fn run(&mut self, cmd: &Cmd) -> Result<String, RunError>;
}

/// Runs the real programs.
#[derive(Default)]
pub struct System {
    paths: HashMap<Tool, PathBuf>,
    /// Where to note each tool while it runs (the journal's `journal.child`,
    /// while a plan or a recovery is under way; see `orphan`).
    pub children: Option<PathBuf>,
    /// Whole-ruleset saves answered from, and restores followed in, a cache
    /// (see `rulecache`); `None`: every save reads the kernel.
    pub rules: Option<RuleCache>,
    /// Whether each iptables tool runs over nf_tables (the cache needs it).
    nft: HashMap<Tool, bool>,
}

impl System {
    /// A runner with the rule cache of nsnet's state directory, to read
    /// (`apply` writes it back under the lock); none with `NSNET_READ=ip`.
    pub fn cached() -> System {
        let off = std::env::var("NSNET_READ").as_deref() == Ok("ip");
        System {
            rules: (!off).then(|| RuleCache::load(&crate::exec::store::Store::dir())),
            ..System::default()
        }
    }

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

/// In the child, before exec: asks the kernel for SIGKILL when the parent
/// dies, then makes sure the parent (`parent`) had not died already (the
/// request would never fire). Runs between fork and exec: system calls only.
fn die_with(parent: rustix::process::Pid) -> std::io::Result<()> {
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
    if rustix::process::getppid() != Some(parent) {
        // No allocation here (after fork): an errno, not a message.
        return Err(rustix::io::Errno::SRCH.into());
    }
    Ok(())
}

impl Runner for System {
    fn run(&mut self, cmd: &Cmd) -> Result<String, RunError> {
        if let Some((dev, on)) = inproc::hairpin_of(cmd) {
            tracing::debug!("in-process: {cmd}");
            return inproc::hairpin(cmd, dev, on);
        }
        if self.rules.is_some() && RuleCache::concerns(cmd) && self.over_nf_tables(cmd.tool) {
            return self.run_cached(cmd);
        }
        self.run_real(cmd)
    }
}

impl System {
    /// Whether `tool` is iptables over nf_tables (`xtables-nft-multi`), the
    /// backend whose changes the kernel numbers.
    fn over_nf_tables(&mut self, tool: Tool) -> bool {
        if let Some(known) = self.nft.get(&tool) {
            return *known;
        }
        let nft = self
            .resolve(tool)
            .ok()
            .and_then(|path| std::fs::canonicalize(path).ok())
            .is_some_and(|real| {
                real.file_name()
                    .is_some_and(|n| n.to_string_lossy().contains("nft"))
            });
        self.nft.insert(tool, nft);
        nft
    }

    /// A save answered from the cache when the ruleset has not changed since
    /// it was read; a restore run, and followed by the cache.
    fn run_cached(&mut self, cmd: &Cmd) -> Result<String, RunError> {
        let before = rulecache::generation();
        if let Some(generation) = before
            && matches!(cmd.tool, Tool::IptablesSave | Tool::Ip6tablesSave)
            && self.rules.as_ref().is_some_and(|c| c.stale(generation))
        {
            self.revalidate(generation);
        }
        if let (Some(cache), Some(generation)) = (&self.rules, before)
            && let Some(text) = cache.answer(cmd, generation)
        {
            tracing::debug!("cached: {cmd} (generation {generation})");
            return Ok(text);
        }
        if let (Some(cache), Some(generation)) = (&self.rules, before)
            && let Some(family) = Family::BOTH.into_iter().find(|f| f.restore() == cmd.tool)
            && let Some(rules) = cache.deletions(cmd, generation)
        {
            match nfbatch::delete(family, &rules, generation) {
                Ok(prints) => {
                    let known = rules.iter().filter(|r| r.handle.is_some()).count();
                    tracing::debug!("{known} of {} rules by a handle known", rules.len());
                    tracing::debug!("in one transaction: {cmd}");
                    if let Some(cache) = self.rules.as_mut() {
                        match rulecache::generation() {
                            Some(after) => {
                                cache.restored_at_once(cmd, generation, after);
                                cache.removed(cmd, &prints);
                            }
                            None => cache.forget(),
                        }
                    }
                    return Ok(String::new());
                }
                Err(why) => tracing::debug!("not in one transaction ({why}): {cmd}"),
            }
        }
        if let Some(generation) = before
            && let Some(family) = Family::BOTH.into_iter().find(|f| f.restore() == cmd.tool)
            && cmd.args.iter().any(|a| a == "--noflush")
            && let Some(rules) = cmd
                .stdin
                .as_deref()
                .and_then(|b| nfrule::appends(family, b))
        {
            match nfbatch::append(family, &rules, generation) {
                Ok(handles) => {
                    tracing::debug!("added in one transaction: {cmd}");
                    if let Some(cache) = self.rules.as_mut() {
                        match rulecache::generation() {
                            Some(after) => {
                                cache.restored_at_once(cmd, generation, after);
                                cache.added(cmd, &handles);
                            }
                            None => cache.forget(),
                        }
                    }
                    return Ok(String::new());
                }
                Err(why) => tracing::debug!("not added in one transaction ({why}): {cmd}"),
            }
        }
        let out = self.run_real(cmd);
        let after = rulecache::generation();
        // A restore of several tables that failed part-way committed those
        // before the failing one: the cache cannot say which.
        if out.is_err()
            && (before.is_none() || after != before)
            && let Some(cache) = self.rules.as_mut()
        {
            cache.forget();
        }
        let out = out?;
        if let Some(cache) = self.rules.as_mut() {
            match (before, after) {
                (Some(b), Some(a))
                    if matches!(cmd.tool, Tool::IptablesSave | Tool::Ip6tablesSave) =>
                {
                    if a == b && cmd.args.is_empty() {
                        cache.learn(cmd, a, &out);
                        self.print(cmd.tool, a);
                    }
                }
                (Some(b), Some(a)) => {
                    cache.restored(cmd, b, a);
                    self.print(cmd.tool, a);
                }
                _ => cache.forget(),
            }
        }
        Ok(out)
    }

    /// Gives the chains of `tool`'s cached text that have no print one (see
    /// `nfdump`), read at `generation`: every chain after a read of the
    /// whole ruleset, the few a batch of the tool named after one.
    fn print(&mut self, tool: Tool, generation: u32) {
        let Some(family) = Family::BOTH
            .into_iter()
            .find(|f| f.save() == tool || f.restore() == tool)
        else {
            return;
        };
        let Some(cache) = self.rules.as_mut() else {
            return;
        };
        let save = family.save();
        let unprinted = cache.unprinted(save);
        if unprinted.is_empty() {
            return;
        }
        let mut prints = Vec::new();
        // A few chains are listed one by one; more, the whole family at once.
        let whole = match unprinted.len() > 16 {
            true => nfdump::ruleset(family).ok(),
            false => {
                for (table, chain) in &unprinted {
                    match nfdump::chain(family, table, chain) {
                        Ok(Some(rules)) => {
                            let mut print = Print::default();
                            rules.iter().for_each(|r| print.add(r.print));
                            prints.push((table, chain, print));
                        }
                        // Not there: the next read finds out why.
                        Ok(None) | Err(_) => return,
                    }
                }
                None
            }
        };
        if rulecache::generation() != Some(generation) {
            return;
        }
        match whole {
            Some(kernel) => cache.printed_all(save, &kernel),
            None => {
                for (table, chain, print) in prints {
                    cache.printed(save, table, chain, print);
                }
            }
        }
    }

    /// The ruleset changed since the cache read it, at the hands of someone
    /// else: the cache reads the kernel's prints of every chain and, for
    /// each family, the chains whose print moved again, when they are few
    /// (see `rulecache`). A family it cannot bring to `generation` so is
    /// dropped, and read whole by its tool.
    fn revalidate(&mut self, generation: u32) {
        let mut kept = Vec::new();
        for family in Family::BOTH {
            let save = family.save();
            if !self.rules.as_ref().is_some_and(|c| c.holds(save)) {
                continue;
            }
            let Ok(kernel) = nfdump::ruleset(family) else {
                continue;
            };
            let changed = self.rules.as_ref().and_then(|c| c.changed(save, &kernel));
            let Some(changed) = changed.filter(|c| c.len() <= rulecache::REREAD_AT_MOST) else {
                tracing::debug!("rule cache: {} read again whole", save.program());
                continue;
            };
            let mut reread = Vec::with_capacity(changed.len());
            let mut failed = false;
            for (table, chain) in changed {
                let list = Cmd::new(family.list(), ["-t", table.as_str(), "-S", chain.as_str()]);
                let Ok(text) = self.run_real(&list) else {
                    failed = true;
                    break;
                };
                let prefix = format!("-A {chain} ");
                let lines: Vec<String> = text
                    .lines()
                    .filter(|l| l.starts_with(&prefix))
                    .map(String::from)
                    .collect();
                reread.push(((table, chain), lines));
            }
            if failed {
                continue;
            }
            tracing::debug!(
                "rule cache: {} chains of {} read again",
                reread.len(),
                save.program()
            );
            if let Some(cache) = self.rules.as_mut() {
                cache.reread(save, &kernel, reread);
            }
            kept.push(save);
        }
        let Some(cache) = self.rules.as_mut() else {
            return;
        };
        match rulecache::generation() == Some(generation) {
            true => cache.revalidated(generation, &kept),
            false => cache.forget(),
        }
    }

    fn run_real(&mut self, cmd: &Cmd) -> Result<String, RunError> {
        let path = self.resolve(cmd.tool)?;
        tracing::debug!("exec: {cmd}");
        let spawn_error = |source| RunError::Spawn {
            cmd: cmd.to_string(),
            source,
        };
        let mut command = Command::new(&path);
        command
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
            .process_group(0);
        let parent = rustix::process::getpid();
        // SAFETY: between fork and exec the closure makes only two system
        // calls (prctl, getppid), both async-signal-safe, and allocates nothing.
        unsafe {
            command.pre_exec(move || die_with(parent));
        }
        let mut child = command.spawn().map_err(spawn_error)?;
        if let Some(file) = &self.children {
            orphan::record(file, child.id());
        }
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
            Some(code) => Exit::Code(code),
            None => Exit::Signal,
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

/// Records every command and succeeds, except for the commands it is told
/// to fail (counted from 1 over all commands, undo commands included). A
/// batch is recorded line by line and fails as `ip` or `sysctl` would. A
/// command whose text is a key of `answers` prints that output (captured
/// from a real host, for tests of what nsnet reads); any other prints
/// nothing, except `ip -j link show`, which lists no interface.
#[cfg(test)]
#[derive(Debug, Default)]
pub struct Recorder {
    pub calls: Vec<String>,
    pub fail_on: Vec<usize>,
    /// How many processes would have been started.
    pub processes: usize,
    pub answers: HashMap<String, String>,
}

#[cfg(test)]
impl Recorder {
    pub fn failing_on(calls: impl IntoIterator<Item = usize>) -> Recorder {
        Recorder {
            fail_on: calls.into_iter().collect(),
            ..Recorder::default()
        }
    }

    /// Answers `cmd` (as `Cmd`'s text) with `stdout`.
    pub fn answer(mut self, cmd: &str, stdout: &str) -> Recorder {
        self.answers.insert(cmd.to_string(), stdout.to_string());
        self
    }
}

#[cfg(test)]
impl Runner for Recorder {
    fn run(&mut self, cmd: &Cmd) -> Result<String, RunError> {
        self.processes += 1;
        let text = cmd.to_string();
        if let Some(stdout) = self.answers.get(&text) {
            self.calls.push(text);
            return Ok(stdout.clone());
        }
        if text == "ip -j link show" {
            self.calls.push(text);
            return Ok("[]".into());
        }
        let (calls, fail_on) = (&mut self.calls, &self.fail_on);
        crate::exec::batch::emulate(cmd, |one| {
            calls.push(one.to_string());
            if fail_on.contains(&calls.len()) {
                Err("injected failure".into())
            } else {
                Ok(())
            }
        })
        .map(|()| String::new())
        .map_err(|stderr| RunError::Failed {
            cmd: cmd.to_string(),
            status: Exit::Code(2),
            stderr,
        })
    }
}
