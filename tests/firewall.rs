//! The firewall that cooperates with the host's, in a throwaway host, with
//! real traffic: `firewall deny` rejects at once (and logs, counters
//! moving), `allow` makes exceptions and opens the isolation between
//! bridges, a rule the user keeps in NSNET-USER takes effect ahead of
//! nsnet's and survives nsnet re-creating its bridge, a jump moved out of
//! order is drift and put back, and bad input is one line that changes
//! nothing. Every round trip is exact.

mod common;

use common::{Sandbox, assert_same};
use predicates::str::contains;

const INTERNET: &str = "198.51.100.7";

/// Whether a TCP connection from `ns` to `addr:port` is answered by the
/// server `outside` runs there, trying for up to five seconds (a loaded
/// machine can be slow to answer once).
fn reaches(sb: &Sandbox, ns: &str, addr: &str, port: u16) -> bool {
    sb.ask(Some(ns), "tcp", addr, port, true)
        .starts_with("outside from")
}

/// Whether one such connection gets no answer (refused or dropped).
fn blocked(sb: &Sandbox, ns: &str, addr: &str, port: u16) -> bool {
    !sb.ask(Some(ns), "tcp", addr, port, false)
        .starts_with("outside from")
}

/// `outside`, then red on nsnet0 with NAT and a server `outside` runs on port
/// 9000, answering red: returns the host as it was before red.
fn red_behind_nat(sb: &mut Sandbox) -> Vec<String> {
    sb.outside();
    let before = sb.snapshot();
    sb.nsnet(["bridge", "up", "red", "--nat"])
        .assert()
        .success();
    sb.serve("outside", "tcp", 9000);
    assert!(
        sb.ask(Some("red"), "tcp", INTERNET, 9000, true)
            .starts_with("outside")
    );
    before
}

/// The packet count of the first rule of `chain` whose line holds `what`.
fn packets(sb: &Sandbox, chain: &str, what: &str) -> u64 {
    let saved = sb.ok("iptables-save -c -t filter");
    let line = saved
        .lines()
        .find(|l| l.contains(&format!("-A {chain} ")) && l.contains(what))
        .unwrap_or_else(|| panic!("no {chain} rule with {what}:\n{saved}"));
    let counters = line.trim_start_matches('[').split(']').next().unwrap();
    counters.split(':').next().unwrap().parse().unwrap()
}

#[test]
fn deny_rejects_at_once_allow_makes_exceptions_and_bridges_are_isolated() {
    let mut sb = sandbox!();
    sb.outside();
    sb.ok("iptables -P FORWARD DROP");
    let before = sb.snapshot();
    sb.nsnet(["bridge", "up", "red", "--nat"])
        .assert()
        .success();
    sb.nsnet([
        "bridge",
        "up",
        "green",
        "--bridge",
        "br2",
        "--subnet",
        "10.77.0.0/24",
        "--nat",
    ])
    .assert()
    .success()
    .stderr(contains("`br2` and `nsnet0` are isolated"));
    sb.serve("outside", "tcp", 9000);
    sb.serve("green", "tcp", 9000);
    assert!(
        sb.ask(Some("red"), "tcp", INTERNET, 9000, true)
            .starts_with("outside from")
    );
    // Isolated: red cannot open a connection to green, nor green to red.
    assert_eq!(sb.ask(Some("red"), "tcp", "10.77.0.2", 9000, false), "");
    sb.nsnet(["firewall", "deny", "198.51.100.0/24", "--log"])
        .assert()
        .success()
        .stdout(contains("deny  198.51.100.0/24 (logged)"));
    // The same again plans nothing.
    sb.nsnet(["--dry-run", "firewall", "deny", "198.51.100.0/24", "--log"])
        .assert()
        .success()
        .stdout("# nothing to do: the host already matches\n");
    let logged = packets(&sb, "NSNET-POLICY", "-j LOG");
    let started = std::time::Instant::now();
    let out = sb.sh(&format!(
        "echo hi | ip netns exec red timeout 5 socat -T1 - TCP4:{INTERNET}:9000"
    ));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Connection refused"),
        "REJECT, not a drop: {stderr}"
    );
    assert!(started.elapsed().as_secs() < 2, "{:?}", started.elapsed());
    assert!(
        packets(&sb, "NSNET-POLICY", "-j LOG") > logged,
        "the LOG counter moved"
    );
    assert!(
        reaches(&sb, "red", "172.31.0.2", 9000),
        "the rest of the world still"
    );
    // An exception, evaluated before the deny.
    sb.nsnet(["firewall", "allow", INTERNET]).assert().success();
    assert!(reaches(&sb, "red", INTERNET, 9000));
    // Another bridge's subnet opens the way there, one way only.
    sb.nsnet(["firewall", "allow", "10.77.0.0/24"])
        .assert()
        .success();
    assert_eq!(
        sb.ask(Some("red"), "tcp", "10.77.0.2", 9000, true),
        "green from 10.77.0.1",
        "red -> green, masqueraded by red's NAT as Docker's bridges are"
    );
    sb.serve("red", "tcp", 9001);
    assert_eq!(sb.ask(Some("green"), "tcp", "10.200.0.2", 9001, false), "");
    sb.nsnet(["firewall", "list"])
        .assert()
        .stdout(contains("br2\n  isolated from nsnet0"))
        .stdout(contains("nsnet0\n  allow 10.77.0.0/24\n  allow 198.51.100.7/32\n  deny  198.51.100.0/24 (logged)"));
    sb.nsnet(["status"])
        .assert()
        .stdout(contains("  firewall deny  198.51.100.0/24 (logged)"))
        .stdout(contains("no drift"));
    sb.nsnet(["firewall", "del", INTERNET]).assert().success();
    assert_eq!(sb.ask(Some("red"), "tcp", INTERNET, 9000, false), "");
    sb.stop_background();
    sb.nsnet(["down"]).assert().success();
    assert_same(&before, &sb.snapshot());
}

#[test]
fn a_rule_in_nsnet_user_comes_first_survives_the_bridge_and_stays_with_its_jump() {
    let mut sb = sandbox!();
    let before = red_behind_nat(&mut sb);
    // The user's own rule, where the tutorial's appended one would never
    // match: ahead of nsnet's accepts.
    sb.ok("iptables -A NSNET-USER -i nsnet0 -d 172.31.0.2 -j REJECT");
    assert!(blocked(&sb, "red", "172.31.0.2", 9000));
    sb.nsnet(["bridge", "down"]).assert().success();
    sb.nsnet(["bridge", "up", "red", "--nat"])
        .assert()
        .success();
    assert!(
        blocked(&sb, "red", "172.31.0.2", 9000),
        "still first after bridge up"
    );
    let forward = sb.ok("iptables -S FORWARD");
    assert!(
        forward.starts_with(
            "-P FORWARD ACCEPT\n-A FORWARD -m comment --comment nsnet -j NSNET-USER\n"
        ),
        "{forward}"
    );
    sb.stop_background();
    sb.nsnet(["down"]).assert().success();
    // The user's chain stays, with its jump, while it holds a rule.
    let kept = sb.ok("iptables -S");
    assert!(
        kept.contains("-A FORWARD -m comment --comment nsnet -j NSNET-USER"),
        "{kept}"
    );
    assert!(
        kept.contains("-A NSNET-USER -d 172.31.0.2/32 -i nsnet0 -j REJECT"),
        "{kept}"
    );
    assert!(!kept.contains("NSNET-FORWARD"), "{kept}");
    // Emptied, it goes with nsnet's next network.
    sb.ok("iptables -F NSNET-USER");
    sb.nsnet(["bridge", "up", "red"]).assert().success();
    sb.nsnet(["down"]).assert().success();
    assert_same(&before, &sb.snapshot());
}

#[test]
fn a_jump_moved_out_of_order_is_drift_and_put_back() {
    let sb = sandbox!();
    sb.nsnet(["bridge", "up", "red"]).assert().success();
    sb.ok(
        "iptables -D FORWARD -m comment --comment nsnet -j NSNET-FORWARD && \
           iptables -I FORWARD 1 -m comment --comment nsnet -j NSNET-FORWARD",
    );
    sb.nsnet(["status"]).assert().stdout(contains(
        "nsnet's jump to NSNET-FORWARD comes before one it must follow",
    ));
    sb.nsnet(["doctor"]).assert().stdout(contains(
        "in iptables's FORWARD, nsnet's jump to NSNET-FORWARD comes before one it must follow",
    ));
    sb.nsnet(["bridge", "up", "red"]).assert().success();
    let forward = sb.ok("iptables -S FORWARD");
    let jumps: Vec<&str> = forward.lines().skip(1).collect();
    assert_eq!(
        jumps,
        [
            "-A FORWARD -m comment --comment nsnet -j NSNET-USER",
            "-A FORWARD -m comment --comment nsnet -j NSNET-FORWARD"
        ]
    );
    sb.nsnet(["status"]).assert().stdout(contains("no drift"));
}

#[test]
fn denying_a_range_that_holds_the_bridge_keeps_its_namespaces_together() {
    let mut sb = sandbox!();
    sb.outside();
    // An office machine at 10.9.9.9 behind the uplink; bridged frames pass
    // through FORWARD (br_netfilter), as on every Docker host.
    sb.ok(
        "ip -n outside addr add 10.9.9.9/32 dev lo && ip route add 10.9.9.9/32 via 172.31.0.2 && \
         sysctl -qw net.bridge.bridge-nf-call-iptables=1",
    );
    let before = sb.snapshot();
    sb.nsnet(["bridge", "up", "red", "blue", "--nat"])
        .assert()
        .success();
    sb.serve("outside", "tcp", 9000);
    sb.serve("blue", "tcp", 9000);
    assert!(
        sb.ask(Some("red"), "tcp", "10.9.9.9", 9000, true)
            .starts_with("outside from")
    );
    sb.nsnet(["firewall", "deny", "10.0.0.0/8"])
        .assert()
        .success();
    assert_eq!(
        sb.ask(Some("red"), "tcp", "10.9.9.9", 9000, false),
        "",
        "denied"
    );
    assert_eq!(
        sb.ask(Some("red"), "tcp", "10.200.0.3", 9000, true),
        "blue from 10.200.0.2",
        "a neighbour on the bridge is not a destination out of it"
    );
    assert!(sb.pings(Some("red"), "10.200.0.1"), "nor is the gateway");
    assert!(reaches(&sb, "red", "172.31.0.2", 9000));
    sb.stop_background();
    sb.nsnet(["down"]).assert().success();
    assert_same(&before, &sb.snapshot());
}

#[test]
fn doctor_names_the_tutorials_appended_reject_and_its_fix_works() {
    let mut sb = sandbox!();
    let before = red_behind_nat(&mut sb);
    // The fourth tutorial's appendix: appended to FORWARD, after nsnet's
    // accepts, so it never matches.
    let rule = "-d 198.51.100.0/24 -j REJECT --reject-with icmp-port-unreachable";
    sb.ok(&format!("iptables -A FORWARD {rule}"));
    assert!(
        reaches(&sb, "red", INTERNET, 9000),
        "shadowed, as beside Docker"
    );
    let out = sb.nsnet(["doctor", "--json"]).output().unwrap();
    let findings: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let shadowed: Vec<&serde_json::Value> = findings
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"] == "shadowed")
        .collect();
    assert_eq!(shadowed.len(), 1, "{findings:#}");
    assert_eq!(shadowed[0]["level"], "warn");
    let message = shadowed[0]["message"].as_str().unwrap();
    assert!(
        message.contains("it never sees the traffic of `nsnet0` that nsnet lets through"),
        "{message}"
    );
    // Doctor's first fix, as written, run in a shell.
    let fix = shadowed[0]["fix"].as_str().unwrap();
    let command = fix.split('`').nth(1).unwrap();
    assert_eq!(
        command,
        format!("iptables -A NSNET-USER {rule} && iptables -D FORWARD {rule}")
    );
    sb.ok(command);
    assert!(blocked(&sb, "red", INTERNET, 9000), "REJECTed now");
    let out = sb.nsnet(["doctor"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("nsnet's accepts: it never sees"));
    // Its second fix: nsnet's own deny, once the user's rule is gone.
    sb.ok("iptables -F NSNET-USER");
    assert!(reaches(&sb, "red", INTERNET, 9000));
    let deny = fix.split('`').nth(3).unwrap();
    assert_eq!(deny, "nsnet firewall deny --bridge nsnet0 198.51.100.0/24");
    let args: Vec<&str> = deny.split(' ').skip(1).collect();
    sb.nsnet(args).assert().success();
    assert!(blocked(&sb, "red", INTERNET, 9000), "denied by nsnet");
    // A rule put ahead of nsnet's jumps is seen as dropping nsnet's traffic.
    sb.ok("iptables -I FORWARD 1 -i nsnet0 -j DROP");
    sb.nsnet(["status"]).assert().stdout(contains(
        "`-A FORWARD -i nsnet0 -j DROP` comes before nsnet's jumps in FORWARD",
    ));
    sb.ok("iptables -D FORWARD -i nsnet0 -j DROP");
    sb.stop_background();
    sb.nsnet(["down"]).assert().success();
    assert_same(&before, &sb.snapshot());
}

/// Who asks, and the address asked, on each path to a published port.
const PUBLISH_PATHS: [(Option<&str>, &str); 6] = [
    (Some("outside"), "172.31.0.1"), // another machine
    (None, "127.0.0.1"),             // the host, over loopback
    (None, "10.200.0.1"),            // the host, to the gateway
    (Some("blue"), "172.31.0.1"),    // a neighbour (hairpin)
    (Some("green"), "10.200.0.1"),   // another neighbour
    (Some("red"), "172.31.0.1"),     // the serving namespace itself
];

#[test]
fn a_port_published_with_allow_answers_only_those_sources_on_every_path() {
    let mut sb = sandbox!();
    sb.outside();
    sb.ok("sysctl -qw net.bridge.bridge-nf-call-iptables=1 && iptables -P FORWARD DROP");
    let before = sb.snapshot();
    sb.nsnet(["bridge", "up", "red", "blue", "green"])
        .assert()
        .success();
    sb.serve("red", "tcp", 80);
    sb.serve("red", "udp", 53);
    // outside (172.31.0.2) and blue (10.200.0.3) only.
    let allow = ["--allow", "172.31.0.2,10.200.0.3"];
    sb.nsnet(["publish", "add", "red", "8080:80", "5353:53/udp"].iter().chain(&allow))
        .assert()
        .success()
        .stderr(contains("add --allow 127.0.0.1 to use it from here"))
        .stdout(contains(
            "*:8080/tcp               -> red 10.200.0.2:80 on nsnet0 from 10.200.0.3/32, 172.31.0.2/32\n",
        ));
    let served = |sb: &Sandbox, allowed: &[(Option<&str>, &str)]| {
        for (proto, port) in [("tcp", 8080), ("udp", 5353)] {
            for (from, addr) in PUBLISH_PATHS {
                let wanted = allowed.contains(&(from, addr));
                let answer = sb.ask(from, proto, addr, port, wanted);
                assert_eq!(
                    answer.starts_with("red from "),
                    wanted,
                    "{proto} {from:?} -> {addr}:{port}: {answer:?}"
                );
            }
        }
    };
    served(&sb, &[PUBLISH_PATHS[0], PUBLISH_PATHS[3]]);
    // Retried: an answer is expected, and one try (socat's 1 s) went
    // unanswered once on a machine running two test suites at once.
    assert_eq!(
        sb.ask(Some("outside"), "tcp", "172.31.0.1", 8080, true),
        "red from 172.31.0.2",
        "an allowed machine keeps its own address"
    );
    // `bridge up --publish` again keeps the sources (and changes nothing).
    let allowed = sb.snapshot();
    sb.nsnet(["bridge", "up", "red", "--publish", "red=8080:80"])
        .assert()
        .success();
    assert_same(&allowed, &sb.snapshot());
    // Again with other sources: they replace the old ones.
    sb.nsnet(["publish", "add", "red", "8080:80", "5353:53/udp", "--allow", "127.0.0.1", "--allow", "10.200.0.4"])
        .assert()
        .success()
        .stderr(contains("host port 8080/tcp now reached from 10.200.0.4/32, 127.0.0.1/32 (was: 10.200.0.3/32, 172.31.0.2/32)"));
    // The host's connection to its own gateway address comes from that
    // address, not from 127.0.0.1: only its connection over loopback is.
    served(&sb, &[PUBLISH_PATHS[1], PUBLISH_PATHS[4]]);
    sb.nsnet(["publish", "list"])
        .assert()
        .success()
        .stdout(contains("on nsnet0 from 10.200.0.4/32, 127.0.0.1/32\n"));
    sb.stop_background();
    sb.nsnet(["down"]).assert().success();
    assert_same(&before, &sb.snapshot());
}

#[test]
fn everything_as_a_prefix_of_zero_is_written_as_iptables_keeps_it_and_goes() {
    let sb = sandbox!();
    let before = sb.snapshot();
    sb.nsnet([
        "bridge",
        "up",
        "red",
        "--subnet",
        "10.1.0.0/24",
        "--subnet",
        "fd00:1::/64",
    ])
    .assert()
    .success();
    let with_allow = sb.snapshot();
    // iptables-save prints no `-s 0.0.0.0/0` or `-d 0.0.0.0/0`: rules nsnet
    // wrote with one would never be found again, nor deleted.
    sb.nsnet(["publish", "add", "red", "8080:80", "--allow", "0.0.0.0/0"])
        .assert()
        .success()
        .stderr(contains("not published in IPv6: no IPv6 source is allowed"));
    sb.nsnet(["firewall", "deny", "0.0.0.0/0", "::/0"])
        .assert()
        .success();
    sb.nsnet(["firewall", "allow", "0.0.0.0/0"])
        .assert()
        .success();
    sb.nsnet(["status"]).assert().stdout(contains("no drift"));
    sb.nsnet(["publish", "del", "red", "8080"])
        .assert()
        .success();
    sb.nsnet(["firewall", "del", "0.0.0.0/0", "::/0"])
        .assert()
        .success();
    assert_same(&with_allow, &sb.snapshot());
    sb.nsnet(["down"]).assert().success();
    assert_same(&before, &sb.snapshot());
}

#[test]
fn bad_firewall_input_is_one_clear_line_and_changes_nothing() {
    let sb = sandbox!();
    sb.nsnet(["bridge", "up", "red"]).assert().success();
    sb.ok("ip link add handmade type bridge");
    let before = sb.snapshot();
    let cases: &[(&[&str], &str)] = &[
        (
            &["firewall", "deny", "10.0.0.0/33"],
            "is not an address or a CIDR",
        ),
        (
            &["firewall", "deny", "banana"],
            "is not an address or a CIDR",
        ),
        (
            &["firewall", "allow", "10.0.0.1/8"],
            "has host bits set: the subnet is `10.0.0.0/8`",
        ),
        (
            &["firewall", "deny", "--bridge", "nope", "10.0.0.0/8"],
            "bridge `nope` was not made by nsnet",
        ),
        (
            &["firewall", "deny", "--bridge", "handmade", "10.0.0.0/8"],
            "bridge `handmade` was not made by nsnet",
        ),
        (&["firewall", "deny", "2001:db8::/32"], "has no IPv6 subnet"),
        (&["firewall", "deny"], "required"),
        (
            &["publish", "add", "red", "8080:80", "--allow", "10.0.0.1/8"],
            "has host bits set: the subnet is `10.0.0.0/8`",
        ),
        (
            &["publish", "add", "red", "8080:80", "--allow", "10.0.0.0/8,"],
            "is not an address or a CIDR",
        ),
        (
            &[
                "publish",
                "add",
                "red",
                "8080:80",
                "--allow",
                "2001:db8::/64",
            ],
            "--allow `2001:db8::/64` can never match: the port is published in IPv4 only (bridge `nsnet0` has no IPv6 subnet); give IPv4 sources",
        ),
        (
            &["publish", "add", "red", "8080:80", "--allow", "any"],
            "`any` is not an address or a CIDR",
        ),
    ];
    for (args, message) in cases {
        sb.refused(args, message, &before);
    }
}
