//! `nsnet nat`: namespaces reach the outside world through the host, and
//! the outside sees the host's address. The outside is a namespace of the
//! throwaway host (tests/common: `outside`).

mod common;

use common::assert_same;
use predicates::str::contains;

#[test]
fn nat_lets_a_namespace_reach_the_outside_as_the_host_and_down_undoes_it() {
    let mut sb = sandbox!();
    sb.outside();
    let before = sb.snapshot();
    sb.nsnet(["bridge", "up", "red"]).assert().success();
    sb.serve("outside", "tcp", 8080);
    assert!(!sb.pings(Some("red"), "198.51.100.7"), "no NAT, no way out");
    sb.nsnet(["nat", "up"]).assert().success();
    assert!(
        sb.pings(Some("red"), "198.51.100.7"),
        "red reaches the internet address"
    );
    assert_eq!(
        sb.ask(Some("red"), "tcp", "198.51.100.7", 8080, true),
        "outside from 172.31.0.1"
    );
    sb.nsnet(["nat", "up"]).assert().success();
    sb.nsnet(["nat", "down"]).assert().success();
    assert!(
        !sb.pings(Some("red"), "198.51.100.7"),
        "after nat down, no way out"
    );
    sb.nsnet(["nat", "down"]).assert().success();
    sb.nsnet(["bridge", "down"]).assert().success();
    sb.stop_background();
    assert_same(&before, &sb.snapshot());
}

#[test]
fn nat_works_under_a_forward_policy_of_drop_and_leaves_the_policy_alone() {
    let sb = sandbox!();
    sb.outside();
    sb.ok("iptables -P FORWARD DROP && iptables -A FORWARD -j DROP -m comment --comment not-nsnet");
    let before = sb.snapshot();
    sb.nsnet(["bridge", "up", "red", "blue"]).assert().success();
    sb.nsnet(["nat", "up", "--out", "wan0"]).assert().success();
    assert!(sb.pings(Some("red"), "198.51.100.7"));
    assert!(
        sb.pings(Some("red"), "10.200.0.3"),
        "red still reaches blue across the bridge"
    );
    let forward = sb.ok("iptables -S FORWARD");
    assert!(
        forward.starts_with(
            "-P FORWARD DROP\n-A FORWARD -m comment --comment nsnet -j NSNET-USER\n\
             -A FORWARD -m comment --comment nsnet -j NSNET-FORWARD\n"
        ),
        "{forward}"
    );
    assert!(
        forward.contains("not-nsnet"),
        "the other rule is still there: {forward}"
    );
    sb.nsnet(["bridge", "down"]).assert().success();
    assert_same(&before, &sb.snapshot());
}

#[test]
fn nat_refuses_what_it_cannot_do() {
    let sb = sandbox!();
    sb.nsnet(["nat", "up"])
        .assert()
        .code(1)
        .stderr(contains("bridge `nsnet0` was not made by nsnet"));
    sb.nsnet(["bridge", "up", "red"]).assert().success();
    let bridged = sb.snapshot();
    sb.nsnet(["nat", "up", "--out", "nowhere0"])
        .assert()
        .code(1)
        .stderr(contains("interface `nowhere0` does not exist"));
    sb.nsnet(["nat", "up", "--out", "nsnet0"])
        .assert()
        .code(2)
        .stderr(contains("is the bridge itself"));
    assert_same(&bridged, &sb.snapshot());
}

#[test]
fn forwarding_is_put_back_only_when_the_last_network_is_gone() {
    let sb = sandbox!();
    assert_eq!(sb.ok("sysctl -n net.ipv4.ip_forward").trim(), "0");
    sb.nsnet(["bridge", "up", "red"]).assert().success();
    sb.nsnet(["bridge", "up", "blue", "--bridge", "br2"])
        .assert()
        .success();
    sb.nsnet(["nat", "up"]).assert().success();
    sb.nsnet(["nat", "up", "--bridge", "br2"])
        .assert()
        .success();
    sb.nsnet(["nat", "down"]).assert().success();
    assert_eq!(
        sb.ok("sysctl -n net.ipv4.ip_forward").trim(),
        "1",
        "br2 still needs it"
    );
    sb.nsnet(["bridge", "down", "--bridge", "br2"])
        .assert()
        .success();
    assert_eq!(
        sb.ok("sysctl -n net.ipv4.ip_forward").trim(),
        "0",
        "put back as it was"
    );
    // Already on before nsnet: nsnet leaves it on.
    sb.ok("sysctl -qw net.ipv4.ip_forward=1");
    sb.nsnet(["nat", "up"]).assert().success();
    sb.nsnet(["nat", "down"]).assert().success();
    assert_eq!(sb.ok("sysctl -n net.ipv4.ip_forward").trim(), "1");
}
