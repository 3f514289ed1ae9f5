//! `nsnet lab`: a throwaway host for learners. Inside, nsnet builds a real
//! network that carries traffic; outside, nothing changed, as root and as an
//! unprivileged user (through a user namespace). Each test runs the lab from
//! inside its own throwaway host, so even a broken lab cannot reach the real
//! machine.

mod common;

use common::assert_same;

/// Builds a bridge with two namespaces inside the lab and pings across.
const INSIDE: &str = "nsnet -q bridge up red blue && nsnet -q nat up && \
     ip netns exec red ping -c 1 -W 2 10.200.0.3 >/dev/null && ip netns list";

#[test]
fn a_lab_network_works_inside_and_leaves_nothing_outside() {
    let sb = sandbox!();
    let before = sb.snapshot();
    let out = sb.sh(&format!(
        "{} -q lab -- sh -c '{INSIDE}'",
        env!("CARGO_BIN_EXE_nsnet")
    ));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("red") && stdout.contains("blue"),
        "{stdout}"
    );
    assert_same(&before, &sb.snapshot());
}

#[test]
fn a_user_without_root_gets_a_lab_too() {
    let sb = sandbox!();
    let before = sb.snapshot();
    // nobody (65534): no capability outside the lab.
    let out = sb.sh(&format!(
        "setpriv --reuid=65534 --regid=65534 --clear-groups {} -q lab -- sh -c 'id -u; {INSIDE}'",
        env!("CARGO_BIN_EXE_nsnet")
    ));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("0\n"), "root inside the lab: {stdout}");
    assert!(stdout.contains("red"), "{stdout}");
    assert_same(&before, &sb.snapshot());
}

#[test]
fn the_command_in_the_lab_gives_its_exit_status() {
    let sb = sandbox!();
    let out = sb.sh(&format!(
        "{} -q lab -- sh -c 'exit 7'",
        env!("CARGO_BIN_EXE_nsnet")
    ));
    assert_eq!(out.status.code(), Some(7));
}
