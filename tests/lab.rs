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

/// Runs `script` in a lab started (with `launcher` before nsnet, e.g. to
/// drop privileges) inside the throwaway host; it must succeed, and the host
/// must be unchanged afterwards. Returns its stdout.
///
/// The lab runs a copy of nsnet in a directory every user may enter: the
/// build's own directory may sit in a checkout no other user can search
/// (/root is 0700), and the lab puts its binary's directory on PATH.
fn in_lab(launcher: &str, script: &str) -> Option<String> {
    let sb = common::Sandbox::new()?;
    let before = sb.snapshot();
    let bin = common::public_copy_of_nsnet();
    let out = sb.sh(&format!(
        "{launcher} {} -q lab -- sh -c '{script}'",
        bin.path().join("nsnet").display()
    ));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_same(&before, &sb.snapshot());
    Some(stdout)
}

#[test]
fn a_lab_network_works_inside_and_leaves_nothing_outside() {
    let Some(stdout) = in_lab("", INSIDE) else {
        return;
    };
    assert!(
        stdout.contains("red") && stdout.contains("blue"),
        "{stdout}"
    );
}

#[test]
fn a_user_without_root_gets_a_lab_too() {
    if !common::others_can_run_programs() {
        return;
    }
    // nobody (65534): no capability outside the lab.
    let launcher = "setpriv --reuid=65534 --regid=65534 --clear-groups";
    let Some(stdout) = in_lab(launcher, &format!("id -u; {INSIDE}")) else {
        return;
    };
    assert!(stdout.starts_with("0\n"), "root inside the lab: {stdout}");
    assert!(stdout.contains("red"), "{stdout}");
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
