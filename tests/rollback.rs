//! Failures part-way through a real plan, from real causes: the executor
//! undoes every completed step and the host is as it was before.

mod common;

use common::assert_same;
use predicates::prelude::*;
use predicates::str::contains;

#[test]
fn bridge_up_rolls_back_when_a_namespace_already_holds_eth0() {
    let sb = sandbox!();
    // A namespace of nsnet's, given an eth0 by hand since: nsnet trusts its
    // record there and does not look inside, so the plan meets it.
    sb.nsnet(["netns", "add", "green"]).assert().success();
    sb.ok("ip -n green link add eth0 type bridge");
    let before = sb.snapshot();
    sb.nsnet(["bridge", "up", "red", "blue", "green"])
        .assert()
        .code(1)
        .stderr(
            contains(
                "step 12 of 26: `ip link add nv-green type veth peer name eth0 netns green` failed (in a batch)",
            )
            .and(contains("File exists"))
            .and(contains(
                "undid the 11 completed step(s), nothing was changed",
            )),
        );
    assert_same(&before, &sb.snapshot());
    // The record is untouched too: a second try after the fix succeeds.
    sb.ok("ip -n green link del eth0");
    sb.nsnet(["bridge", "up", "red", "blue", "green"])
        .assert()
        .success();
    assert!(sb.pings(Some("green"), "10.200.0.2"));
}

#[test]
fn a_failure_while_growing_a_bridge_keeps_what_was_there() {
    let sb = sandbox!();
    sb.nsnet(["bridge", "up", "red"]).assert().success();
    // blue, nsnet's, got a default route by hand since: adding nsnet's fails
    // (a namespace nsnet did not make would have kept its own instead).
    sb.nsnet(["netns", "add", "blue"]).assert().success();
    sb.ok("ip -n blue link add up0 type bridge && ip -n blue link set up0 up \
           && ip -n blue addr add 10.99.0.2/24 dev up0 && ip -n blue route add default via 10.99.0.1");
    let before = sb.snapshot();
    sb.nsnet(["bridge", "up", "blue"]).assert().code(1).stderr(
        contains("`ip -n blue route add default via 10.200.0.1` failed")
            .and(contains("File exists")),
    );
    assert_same(&before, &sb.snapshot());
    assert!(sb.pings(Some("red"), "10.200.0.1"), "red still works");
}

/// The nat and filter tables go to one `iptables-restore`, a transaction
/// each: when the kernel refuses the second at its COMMIT (a chain still
/// jumped to by a rule added by hand), the first has taken effect and is
/// undone, and only it.
#[test]
fn a_table_the_kernel_refuses_undoes_the_table_restored_before_it() {
    let sb = sandbox!();
    sb.nsnet(["bridge", "up", "red"]).assert().success();
    sb.nsnet(["publish", "add", "red", "8080:80"])
        .assert()
        .success();
    sb.ok("iptables -A INPUT -p udp -j NSNET-INPUT");
    let before = sb.snapshot();
    sb.nsnet(["publish", "del", "red", "8080"])
        .assert()
        .code(1)
        .stderr(
            contains("CHAIN_DEL failed")
                .and(contains("(in a batch)"))
                .and(contains("nothing was changed")),
        );
    assert_same(&before, &sb.snapshot());
}

#[test]
fn veth_add_rolls_back_the_namespace_it_created() {
    let sb = sandbox!();
    sb.ok("ip netns add blue && ip -n blue link add vc-red type bridge");
    let before = sb.snapshot();
    sb.nsnet(["veth", "add", "red", "blue", "--subnet", "10.3.0.0/24"])
        .assert()
        .code(1)
        .stderr(contains(
            "`ip -n red link add vc-blue type veth peer name vc-red netns blue` failed",
        ));
    assert_same(&before, &sb.snapshot());
    assert!(!sb.ok("ip netns list").contains("red"));
}

#[test]
fn a_name_already_taken_on_the_host_is_refused_before_any_change() {
    let sb = sandbox!();
    sb.ok("ip link add nv-blue type bridge");
    let before = sb.snapshot();
    sb.nsnet(["bridge", "up", "red", "blue"])
        .assert()
        .code(1)
        .stderr(contains(
            "interface `nv-blue`, which nsnet would use for `blue`, already exists",
        ));
    assert_same(&before, &sb.snapshot());
}

#[test]
fn a_read_only_proc_sys_fails_nat_up_part_way_and_it_rolls_back() {
    let sb = sandbox!();
    sb.nsnet(["bridge", "up", "red"]).assert().success();
    let before = sb.snapshot();
    let nsnet = env!("CARGO_BIN_EXE_nsnet");
    // The rules go in first; the sysctl step then meets a read-only /proc/sys.
    let out = sb.sh(&format!(
        "unshare --mount sh -c 'mount --bind -o ro /proc/sys /proc/sys && exec {nsnet} nat up'"
    ));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("`sysctl -w net.ipv4.ip_forward=1` failed"),
        "{stderr}"
    );
    assert!(
        stderr.contains("undid the 2 completed step(s), nothing was changed"),
        "{stderr}"
    );
    assert_same(&before, &sb.snapshot());
}

#[test]
fn without_iptables_nothing_is_changed_and_the_package_is_named() {
    let sb = sandbox!();
    let before = sb.snapshot();
    let nsnet = env!("CARGO_BIN_EXE_nsnet");
    let out = sb.sh(&format!(
        "unshare --mount sh -c 'for p in /usr/sbin/iptables-save /usr/sbin/iptables-restore; do \
         mount --bind /dev/null $p; done; exec {nsnet} bridge up red'"
    ));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "nsnet: `iptables-save` is not installed (install the `iptables` package, e.g. `apt-get install iptables`)"
    );
    assert_same(&before, &sb.snapshot());
}
