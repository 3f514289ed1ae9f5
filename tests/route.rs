//! `nsnet route`: the second tutorial's route to the LAN before any default
//! route, then the default route, with real traffic in a throwaway host;
//! routes go with their network, and bad routes are one line that changes
//! nothing.

mod common;

use common::{Sandbox, assert_same};
use predicates::str::contains;

const INTERNET: &str = "198.51.100.7";
const LAN: &str = "172.31.0.2";

/// The post's bridge (host .5, red .1, blue .2) with NAT and no default
/// routes; `red` made first by name, so that it outlives its port. After
/// `outside`.
fn world(sb: &Sandbox) {
    sb.nsnet(["netns", "add", "red"]).assert().success();
    sb.nsnet(common::POST2_BRIDGE.iter().chain(&["--nat"]))
        .assert()
        .success();
}

#[test]
fn a_route_to_the_lan_first_then_the_default_route() {
    let mut sb = sandbox!();
    sb.outside();
    let before = sb.snapshot();
    world(&sb);
    sb.serve("outside", "tcp", 9000);
    assert!(!sb.pings(Some("red"), LAN), "no route yet");
    sb.nsnet([
        "route",
        "add",
        "red",
        "172.31.0.0/24",
        "via",
        "192.168.15.5",
    ])
    .assert()
    .success()
    .stdout("red 172.31.0.0/24 via 192.168.15.5\n");
    assert_eq!(
        sb.ask(Some("red"), "tcp", LAN, 9000, true),
        "outside from 172.31.0.1",
        "the LAN, masqueraded"
    );
    assert!(!sb.pings(Some("red"), INTERNET), "only the LAN");
    assert!(!sb.pings(Some("blue"), LAN), "blue has no route");
    sb.nsnet(["route", "add", "red", "default", "via", "192.168.15.5"])
        .assert()
        .success();
    assert!(sb.pings(Some("red"), INTERNET), "everything, now");
    // Again: nothing to do.
    let once = sb.snapshot();
    sb.nsnet(["route", "add", "red", "default", "via", "192.168.15.5"])
        .assert()
        .success();
    assert_same(&once, &sb.snapshot());
    sb.nsnet(["status"])
        .assert()
        .stdout(contains("route default via 192.168.15.5 dev eth0"))
        .stdout(contains("no drift"));
    sb.nsnet(["route", "del", "red", "default"])
        .assert()
        .success();
    assert!(!sb.pings(Some("red"), INTERNET));
    assert!(sb.pings(Some("red"), LAN), "the LAN route stays");
    // Its network goes: so does the route, and red stays.
    sb.nsnet(["bridge", "down", "red", "--bridge", "v-net-0"])
        .assert()
        .success();
    assert_eq!(sb.ok("ip -n red route"), "");
    sb.stop_background();
    sb.nsnet(["down"]).assert().success();
    assert_same(&before, &sb.snapshot());
}

#[test]
fn a_bridge_ports_default_route_can_be_taken_away() {
    let sb = sandbox!();
    sb.outside();
    let before = sb.snapshot();
    sb.nsnet(["bridge", "up", "red", "--nat"])
        .assert()
        .success();
    assert!(sb.pings(Some("red"), INTERNET));
    let now = sb.snapshot();
    sb.refused(
        &["route", "add", "red", "default", "via", "10.200.0.1"],
        "`red` already has a default route via 10.200.0.1, from bridge `nsnet0` (remove it with `nsnet route del red default`",
        &now,
    );
    sb.nsnet(["route", "del", "red", "default"])
        .assert()
        .success()
        .stderr(contains(
            "`red` no longer has the default route its port on `nsnet0` gave it",
        ));
    assert!(!sb.pings(Some("red"), INTERNET));
    sb.nsnet([
        "route",
        "add",
        "red",
        "198.51.100.0/24",
        "via",
        "10.200.0.1",
    ])
    .assert()
    .success();
    assert!(sb.pings(Some("red"), INTERNET));
    sb.nsnet(["down"]).assert().success();
    assert_same(&before, &sb.snapshot());
}

#[test]
fn a_route_the_kernel_dropped_is_added_again_and_never_deleted_twice() {
    let sb = sandbox!();
    sb.outside();
    let before = sb.snapshot();
    world(&sb);
    let route = [
        "route",
        "add",
        "red",
        "172.31.0.0/24",
        "via",
        "192.168.15.5",
    ];
    sb.nsnet(route).assert().success();
    // Taking the interface down and up drops its routes.
    sb.ok("ip -n red link set eth0 down && ip -n red link set eth0 up");
    assert!(!sb.ok("ip -n red route").contains("172.31.0.0/24"));
    sb.nsnet(route).assert().success();
    assert!(
        sb.ok("ip -n red route")
            .contains("172.31.0.0/24 via 192.168.15.5")
    );
    sb.ok("ip -n red link set eth0 down && ip -n red link set eth0 up");
    // Gone again: taking red off the bridge does not try to delete it.
    sb.nsnet(["bridge", "down", "red", "--bridge", "v-net-0"])
        .assert()
        .success();
    // `0.0.0.0/0` is `default`.
    sb.nsnet(["route", "add", "blue", "0.0.0.0/0", "via", "192.168.15.5"])
        .assert()
        .success()
        .stdout("blue default via 192.168.15.5\n");
    sb.nsnet(["down"]).assert().success();
    assert_same(&before, &sb.snapshot());
}

#[test]
fn bad_routes_are_one_clear_line_and_change_nothing() {
    let sb = sandbox!();
    sb.outside();
    world(&sb);
    sb.ok("ip netns add theirs");
    let before = sb.snapshot();
    let cases: &[(&[&str], &str)] = &[
        (
            &["route", "add", "red", "10.9.0.0/16", "via", "10.0.0.1"],
            "gateway `10.0.0.1` is on no network of `red` (192.168.15.0/24 on eth0)",
        ),
        (
            &["route", "add", "red", "10.9.0.0/16", "via", "192.168.15.1"],
            "gateway `192.168.15.1` is `red`'s own address",
        ),
        (
            &["route", "add", "red", "fd00::/8", "via", "192.168.15.5"],
            "are of different families",
        ),
        (
            &["route", "add", "red", "10.9.0.1/16", "via", "192.168.15.5"],
            "has host bits set: the subnet is `10.9.0.0/16`",
        ),
        (
            &["route", "add", "red", "10.9.0.0/16", "by", "192.168.15.5"],
            "invalid value 'by'",
        ),
        (
            &["route", "add", "red", "nowhere", "via", "192.168.15.5"],
            "is not an address or a CIDR",
        ),
        (
            &["route", "add", "ghost", "default", "via", "192.168.15.5"],
            "namespace `ghost` does not exist",
        ),
        (
            &["route", "add", "theirs", "default", "via", "192.168.15.5"],
            "namespace `theirs` is on no network of nsnet's",
        ),
    ];
    for (args, message) in cases {
        sb.refused(args, message, &before);
    }
}
