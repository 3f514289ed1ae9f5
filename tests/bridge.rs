//! `nsnet bridge`: real namespaces on a real bridge, checked with real
//! traffic, in a throwaway host.

mod common;

use common::assert_same;
use predicates::str::contains;

#[test]
fn bridge_up_connects_namespaces_to_each_other_and_the_host_and_down_restores_the_host() {
    let mut sb = sandbox!();
    let before = sb.snapshot();
    sb.nsnet(["bridge", "up", "red", "blue"])
        .assert()
        .success()
        .stdout(contains("nsnet0 gateway 10.200.0.1/24"));
    assert!(sb.pings(Some("red"), "10.200.0.3"), "red reaches blue");
    assert!(sb.pings(Some("blue"), "10.200.0.2"), "blue reaches red");
    assert!(
        sb.pings(None, "10.200.0.2") && sb.pings(None, "10.200.0.3"),
        "the host reaches both"
    );
    assert!(
        sb.pings(Some("red"), "10.200.0.1"),
        "red reaches its gateway"
    );
    assert!(sb.pings(Some("red"), "127.0.0.1"), "loopback is up in red");
    assert_eq!(
        sb.transfer("tcp", "blue", Some("red"), "10.200.0.3", 7000),
        "hello over tcp to 10.200.0.3:7000"
    );
    assert_eq!(
        sb.transfer("udp", "red", None, "10.200.0.2", 7001),
        "hello over udp to 10.200.0.2:7001"
    );
    sb.nsnet(["bridge", "down"]).assert().success().stdout("");
    assert_same(&before, &sb.snapshot());
}

#[test]
fn bridge_up_twice_changes_nothing_and_more_namespaces_join_the_same_bridge() {
    let sb = sandbox!();
    sb.nsnet(["bridge", "up", "red", "blue"]).assert().success();
    let once = sb.snapshot();
    sb.nsnet(["bridge", "up", "red", "blue"]).assert().success();
    assert_same(&once, &sb.snapshot());
    sb.nsnet(["bridge", "up", "blue", "green"])
        .assert()
        .success()
        .stdout(contains("green"));
    assert!(
        sb.pings(Some("green"), "10.200.0.2"),
        "green (10.200.0.4) reaches red"
    );
    let json = sb
        .nsnet(["bridge", "up", "green", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let bridge: serde_json::Value = serde_json::from_slice(&json).unwrap();
    let addresses: Vec<&str> = bridge["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["address"].as_str().unwrap())
        .collect();
    assert_eq!(addresses, ["10.200.0.2", "10.200.0.3", "10.200.0.4"]);
    sb.nsnet(["bridge", "down"]).assert().success();
    sb.nsnet(["bridge", "down"]).assert().success();
}

#[test]
fn bridge_down_with_namespaces_detaches_only_those() {
    let sb = sandbox!();
    sb.nsnet(["bridge", "up", "red", "blue", "green"])
        .assert()
        .success();
    sb.nsnet(["bridge", "down", "red"]).assert().success();
    assert!(
        !sb.ok("ip netns list").contains("red"),
        "red was made by bridge up, so it goes"
    );
    assert!(!sb.ok("ip -br link").contains("nv-red"));
    assert!(
        sb.pings(Some("blue"), "10.200.0.4"),
        "blue still reaches green"
    );
    sb.nsnet(["bridge", "up", "red"]).assert().success();
    assert!(
        sb.pings(Some("red"), "10.200.0.3"),
        "red rejoins with the lowest free address"
    );
}

#[test]
fn bridge_options_long_names_and_a_second_interface() {
    let sb = sandbox!();
    let before = sb.snapshot();
    let long_a = "ci-job-4711-integration-database-primary";
    let long_b = "ci-job-4711-integration-database-replica";
    sb.nsnet([
        "bridge",
        "up",
        long_a,
        long_b,
        "--bridge",
        "br-test",
        "--subnet",
        "192.168.15.0/28",
        "--ifname",
        "net0",
    ])
    .assert()
    .success();
    assert!(sb.pings(Some(long_a), "192.168.15.3"));
    assert!(sb.ok(&format!("ip -n {long_a} -br addr")).contains("net0"));
    // The same namespace on a second bridge, through a second interface.
    sb.nsnet([
        "bridge",
        "up",
        long_a,
        "--bridge",
        "br-two",
        "--subnet",
        "192.168.16.0/24",
        "--ifname",
        "net1",
    ])
    .assert()
    .success();
    sb.nsnet(["bridge", "up", "solo", "--bridge", "br-two"])
        .assert()
        .success();
    assert!(
        sb.pings(Some("solo"), "192.168.16.2"),
        "solo reaches the first namespace through br-two"
    );
    let host_ends = sb.ok("ip -br link | cut -d@ -f1 | awk '{print $1}'");
    for end in host_ends.lines().filter(|l| l.starts_with("nv")) {
        assert!(end.len() <= 15, "{end}");
    }
    sb.nsnet(["bridge", "down", "--bridge", "br-two"])
        .assert()
        .success();
    sb.nsnet(["bridge", "down", "--bridge", "br-test"])
        .assert()
        .success();
    assert_same(&before, &sb.snapshot());
}

#[test]
fn the_default_subnet_skips_one_already_routed() {
    let sb = sandbox!();
    sb.ok("ip link add taken type bridge && ip addr add 10.200.0.1/24 dev taken && ip link set taken up");
    sb.nsnet(["bridge", "up", "red"])
        .assert()
        .success()
        .stdout(contains("10.200.1.1/24"));
    assert!(sb.pings(Some("red"), "10.200.1.1"));
    sb.nsnet([
        "bridge",
        "up",
        "blue",
        "--bridge",
        "other",
        "--subnet",
        "10.200.0.0/25",
    ])
    .assert()
    .code(2)
    .stderr(contains("overlaps `10.200.0.0/24`"));
}

#[test]
fn bridge_down_refuses_while_processes_run_unless_forced() {
    let mut sb = sandbox!();
    let before = sb.snapshot();
    sb.nsnet(["bridge", "up", "red"]).assert().success();
    sb.occupy("red");
    sb.nsnet(["bridge", "down"])
        .assert()
        .code(1)
        .stderr(contains("still has processes inside"));
    assert!(sb.pings(None, "10.200.0.2"), "nothing was changed");
    sb.nsnet(["bridge", "down", "--force"]).assert().success();
    assert_same(&before, &sb.snapshot());
}

#[test]
fn concurrent_bridge_ups_take_turns_and_hand_out_distinct_addresses() {
    let sb = sandbox!();
    let nsnet = env!("CARGO_BIN_EXE_nsnet");
    sb.ok(&format!(
        "for i in 1 2 3 4 5 6; do {nsnet} -q bridge up ns$i > /dev/null & done; \
         fail=0; for job in $(jobs -p); do wait $job || fail=1; done; exit $fail"
    ));
    let addresses =
        sb.ok("for i in 1 2 3 4 5 6; do ip -n ns$i -4 -o addr show eth0 | awk '{print $4}'; done");
    let mut seen: Vec<&str> = addresses.lines().collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 6, "distinct addresses: {addresses}");
    for i in 2..=6 {
        assert!(sb.pings(Some("ns1"), seen[i - 1].trim_end_matches("/24")));
    }
}

#[test]
fn bridge_up_connects_namespaces_on_a_docker_like_host() {
    // br_netfilter passes bridged frames through iptables, FORWARD drops.
    let sb = sandbox!();
    sb.ok("sysctl -qw net.bridge.bridge-nf-call-iptables=1 && iptables -P FORWARD DROP");
    let before = sb.snapshot();
    sb.nsnet(["bridge", "up", "red", "blue"]).assert().success();
    assert!(
        sb.pings(Some("red"), "10.200.0.3"),
        "red reaches blue across the bridge"
    );
    sb.nsnet(["bridge", "down"]).assert().success();
    assert_same(&before, &sb.snapshot());
    assert!(sb.ok("iptables -S FORWARD").starts_with("-P FORWARD DROP"));
}

#[test]
fn bridge_up_remakes_a_namespace_deleted_by_hand() {
    let mut sb = sandbox!();
    let before = sb.snapshot();
    sb.nsnet(["bridge", "up", "red", "blue"]).assert().success();
    sb.nsnet(["nat", "up"]).assert().success();
    sb.nsnet(["publish", "add", "red", "8080:80"])
        .assert()
        .success();
    // The kernel removes nv-red a moment after red: wait, as a hand would.
    sb.ok("ip netns del red; for i in $(seq 250); do \
           ip link show nv-red >/dev/null 2>&1 || break; sleep 0.02; done");
    sb.nsnet(["bridge", "up", "red", "blue"])
        .assert()
        .success()
        .stderr(contains(
            "namespace `red` was deleted by hand; making it again",
        ));
    assert!(
        sb.pings(Some("red"), "10.200.0.3"),
        "red is back on the bridge"
    );
    assert!(
        sb.ok("ip netns exec red ip route")
            .starts_with("default via 10.200.0.1")
    );
    sb.serve("red", "tcp", 80);
    assert_eq!(
        sb.ask(Some("blue"), "tcp", "10.200.0.1", 8080, true),
        "red from 10.200.0.1",
        "its port is published again"
    );
    sb.nsnet(["status"])
        .assert()
        .success()
        .stdout(contains("no drift"));
    sb.stop_background();
    sb.nsnet(["down"]).assert().success();
    assert_same(&before, &sb.snapshot());
}

#[test]
fn the_second_tutorials_addresses_host_last_and_one_asked_for() {
    let mut sb = sandbox!();
    sb.outside();
    let before = sb.snapshot();
    // The post's layout: red .1, blue .2, orange .3, green .4, the host .5.
    sb.nsnet([
        "bridge",
        "up",
        "red",
        "blue",
        "orange",
        "green",
        "--bridge",
        "v-net-0",
        "--subnet",
        "192.168.15.0/24",
        "--gateway",
        "192.168.15.5",
    ])
    .assert()
    .success()
    .stdout(contains("v-net-0 gateway 192.168.15.5/24"));
    for (ns, port) in [("red", 7001), ("green", 7004)] {
        sb.serve(ns, "tcp", port);
    }
    assert_eq!(
        sb.ask(None, "tcp", "192.168.15.1", 7001, true),
        "red from 192.168.15.5",
        "192.168.15.1 is red, and the host answers from .5"
    );
    assert_eq!(
        sb.ask(Some("red"), "tcp", "192.168.15.4", 7004, true),
        "green from 192.168.15.1"
    );
    // A namespace at an address of its own, without a default route.
    sb.nsnet([
        "bridge",
        "up",
        "purple",
        "--bridge",
        "v-net-0",
        "--address",
        "purple=192.168.15.200",
        "--no-default-route",
    ])
    .assert()
    .success()
    .stdout(contains("purple"));
    sb.serve("purple", "tcp", 7200);
    assert_eq!(
        sb.ask(Some("blue"), "tcp", "192.168.15.200", 7200, true),
        "purple from 192.168.15.2"
    );
    assert_eq!(
        sb.ok("ip -n purple route show default"),
        "",
        "no default route"
    );
    assert!(
        sb.pings(Some("red"), "172.31.0.1"),
        "red routes through its default"
    );
    assert!(
        !sb.pings(Some("purple"), "172.31.0.1"),
        "purple has no way there"
    );
    let dir = sb.ok("ip -n red route show default");
    assert_eq!(dir.trim(), "default via 192.168.15.5 dev eth0");
    let refused: &[(&[&str], &str)] = &[
        (
            &[
                "bridge",
                "up",
                "teal",
                "--bridge",
                "v-net-0",
                "--address",
                "teal=192.168.15.1",
            ],
            "--address for `teal` `192.168.15.1` is already `red`'s on bridge `v-net-0` (choose another address)",
        ),
        (
            &[
                "bridge",
                "up",
                "teal",
                "--bridge",
                "v-net-0",
                "--address",
                "teal=192.168.16.1",
            ],
            "is not a host address of subnet `192.168.15.0/24` (it is outside it)",
        ),
        (
            &[
                "bridge",
                "up",
                "teal",
                "--bridge",
                "v-net-0",
                "--gateway",
                "192.168.15.9",
            ],
            "bridge `v-net-0` has gateway 192.168.15.5, and nsnet does not move the gateway",
        ),
        (
            &[
                "bridge",
                "up",
                "teal",
                "--bridge",
                "br9",
                "--gateway",
                "10.9.0.9",
            ],
            "--gateway `10.9.0.9` needs --subnet",
        ),
        (
            &["bridge", "up", "teal", "--address", "teal"],
            "`teal` is not NS=ADDRESS",
        ),
        (
            &[
                "bridge",
                "up",
                "teal",
                "--subnet",
                "10.9.0.0/24",
                "--gateway",
                "10.9.0.255",
            ],
            "(it is the broadcast address)",
        ),
    ];
    let now = sb.snapshot();
    for (args, message) in refused {
        sb.refused(args, message, &now);
    }
    sb.stop_background();
    sb.nsnet(["down"]).assert().success();
    assert_same(&before, &sb.snapshot());
}

#[test]
fn a_containers_namespace_gets_the_next_free_eth_and_keeps_its_default_route() {
    let mut sb = sandbox!();
    // A container as a runtime leaves it: eth0 on its own network, and its
    // default route through that network's gateway.
    sb.ok(
        "ip netns add box && ip link add cni0 type veth peer name eth0 netns box && \
         ip addr add 10.88.0.1/16 dev cni0 && ip link set cni0 up && \
         ip -n box addr add 10.88.0.2/16 dev eth0 && ip -n box link set eth0 up && \
         ip -n box link set lo up && ip -n box route add default via 10.88.0.1",
    );
    let before = sb.snapshot();
    sb.refused(
        &["bridge", "up", "box", "--ifname", "eth0"],
        "namespace `box` already has an interface `eth0` (choose another --ifname, such as `eth1`)",
        &before,
    );
    sb.nsnet(["bridge", "up", "box", "red"])
        .assert()
        .success()
        .stderr(contains("`box` already has `eth0`: its port on `nsnet0` is `eth1`"))
        .stderr(contains(
            "`box` keeps its own default route (default via 10.88.0.1 dev eth0); nsnet adds only the route to 10.200.0.0/24",
        ));
    sb.serve("box", "tcp", 7000);
    assert_eq!(
        sb.ask(Some("red"), "tcp", "10.200.0.2", 7000, true),
        "box from 10.200.0.3"
    );
    assert_eq!(
        sb.ok("ip -n box route show default").trim(),
        "default via 10.88.0.1 dev eth0"
    );
    assert!(sb.pings(Some("box"), "10.88.0.1"), "its own network still");
    sb.stop_background();
    sb.nsnet(["down"]).assert().success();
    assert_same(&before, &sb.snapshot());
}

#[test]
fn a_namespace_joining_never_cuts_the_others_off_their_gateway() {
    let sb = sandbox!();
    // As on a Docker host: br_netfilter passes bridged frames to iptables,
    // and then drops frames sent to a MAC address the bridge no longer has.
    sb.ok("sysctl -qw net.bridge.bridge-nf-call-iptables=1");
    let before = sb.snapshot();
    sb.nsnet(["bridge", "up", "red"]).assert().success();
    assert!(sb.pings(Some("red"), "10.200.0.1"));
    let mac = sb.ok("cat /sys/class/net/nsnet0/address");
    assert_eq!(mac.trim(), "02:c2:18:71:0f:6c", "derived from the name");
    assert_eq!(
        sb.ok("cat /sys/class/net/nsnet0/addr_assign_type").trim(),
        "3",
        "set"
    );
    // Each new port has a random MAC; left to itself the bridge would take
    // any lower one, and red's cached gateway address would go dead.
    for i in 0..12 {
        sb.nsnet(["bridge", "up", &format!("n{i}")])
            .assert()
            .success();
        assert_eq!(sb.ok("cat /sys/class/net/nsnet0/address"), mac);
        assert!(
            sb.pings(Some("red"), "10.200.0.1"),
            "red reaches its gateway after n{i} joined"
        );
    }
    sb.nsnet(["down"]).assert().success();
    assert_same(&before, &sb.snapshot());
}
