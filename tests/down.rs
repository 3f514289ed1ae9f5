//! `nsnet down`: everything nsnet made goes, what it changed is put back,
//! what it did not make stays; twice is fine; on an untouched host it does
//! nothing.

mod common;

use common::assert_same;
use predicates::str::contains;

#[test]
fn down_removes_a_whole_topology_and_leaves_what_nsnet_did_not_make() {
    let mut sb = sandbox!();
    sb.outside();
    // Things that are not nsnet's: a namespace, a bridge, a rule, a container.
    sb.ok(
        "ip netns add theirs && ip link add br-theirs type bridge && iptables -A INPUT -j ACCEPT",
    );
    let container = sb.spawn("exec unshare --net sleep 60");
    sb.wait_exec(container, "sleep");
    let before = sb.snapshot();
    let container = container.to_string();
    for args in [
        &["bridge", "up", "red", "blue"][..],
        &[
            "bridge",
            "up",
            "green",
            "--bridge",
            "br2",
            "--subnet",
            "10.70.0.0/24",
        ],
        &["veth", "add", "red", "host", "--subnet", "10.60.0.0/30"],
        &["veth", "add", "solo", "blue"],
        &["netns", "add", "lonely"],
        &["netns", "attach", "box", "--pid", &container],
        &["bridge", "up", "box", "--bridge", "br2"],
        &["nat", "up"],
        &["publish", "add", "red", "8080:80", "5353:53/udp"],
        &[
            "publish",
            "add",
            "green",
            "9090:90",
            "--host-ip",
            "127.0.0.1",
        ],
    ] {
        sb.nsnet(args).assert().success();
    }
    assert!(sb.pings(Some("red"), "198.51.100.7"));
    sb.nsnet(["down"]).assert().success();
    assert_same(&before, &sb.snapshot());
    sb.ok(&format!("kill -0 {container}"));
    sb.nsnet(["down"]).assert().success();
    assert_same(&before, &sb.snapshot());
    sb.nsnet(["netns", "list", "--json"])
        .assert()
        .success()
        .stdout(contains("\"origin\": \"external\""));
}

#[test]
fn down_on_a_host_nsnet_never_touched_changes_nothing() {
    let sb = sandbox!();
    sb.ok("ip netns add theirs && ip link add br0 type bridge");
    let before = sb.snapshot();
    sb.nsnet(["down", "--dry-run"])
        .assert()
        .success()
        .stdout("# nothing to do: the host already matches\n");
    sb.nsnet(["down"]).assert().success().stdout("");
    assert_same(&before, &sb.snapshot());
}

#[test]
fn down_refuses_while_processes_run_in_nsnet_namespaces_unless_forced() {
    let mut sb = sandbox!();
    let before = sb.snapshot();
    sb.nsnet(["bridge", "up", "red"]).assert().success();
    sb.occupy("red");
    sb.nsnet(["down"])
        .assert()
        .code(1)
        .stderr(contains("namespace `red` still has processes inside"));
    assert!(sb.pings(None, "10.200.0.2"), "nothing changed");
    sb.nsnet(["down", "--force"]).assert().success();
    assert_same(&before, &sb.snapshot());
}
