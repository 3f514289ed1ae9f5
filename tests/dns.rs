//! `--dns`: a namespace's name servers in /etc/netns/NS/resolv.conf, which
//! `ip netns exec` (and `nsnet netns exec`) shows as /etc/resolv.conf. In a
//! throwaway host with a tmpfs over /etc/netns: nothing reaches the real
//! machine's /etc.

mod common;

use common::{Sandbox, assert_same};
use predicates::str::contains;

fn resolv(sb: &Sandbox, ns: &str) -> String {
    sb.ok(&format!("ip netns exec {ns} cat /etc/resolv.conf"))
}

#[test]
fn name_servers_are_written_changed_and_removed_with_the_namespace() {
    let sb = sandbox!();
    let before = sb.snapshot();
    sb.nsnet([
        "bridge",
        "up",
        "red",
        "blue",
        "--dns",
        "192.0.2.53",
        "--dns",
        "2001:db8::53",
    ])
    .assert()
    .success();
    let text = resolv(&sb, "red");
    assert!(
        text.starts_with("# written by nsnet for namespace red"),
        "{text}"
    );
    assert!(
        text.contains("\nnameserver 192.0.2.53\nnameserver 2001:db8::53\n"),
        "{text}"
    );
    sb.nsnet(["netns", "exec", "blue", "--", "cat", "/etc/resolv.conf"])
        .assert()
        .success()
        .stdout(contains("nameserver 192.0.2.53"));
    // The same again changes nothing; others replace them.
    let once = sb.snapshot();
    sb.nsnet([
        "bridge",
        "up",
        "red",
        "--dns",
        "192.0.2.53",
        "--dns",
        "2001:db8::53",
    ])
    .assert()
    .success();
    assert_same(&once, &sb.snapshot());
    sb.nsnet(["bridge", "up", "red", "--dns", "198.51.100.53"])
        .assert()
        .success();
    assert!(resolv(&sb, "red").contains("nameserver 198.51.100.53\n"));
    assert!(!resolv(&sb, "red").contains("192.0.2.53"));
    // A namespace made for a cable, with its server, goes with the cable.
    sb.nsnet([
        "veth",
        "add",
        "green",
        "host",
        "--subnet",
        "10.60.0.0/30",
        "--dns",
        "10.60.0.1",
    ])
    .assert()
    .success();
    assert!(resolv(&sb, "green").contains("nameserver 10.60.0.1"));
    sb.nsnet(["veth", "del", "green", "host"])
        .assert()
        .success();
    assert_eq!(sb.ok("ls /etc/netns"), "blue\nred\n");
    sb.nsnet(["down"]).assert().success();
    assert_same(&before, &sb.snapshot());
}

#[test]
fn the_files_of_a_namespace_deleted_by_hand_go_with_down() {
    let sb = sandbox!();
    let before = sb.snapshot();
    sb.nsnet(["netns", "add", "red", "blue", "--dns", "192.0.2.53"])
        .assert()
        .success();
    sb.ok("ip netns del red");
    sb.nsnet(["down"]).assert().success();
    assert_eq!(sb.ok("ls /etc/netns"), "");
    assert_same(&before, &sb.snapshot());
}

#[test]
fn a_file_nsnet_did_not_write_is_never_overwritten() {
    let sb = sandbox!();
    sb.ok("mkdir /etc/netns/red && echo 'nameserver 1.1.1.1' > /etc/netns/red/resolv.conf");
    sb.ok("ip netns add theirs");
    let before = sb.snapshot();
    sb.refused(
        &["bridge", "up", "red", "--dns", "192.0.2.53"],
        "/etc/netns/red/resolv.conf exists and nsnet did not write it: remove it, or leave out --dns",
        &before,
    );
    sb.refused(
        &["bridge", "up", "theirs", "--dns", "192.0.2.53"],
        "namespace `theirs` was neither made nor attached by nsnet, so its /etc/netns/theirs/resolv.conf is not nsnet's to write",
        &before,
    );
    sb.refused(
        &["netns", "add", "blue", "--dns", "dns.example"],
        "invalid value 'dns.example' for '--dns <IP>'",
        &before,
    );
    // Without --dns, the user's file stays as it is, and after down too.
    sb.nsnet(["bridge", "up", "red"]).assert().success();
    assert_eq!(resolv(&sb, "red"), "nameserver 1.1.1.1\n");
    sb.nsnet(["down"]).assert().success();
    assert_eq!(
        sb.ok("cat /etc/netns/red/resolv.conf"),
        "nameserver 1.1.1.1\n"
    );
}
