//! `nsnet status` and `nsnet graph`: golden output for a known topology,
//! read from the live kernel, and drift after things are changed by hand.

mod common;

use common::Sandbox;
use predicates::str::contains;

/// red and blue on nsnet0 with NAT and two published ports, a cable red to
/// green, a cable host to blue, and a namespace nsnet did not make.
fn known_topology() -> Option<Sandbox> {
    let sb = Sandbox::new()?;
    sb.ok("ip netns add theirs");
    for args in [
        &["bridge", "up", "red", "blue"][..],
        &["veth", "add", "red", "green", "--subnet", "10.5.0.0/30"],
        &["veth", "add", "host", "blue", "--subnet", "10.6.0.0/30"],
        &["nat", "up"],
        &["publish", "add", "red", "8080:80", "5353:53/udp"],
    ] {
        sb.nsnet(args).assert().success();
    }
    Some(sb)
}

#[track_caller]
fn assert_golden(sb: &Sandbox, args: &[&str], golden: &str) {
    let out = sb.nsnet(args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let actual = String::from_utf8(out.stdout).unwrap();
    assert!(
        actual == golden,
        "`nsnet {}` differs\n--- expected\n{golden}--- actual\n{actual}",
        args.join(" ")
    );
}

#[test]
fn status_and_graph_match_the_golden_output() {
    let Some(sb) = known_topology() else { return };
    assert_golden(&sb, &["status"], include_str!("golden/status.txt"));
    assert_golden(
        &sb,
        &["status", "--json"],
        include_str!("golden/status.json"),
    );
    assert_golden(&sb, &["graph"], include_str!("golden/graph.txt"));
    assert_golden(
        &sb,
        &["graph", "--format", "dot"],
        include_str!("golden/graph.dot"),
    );
    assert_golden(
        &sb,
        &["graph", "--format", "mermaid"],
        include_str!("golden/graph.mmd"),
    );
}

#[test]
fn status_json_is_easy_to_use_from_scripts() {
    let Some(sb) = known_topology() else { return };
    let out = sb.nsnet(["status", "--json"]).output().unwrap().stdout;
    let status: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(status["drift"], serde_json::json!([]));
    assert_eq!(status["bridges"][0]["ports"][1]["address"], "10.200.0.3");
    let red = status["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "red")
        .unwrap();
    assert_eq!(red["interfaces"][0]["peer"]["bridge"], "nsnet0");
    assert_eq!(status["published"][1]["proto"], "udp");
}

#[test]
fn drift_is_flagged_after_changes_by_hand() {
    let Some(sb) = known_topology() else { return };
    sb.ok(
        "ip netns del green && ip -n blue addr del 10.200.0.3/24 dev eth0 && \
         iptables -t nat -F NSNET-DNAT && sysctl -qw net.ipv4.ip_forward=0",
    );
    let out = sb.nsnet(["status", "--json"]).output().unwrap().stdout;
    let status: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let drift: Vec<&str> = status["drift"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    let expected = [
        "`blue`'s eth0 has lost its address 10.200.0.3/24",
        "namespace `green` is gone (deleted by hand?); `nsnet down` or `nsnet netns del green` clears the record",
        "iptables rule missing from table nat: -A NSNET-DNAT -p tcp -m tcp --dport 8080 -m comment --comment \"nsnet:publish:red:8080/tcp\" -j DNAT --to-destination 10.200.0.2:80",
        "iptables rule missing from table nat: -A NSNET-DNAT -p udp -m udp --dport 5353 -m comment --comment \"nsnet:publish:red:5353/udp\" -j DNAT --to-destination 10.200.0.2:53",
        "net.ipv4.ip_forward is 0; nsnet needs 1",
    ];
    assert_eq!(drift, expected);
    let green = status["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "green")
        .unwrap();
    assert_eq!(green["present"], false);
    // A bridge deleted by hand, in the text form.
    sb.ok("ip link del nsnet0");
    sb.nsnet(["status"])
        .assert()
        .success()
        .stdout(contains(
            "bridge nsnet0 10.200.0.0/24 gateway 10.200.0.1, nat via any interface (GONE)",
        ))
        .stdout(contains("  ! bridge `nsnet0` is gone from the host"));
    // And down still clears it all.
    sb.nsnet(["down"]).assert().success();
    sb.nsnet(["status"])
        .assert()
        .success()
        .stdout("namespace theirs (external)\nno drift: the host matches nsnet's record\n");
}
