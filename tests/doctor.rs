//! `nsnet doctor` on throwaway hosts arranged to have each problem.

mod common;

use common::Sandbox;
use predicates::prelude::*;
use predicates::str::contains;

/// (check, level) of every finding that is not ok, from `doctor --json`.
fn problems(sb: &Sandbox) -> (Option<i32>, Vec<(String, String)>) {
    let out = sb.nsnet(["doctor", "--json"]).output().unwrap();
    let findings: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let list = findings
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["level"] != "ok");
    let list = list.map(|f| {
        (
            f["check"].as_str().unwrap().to_string(),
            f["level"].as_str().unwrap().to_string(),
        )
    });
    (out.status.code(), list.collect())
}

#[test]
fn a_clean_host_passes() {
    let Some(sb) = Sandbox::new() else { return };
    sb.nsnet(["doctor"])
        .assert()
        .success()
        .stdout(contains(
            "ok    tools: ip, iptables-restore, iptables-save and sysctl are installed",
        ))
        .stdout(contains("warn").not().and(contains("FAIL").not()));
    assert_eq!(problems(&sb), (Some(0), vec![]));
}

#[test]
fn each_arranged_problem_is_found_with_a_fix() {
    let Some(sb) = Sandbox::new() else { return };
    sb.nsnet(["bridge", "up", "red"]).assert().success();
    sb.ok(
        "iptables -P FORWARD DROP && iptables -N DOCKER && iptables -N ufw-user-forward && \
         iptables-legacy -A INPUT -j ACCEPT && \
         ip link add side0 type veth peer name side1 && ip link set side0 up && \
         ip route add 10.200.0.0/16 dev side0 && ip link add bigbr type bridge && \
         for i in $(seq 850); do echo \"link add p$i type veth peer name q$i\"; \
         echo \"link set p$i master bigbr\"; done | ip -batch -",
    );
    let (code, found) = problems(&sb);
    let expected = [
        ("iptables", "warn"),
        ("docker", "warn"),
        ("host firewall", "warn"),
        ("subnets", "fail"),
        ("bridge ports", "warn"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(c, l)| (c.to_string(), l.to_string()))
        .collect();
    assert_eq!((code, found), (Some(1), expected));
    sb.nsnet(["doctor"])
        .assert()
        .code(1)
        .stdout(contains("FAIL  subnets: bridge `nsnet0`'s subnet 10.200.0.0/24 overlaps route 10.200.0.0/16 on side0"))
        .stdout(contains("warn  bridge ports: bridge `bigbr` has 850 of the kernel's 1024 ports"))
        .stdout(contains("ok    forward: the FORWARD policy is DROP"))
        .stdout(contains("warn  host firewall: ufw is present: ports published by nsnet bypass its rules"))
        .stdout(contains("      fix: "));
}

/// Firewalls that drop what nsnet forwards though nsnet's own accepts are in
/// place: (how to stage it, how to take it away, what doctor says).
const BLOCKS: &[(&str, &str, &str)] = &[
    (
        "iptables-legacy -P FORWARD DROP",
        "iptables-legacy -P FORWARD ACCEPT",
        "the legacy backend's FORWARD policy is DROP",
    ),
    (
        "iptables-legacy -A FORWARD -j REJECT",
        "iptables-legacy -D FORWARD -j REJECT",
        "`-A FORWARD -j REJECT --reject-with icmp-port-unreachable` in the legacy backend's FORWARD may drop",
    ),
    (
        "iptables -I FORWARD 1 -j DROP",
        "iptables -D FORWARD -j DROP",
        "`-A FORWARD -j DROP` comes before nsnet's jumps in FORWARD (nf_tables)",
    ),
    (
        "nft add table inet theirs && \
         nft add chain inet theirs guard '{ type filter hook forward priority 0; policy drop; }'",
        "nft delete table inet theirs",
        "nftables chain `inet theirs guard` drops forwarded traffic by policy",
    ),
];

#[test]
fn what_drops_forwarded_traffic_fails_doctor_and_shows_in_status() {
    let Some(sb) = Sandbox::new() else { return };
    sb.outside();
    sb.nsnet(["bridge", "up", "red", "--nat"])
        .assert()
        .success();
    let reaches = || sb.pings(Some("red"), "172.31.0.2");
    assert!(reaches(), "NAT works before anything is staged");
    sb.nsnet(["doctor"])
        .assert()
        .success()
        .stdout(contains("FAIL").not());
    for (stage, undo, says) in BLOCKS {
        sb.ok(stage);
        assert!(!reaches(), "{stage}: traffic should be dropped");
        let out = sb.nsnet(["doctor"]).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{stage}: {stdout}");
        assert!(
            stdout.contains(&format!("FAIL  forward: {says}")) && stdout.contains("      fix: "),
            "{stage}: {stdout}"
        );
        let status = sb.nsnet(["status", "--json"]).output().unwrap();
        let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
        let drift = status["drift"].to_string();
        assert!(
            drift.contains("traffic through nsnet's bridges is dropped") && drift.contains(says),
            "{stage}: {drift}"
        );
        sb.ok(undo);
        assert!(reaches(), "{undo}: traffic flows again");
    }
    sb.nsnet(["doctor"])
        .assert()
        .success()
        .stdout(contains("FAIL").not());
}

#[test]
fn a_missing_tool_fails_and_names_its_package() {
    let Some(sb) = Sandbox::new() else { return };
    let nsnet = env!("CARGO_BIN_EXE_nsnet");
    let out = sb.sh(&format!(
        "unshare --mount sh -c 'for p in /usr/sbin/iptables-restore /sbin/iptables-restore; do \
         [ -e $p ] && mount --bind /dev/null $p; done; exec {nsnet} doctor'"
    ));
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("FAIL  tools: `iptables-restore` is not installed\n      fix: apt-get install iptables\n"),
        "{stdout}"
    );
}
