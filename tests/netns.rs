//! `nsnet netns`: add, del, list, exec, attach and detach, in a throwaway host.

mod common;

use common::assert_same;
use predicates::prelude::*;
use predicates::str::contains;

#[test]
fn add_list_and_del_round_trip() {
    let sb = sandbox!();
    let before = sb.snapshot();
    sb.nsnet(["netns", "add", "red", "blue"])
        .assert()
        .success()
        .stdout("");
    assert_eq!(sb.ok("ip netns list | cut -d' ' -f1 | sort"), "blue\nred\n");
    assert!(sb.pings(Some("red"), "127.0.0.1"), "loopback is up");
    sb.nsnet(["netns", "add", "red"]).assert().success();
    let out = sb
        .nsnet(["netns", "list"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "blue             nsnet\nred              nsnet\n"
    );
    sb.nsnet(["netns", "del", "red", "blue"]).assert().success();
    sb.nsnet(["netns", "del", "red"]).assert().success();
    assert_same(&before, &sb.snapshot());
}

#[test]
fn list_shows_every_namespace_and_json_is_machine_readable() {
    let sb = sandbox!();
    sb.ok("ip netns add other");
    sb.nsnet(["bridge", "up", "red", "--subnet", "10.9.0.0/24"])
        .assert()
        .success();
    let out = sb
        .nsnet(["netns", "list", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let list: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        list,
        serde_json::json!([
            {"name": "other", "origin": "external", "present": true, "interfaces": []},
            {"name": "red", "origin": "nsnet", "present": true,
             "interfaces": [{"ifname": "eth0", "address": "10.9.0.2/24", "bridge": "nsnet0"}]}
        ])
    );
    sb.nsnet(["netns", "del", "other"])
        .assert()
        .code(1)
        .stderr(contains("not created by nsnet"));
    assert!(
        sb.ok("ip netns list").contains("other"),
        "nsnet leaves what it did not make"
    );
}

#[test]
fn exec_runs_inside_and_passes_the_exit_status_through() {
    let sb = sandbox!();
    sb.nsnet(["netns", "add", "red"]).assert().success();
    sb.nsnet(["netns", "exec", "red", "--", "ip", "-br", "link"])
        .assert()
        .success()
        .stdout(contains("lo").and(contains("eth").not()));
    sb.nsnet(["netns", "exec", "red", "--", "sh", "-c", "exit 7"])
        .assert()
        .code(7);
    sb.nsnet(["netns", "exec", "nowhere", "--", "true"])
        .assert()
        .code(1)
        .stderr(contains("namespace `nowhere` does not exist"));
}

#[test]
fn del_refuses_while_processes_run_and_force_still_removes_the_veths() {
    let mut sb = sandbox!();
    let before = sb.snapshot();
    sb.nsnet(["bridge", "up", "red", "blue"]).assert().success();
    sb.occupy("red");
    sb.nsnet(["netns", "del", "red"])
        .assert()
        .code(1)
        .stderr(contains("namespace `red` still has processes inside").and(contains("--force")));
    assert!(sb.pings(Some("red"), "10.200.0.3"), "red is untouched");
    sb.nsnet(["netns", "del", "red", "--force"])
        .assert()
        .success();
    // The process keeps the namespace alive, but its veth is gone from the host.
    assert!(!sb.ok("ip -br link").contains("nv-red"));
    assert!(!sb.ok("ip netns list").contains("red"));
    sb.stop_background();
    sb.nsnet(["bridge", "down"]).assert().success();
    assert_same(&before, &sb.snapshot());
}

#[test]
fn attach_names_a_running_process_namespace_and_detach_leaves_the_process() {
    let mut sb = sandbox!();
    let before = sb.snapshot();
    // A "container": a process in a network namespace of its own, no name.
    let pid = sb.spawn("exec unshare --net sleep 60");
    sb.wait_exec(pid, "sleep");
    let pid = pid.to_string();
    let pid = pid.as_str();
    sb.nsnet(["netns", "attach", "box", "--pid", pid])
        .assert()
        .success();
    sb.nsnet(["netns", "attach", "box", "--pid", pid])
        .assert()
        .success();
    sb.nsnet(["bridge", "up", "box", "--subnet", "10.8.0.0/24"])
        .assert()
        .success();
    assert!(
        sb.pings(None, "10.8.0.2"),
        "the host reaches the container through the bridge"
    );
    sb.nsnet(["netns", "list"])
        .assert()
        .stdout(contains(format!("attached:{pid}")));
    sb.nsnet(["netns", "del", "box"])
        .assert()
        .code(1)
        .stderr(contains("nsnet netns detach box"));
    sb.nsnet(["netns", "detach", "box"]).assert().success();
    assert!(
        !sb.ok("ip -br link").contains("nv-box"),
        "nsnet's veth left the container"
    );
    sb.ok(&format!("kill -0 {pid}"));
    sb.ok(&format!(
        "[ \"$(nsenter -t {pid} -n ip -br link | wc -l)\" = 1 ]"
    ));
    sb.nsnet(["bridge", "down"]).assert().success();
    sb.stop_background();
    assert_same(&before, &sb.snapshot());
}

#[test]
fn attach_refuses_bad_pids() {
    let sb = sandbox!();
    sb.nsnet(["netns", "attach", "box", "--pid", "999999999"])
        .assert()
        .code(1)
        .stderr(contains("there is no process with pid 999999999"));
    let mut sb = sb;
    let own = sb.spawn("exec sleep 60");
    sb.wait_exec(own, "sleep");
    sb.nsnet(["netns", "attach", "box", "--pid", &own.to_string()])
        .assert()
        .code(1)
        .stderr(contains("runs in the host's own network namespace"));
    sb.nsnet(["netns", "attach", "box", "--pid", "0"])
        .assert()
        .code(2);
    assert_eq!(sb.ok("ip netns list"), "");
}
