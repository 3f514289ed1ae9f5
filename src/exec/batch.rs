//! Batches: the commands of several steps sent to one process, because
//! starting `ip` costs more than what it does. The executor decides what to
//! group; this module says which commands may share a process, builds the
//! combined command, and reads a failed batch back into per-command terms.
//!
//! What the tools do, as verified on iproute2 6.1 and procps 4.0:
//! - `ip [-n NS] -batch -` reads one command per line, runs them in order and
//!   stops at the first that fails, printing its error and then
//!   `Command failed -:L`: lines 1..L-1 took effect, line L did not.
//! - `ip -force -batch -` goes on past failures and prints that pair for
//!   every line that failed (used for undo, which tries everything).
//! - `sysctl -w K1=V1 K2=V2` tries every key and names those it could not
//!   set; after a failure, any of its keys may have been set.
//! - `iptables-restore --noflush` (and `ip6tables-restore`, iptables 1.8.9
//!   over nf_tables and legacy) commits each table at its `COMMIT`, one
//!   kernel transaction each, in order, and stops at the first table that
//!   fails, naming its line (`line L failed`, `line L: TYPE failed` when
//!   the kernel refuses the table at `COMMIT`, or `Error occurred at line:
//!   L` when a line cannot be parsed): the tables before it took effect,
//!   that one did not. It cannot go on past a failure, so undo never joins
//!   restores.
//!
//! A batch line is split at blanks and cut at `#`; only commands whose words
//! have neither (nor quotes) keep their meaning there. Names are validated
//! long before (letters, digits, `_.-`); `key` checks again and leaves any
//! other command to run on its own.

use crate::exec::runner::{Exit, RunError};
use crate::plan::cmd::{Cmd, Tool};

/// What commands must have in common to share one process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Key {
    /// `ip` in the host (`None`) or in one namespace (`-n NS`).
    Ip(Option<String>),
    /// `sysctl -w KEY=VALUE`.
    Sysctl,
    /// `iptables-restore --noflush -w` or `ip6tables-restore …` (the tool):
    /// whole tables, each ending in `COMMIT`.
    Restore(Tool),
}

/// The batch `cmd` can join, if any.
pub fn key(cmd: &Cmd) -> Option<Key> {
    if let Some(text) = &cmd.stdin {
        let restore = matches!(cmd.tool, Tool::IptablesRestore | Tool::Ip6tablesRestore);
        let tables = text.ends_with("COMMIT\n") && text.starts_with('*');
        return (restore && tables && cmd.args == ["--noflush", "-w"])
            .then_some(Key::Restore(cmd.tool));
    }
    match (cmd.tool, cmd.args.as_slice()) {
        (Tool::Ip, args) => {
            let ns = cmd.netns();
            let rest = &args[if ns.is_some() { 2 } else { 0 }..];
            line_safe(rest).then(|| Key::Ip(ns.map(String::from)))
        }
        (Tool::Sysctl, [flag, setting]) if flag == "-w" && setting.contains('=') => {
            Some(Key::Sysctl)
        }
        _ => None,
    }
}

/// The words of an `ip` command after its namespace flag, when they read
/// the same as a batch line: no option of `ip` itself, nothing a line split
/// or comment would change.
fn line_safe(words: &[String]) -> bool {
    let plain = |w: &String| {
        !w.is_empty()
            && w.chars()
                .all(|c| c.is_ascii_graphic() && !"#\"'\\".contains(c))
    };
    words.first().is_some_and(|w| !w.starts_with('-')) && words.iter().all(plain)
}

/// Whether undo commands with `key` may share a process: undo goes on past
/// failures, which a restore cannot.
pub fn joins_in_undo(key: &Key) -> bool {
    !matches!(key, Key::Restore(_))
}

/// One command that runs `cmds`, which all have `key`, in order. With
/// `force`, an `ip` batch goes on past failing lines.
pub fn join(key: &Key, cmds: &[&Cmd], force: bool) -> Cmd {
    match key {
        Key::Restore(tool) => {
            let text: String = cmds.iter().filter_map(|c| c.stdin.as_deref()).collect();
            Cmd::restore(*tool, text)
        }
        Key::Ip(ns) => {
            let skip = if ns.is_some() { 2 } else { 0 };
            let mut text = String::new();
            for cmd in cmds {
                text.push_str(&cmd.args[skip..].join(" "));
                text.push('\n');
            }
            let mut args: Vec<String> = Vec::new();
            if force {
                args.push("-force".into());
            }
            if let Some(ns) = ns {
                args.extend(["-n".to_string(), ns.clone()]);
            }
            args.extend(["-batch".to_string(), "-".to_string()]);
            Cmd {
                stdin: Some(text),
                ..Cmd::new(Tool::Ip, args)
            }
        }
        Key::Sysctl => {
            let settings = cmds.iter().map(|c| c.args[1].clone());
            Cmd::new(
                Tool::Sysctl,
                std::iter::once("-w".to_string()).chain(settings),
            )
        }
    }
}

/// What a failed batch did, in terms of the commands it held.
#[derive(Debug)]
pub struct Failure {
    /// The commands that failed, by index, each with its own error; a batch
    /// that failed as a whole (not started, killed) blames its first.
    pub failed: Vec<(usize, RunError)>,
    /// The first `certain` commands surely took effect.
    pub certain: usize,
    /// The first `possibly` commands may have taken effect (`certain` or more).
    pub possibly: usize,
}

/// Reads the error of `batch`, the joined `cmds`, back into a `Failure`.
pub fn failure(key: &Key, cmds: &[&Cmd], error: RunError) -> Failure {
    let stderr = match &error {
        RunError::Failed { stderr, .. } => stderr.clone(),
        _ => String::new(),
    };
    let blame = |i: usize, message: String| {
        let (cmd, status) = (cmds[i].to_string(), Exit::InBatch);
        let stderr = if message.is_empty() {
            "no error output".to_string()
        } else {
            message
        };
        (
            i,
            RunError::Failed {
                cmd,
                status,
                stderr,
            },
        )
    };
    let failed: Vec<(usize, RunError)> = match key {
        Key::Ip(_) => failed_lines(&stderr)
            .into_iter()
            .filter(|(line, _)| (1..=cmds.len()).contains(line))
            .map(|(line, message)| blame(line - 1, message))
            .collect(),
        Key::Sysctl => cmds
            .iter()
            .position(|c| names_setting(&stderr, c))
            .map(|i| blame(i, stderr.clone()))
            .into_iter()
            .collect(),
        Key::Restore(_) => restore_line(&stderr)
            .and_then(|(line, digits)| {
                let (index, own) = line_of(cmds, line)?;
                let said = format!("{}{own}{}", &stderr[..digits.start], &stderr[digits.end..]);
                Some(blame(index, said.trim().to_string()))
            })
            .into_iter()
            .collect(),
    };
    match (key, failed.first()) {
        // ip stops at its first failing line, a restore at its first
        // failing table; those before took effect.
        (Key::Ip(_) | Key::Restore(_), Some(&(first, _))) => Failure {
            certain: first,
            possibly: first,
            failed,
        },
        // sysctl tries every key: any of them may be set.
        (Key::Sysctl, Some(_)) => Failure {
            certain: 0,
            possibly: cmds.len(),
            failed,
        },
        // No line was named: the process never ran, or died part-way.
        (_, None) => Failure {
            failed: vec![(0, error)],
            certain: 0,
            possibly: cmds.len(),
        },
    }
}

/// `(line, error)` for every `Command failed -:L` in the (whitespace-folded)
/// error output of `ip -batch -`: the error is the text before the marker.
fn failed_lines(stderr: &str) -> Vec<(usize, String)> {
    const MARK: &str = "Command failed -:";
    let mut found = Vec::new();
    let mut rest = stderr;
    while let Some(at) = rest.find(MARK) {
        let message = rest[..at].trim().to_string();
        let after = &rest[at + MARK.len()..];
        let digits = after.chars().take_while(char::is_ascii_digit).count();
        if let Ok(line) = after[..digits].parse() {
            found.push((line, message));
        }
        rest = &after[digits..];
    }
    found
}

/// The line a restore's error output names (see below),
/// and where its digits are in `stderr`.
fn restore_line(stderr: &str) -> Option<(usize, std::ops::Range<usize>)> {
    // `line L failed` (a rule refused), `line L: TYPE failed (...)` (the
    // kernel refused the table at COMMIT), `Error occurred at line: L` (a
    // line that cannot be parsed).
    let marks = [
        ("line ", " failed"),
        ("line ", ": "),
        ("Error occurred at line: ", ""),
    ];
    for (mark, after) in marks {
        for (at, _) in stderr.match_indices(mark) {
            let start = at + mark.len();
            let digits = stderr[start..]
                .chars()
                .take_while(char::is_ascii_digit)
                .count();
            let end = start + digits;
            if digits > 0
                && stderr[end..].starts_with(after)
                && let Ok(line) = stderr[start..end].parse()
            {
                return Some((line, start..end));
            }
        }
    }
    None
}

/// Which of `cmds`, whose inputs a restore read one after another, holds
/// line `line` (1-based) of the whole, and which line of its own it is.
fn line_of(cmds: &[&Cmd], line: usize) -> Option<(usize, usize)> {
    if line == 0 {
        return None;
    }
    let mut first = 1;
    for (index, cmd) in cmds.iter().enumerate() {
        let lines = cmd.stdin.as_deref().unwrap_or_default().lines().count();
        if line < first + lines {
            return Some((index, line + 1 - first));
        }
        first += lines;
    }
    None
}

/// Whether sysctl's error output names the key that `cmd` sets, in dotted,
/// slashed or /proc/sys form.
fn names_setting(stderr: &str, cmd: &Cmd) -> bool {
    let key = cmd.args[1].split('=').next().unwrap_or_default();
    // sysctl reads a key with a slash as a path, dots and all.
    let path = if key.contains('/') {
        key.to_string()
    } else {
        key.replace('.', "/")
    };
    stderr.contains(&format!("\"{key}\""))
        || stderr.contains(&format!("'{key}'"))
        || stderr.contains(&format!("/proc/sys/{path}:"))
}

/// Runs `cmd` the way `ip` and `sysctl` would, one command at a time through
/// `single`: what test runners use to stand in for the real tools.
#[cfg(test)]
pub fn emulate(
    cmd: &Cmd,
    mut single: impl FnMut(&Cmd) -> Result<(), String>,
) -> Result<(), String> {
    let (force, ns, lines) = match (cmd.tool, &cmd.stdin) {
        (Tool::Ip, Some(text)) if cmd.args.ends_with(&["-batch".into(), "-".into()]) => {
            let force = cmd.args.first().is_some_and(|a| a == "-force");
            let ns = cmd
                .args
                .iter()
                .position(|a| a == "-n")
                .map(|i| cmd.args[i + 1].clone());
            (force, ns, text.lines().collect::<Vec<_>>())
        }
        (Tool::Sysctl, None) if cmd.args.len() > 2 => {
            let mut errors = String::new();
            for setting in &cmd.args[1..] {
                if let Err(e) = single(&Cmd::new(Tool::Sysctl, ["-w", setting.as_str()])) {
                    let key = setting.split('=').next().unwrap_or_default();
                    errors.push_str(&format!("sysctl: setting key \"{key}\": {e}\n"));
                }
            }
            return if errors.is_empty() {
                Ok(())
            } else {
                Err(errors)
            };
        }
        (Tool::IptablesRestore | Tool::Ip6tablesRestore, Some(text))
            if text.matches("COMMIT\n").count() > 1 =>
        {
            // One table at a time, stopping at the first that fails.
            let mut first = 1;
            for table in text.split_inclusive("COMMIT\n") {
                single(&Cmd::restore(cmd.tool, table.to_string()))
                    .map_err(|e| format!("{}: line {first} failed: {e}", cmd.tool.program()))?;
                first += table.lines().count();
            }
            return Ok(());
        }
        _ => return single(cmd),
    };
    let mut errors = String::new();
    for (n, line) in lines.iter().enumerate() {
        let one = Cmd::ip_in(ns.as_deref(), line.split_whitespace());
        if let Err(e) = single(&one) {
            errors.push_str(&format!("{e}\nCommand failed -:{}\n", n + 1));
            if !force {
                break;
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(stderr: &str) -> RunError {
        RunError::Failed {
            cmd: "batch".into(),
            status: Exit::Code(1),
            stderr: stderr.into(),
        }
    }

    #[test]
    fn ip_commands_group_by_namespace() {
        assert_eq!(
            key(&Cmd::ip(["link", "set", "x", "up"])),
            Some(Key::Ip(None))
        );
        assert_eq!(
            key(&Cmd::ip_in(Some("red"), ["link", "set", "lo", "up"])),
            Some(Key::Ip(Some("red".into())))
        );
        assert_eq!(
            key(&Cmd::sysctl("net.ipv4.ip_forward", "1")),
            Some(Key::Sysctl)
        );
        assert_eq!(
            key(&Cmd::restore(
                Tool::IptablesRestore,
                "*nat\nCOMMIT\n".into()
            )),
            Some(Key::Restore(Tool::IptablesRestore))
        );
        assert_eq!(
            key(&Cmd::restore(
                Tool::Ip6tablesRestore,
                "*nat\nCOMMIT\n".into()
            )),
            Some(Key::Restore(Tool::Ip6tablesRestore))
        );
        // Not whole tables, or a restore that flushes: alone.
        let partial = Cmd::restore(Tool::IptablesRestore, "*nat\n-A X -j Y\n".into());
        assert_eq!(key(&partial), None);
        let flushing = Cmd {
            stdin: Some("*nat\nCOMMIT\n".into()),
            ..Cmd::new(Tool::IptablesRestore, ["-w"])
        };
        assert_eq!(key(&flushing), None);
        assert!(!joins_in_undo(&Key::Restore(Tool::IptablesRestore)));
        assert!(joins_in_undo(&Key::Ip(None)));
    }

    fn restores() -> [Cmd; 3] {
        let table = |t: &str| Cmd::restore(Tool::IptablesRestore, t.into());
        [
            table(
                "*nat\n-A NSNET-DNAT -p tcp --dport 80 -j DNAT --to-destination 10.0.0.2\nCOMMIT\n",
            ),
            table(
                "*filter\n:NSNET-INPUT - [0:0]\n-A NSNET-INPUT -j DROP\n-I INPUT 1 -j NSNET-INPUT\nCOMMIT\n",
            ),
            table("*raw\n-A PREROUTING -j ACCEPT\nCOMMIT\n"),
        ]
    }

    #[test]
    fn restores_join_into_one_input_of_whole_tables() {
        let cmds = restores();
        let refs: Vec<&Cmd> = cmds.iter().collect();
        let key = Key::Restore(Tool::IptablesRestore);
        let joined = join(&key, &refs, false);
        assert_eq!(joined.args, ["--noflush", "-w"]);
        assert_eq!(
            joined.stdin.as_deref().unwrap().matches("COMMIT\n").count(),
            3
        );
        assert!(
            joined
                .stdin
                .as_deref()
                .unwrap()
                .starts_with("*nat\n-A NSNET-DNAT")
        );
    }

    #[test]
    fn a_restore_failure_blames_the_table_of_its_line_in_that_tables_own_terms() {
        let cmds = restores();
        let refs: Vec<&Cmd> = cmds.iter().collect();
        let key = Key::Restore(Tool::IptablesRestore);
        // (error output, the table blamed, what the message says of it)
        let cases = [
            // A rule refused: line 6 of the whole is line 3 of the second
            // table.
            (
                "iptables-restore: line 6 failed: No chain/target/match by that name.",
                1,
                "failed (in a batch): iptables-restore: line 3 failed: No chain/target/match by that name.",
            ),
            // A line that cannot be parsed is named another way.
            (
                "iptables-restore v1.8.9 (nf_tables): Couldn't load target `NOPE' Error occurred at line: 10 Try `iptables-restore -h'",
                2,
                "at line: 2 ",
            ),
            // The kernel refused a table at its COMMIT (a chain still
            // jumped to).
            (
                "iptables-restore v1.8.9 (nf_tables): line 5: CHAIN_DEL failed (Device or resource busy): chain NSNET-INPUT",
                1,
                "line 2: CHAIN_DEL failed",
            ),
        ];
        for (stderr, table, said) in cases {
            let f = failure(&key, &refs, failed(stderr));
            assert_eq!(
                (f.certain, f.possibly, f.failed[0].0),
                (table, table, table)
            );
            let message = f.failed[0].1.to_string();
            assert!(message.contains(said), "{message}");
        }
        // No line, or one outside the input: every table in doubt.
        for stderr in [
            "killed",
            "iptables-restore: line 40 failed",
            "iptables-restore: line 0 failed",
        ] {
            let f = failure(&key, &refs, failed(stderr));
            assert_eq!(
                (f.certain, f.possibly, f.failed[0].0),
                (0, 3, 0),
                "{stderr}"
            );
        }
    }

    #[test]
    fn restore_emulation_stops_at_the_first_failing_table() {
        let cmds = restores();
        let refs: Vec<&Cmd> = cmds.iter().collect();
        let key = Key::Restore(Tool::IptablesRestore);
        let mut seen = Vec::new();
        let err = emulate(&join(&key, &refs, false), |c| {
            seen.push(c.stdin.clone().unwrap());
            match c.stdin.as_deref().unwrap().starts_with("*filter") {
                true => Err("no".into()),
                false => Ok(()),
            }
        })
        .unwrap_err();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[1], cmds[1].stdin.clone().unwrap());
        assert_eq!(err, "iptables-restore: line 4 failed: no");
        let f = failure(&key, &refs, failed(&err));
        assert_eq!((f.certain, f.failed[0].0), (1, 1));
    }

    #[test]
    fn words_a_batch_line_would_change_run_alone() {
        for bad in [
            "a#b",
            "a b",
            "it's",
            "\"x\"",
            "",
            "back\\slash",
            "new\nline",
        ] {
            assert_eq!(key(&Cmd::ip(["link", "del", bad])), None, "{bad:?}");
        }
        // Options of ip itself cannot go on a line.
        assert_eq!(key(&Cmd::ip(["-j", "link", "show"])), None);
    }

    #[test]
    fn join_writes_one_line_per_command() {
        let a = Cmd::ip_in(Some("red"), ["link", "set", "lo", "up"]);
        let b = Cmd::ip_in(Some("red"), ["addr", "add", "10.0.0.2/24", "dev", "eth0"]);
        let key = Key::Ip(Some("red".into()));
        assert_eq!(
            join(&key, &[&a, &b], false).to_string(),
            "ip -n red -batch - <<'EOF'\nlink set lo up\naddr add 10.0.0.2/24 dev eth0\nEOF"
        );
        assert_eq!(join(&key, &[&a], true).args[..2], ["-force", "-n"]);
        let s = [Cmd::sysctl("a.b", "1"), Cmd::sysctl("c/d.e/f", "0")];
        assert_eq!(
            join(&Key::Sysctl, &[&s[0], &s[1]], false).to_string(),
            "sysctl -w a.b=1 c/d.e/f=0"
        );
    }

    #[test]
    fn an_ip_batch_failure_names_its_line_and_what_completed() {
        let cmds = [
            Cmd::ip(["link", "add", "v1", "type", "veth"]),
            Cmd::ip(["link", "set", "nothere", "up"]),
            Cmd::ip(["link", "set", "v1", "up"]),
        ];
        let refs: Vec<&Cmd> = cmds.iter().collect();
        let f = failure(
            &Key::Ip(None),
            &refs,
            failed("Cannot find device \"nothere\" Command failed -:2"),
        );
        assert_eq!((f.certain, f.possibly), (1, 1));
        assert_eq!(f.failed.len(), 1);
        assert_eq!(
            f.failed[0].1.to_string(),
            "`ip link set nothere up` failed (in a batch): Cannot find device \"nothere\""
        );
        // -force reports every failing line.
        let f = failure(
            &Key::Ip(None),
            &refs,
            failed(
                "RTNETLINK answers: File exists Command failed -:1 Cannot find device \"nothere\" Command failed -:2",
            ),
        );
        let lines: Vec<usize> = f.failed.iter().map(|(i, _)| *i).collect();
        assert_eq!(lines, [0, 1]);
    }

    #[test]
    fn a_batch_that_names_no_line_leaves_every_command_in_doubt() {
        let cmds = [Cmd::ip(["link", "add", "a"]), Cmd::ip(["link", "add", "b"])];
        let refs: Vec<&Cmd> = cmds.iter().collect();
        let f = failure(&Key::Ip(None), &refs, failed("killed"));
        assert_eq!((f.certain, f.possibly, f.failed[0].0), (0, 2, 0));
    }

    #[test]
    fn a_sysctl_failure_names_its_key_and_leaves_all_in_doubt() {
        let cmds = [
            Cmd::sysctl("net.ipv4.ip_forward", "1"),
            Cmd::sysctl("net/ipv4/conf/br.1/route_localnet", "1"),
        ];
        let refs: Vec<&Cmd> = cmds.iter().collect();
        let f = failure(
            &Key::Sysctl,
            &refs,
            failed(
                "sysctl: cannot stat /proc/sys/net/ipv4/conf/br.1/route_localnet: No such file or directory",
            ),
        );
        assert_eq!((f.certain, f.possibly, f.failed[0].0), (0, 2, 1));
    }

    #[test]
    fn emulation_stops_at_the_first_failing_line_unless_forced() {
        let batch = join(
            &Key::Ip(None),
            &[&Cmd::ip(["a"]), &Cmd::ip(["b"]), &Cmd::ip(["c"])],
            false,
        );
        let mut seen = Vec::new();
        let err = emulate(&batch, |c| {
            seen.push(c.to_string());
            if c.args == ["b"] {
                Err("no".into())
            } else {
                Ok(())
            }
        })
        .unwrap_err();
        assert_eq!(seen, ["ip a", "ip b"]);
        assert_eq!(failed_lines(&err), [(2, "no".to_string())]);
        let forced = join(
            &Key::Ip(None),
            &[&Cmd::ip(["a"]), &Cmd::ip(["b"]), &Cmd::ip(["c"])],
            true,
        );
        let mut seen = 0;
        emulate(&forced, |_| {
            seen += 1;
            Err("no".into())
        })
        .unwrap_err();
        assert_eq!(seen, 3);
    }
}
