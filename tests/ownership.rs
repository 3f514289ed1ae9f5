//! nsnet deletes and changes only what it made, known by identity, not by
//! name: a namespace, bridge or veth deleted and made again by hand under
//! the same name, or named by a record nsnet never wrote, is left alone,
//! reported by `status`, named by `down`, and dropped from the record by
//! `nsnet forget`. Each time the user's objects survive (and carry traffic),
//! and once they are removed by hand the host is exactly as before.

mod common;

use common::{Sandbox, assert_same};
use predicates::str::contains;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn record(sb: &Sandbox) -> serde_json::Value {
    let text = sb.ok("cat /run/nsnet/state.json");
    serde_json::from_str(&text).unwrap()
}

/// A veth of the user's from the host into `ns`, addressed 10.99.0.1 and
/// .2, and proof that it carries traffic.
fn users_cable(sb: &Sandbox, ns: &str) {
    sb.ok(&format!(
        "ip link add mine type veth peer name mine-in netns {ns}
         ip addr add 10.99.0.1/30 dev mine && ip link set mine up
         ip -n {ns} addr add 10.99.0.2/30 dev mine-in && ip -n {ns} link set mine-in up"
    ));
    assert!(sb.pings(Some(ns), "10.99.0.1"), "the user's cable works");
}

#[test]
fn a_namespace_made_again_by_hand_is_left_alone_until_forgotten() {
    let sb = sandbox!();
    let before = sb.snapshot();
    sb.nsnet(["bridge", "up", "red", "blue"]).assert().success();
    sb.ok("ip netns del red && ip netns add red");
    users_cable(&sb, "red");
    sb.nsnet(["status"])
        .assert()
        .stdout(contains("namespace red (external)"))
        .stdout(contains("namespace `red` is not the namespace nsnet made"));
    // Nothing is plugged into the user's namespace.
    sb.nsnet(["bridge", "up", "red"])
        .assert()
        .code(1)
        .stderr(contains("`nsnet forget red` drops it from the record"));
    let out = sb.nsnet(["down"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let said = stderr(&out);
    assert_eq!(
        said.matches("`red` is not the namespace nsnet made: left alone; `nsnet forget red` drops it from the record").count(),
        1,
        "{said}"
    );
    assert!(
        sb.pings(Some("red"), "10.99.0.1"),
        "the user's red survives"
    );
    assert_eq!(sb.ok("ip netns list | cut -d' ' -f1"), "red\n");
    assert!(record(&sb)["namespaces"]["red"].is_object());
    sb.nsnet(["forget", "red"]).assert().success();
    assert_eq!(record(&sb)["namespaces"], serde_json::json!({}));
    sb.nsnet(["status"])
        .assert()
        .stdout(contains("no drift: the host matches nsnet's record"));
    assert!(sb.pings(Some("red"), "10.99.0.1"), "forget touches nothing");
    sb.ok("ip netns del red && ip link del mine 2>/dev/null; true");
    assert_same(&before, &sb.snapshot());
    eprintln!(
        "reliability: ownership: a namespace made again by hand with a veth of the user's: down left it (still pinging), forget dropped it, host exact"
    );
}

#[test]
fn a_bridge_made_again_by_hand_keeps_its_ports() {
    let sb = sandbox!();
    let before = sb.snapshot();
    sb.nsnet(["bridge", "up", "red", "--nat"])
        .assert()
        .success();
    sb.ok(
        "ip link del nsnet0 && ip link add nsnet0 type bridge && ip link set nsnet0 up
           ip link add mine type veth peer name mine-peer && ip link set mine master nsnet0",
    );
    sb.nsnet(["nat", "up"])
        .assert()
        .code(1)
        .stderr(contains("bridge `nsnet0` is not the bridge nsnet made"));
    let out = sb.nsnet(["down"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "`nsnet0` is not the bridge nsnet made: left alone; `nsnet forget nsnet0` drops it from the record"
        ),
        "{}",
        stderr(&out)
    );
    let kept = sb.ok("ip -o link show master nsnet0");
    assert!(kept.contains("mine"), "the user's port stays on: {kept}");
    assert_eq!(sb.ok("ip netns list"), "", "nsnet's red went");
    sb.nsnet(["forget", "nsnet0"]).assert().success();
    // Down took nsnet's own rules and sysctls: only the user's bridge is left.
    sb.ok("ip link del mine && ip link del nsnet0");
    assert_same(&before, &sb.snapshot());
    eprintln!(
        "reliability: ownership: a bridge made again by hand with a port of the user's: nat up refused, down left both, host exact"
    );
}

#[test]
fn a_veth_name_taken_by_hand_is_not_deleted() {
    let sb = sandbox!();
    let before = sb.snapshot();
    sb.nsnet(["bridge", "up", "red"]).assert().success();
    sb.nsnet(["veth", "add", "host", "blue", "--subnet", "10.98.0.0/30"])
        .assert()
        .success();
    // nsnet's port and cable ends deleted by hand, their names reused.
    sb.ok("ip link del nv-red && ip link add nv-red type bridge
           ip link del vc-blue && ip link add vc-blue type bridge");
    sb.nsnet(["status"])
        .assert()
        .stdout(contains(
            "`nv-red` is not the interface nsnet made for `red`'s port",
        ))
        .stdout(contains("`vc-blue` in host is not the end nsnet made"));
    sb.nsnet(["down"]).assert().success();
    let left = sb.ok("ip -o link show type bridge | cut -d: -f2");
    assert_eq!(left, " nv-red\n vc-blue\n", "the user's bridges stay");
    assert_eq!(record(&sb)["namespaces"], serde_json::json!({}));
    sb.ok("ip link del nv-red && ip link del vc-blue");
    assert_same(&before, &sb.snapshot());
    eprintln!(
        "reliability: ownership: a port's and a cable's host end made again by hand: status named both, down left both, host exact"
    );
}

#[test]
fn a_record_naming_what_the_user_made_deletes_nothing() {
    let sb = sandbox!();
    sb.ok("ip netns add theirs && ip link add br-theirs type bridge
           ip link add nv-theirs type veth peer name eth0 netns theirs
           ip link set nv-theirs master br-theirs");
    let before = sb.snapshot();
    // A restored backup, a stale file or a hostile edit: the names are
    // right, the identities are not nsnet's (none, or another's).
    let hostile = r#"{"namespaces":{"theirs":{"explicit":true,"stamp":{"dev":4,"ino":1,"born":1}}},
        "bridges":{"br-theirs":{"subnet":"10.97.0.0/24","gateway":"10.97.0.1","ifindex":1,"ports":[
        {"ns":"theirs","ifname":"eth0","host_ifname":"nv-theirs","address":"10.97.0.2","default_route":true}]}}}"#;
    sb.ok(&format!("printf '%s' '{hostile}' > /run/nsnet/state.json"));
    let out = sb.nsnet(["down"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let said = stderr(&out);
    assert!(
        said.contains("`theirs` is not the namespace nsnet made"),
        "{said}"
    );
    assert!(
        said.contains("`br-theirs` is not the bridge nsnet made"),
        "{said}"
    );
    assert_same(&before, &sb.snapshot());
    sb.nsnet(["forget", "theirs", "br-theirs"])
        .assert()
        .success();
    assert_same(&before, &sb.snapshot());
    assert_eq!(record(&sb)["bridges"], serde_json::json!({}));
    eprintln!(
        "reliability: ownership: a record naming a namespace, bridge and veth the user made: down deleted nothing, host exact"
    );
}

#[test]
fn a_record_naming_the_uplink_is_refused_before_anything_runs() {
    let sb = sandbox!();
    sb.ok("ip link add up0 type bridge && ip link set up0 up
           ip addr add 192.0.2.2/24 dev up0 && ip route add default via 192.0.2.1");
    let before = sb.snapshot();
    let hostile =
        r#"{"bridges":{"up0":{"subnet":"10.97.0.0/24","gateway":"10.97.0.1","ifindex":2}}}"#;
    sb.ok(&format!("printf '%s' '{hostile}' > /run/nsnet/state.json"));
    let out = sb.nsnet(["down"]).output().unwrap();
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert_eq!(said.lines().count(), 1, "{said}");
    assert!(
        said.contains("the interface of the host's default route"),
        "{said}"
    );
    assert!(said.contains("move it away to start afresh"), "{said}");
    assert_same(&before, &sb.snapshot());
}

#[test]
fn forget_keeps_what_is_still_nsnets_unless_forced() {
    let sb = sandbox!();
    let before = sb.snapshot();
    sb.nsnet(["bridge", "up", "red", "blue"]).assert().success();
    sb.nsnet(["forget", "red"])
        .assert()
        .code(1)
        .stderr(contains("is still the one nsnet made"));
    sb.nsnet(["forget", "nothing"])
        .assert()
        .code(1)
        .stderr(contains(
            "`nothing` is no namespace, bridge or interface in nsnet's record",
        ));
    sb.nsnet(["forget", "--force", "red"])
        .assert()
        .success()
        .stderr(contains("namespace `red` is left on the host"));
    sb.nsnet(["down"]).assert().success();
    // red, its port and its cable stay: nsnet no longer knows them.
    assert_eq!(sb.ok("ip netns list | cut -d' ' -f1"), "red\n");
    sb.ok("ip netns del red && ip link del nv-red 2>/dev/null; true");
    assert_same(&before, &sb.snapshot());
}
