//! `--step`: a learner's walk through a plan. Before each step nsnet shows
//! why and the command, and waits: Enter runs it, `q` or the end of the
//! input stops and undoes what ran. From a pipe here, in a throwaway host.

mod common;

use common::assert_same;
use predicates::str::contains;

#[test]
fn enter_runs_a_step_and_q_stops_and_undoes_what_ran() {
    let sb = sandbox!();
    let before = sb.snapshot();
    let out = sb
        .nsnet(["--step", "bridge", "up", "red"])
        .write_stdin("\nwhat?\n\nq\n")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("step 1 of 12:\n  # Create bridge nsnet0"),
        "{stderr}"
    );
    assert!(
        stderr.contains("\n  ip link add nsnet0 address 02:c2:18:71:0f:6c type bridge\n"),
        "{stderr}"
    );
    // Anything but Enter or q asks again: two steps ran.
    assert!(
        stderr.contains(
            "nsnet: stopped before step 3 of 12; undid the 2 completed step(s), nothing was changed"
        ),
        "{stderr}"
    );
    assert_same(&before, &sb.snapshot());
    // The end of the input stops as q does, before anything runs.
    sb.nsnet(["--step", "bridge", "up", "red"])
        .write_stdin("")
        .assert()
        .code(1)
        .stderr(contains(
            "stopped before step 1 of 12; undid the 0 completed step(s)",
        ));
    assert_same(&before, &sb.snapshot());
}

#[test]
fn enter_at_every_step_builds_the_network() {
    let sb = sandbox!();
    let before = sb.snapshot();
    sb.nsnet(["--step", "bridge", "up", "red", "blue"])
        .write_stdin("\n".repeat(40))
        .assert()
        .success()
        .stdout(contains("nsnet0 gateway 10.200.0.1/24"))
        .stderr(contains("step 20 of 20:"));
    assert!(sb.pings(Some("red"), "10.200.0.3"));
    sb.nsnet(["--step", "down"])
        .write_stdin("\n".repeat(10))
        .assert()
        .success();
    assert_same(&before, &sb.snapshot());
    sb.nsnet(["--step", "--dry-run", "bridge", "up", "red"])
        .assert()
        .code(2)
        .stderr(contains("cannot be used with"));
}
