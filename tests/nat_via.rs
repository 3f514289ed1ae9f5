//! `nat up --out IF --via GW`: the fourth tutorial's appendix, a bridge
//! whose traffic leaves through a second uplink by a routing table of its
//! own, while the host keeps its default route. Real traffic in a throwaway
//! host with two "ISPs" that both answer at 198.51.100.7.

mod common;

use common::assert_same;
use predicates::str::contains;

const INTERNET: &str = "198.51.100.7";

/// NAT through the second uplink, via isp2.
const VIA: &[&str] = &["nat", "up", "--out", "wan1", "--via", "172.32.0.2"];

#[test]
fn the_subnet_leaves_by_its_own_uplink_and_the_host_keeps_its_route() {
    let mut sb = sandbox!();
    sb.two_uplinks();
    let before = sb.snapshot();
    sb.nsnet(["bridge", "up", "red"]).assert().success();
    sb.serve("outside", "tcp", 9000);
    sb.serve("isp2", "tcp", 9000);
    sb.nsnet(VIA).assert().success();
    assert_eq!(
        sb.ask(Some("red"), "tcp", INTERNET, 9000, true),
        "isp2 from 172.32.0.1",
        "red's traffic leaves through wan1, masqueraded there"
    );
    assert_eq!(
        sb.ask(None, "tcp", INTERNET, 9000, true),
        "outside from 172.31.0.1",
        "the host keeps its own default route"
    );
    // The host's local networks stay reached directly, not via isp2.
    let local = sb.ok("ip route get 172.31.0.2 from 10.200.0.2 iif nsnet0");
    assert!(
        local.starts_with("172.31.0.2 from 10.200.0.2 dev wan0"),
        "{local}"
    );
    assert!(sb.pings(Some("red"), "10.200.0.1"));
    let rules = sb.ok("ip rule show");
    assert!(
        rules.contains("9000:\tfrom 10.200.0.0/24 lookup main suppress_prefixlength 0")
            && rules.contains("9001:\tfrom 10.200.0.0/24 lookup 100"),
        "{rules}"
    );
    // `bridge up --nat` again keeps the routing, and nothing changes.
    let routed = sb.snapshot();
    sb.nsnet(["bridge", "up", "red", "--nat", "--out", "wan1"])
        .assert()
        .success();
    assert_same(&routed, &sb.snapshot());
    // Again: nothing to do.
    sb.nsnet(VIA.iter().chain(&["--dry-run"]))
        .assert()
        .success()
        .stdout("# nothing to do: the host already matches\n");
    // Back to plain NAT through wan1: the table and rules go.
    sb.nsnet(["nat", "up", "--out", "wan1"]).assert().success();
    assert_eq!(sb.ok("ip route show table 100"), "");
    assert!(!sb.ok("ip rule show").contains("10.200.0.0/24"));
    sb.nsnet(VIA.iter().chain(&["--table", "77"]))
        .assert()
        .success();
    assert_eq!(
        sb.ok("ip route show table 77").trim(),
        "default via 172.32.0.2 dev wan1"
    );
    sb.stop_background();
    sb.nsnet(["down"]).assert().success();
    assert_same(&before, &sb.snapshot());
}

#[test]
fn an_uplink_that_is_nsnets_own_cable_keeps_every_command_working() {
    let sb = sandbox!();
    let before = sb.snapshot();
    sb.nsnet(["bridge", "up", "red"]).assert().success();
    sb.nsnet(["veth", "add", "host", "isp3", "--subnet", "198.18.0.0/30"])
        .assert()
        .success();
    sb.ok("ip -n isp3 addr add 198.51.100.80/32 dev lo");
    sb.nsnet(["nat", "up", "--out", "vc-isp3", "--via", "198.18.0.2"])
        .assert()
        .success();
    assert!(sb.pings(Some("red"), "198.51.100.80"));
    // The table's default route is not the host's: nsnet's cable is no uplink
    // of the host, and the record is not taken for a damaged one.
    sb.nsnet(["bridge", "up", "blue"]).assert().success();
    sb.nsnet(["status"])
        .assert()
        .success()
        .stdout(contains("no drift"));
    sb.nsnet(["down"]).assert().success();
    assert_same(&before, &sb.snapshot());
}

#[test]
fn bad_uplinks_are_one_clear_line_and_change_nothing() {
    let sb = sandbox!();
    sb.two_uplinks();
    sb.nsnet(["bridge", "up", "red"]).assert().success();
    sb.ok("ip route add 192.0.2.0/24 via 172.32.0.2 table 100");
    // An empty table another rule looks up (a VPN that is down) is taken too.
    sb.ok("ip rule add from 192.0.2.0/24 lookup 101 priority 500");
    let before = sb.snapshot();
    let cases: &[(&[&str], &str)] = &[
        (
            &["nat", "up", "--out", "wan1", "--via", "172.31.0.2"],
            "gateway `172.31.0.2` is on no network of `wan1`",
        ),
        (
            &[
                "nat",
                "up",
                "--out",
                "wan1",
                "--via",
                "172.32.0.2",
                "--table",
                "100",
            ],
            "routing table 100 is in use",
        ),
        (&["nat", "up", "--via", "172.32.0.2"], "--out"),
        (
            &[
                "nat",
                "up",
                "--out",
                "wan1",
                "--via",
                "172.32.0.2",
                "--table",
                "254",
            ],
            "254 is not in 1..253",
        ),
        (&["nat", "up", "--out", "wan1", "--table", "7"], "--via"),
        (
            &["nat", "up", "--out", "wan9", "--via", "172.32.0.2"],
            "interface `wan9` does not exist",
        ),
    ];
    for (args, message) in cases {
        sb.refused(args, message, &before);
    }
    // The next free table is chosen: 100 holds routes, a rule looks up 101.
    sb.nsnet(VIA.iter().chain(&["--dry-run"]))
        .assert()
        .success()
        .stdout(contains(
            "ip route add default via 172.32.0.2 dev wan1 table 102",
        ));
}
