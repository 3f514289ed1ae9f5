//! `nsnet veth`: cables between namespaces and to the host, in a throwaway host.

mod common;

use common::assert_same;
use predicates::str::contains;

#[test]
fn a_cable_between_two_namespaces_carries_ping_tcp_and_udp() {
    let mut sb = sandbox!();
    let before = sb.snapshot();
    sb.nsnet(["veth", "add", "red", "blue", "--subnet", "192.168.15.0/24"])
        .assert()
        .success()
        .stdout("red vc-blue 192.168.15.1/24 <-> blue vc-red 192.168.15.2/24\n");
    assert!(sb.pings(Some("red"), "192.168.15.2"));
    assert!(sb.pings(Some("blue"), "192.168.15.1"));
    assert_eq!(
        sb.transfer("tcp", "blue", Some("red"), "192.168.15.2", 8080),
        "hello over tcp to 192.168.15.2:8080"
    );
    assert_eq!(
        sb.transfer("udp", "red", Some("blue"), "192.168.15.1", 5353),
        "hello over udp to 192.168.15.1:5353"
    );
    assert!(
        !sb.pings(None, "192.168.15.2"),
        "the host is not on this cable"
    );
    sb.nsnet(["veth", "add", "red", "blue", "--subnet", "192.168.15.0/24"])
        .assert()
        .success();
    sb.nsnet(["veth", "del", "blue", "red"]).assert().success();
    sb.nsnet(["veth", "del", "blue", "red"]).assert().success();
    assert_same(&before, &sb.snapshot());
}

#[test]
fn a_cable_to_the_host_reaches_the_namespace() {
    let sb = sandbox!();
    let before = sb.snapshot();
    sb.nsnet(["netns", "add", "red"]).assert().success();
    sb.nsnet(["veth", "add", "host", "red", "--subnet", "10.50.0.0/30"])
        .assert()
        .success();
    assert!(sb.pings(None, "10.50.0.2"), "the host reaches red");
    assert!(sb.pings(Some("red"), "10.50.0.1"), "red reaches the host");
    sb.nsnet(["veth", "del", "red", "host"]).assert().success();
    assert!(
        sb.ok("ip netns list").contains("red"),
        "red was asked for by name: it stays"
    );
    sb.nsnet(["netns", "del", "red"]).assert().success();
    assert_same(&before, &sb.snapshot());
}

#[test]
fn a_cable_without_a_subnet_is_up_but_unaddressed() {
    let sb = sandbox!();
    sb.nsnet(["veth", "add", "red", "blue"]).assert().success();
    let link = sb.ok("ip -n red -br addr show vc-blue");
    assert!(link.contains("UP") && !link.contains("inet "), "{link}");
    sb.nsnet(["veth", "add", "red", "blue", "--subnet", "10.1.0.0/24"])
        .assert()
        .code(1)
        .stderr(contains("already exists with another subnet"));
}

#[test]
fn veth_add_lays_again_a_cable_broken_by_hand() {
    let sb = sandbox!();
    let before = sb.snapshot();
    sb.nsnet(["veth", "add", "red", "blue", "--subnet", "10.4.0.0/30"])
        .assert()
        .success();
    // The kernel removes red's end a moment after blue is gone: wait, as a
    // hand that breaks the cable would see it broken.
    sb.ok("ip netns del blue; for i in $(seq 250); do \
           ip -n red link show vc-blue >/dev/null 2>&1 || break; sleep 0.02; done");
    sb.nsnet(["veth", "add", "red", "blue", "--subnet", "10.4.0.0/30"])
        .assert()
        .success()
        .stderr(contains(
            "the cable between `red` and `blue` was broken by hand; laying it again",
        ));
    assert!(sb.pings(Some("red"), "10.4.0.2"));
    sb.nsnet(["down"]).assert().success();
    assert_same(&before, &sb.snapshot());
}

#[test]
fn a_namespaces_end_takes_the_name_asked_for() {
    let mut sb = sandbox!();
    let before = sb.snapshot();
    // The fourth tutorial's cable: `eth0` inside, to the host.
    sb.nsnet([
        "veth",
        "add",
        "host",
        "container-one:eth0",
        "--subnet",
        "10.0.0.0/30",
    ])
    .assert()
    .success()
    .stdout(contains("container-one eth0 10.0.0.2/30"));
    assert!(sb.pings(None, "10.0.0.2"));
    assert_eq!(
        sb.ok("ip -n container-one -br addr show dev eth0")
            .split_whitespace()
            .nth(2),
        Some("10.0.0.2/30")
    );
    // The second tutorial's: both ends named, between two namespaces.
    sb.nsnet([
        "veth",
        "add",
        "red:veth-red",
        "blue:veth-blue",
        "--subnet",
        "192.168.15.0/30",
    ])
    .assert()
    .success();
    sb.serve("blue", "udp", 5000);
    assert_eq!(
        sb.ask(Some("red"), "udp", "192.168.15.2", 5000, true),
        "blue from 192.168.15.1"
    );
    assert!(sb.ok("ip -n red link show veth-red").contains("veth-red@"));
    // Again as it is, or without names: nothing to do.
    let again = sb.snapshot();
    for args in [
        &[
            "veth",
            "add",
            "red:veth-red",
            "blue:veth-blue",
            "--subnet",
            "192.168.15.0/30",
        ][..],
        &["veth", "add", "blue", "red", "--subnet", "192.168.15.0/30"],
    ] {
        sb.nsnet(args).assert().success();
        assert_same(&again, &sb.snapshot());
    }
    sb.nsnet(["bridge", "up", "red"]).assert().success();
    let now = sb.snapshot();
    sb.refused(
        &[
            "veth",
            "add",
            "red:veth-red",
            "blue:other",
            "--subnet",
            "192.168.15.0/30",
        ],
        "already exists with ends named `veth-red` and `veth-blue`",
        &now,
    );
    sb.refused(
        &["veth", "add", "red:eth0", "host", "--subnet", "10.3.0.0/30"],
        "namespace `red` already has `eth0` (its port on bridge `nsnet0`): name this end otherwise, as `red:eth1`",
        &now,
    );
    sb.refused(
        &["veth", "add", "host:veth1", "red"],
        "the host end of a cable keeps the name nsnet gives it",
        &now,
    );
    sb.refused(&["veth", "add", "red:", "host"], "interface name", &now);
    sb.nsnet(["veth", "del", "host", "container-one:eth0"])
        .assert()
        .success();
    assert!(!sb.pings(None, "10.0.0.2"), "the cable is gone");
    sb.stop_background();
    sb.nsnet(["down"]).assert().success();
    assert_same(&before, &sb.snapshot());
}
