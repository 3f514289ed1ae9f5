//! IPv6 through the host, in a throwaway host, with real traffic: NAT66 to a
//! LAN peer that sees only the host's address, under a FORWARD policy of
//! DROP in both families; every path to a port published in IPv6 (another
//! machine, the host to its own addresses, a neighbour, the serving
//! namespace itself); [::1] refused at once, not hung; the uplink kept
//! taking router advertisements while nsnet forwards IPv6; IPv4 intact
//! beside it; and each round trip exact (sysctls and ip6tables included).

mod common;

use common::{Sandbox, assert_same, long6};
use predicates::str::contains;

const HOST6: &str = "2001:db8:9::1";
const OUTSIDE6: &str = "2001:db8:9::2";

/// Two namespaces on a dual-stack bridge.
const DUAL: &[&str] = &[
    "bridge",
    "up",
    "red",
    "blue",
    "--subnet",
    "10.1.0.0/24",
    "--subnet",
    "fd00:1::/64",
];

/// The dual-stack world: `outside` in both families, and both FORWARD
/// policies DROP, as on a Docker host.
fn world(sb: &Sandbox) {
    sb.outside();
    sb.outside6();
    sb.ok("iptables -P FORWARD DROP && ip6tables -P FORWARD DROP");
}

fn sysctl(sb: &Sandbox, key: &str) -> String {
    sb.ok(&format!("sysctl -n {key}")).trim().to_string()
}

#[test]
fn nat66_reaches_a_lan_peer_that_sees_the_host_and_keeps_the_uplink_taking_ras() {
    let mut sb = sandbox!();
    world(&sb);
    // The host forwards IPv6 on wan0 alone; nsnet's all.forwarding=1 and
    // back to 0 would turn that off: it must be put back too.
    sb.ok("sysctl -qw net.ipv6.conf.wan0.forwarding=1");
    let before = sb.snapshot();
    sb.nsnet(DUAL.iter().chain(&["--nat"])).assert().success();
    assert_eq!(sysctl(&sb, "net.ipv6.conf.all.forwarding"), "1");
    // wan0 still takes router advertisements though it now forwards.
    assert_eq!(sysctl(&sb, "net.ipv6.conf.wan0.accept_ra"), "2");
    sb.serve6("outside", "tcp", 9000);
    let answer = sb.ask(Some("red"), "tcp", OUTSIDE6, 9000, true);
    assert_eq!(answer, format!("outside from {}", long6(HOST6)), "NAT66");
    assert!(
        sb.pings(Some("blue"), "2001:db8:ffff::7"),
        "blue -> the internet over IPv6"
    );
    sb.serve("outside", "tcp", 9001);
    let answer = sb.ask(Some("blue"), "tcp", "172.31.0.2", 9001, true);
    assert_eq!(answer, "outside from 172.31.0.1", "IPv4 NAT beside it");
    sb.stop_background();
    sb.nsnet(["doctor"])
        .assert()
        .stdout(contains(
            "every interface that may face a router still takes router advertisements",
        ))
        .stdout(contains("nsnet set accept_ra=2 on wan0"));
    // An interface that appears later with accept_ra 1 is deaf to RAs:
    // doctor names it, with the fix.
    sb.ok(
        "ip link add wan1 type veth peer name wan1p && sysctl -qw net.ipv6.conf.wan1.accept_ra=1",
    );
    sb.nsnet(["doctor"])
        .assert()
        .stdout(contains("`wan1` ignores router advertisements"))
        .stdout(contains("sysctl -w net.ipv6.conf.wan1.accept_ra=2"));
    sb.ok("ip link del wan1");
    // Drift: wan0 set back to 1 by hand is reported.
    sb.ok("sysctl -qw net.ipv6.conf.wan0.accept_ra=1");
    sb.nsnet(["status"])
        .assert()
        .stdout(contains("net.ipv6.conf.wan0.accept_ra is 1; nsnet needs 2"));
    sb.ok("sysctl -qw net.ipv6.conf.wan0.accept_ra=2");
    sb.nsnet(["down"]).assert().success();
    assert_eq!(sysctl(&sb, "net.ipv6.conf.wan0.forwarding"), "1");
    assert_same(&before, &sb.snapshot());
}

#[test]
fn every_path_to_a_port_published_in_ipv6_works_and_loopback_is_refused_at_once() {
    let mut sb = sandbox!();
    world(&sb);
    let before = sb.snapshot();
    sb.nsnet(DUAL).assert().success();
    sb.nsnet(["publish", "add", "red", "8080:80", "5353:53/udp"])
        .assert()
        .success()
        .stdout(contains("*:8080/tcp"))
        .stdout(contains("-> red 10.1.0.2:80 [fd00:1::2]:80 on nsnet0"))
        .stderr(contains("not on [::1]"))
        .stderr(contains("use 127.0.0.1 or [fd00:1::1]:8080,5353"));
    sb.serve6("red", "tcp", 80);
    sb.serve6("red", "udp", 53);
    sb.serve("red", "tcp", 80);
    let paths = [
        (Some("outside"), HOST6, OUTSIDE6), // another machine
        (None, HOST6, HOST6),               // the host, to its uplink address
        (None, "fd00:1::1", "fd00:1::1"),   // the host, to its bridge address
        (Some("blue"), HOST6, "fd00:1::1"), // a neighbour
        (Some("red"), HOST6, "fd00:1::1"),  // itself (hairpin)
    ];
    for (from, to, seen) in paths {
        let want = format!("red from {}", long6(seen));
        let tcp = sb.ask(from, "tcp", to, 8080, true);
        assert_eq!(tcp, want, "tcp from {from:?} to [{to}]:8080");
        let udp = sb.ask(from, "udp", to, 5353, true);
        assert_eq!(udp, want, "udp from {from:?} to [{to}]:5353");
    }
    // IPv4 intact beside it.
    let v4 = sb.ask(Some("outside"), "tcp", "172.31.0.1", 8080, true);
    assert_eq!(v4, "red from 172.31.0.2");
    // [::1] is left out of the DNAT: refused at once, never hung.
    let started = std::time::Instant::now();
    let out = sb.sh("echo hi | timeout 5 socat -T1 - TCP6:[::1]:8080");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Connection refused"), "{stderr}");
    assert!(started.elapsed().as_secs() < 3, "{:?}", started.elapsed());
    sb.nsnet(["doctor"])
        .assert()
        .stdout(contains("not on [::1]"))
        .stdout(contains("use 127.0.0.1:8080 or [fd00:1::1]:8080"));
    sb.nsnet(["status"])
        .assert()
        .stdout(contains(
            "*:8080/tcp             -> red 10.1.0.2:80 [fd00:1::2]:80",
        ))
        .stdout(contains("no drift"));
    // Drift covers ip6tables: a rule deleted by hand is reported.
    sb.ok("ip6tables -t nat -D NSNET-DNAT ! -d ::1/128 -p tcp -m tcp --dport 8080 -m comment --comment nsnet:publish:red:8080/tcp -j DNAT --to-destination [fd00:1::2]:80");
    sb.nsnet(["status"])
        .assert()
        .stdout(contains("ip6tables rule missing from table nat"));
    sb.stop_background();
    sb.nsnet(["down"]).assert().success();
    assert_same(&before, &sb.snapshot());
}

/// Runs nsnet with `-vv` inside the throwaway host; it must succeed. Returns
/// its log (stderr), which says how each restore was carried out.
fn logged(sb: &Sandbox, args: &[&str]) -> String {
    let out = sb.nsnet(["-vv"].iter().chain(args)).output().unwrap();
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Both families' rules as saved, without comments or counters.
fn rules(sb: &Sandbox) -> Vec<String> {
    sb.ok("iptables-save; ip6tables-save")
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| match l.split_once(" [") {
            Some((chain, _)) if l.starts_with(':') => chain.to_string(),
            _ => l.to_string(),
        })
        .collect()
}

#[test]
fn a_port_deleted_in_one_transaction_takes_exactly_its_rules_in_both_families() {
    let mut sb = sandbox!();
    world(&sb);
    let before = sb.snapshot();
    sb.nsnet(DUAL.iter().chain(&["--nat"])).assert().success();
    for port in ["8080:80", "8081:81", "8082:82"] {
        sb.nsnet(["publish", "add", "red", port]).assert().success();
    }
    for port in [80, 81, 82] {
        sb.serve("red", "tcp", port);
        sb.serve6("red", "tcp", port);
    }
    // Someone changes the ruleset by hand between two commands: what nsnet
    // read before is stale, and the deletion must find its rules afresh.
    sb.ok("iptables -I FORWARD 1 -p tcp --dport 7 -j ACCEPT && ip6tables -I FORWARD 1 -p tcp --dport 7 -j ACCEPT");
    let published = rules(&sb);
    // The middle port of three: its rules sit between the others' in every
    // chain of both families.
    let log = logged(&sb, &["publish", "del", "red", "8081"]);
    for tool in ["iptables-restore", "ip6tables-restore"] {
        assert!(
            log.contains(&format!("in one transaction: {tool} ")),
            "{tool} not made at once: {log}"
        );
        assert!(!log.contains(&format!("exec: {tool}")), "{log}");
    }
    // Exactly the port's rules are gone, every other in its place.
    let want: Vec<String> = published
        .iter()
        .filter(|l| !l.contains("red:8081/tcp"))
        .cloned()
        .collect();
    assert!(want.len() < published.len(), "the port had rules");
    assert_eq!(rules(&sb), want);
    // And the traffic says so, in both families.
    for (to, host) in [("172.31.0.1", "172.31.0.2"), (HOST6, OUTSIDE6)] {
        let seen = if to.contains(':') {
            long6(host)
        } else {
            host.to_string()
        };
        for port in [8080, 8082] {
            let answer = sb.ask(Some("outside"), "tcp", to, port, true);
            assert_eq!(answer, format!("red from {seen}"), "{to} {port}");
        }
        assert_eq!(sb.ask(Some("outside"), "tcp", to, 8081, false), "", "{to}");
    }
    sb.nsnet(["status"]).assert().stdout(contains("no drift"));
    sb.stop_background();
    sb.ok("iptables -D FORWARD -p tcp --dport 7 -j ACCEPT && ip6tables -D FORWARD -p tcp --dport 7 -j ACCEPT");
    sb.nsnet(["down"]).assert().success();
    assert_same(&before, &sb.snapshot());
}

#[test]
fn ports_added_in_one_transaction_are_the_rules_iptables_makes_in_both_families() {
    let mut sb = sandbox!();
    world(&sb);
    let before = sb.snapshot();
    sb.nsnet(DUAL.iter().chain(&["--nat"])).assert().success();
    // The first port makes the chains, with the tool; then someone changes
    // the ruleset by hand, so what nsnet read before is stale.
    sb.nsnet(["publish", "add", "red", "8080:80"])
        .assert()
        .success();
    sb.ok("iptables -I FORWARD 1 -p tcp --dport 7 -j ACCEPT && ip6tables -I FORWARD 1 -p tcp --dport 7 -j ACCEPT");
    // Each other shape of a published port, added to those chains: sources
    // with a prefix that ends inside a byte (a mask) and on one, one host
    // address, UDP.
    let adds: &[&[&str]] = &[
        &[
            "publish",
            "add",
            "red",
            "8081:80",
            "--allow",
            "172.31.0.0/25",
            "--allow",
            "2001:db8::/33",
        ],
        &["publish", "add", "blue", "8082:80", "--host-ip", HOST6],
        &["publish", "add", "blue", "5353:53/udp"],
    ];
    for args in adds {
        let log = logged(&sb, args);
        for tool in ["iptables-restore", "ip6tables-restore"] {
            assert!(
                !log.contains(&format!("exec: {tool}")),
                "{args:?} ran {tool}: {log}"
            );
        }
        assert!(
            log.contains("added in one transaction: "),
            "{args:?}: {log}"
        );
    }
    // iptables itself finds each of nsnet's rules by its saved text (as
    // `iptables -D` does), so it reads back exactly as written.
    let saved = rules(&sb);
    let mut checked = 0;
    for (tool, text) in [
        ("iptables", sb.ok("iptables-save")),
        ("ip6tables", sb.ok("ip6tables-save")),
    ] {
        let mut table = "";
        for line in text.lines() {
            if let Some(t) = line.strip_prefix('*') {
                table = t;
            }
            let Some(rule) = line.strip_prefix("-A ") else {
                continue;
            };
            if !rule.contains("nsnet:publish:") {
                continue;
            }
            sb.ok(&format!("{tool} -t {table} -C {rule}"));
            checked += 1;
        }
    }
    // The ports' own: IPv4 8080, 8081 and 5353, each a DNAT and an accept,
    // IPv6 the same and 8082 (14); and the bridge's for published ports,
    // three in IPv4, one in IPv6.
    assert_eq!(checked, 18, "{saved:#?}");
    sb.serve("red", "tcp", 80);
    sb.serve6("red", "tcp", 80);
    sb.serve6("blue", "tcp", 80);
    sb.serve("blue", "udp", 53);
    sb.serve6("blue", "udp", 53);
    let six = long6(OUTSIDE6);
    let cases = [
        ("tcp", "172.31.0.1", 8080, "red from 172.31.0.2".to_string()),
        ("tcp", HOST6, 8080, format!("red from {six}")),
        ("tcp", "172.31.0.1", 8081, "red from 172.31.0.2".to_string()),
        ("tcp", HOST6, 8081, format!("red from {six}")),
        ("tcp", HOST6, 8082, format!("blue from {six}")),
        (
            "udp",
            "172.31.0.1",
            5353,
            "blue from 172.31.0.2".to_string(),
        ),
        ("udp", HOST6, 5353, format!("blue from {six}")),
    ];
    for (proto, to, port, want) in cases {
        assert_eq!(
            sb.ask(Some("outside"), proto, to, port, true),
            want,
            "{proto} {to} {port}"
        );
    }
    // The counters count: iptables reads the packets of each DNAT.
    let counted = sb.ok("iptables -t nat -L NSNET-DNAT -v -n -x");
    assert_eq!(counted.matches("dpt:").count(), 3, "{counted}");
    assert!(
        counted
            .lines()
            .filter(|l| l.contains("dpt:"))
            .all(|l| { l.split_whitespace().next().is_some_and(|p| p != "0") }),
        "{counted}"
    );
    sb.nsnet(["status"]).assert().stdout(contains("no drift"));
    // nsnet deletes the rules it added by the handles the kernel gave
    // them, without listing their chains: exactly that port's go.
    let others: Vec<String> = rules(&sb)
        .into_iter()
        .filter(|l| !l.contains("blue:8082/tcp"))
        .collect();
    let log = logged(&sb, &["publish", "del", "blue", "8082"]);
    assert!(log.contains("2 of 2 rules by a handle known"), "{log}");
    assert!(
        log.contains("in one transaction: ip6tables-restore"),
        "{log}"
    );
    assert_eq!(rules(&sb), others);
    assert_eq!(sb.ask(Some("outside"), "tcp", HOST6, 8082, false), "");
    assert_eq!(
        sb.ask(Some("outside"), "tcp", HOST6, 8080, true),
        format!("red from {six}")
    );
    // The tool, reading afresh, deletes them by their spec.
    sb.nsnet(["publish", "del", "red", "8081"])
        .env("NSNET_READ", "ip")
        .assert()
        .success();
    assert_eq!(
        sb.ask(Some("outside"), "tcp", "172.31.0.1", 8081, false),
        ""
    );
    assert!(!rules(&sb).iter().any(|l| l.contains("red:8081/tcp")));
    sb.stop_background();
    sb.ok("iptables -D FORWARD -p tcp --dport 7 -j ACCEPT && ip6tables -D FORWARD -p tcp --dport 7 -j ACCEPT");
    sb.nsnet(["down"]).assert().success();
    assert_same(&before, &sb.snapshot());
}

#[test]
fn a_port_published_on_one_ipv6_address_answers_there_only() {
    let mut sb = sandbox!();
    world(&sb);
    let before = sb.snapshot();
    sb.nsnet(["bridge", "up", "red", "--subnet", "fd00:1::/64"])
        .assert()
        .success();
    sb.nsnet(["publish", "add", "red", "8080:80", "--host-ip", HOST6])
        .assert()
        .success()
        .stdout(contains(
            "[2001:db8:9::1]:8080/tcp -> red [fd00:1::2]:80 on nsnet0",
        ));
    sb.nsnet(["--json", "publish", "list"])
        .assert()
        .stdout(contains("\"host_ip\": \"2001:db8:9::1\""))
        .stdout(contains("\"address\": \"fd00:1::2\""));
    sb.serve6("red", "tcp", 80);
    sb.serve("red", "tcp", 80);
    let want = format!("red from {}", long6(OUTSIDE6));
    assert_eq!(sb.ask(Some("outside"), "tcp", HOST6, 8080, true), want);
    // Not on the host's other addresses, nor in IPv4.
    assert_eq!(sb.ask(None, "tcp", "fd00:1::1", 8080, false), "");
    assert_eq!(
        sb.ask(Some("outside"), "tcp", "172.31.0.1", 8080, false),
        ""
    );
    sb.stop_background();
    sb.nsnet(["down"]).assert().success();
    assert_same(&before, &sb.snapshot());
}

#[test]
fn allowing_only_an_ipv6_source_publishes_in_ipv6_only_and_for_it_only() {
    let mut sb = sandbox!();
    world(&sb);
    let before = sb.snapshot();
    sb.nsnet(DUAL).assert().success();
    sb.serve6("red", "tcp", 80);
    sb.serve("red", "tcp", 80);
    sb.nsnet(["publish", "add", "red", "8080:80", "--allow", OUTSIDE6])
        .assert()
        .success()
        .stderr(contains("not published in IPv4: no IPv4 source is allowed"))
        .stdout(contains(
            "*:8080/tcp               -> red [fd00:1::2]:80 on nsnet0 from 2001:db8:9::2/128\n",
        ));
    let want = format!("red from {}", long6(OUTSIDE6));
    assert_eq!(sb.ask(Some("outside"), "tcp", HOST6, 8080, true), want);
    assert_eq!(sb.ask(Some("blue"), "tcp", HOST6, 8080, false), "");
    assert_eq!(sb.ask(None, "tcp", "fd00:1::1", 8080, false), "");
    assert_eq!(
        sb.ask(Some("outside"), "tcp", "172.31.0.1", 8080, false),
        ""
    );
    let saved = sb.ok("ip6tables-save -t nat");
    assert!(
        saved.contains("-A NSNET-DNAT -s 2001:db8:9::2/128 ! -d ::1/128 -p tcp"),
        "{saved}"
    );
    sb.stop_background();
    sb.nsnet(["down"]).assert().success();
    assert_same(&before, &sb.snapshot());
}
