//! nsnet's own files under stress and attack, in a throwaway host: a state
//! directory that fills up at any point of a command, one that is read-only,
//! links planted at every name nsnet writes, a FIFO or an oversized file as
//! the record, a directory anyone may write. Each time the user's objects
//! survive and the host is exactly as before, or the network is whole.

mod common;

use common::{Sandbox, assert_same};
use predicates::str::contains;

/// A state directory of its own, inside the throwaway host's /run/nsnet.
const DIR: &str = "/run/nsnet/t";

/// A fresh tmpfs at `DIR` of `kib` KiB.
fn state_dir(sb: &Sandbox, kib: usize) {
    sb.ok(&format!(
        "umount {DIR} 2>/dev/null; mkdir -p {DIR} && mount -t tmpfs -o size={kib}k,mode=0755 nsnet-t {DIR}"
    ));
}

fn nsnet(sb: &Sandbox, args: &[&str]) -> std::process::Output {
    sb.nsnet(args).env("NSNET_STATE_DIR", DIR).output().unwrap()
}

/// One line on stderr, exit 1.
#[track_caller]
fn refused(out: &std::process::Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    stderr
}

#[test]
fn a_state_directory_that_fills_up_at_any_point_leaves_the_host_exact() {
    let sb = sandbox!();
    sb.outside();
    let before = sb.snapshot();
    // Twenty namespaces: a record of more than a page, so there is a size
    // where the journal fits and the new record does not.
    let names: Vec<String> = (0..20).map(|i| format!("n{i}")).collect();
    let mut up = vec!["bridge", "up", "--nat"];
    up.extend(names.iter().map(String::as_str));
    // From one 4 KiB page (size=0 would mean no limit), one more each
    // time, until it fits:
    // the journal, its progress, the tool note and the record each fail in
    // turn.
    let mut failures = Vec::new();
    for pages in 1..64 {
        state_dir(&sb, pages * 4);
        let out = nsnet(&sb, &up);
        if out.status.success() {
            assert!(sb.pings(Some("n0"), "172.31.0.2"), "a whole network");
            assert!(nsnet(&sb, &["down"]).status.success());
            assert_same(&before, &sb.snapshot());
            break;
        }
        let stderr = refused(&out);
        assert_same(&before, &sb.snapshot());
        eprintln!("full at {pages} page(s): {}", stderr.trim_end());
        failures.push(stderr);
    }
    assert!(
        failures
            .iter()
            .any(|e| e.contains("the journal cannot be written, so the plan does not run")),
        "{failures:#?}"
    );
    eprintln!(
        "reliability: a state directory full at {} points of a 20-namespace `bridge up --nat`: each refused in one line, host exact",
        failures.len()
    );
}

#[test]
fn a_read_only_state_directory_is_refused_and_status_still_reads() {
    let sb = sandbox!();
    state_dir(&sb, 1024);
    assert!(nsnet(&sb, &["netns", "add", "mine"]).status.success());
    let before = sb.snapshot();
    sb.ok(&format!("mount -o remount,ro {DIR}"));
    let stderr = refused(&nsnet(&sb, &["bridge", "up", "red"]));
    assert!(stderr.contains("Read-only file system"), "{stderr}");
    assert_same(&before, &sb.snapshot());
    let out = nsnet(&sb, &["netns", "list"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("mine"));
    sb.ok(&format!("mount -o remount,rw {DIR}"));
    assert!(nsnet(&sb, &["down"]).status.success());
}

#[test]
fn links_planted_at_every_name_nsnet_writes_are_never_followed() {
    let sb = sandbox!();
    state_dir(&sb, 1024);
    sb.ok("echo precious > /run/nsnet/victim && chmod 600 /run/nsnet/victim");
    // Temporary names an attacker might guess: never written through.
    for name in [
        "state.json.tmp",
        "state.tmp",
        "journal.tmp",
        "journal.applied.tmp",
        ".state.json.tmp",
    ] {
        sb.ok(&format!("ln -s /run/nsnet/victim {DIR}/{name}"));
    }
    assert!(nsnet(&sb, &["bridge", "up", "red"]).status.success());
    assert!(nsnet(&sb, &["down"]).status.success());
    assert_eq!(sb.ok("cat /run/nsnet/victim"), "precious\n");
    assert!(
        sb.ok(&format!(
            "[ -f {DIR}/state.json ] && [ ! -L {DIR}/state.json ] && echo yes"
        ))
        .contains("yes")
    );
    // A link at a name nsnet reads or writes in place is refused, unfollowed.
    let before = sb.snapshot();
    for name in ["state.json", "lock", "journal.json"] {
        sb.ok(&format!(
            "rm -f {DIR}/{name}; ln -s /run/nsnet/victim {DIR}/{name}"
        ));
        let stderr = refused(&nsnet(&sb, &["bridge", "up", "red"]));
        assert!(stderr.contains("a symbolic link"), "{name}: {stderr}");
        assert_same(&before, &sb.snapshot());
        assert_eq!(sb.ok("cat /run/nsnet/victim"), "precious\n", "{name}");
        sb.ok(&format!("rm {DIR}/{name}"));
    }
}

#[test]
fn a_fifo_or_an_oversized_record_is_refused_at_once() {
    let sb = sandbox!();
    state_dir(&sb, 32 * 1024);
    let before = sb.snapshot();
    sb.ok(&format!("mkfifo -m 600 {DIR}/state.json"));
    // Without O_NONBLOCK this would wait forever for a writer.
    let out = sb.sh(&format!(
        "NSNET_STATE_DIR={DIR} timeout 10 {} bridge up red",
        env!("CARGO_BIN_EXE_nsnet")
    ));
    let stderr = refused(&out);
    assert!(stderr.contains("not a regular file"), "{stderr}");
    sb.ok(&format!(
        "rm {DIR}/state.json && truncate -s 17M {DIR}/state.json && chmod 644 {DIR}/state.json"
    ));
    let stderr = refused(&nsnet(&sb, &["bridge", "up", "red"]));
    assert!(
        stderr.contains("is damaged: it is over 16777216 bytes"),
        "{stderr}"
    );
    assert_same(&before, &sb.snapshot());
}

#[test]
fn a_state_directory_anyone_may_write_is_refused() {
    let sb = sandbox!();
    state_dir(&sb, 1024);
    sb.ok(&format!("chmod 777 {DIR}"));
    let before = sb.snapshot();
    sb.nsnet(["bridge", "up", "red"])
        .env("NSNET_STATE_DIR", DIR)
        .assert()
        .code(1)
        .stderr(contains(format!(
            "refusing the state directory `{DIR}`: it is writable by others (mode 777)"
        )));
    assert_same(&before, &sb.snapshot());
}

#[test]
fn a_record_naming_the_hosts_own_interfaces_is_refused_and_they_survive() {
    let sb = sandbox!();
    sb.outside();
    state_dir(&sb, 1024);
    let before = sb.snapshot();
    // A bridge `lo`, and a port whose host end is the uplink `wan0`: nothing
    // nsnet makes is ever named so. `down` must not take them away.
    for record in [
        r#"{"bridges":{"lo":{"subnet":"10.200.0.0/24","gateway":"10.200.0.1"}}}"#,
        r#"{"bridges":{"nsnet0":{"subnet":"10.200.0.0/24","gateway":"10.200.0.1","ports":[{"ns":"red","ifname":"eth0","host_ifname":"wan0","address":"10.200.0.2","default_route":true}]}}}"#,
    ] {
        sb.ok(&format!("echo '{record}' > {DIR}/state.json"));
        let stderr = refused(&nsnet(&sb, &["down"]));
        assert!(
            stderr.contains("is damaged: ") && stderr.contains("nothing was run"),
            "{stderr}"
        );
        assert_same(&before, &sb.snapshot());
        assert!(
            sb.pings(None, "172.31.0.2"),
            "the uplink still carries traffic"
        );
    }
}
