//! Dual stack in a throwaway host, proved with real traffic: a bridge with
//! an IPv6 subnet (given, or a ULA nsnet chooses) and a cable with both
//! families carry ping -6 and TCP over IPv6, IPv4 keeps working beside it,
//! addresses are usable the moment the command returns (never tentative),
//! bad IPv6 input is refused in one line, and the round trip is exact.

mod common;

use common::{Sandbox, assert_same};
use predicates::str::contains;

/// The global IPv6 address of `ifname` in `ns` (`None`: the host).
fn global6(sb: &Sandbox, ns: Option<&str>, ifname: &str) -> String {
    let at = ns.map(|n| format!("-n {n} ")).unwrap_or_default();
    let text = sb.ok(&format!("ip {at}-6 -o addr show dev {ifname} scope global"));
    let word = text.split_whitespace().skip_while(|w| *w != "inet6").nth(1);
    word.expect("a global IPv6 address")
        .split('/')
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn a_dual_stack_bridge_carries_both_families_and_goes_without_a_trace() {
    let mut sb = sandbox!();
    let before = sb.snapshot();
    sb.nsnet([
        "bridge",
        "up",
        "red",
        "blue",
        "--subnet",
        "10.1.0.0/24",
        "--subnet",
        "fd00:1::/64",
    ])
    .assert()
    .success()
    .stdout(contains("nsnet0 gateway fd00:1::1/64"))
    .stdout(contains("10.1.0.2/24 fd00:1::2/64"));
    // Usable at once: no address is tentative, none failed DAD.
    let flags = sb.ok("ip -6 addr show; ip -n red -6 addr show; ip -n blue -6 addr show");
    assert!(!flags.contains("dadfailed"), "{flags}");
    let global = flags.lines().filter(|l| l.contains("scope global"));
    assert!(global.clone().all(|l| !l.contains("tentative")), "{flags}");
    assert!(sb.pings(Some("red"), "fd00:1::3"), "red -> blue over IPv6");
    assert!(sb.pings(None, "fd00:1::2"), "host -> red over IPv6");
    assert!(
        sb.pings(Some("blue"), "fd00:1::1"),
        "blue -> its IPv6 gateway"
    );
    assert!(sb.pings(Some("red"), "10.1.0.3"), "IPv4 beside it");
    let got = sb.transfer("tcp", "blue", Some("red"), "fd00:1::3", 7000);
    assert_eq!(got, "hello over tcp to fd00:1::3:7000");
    let routes = sb.ok("ip -n red -6 route show default");
    assert!(
        routes.contains("default via fd00:1::1 dev eth0"),
        "{routes}"
    );
    sb.nsnet(["status"])
        .assert()
        .stdout(contains(
            "bridge nsnet0 10.1.0.0/24 gateway 10.1.0.1, fd00:1::/64 gateway fd00:1::1",
        ))
        .stdout(contains("route default via fd00:1::1 dev eth0"))
        .stdout(contains("no drift"));
    sb.nsnet(["graph"])
        .assert()
        .stdout(contains("nsnet0 10.1.0.1/24 fd00:1::1/64"))
        .stdout(contains("fd00:1::2/64"));
    // Drift covers the IPv6 addresses too.
    sb.ok("ip -n red addr del fd00:1::2/64 dev eth0");
    sb.nsnet(["status"])
        .assert()
        .stdout(contains("`red`'s eth0 has lost its address fd00:1::2/64"));
    sb.nsnet(["down"]).assert().success();
    assert_same(&before, &sb.snapshot());
}

#[test]
fn ipv6_without_a_subnet_picks_a_stable_ula_that_overlaps_nothing() {
    let sb = sandbox!();
    let before = sb.snapshot();
    sb.nsnet(["bridge", "up", "red", "--ipv6"])
        .assert()
        .success();
    let gateway = global6(&sb, None, "nsnet0");
    assert!(
        gateway.starts_with("fd") && gateway.ends_with("::1"),
        "{gateway}"
    );
    let red = global6(&sb, Some("red"), "eth0");
    assert!(sb.pings(Some("red"), &gateway), "red -> {gateway}");
    assert!(sb.pings(None, &red), "host -> {red}");
    sb.nsnet(["down"]).assert().success();
    // The same bridge gets the same subnet again.
    sb.nsnet(["bridge", "up", "red", "--ipv6"])
        .assert()
        .success();
    assert_eq!(global6(&sb, None, "nsnet0"), gateway);
    sb.nsnet(["down"]).assert().success();
    // A host route over that subnet makes nsnet take the next one.
    let taken = gateway.trim_end_matches("::1").to_string() + "::/64";
    sb.ok(&format!(
        "ip link add hold type bridge && ip link set hold up && ip -6 route add {taken} dev hold"
    ));
    sb.nsnet(["bridge", "up", "red", "--ipv6"])
        .assert()
        .success();
    assert_ne!(global6(&sb, None, "nsnet0"), gateway);
    sb.nsnet(["down"]).assert().success();
    sb.ok("ip link del hold");
    assert_same(&before, &sb.snapshot());
}

#[test]
fn a_cable_with_both_families() {
    let mut sb = sandbox!();
    let before = sb.snapshot();
    let args = [
        "veth",
        "add",
        "red",
        "blue",
        "--subnet",
        "10.9.0.0/30",
        "--subnet",
        "fd00:9::/126",
    ];
    sb.nsnet(args).assert().success().stdout(contains(
        "red vc-blue 10.9.0.1/30 fd00:9::1/126 <-> blue vc-red 10.9.0.2/30 fd00:9::2/126",
    ));
    assert!(sb.pings(Some("red"), "fd00:9::2"), "red -> blue over IPv6");
    assert!(sb.pings(Some("blue"), "10.9.0.1"), "blue -> red over IPv4");
    let got = sb.transfer("udp", "blue", Some("red"), "fd00:9::2", 7001);
    assert_eq!(got, "hello over udp to fd00:9::2:7001");
    sb.nsnet(["status"]).assert().stdout(contains("no drift"));
    sb.ok("ip -n blue addr del fd00:9::2/126 dev vc-red");
    sb.nsnet(["status"]).assert().stdout(contains(
        "`blue`'s vc-red has lost its address fd00:9::2/126",
    ));
    sb.nsnet(["down"]).assert().success();
    assert_same(&before, &sb.snapshot());
}

#[test]
fn a_host_without_ipv6_keeps_ipv4_and_refuses_ipv6_clearly() {
    let sb = sandbox!();
    // What a host booted with ipv6.disable=1 shows: no /proc/sys/net/ipv6.
    sb.ok("mount -t tmpfs -o size=4k,mode=0555 no-ipv6 /proc/sys/net/ipv6");
    let before = sb.snapshot();
    for args in [
        &["bridge", "up", "red", "--ipv6"][..],
        &["bridge", "up", "red", "--subnet", "fd00:1::/64"],
        &["veth", "add", "red", "host", "--subnet", "fd00:2::/126"],
    ] {
        let out = sb.nsnet(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("IPv6 is disabled on this host"), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert_same(&before, &sb.snapshot());
    }
    sb.nsnet(["bridge", "up", "red", "blue", "--nat"])
        .assert()
        .success();
    assert!(sb.pings(Some("red"), "10.200.0.3"), "IPv4 works as ever");
    sb.nsnet(["down"]).assert().success();
    assert_same(&before, &sb.snapshot());
}

#[test]
fn bad_ipv6_input_is_one_clear_line_and_changes_nothing() {
    let sb = sandbox!();
    sb.nsnet(["bridge", "up", "red", "--subnet", "fd00:5::/64"])
        .assert()
        .success();
    sb.nsnet(["bridge", "up", "y", "--bridge", "b4"])
        .assert()
        .success();
    let before = sb.snapshot();
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "bridge",
                "up",
                "x",
                "--bridge",
                "b1",
                "--subnet",
                "fd00:1::/127",
            ],
            "is too small: use a prefix of /126 or shorter",
        ),
        (
            &[
                "bridge",
                "up",
                "x",
                "--bridge",
                "b1",
                "--subnet",
                "fd00:1::7/64",
            ],
            "has host bits set: the subnet is `fd00:1::/64`",
        ),
        (
            &[
                "bridge",
                "up",
                "x",
                "--bridge",
                "b1",
                "--subnet",
                "fe80::/64",
            ],
            "is link-local address space",
        ),
        (
            &[
                "bridge",
                "up",
                "x",
                "--bridge",
                "b1",
                "--subnet",
                "ff05::/64",
            ],
            "is multicast address space",
        ),
        (
            &[
                "bridge",
                "up",
                "x",
                "--bridge",
                "b1",
                "--subnet",
                "fd00:1:::/64",
            ],
            "is not a subnet in CIDR form",
        ),
        (
            &[
                "bridge",
                "up",
                "x",
                "--bridge",
                "b1",
                "--subnet",
                "10.1.0.0/24",
                "--subnet",
                "10.2.0.0/24",
            ],
            "--subnet is given twice for IPv4",
        ),
        (
            &[
                "bridge",
                "up",
                "x",
                "--bridge",
                "b1",
                "--subnet",
                "fd00:5:0:0:1::/80",
            ],
            "overlaps `fd00:5::/64`",
        ),
        (
            &["bridge", "up", "x", "--subnet", "fd00:6::/64"],
            "bridge `nsnet0` already uses subnet `fd00:5::/64`",
        ),
        (
            &["bridge", "up", "y", "--bridge", "b4", "--ipv6"],
            "nsnet does not add one to a bridge in use",
        ),
        (
            &["publish", "add", "red", "8080:80", "--host-ip", "::1"],
            "--host-ip `::1` cannot be published",
        ),
        (
            &["publish", "add", "y", "8080:80", "--host-ip", "fd00:5::1"],
            "is IPv6 but bridge `b4` has no IPv6 subnet",
        ),
        (
            &[
                "publish",
                "add",
                "red",
                "8080:80",
                "--host-ip",
                "2001:db8::99",
            ],
            "--host-ip `2001:db8::99` is not an address of this host",
        ),
        (
            &[
                "publish",
                "add",
                "red",
                "8080:80",
                "--host-ip",
                "fd00:5::1/64",
            ],
            "invalid IP address syntax",
        ),
    ];
    for (args, message) in cases {
        sb.refused(args, message, &before);
    }
}
