//! No tool outlives the nsnet that started it. Each tool runs in a process
//! group of its own (so Ctrl-C at the terminal never kills an undo half-way)
//! with the kernel told to SIGKILL it when nsnet dies (`PR_SET_PDEATHSIG`),
//! and while a plan runs, the journal holds the pid and start time of the
//! tool at work (`journal.child`). Before it undoes anything, recovery makes
//! sure that tool is gone: killed with its group if it is somehow still
//! there, and waited for, so an `ip -batch` of a killed nsnet can never go on
//! creating namespaces while the next nsnet takes them away.

use std::path::Path;
use std::time::{Duration, Instant};

/// How long recovery waits for a killed tool to be gone.
const LIMIT: Duration = Duration::from_secs(5);

/// The start time of process `pid` (field 22 of /proc/PID/stat, in clock
/// ticks since boot) and whether it is a zombie; `None` if there is no such
/// process. A pid and its start time name one process, even after the pid
/// is reused.
fn started(pid: u32) -> Option<(u64, bool)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name, in parentheses, may hold spaces: count after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let zombie = fields.first() == Some(&"Z");
    Some((fields.get(19)?.parse().ok()?, zombie))
}

/// Notes in `file` that process `pid` (its own group leader) is at work.
pub fn record(file: &Path, pid: u32) {
    let Some((start, _)) = started(pid) else {
        return;
    };
    if let Err(err) = crate::exec::files::note(file, &format!("{pid} {start}\n")) {
        tracing::warn!(
            "cannot note the running tool in `{}`: {err}",
            file.display()
        );
    }
}

/// Makes sure the tool noted in `file` is no longer at work: if that very
/// process is still alive, kills its group and waits until it is gone.
/// Returns the pid it had to stop, if any.
pub fn stop(file: &Path) -> Option<u32> {
    let text = crate::exec::files::read(file).ok()??;
    let mut words = text.split_whitespace();
    let pid: u32 = words.next()?.parse().ok()?;
    let start: u64 = words.next()?.parse().ok()?;
    let alive = |pid| started(pid).is_some_and(|(s, zombie)| s == start && !zombie);
    if !alive(pid) {
        return None;
    }
    let group = rustix::process::Pid::from_raw(pid as i32)?;
    let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
    let begun = Instant::now();
    while alive(pid) && begun.elapsed() < LIMIT {
        std::thread::sleep(Duration::from_millis(5));
    }
    if alive(pid) {
        tracing::warn!("tool process {pid} of an earlier nsnet is still running after SIGKILL");
    }
    Some(pid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    #[test]
    fn a_recorded_tool_still_at_work_is_stopped_and_a_gone_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("journal.child");
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap();
        record(&file, child.id());
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.starts_with(&format!("{} ", child.id())), "{text}");
        // Reap it as its parent would, while `stop` waits.
        let reaper = std::thread::spawn(move || child.wait().unwrap());
        let stopped = stop(&file);
        let status = reaper.join().unwrap();
        assert!(stopped.is_some());
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9));
        assert_eq!(stop(&file), None, "already gone: nothing to stop");
    }

    #[test]
    fn a_reused_pid_is_not_taken_for_the_tool() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("journal.child");
        let me = std::process::id();
        // This test's own pid with another start time: some other process.
        crate::exec::files::replace(&file, &format!("{me} 1\n")).unwrap();
        assert_eq!(stop(&file), None);
    }
}
