//! The throwaway host itself: `scripts/sandbox.sh` stopped by a signal must
//! stop everything that runs in it, so nothing keeps its mounts (and the
//! directories it made on the real machine) alive after it.

mod common;

use common::Sandbox;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Whether process `pid` runs (a zombie does not).
fn running(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat.rsplit_once(") ")?.1.chars().next()?;
            Some(state != 'Z')
        })
        .unwrap_or(false)
}

#[test]
fn a_stopped_sandbox_stops_every_process_in_it_even_one_that_ignores_the_signal() {
    // Only to skip (or, under CI=true, fail) where throwaway hosts cannot be made.
    let Some(_privileged) = Sandbox::new() else {
        return;
    };
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/sandbox.sh");
    // A shell whose child ignores TERM: the shell goes at the signal, the
    // child only at the KILL that follows.
    let mut outer = Command::new(script)
        .args([
            "bash",
            "-c",
            "trap '' TERM; sleep 120 & echo \"inside $$ $!\"; wait",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start scripts/sandbox.sh");
    let mut line = String::new();
    BufReader::new(outer.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read the pids inside");
    let pids: Vec<String> = line
        .strip_prefix("inside ")
        .unwrap_or_else(|| panic!("the sandbox did not start: {line:?}"))
        .split_whitespace()
        .map(String::from)
        .collect();
    assert_eq!(pids.len(), 2, "{line:?}");
    assert!(pids.iter().all(|p| running(p)), "{pids:?} should run");

    let sent = Command::new("kill")
        .args(["-TERM", &outer.id().to_string()])
        .status()
        .expect("run kill");
    assert!(sent.success());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = outer.try_wait().expect("wait for the sandbox") {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the sandbox did not end after TERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    // It handled the signal (a shell killed by it has no exit code).
    assert_eq!(status.code(), Some(128 + 15), "{status:?}");
    for pid in &pids {
        assert!(
            !running(pid),
            "process {pid} of the stopped sandbox still runs"
        );
    }
}
