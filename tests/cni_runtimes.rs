//! nsnet as a CNI plugin, fed what real runtimes send and what happens to
//! them: containerd's `null` lists and capitalised keys, CRI-O's GC with no
//! container left, a DEL after the namespace is gone or the configuration
//! changed, a namespace replaced while an ADD waited, a bridge the host
//! will not let go. Each in its own throwaway host, ending as it began.

mod common;

use common::cni::{Answer, add, call, call_with, conf, del, path, with_ports};
use common::{Sandbox, assert_same};
use serde_json::{Value, json};

/// A second network, `other` on bridge `cni1`, 10.89.0.0/24, with NAT.
fn other(version: &str) -> Value {
    let mut c = conf(version);
    c["name"] = json!("other");
    c["bridge"] = json!("cni1");
    c["subnet"] = json!("10.89.0.0/24");
    c
}

fn ok(a: &Answer, what: &str) {
    assert_eq!(a.code, 0, "{what}: {} {}", a.out, a.err);
}

#[test]
fn containerds_null_lists_and_capitalised_keys_are_read() {
    let mut sb = sandbox!();
    sb.outside();
    let before = sb.snapshot();
    // containerd's CRI: a pod without host ports sends `null`, one with
    // them Go's field names, HostIP always present.
    let none = with_ports(&conf("1.0.0"), Value::Null);
    let web = with_ports(
        &conf("1.0.0"),
        json!([{"HostPort": 8080, "ContainerPort": 80, "Protocol": "tcp", "HostIP": ""}]),
    );
    let r1 = add(&sb, &none, "c1", "ctrd1");
    let r2 = add(&sb, &web, "c2", "ctrd2");
    sb.serve("ctrd2", "tcp", 80);
    assert_eq!(
        sb.ask(Some("outside"), "tcp", "172.31.0.1", 8080, true),
        "ctrd2 from 172.31.0.2"
    );
    sb.stop_background();
    assert!(sb.pings(Some("ctrd1"), "10.88.0.3"));
    del(&sb, &none, "c1", "ctrd1", &r1);
    // CRI's second DEL of a pod (RemovePodSandbox): no namespace, no result.
    ok(&call(&sb, "DEL", ("c1", "", "eth0"), &none), "second DEL");
    // CRI-O's GC of a network with no pod left lists `null`.
    let mut gc = with_ports(&conf("1.1.0"), Value::Null);
    gc["cni.dev/valid-attachments"] = Value::Null;
    ok(&call(&sb, "GC", ("", "", ""), &gc), "GC of null");
    let status = sb.nsnet(["status"]).output().unwrap();
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(!status.contains("container c2"), "{status}");
    let _ = r2;
    sb.ok("ip netns del ctrd1 && ip netns del ctrd2");
    assert_same(&before, &sb.snapshot());
}

#[test]
fn del_takes_the_namespace_and_the_configuration_as_they_are_now() {
    let sb = sandbox!();
    let before = sb.snapshot();
    let net = conf("1.0.0");
    // The namespace gone, its path still given (libcni's GC of cached
    // attachments sends the cached path).
    let r = add(&sb, &net, "d1", "del1");
    sb.ok("ip netns del del1");
    let mut stdin = net.clone();
    stdin["prevResult"] = r;
    ok(
        &call(&sb, "DEL", ("d1", &path("del1"), "eth0"), &stdin),
        "gone",
    );
    // A namespace that was never in /run/netns (`ctr run --cni`).
    ok(
        &call(&sb, "DEL", ("d2", "/proc/self/ns/net", "eth0"), &net),
        "/proc path",
    );
    assert_same(&before, &sb.snapshot());
    // An ADD the configuration cannot make; the runtime's DEL after it.
    sb.ok("ip netns add del3");
    let sctp = with_ports(
        &net,
        json!([{"hostPort": 9132, "containerPort": 9132, "protocol": "sctp"}]),
    );
    let a = call(&sb, "ADD", ("d3", &path("del3"), "eth0"), &sctp);
    assert_eq!(a.out["code"], 7, "{}", a.out);
    ok(
        &call(&sb, "DEL", ("d3", &path("del3"), "eth0"), &sctp),
        "sctp",
    );
    // The configuration edited between ADD and DEL: a key nsnet does not
    // know, a bridge name it would refuse. The attachment still goes.
    let r = add(&sb, &net, "d4", "del4");
    let mut edited = net.clone();
    edited["mtu"] = json!(1400);
    edited["bridge"] = json!("a-name-far-too-long-for-a-bridge");
    edited["prevResult"] = r;
    ok(
        &call(&sb, "DEL", ("d4", &path("del4"), "eth0"), &edited),
        "edited",
    );
    sb.ok("ip netns del del3 && ip netns del del4");
    assert_same(&before, &sb.snapshot());
}

#[test]
fn del_under_another_networks_name_still_takes_the_bridge_it_leaves_empty() {
    let sb = sandbox!();
    let before = sb.snapshot();
    let (a, b) = (conf("1.0.0"), other("1.0.0"));
    let ra = add(&sb, &a, "na", "neta");
    let rb = add(&sb, &b, "nb", "netb");
    // The network renamed in the runtime's file between ADD and DEL.
    del(&sb, &b, "na", "neta", &ra);
    assert!(sb.sh("ip link show cni0").stdout.is_empty(), "cni0 stays");
    assert!(sb.pings(Some("netb"), "10.89.0.1"));
    del(&sb, &b, "nb", "netb", &rb);
    sb.ok("ip netns del neta && ip netns del netb");
    assert_same(&before, &sb.snapshot());
}

#[test]
fn an_add_refuses_a_namespace_made_again_while_it_waited() {
    let mut sb = sandbox!();
    let net = conf("1.0.0");
    sb.ok("ip netns add wait1 && mkdir -p /run/nsnet");
    // Another nsnet holds the lock while the runtime's namespace is
    // deleted and a new one of the same name appears.
    // -o: the lock is flock's alone, so killing it lets go.
    let holder = sb.spawn("exec flock -o /run/nsnet/lock sleep 30");
    sb.wait_exec(holder, "flock");
    let answer = std::thread::scope(|s| {
        let waiting = s.spawn(|| call(&sb, "ADD", ("w1", &path("wait1"), "eth0"), &net));
        std::thread::sleep(std::time::Duration::from_millis(300));
        sb.ok("ip netns del wait1 && ip netns add wait1");
        let before = sb.snapshot();
        sb.ok(&format!("kill {holder}"));
        (waiting.join().unwrap(), before)
    });
    let (a, before) = answer;
    assert_eq!(a.code, 1, "{}", a.err);
    assert_eq!(a.out["code"], 4, "{}", a.out);
    assert!(
        a.out["msg"]
            .as_str()
            .unwrap()
            .contains("gone or was made again"),
        "{}",
        a.out
    );
    assert_same(&before, &sb.snapshot());
}

#[test]
fn a_del_racing_the_deletion_of_its_namespace_succeeds() {
    let mut sb = sandbox!();
    let before = sb.snapshot();
    let net = conf("1.0.0");
    sb.ok("mkdir -p /run/nsnet");
    // The runtime deletes the namespace right as its DEL gets the lock: the
    // kernel takes the veth away while nsnet plans or runs its deletion.
    for k in 0..12 {
        let ns = format!("race{k}");
        let r = add(&sb, &net, &format!("r{k}"), &ns);
        let holder = sb.spawn("exec flock -o /run/nsnet/lock sleep 30");
        sb.wait_exec(holder, "flock");
        let a = std::thread::scope(|s| {
            let (sb, net, r, ns) = (&sb, &net, &r, &ns);
            let waiting = s.spawn(move || {
                let mut stdin = net.clone();
                stdin["prevResult"] = r.clone();
                call(sb, "DEL", (&format!("r{k}"), &path(ns), "eth0"), &stdin)
            });
            std::thread::sleep(std::time::Duration::from_millis(200));
            // The lock let go 0 to 11 ms after the namespace's deletion.
            sb.ok(&format!(
                "ip netns del {ns}; sleep 0.0{k:02}; kill {holder}"
            ));
            waiting.join().unwrap()
        });
        ok(&a, &format!("DEL {k}"));
        sb.stop_background();
    }
    assert_same(&before, &sb.snapshot());
}

#[test]
fn a_bridge_the_host_will_not_let_go_stays_for_a_later_del_and_the_del_succeeds() {
    let sb = sandbox!();
    let before = sb.snapshot();
    let net = conf("1.0.0");
    let r = add(&sb, &net, "k1", "keep1");
    // Another tool jumps to nsnet's chain: the kernel refuses to delete it.
    sb.ok("iptables -I INPUT -j NSNET-FORWARD");
    let mut stdin = net.clone();
    stdin["prevResult"] = r;
    let a = call(&sb, "DEL", ("k1", &path("keep1"), "eth0"), &stdin);
    ok(&a, "DEL");
    assert!(a.err.contains("unused bridge stays"), "{}", a.err);
    let status = sb.nsnet(["status"]).output().unwrap();
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(!status.contains("container k1"), "{status}");
    assert!(status.contains("cni0"), "{status}");
    // Once the jump is gone, the next DEL (of anything) takes the bridge.
    sb.ok("iptables -D INPUT -j NSNET-FORWARD");
    ok(&call(&sb, "DEL", ("none", "", "eth0"), &net), "later DEL");
    sb.ok("ip netns del keep1");
    assert_same(&before, &sb.snapshot());
}

#[test]
fn a_fault_while_removing_the_unused_bridge_leaves_it_whole_for_the_next_del() {
    let sb = sandbox!();
    let before = sb.snapshot();
    let net = with_ports(
        &conf("1.0.0"),
        json!([{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]),
    );
    let mut steps = usize::MAX;
    let mut k = 1;
    while k <= steps {
        let r = add(&sb, &net, "f1", "fault1");
        let mut stdin = net.clone();
        stdin["prevResult"] = r;
        // The first plan unplugs the container; the second, failing at
        // step k, removes the bridge.
        let fail = format!("{k}@2");
        let a = call_with(
            &sb,
            "DEL",
            ("f1", &path("fault1"), "eth0"),
            &stdin,
            &[("NSNET_FAIL_AT", &fail)],
        );
        ok(
            &a,
            &format!("DEL, step {k} of the bridge's removal failing"),
        );
        let line = (a.err.lines())
            .find(|l| l.contains("unused bridge stays"))
            .unwrap_or_else(|| panic!("step {k}: {}", a.err));
        let rest = line.split(&format!("step {k} of ")).nth(1).unwrap();
        steps = rest.split(':').next().unwrap().parse().unwrap();
        let status = sb.nsnet(["status"]).output().unwrap();
        assert!(status.status.success());
        let text = String::from_utf8_lossy(&status.stdout);
        // The bridge stays, whole, in the record and on the host.
        assert!(text.contains("cni0"), "{text}");
        assert!(!sb.ok("ip -br link show cni0").is_empty());
        assert!(!text.contains("container f1"), "{text}");
        ok(&call(&sb, "DEL", ("none", "", "eth0"), &net), "later DEL");
        sb.ok("ip netns del fault1");
        assert_same(&before, &sb.snapshot());
        k += 1;
    }
    assert!(steps >= 2, "{steps}");
}

/// A container as ctr and nerdctl give it: a process in a network
/// namespace of its own, named nowhere. Returns its pid.
fn container(sb: &mut Sandbox) -> u32 {
    let pid = sb.spawn("exec unshare --net sleep 60");
    sb.wait_exec(pid, "sleep");
    pid
}

#[test]
fn a_process_namespace_named_nowhere_is_named_after_the_container_and_let_go() {
    let mut sb = sandbox!();
    let before = sb.snapshot();
    let (a, b) = (conf("1.0.0"), other("1.0.0"));
    let pid = container(&mut sb);
    let netns = format!("/proc/{pid}/ns/net");
    // ctr's ADD: /proc/PID/ns/net, the container id `NAMESPACE-ID`.
    let ra = call(&sb, "ADD", ("default-web", &netns, "eth0"), &a);
    ok(&ra, "ADD eth0");
    assert_eq!(ra.out["interfaces"][2]["sandbox"], netns.as_str());
    assert_eq!(sb.ok("ip netns list").trim(), "cni-default-web (id: 0)");
    // A second interface of the same container on another network.
    ok(
        &call(&sb, "ADD", ("default-web", &netns, "eth1"), &b),
        "ADD eth1",
    );
    let inside = sb.ok(&format!("nsenter --net={netns} ip -br addr"));
    assert!(
        inside.contains("10.88.0.2/24") && inside.contains("10.89.0.2/24"),
        "{inside}"
    );
    assert!(sb.pings(None, "10.88.0.2"));
    assert!(sb.pings(Some("cni-default-web"), "10.89.0.1"));
    // ctr's DEL: no namespace, the result of the ADD.
    let mut stdin = a.clone();
    stdin["prevResult"] = ra.out.clone();
    ok(
        &call(&sb, "DEL", ("default-web", "", "eth0"), &stdin),
        "DEL eth0",
    );
    assert!(
        !sb.ok("ip netns list").is_empty(),
        "eth1 still uses the name"
    );
    ok(
        &call(&sb, "DEL", ("default-web", "", "eth1"), &b),
        "DEL eth1",
    );
    // The name goes; the process keeps its namespace, as it had it.
    assert_eq!(sb.ok("ip netns list"), "");
    let left = sb.ok(&format!("nsenter --net={netns} ip -br link"));
    assert_eq!(left.lines().count(), 1, "{left}");
    sb.stop_background();
    assert_same(&before, &sb.snapshot());
}

/// Ends the container: once its process has exited (a zombie of the test
/// until reaped), it holds no namespace.
fn end(sb: &Sandbox, pid: u32) {
    sb.ok(&format!(
        "kill {pid}; while readlink /proc/{pid}/ns/net >/dev/null 2>&1; do sleep 0.05; done"
    ));
}

#[test]
fn a_container_gone_without_a_del_is_unplugged_by_the_next_request() {
    let mut sb = sandbox!();
    let before = sb.snapshot();
    let net = conf("1.0.0");
    // `ctr run -d --cni`: ADD, then the container ends and no DEL ever comes.
    let pid = container(&mut sb);
    ok(
        &call(
            &sb,
            "ADD",
            ("default-d1", &format!("/proc/{pid}/ns/net"), "eth0"),
            &net,
        ),
        "ADD",
    );
    end(&sb, pid);
    // nsnet's name alone holds the namespace, and with it the veth.
    assert!(!sb.ok("ip netns list").is_empty());
    // The same id again (ctr reuses it): the dead attachment goes first.
    let pid = container(&mut sb);
    let again = call(
        &sb,
        "ADD",
        ("default-d1", &format!("/proc/{pid}/ns/net"), "eth0"),
        &net,
    );
    ok(&again, "ADD again");
    assert_eq!(again.out["ips"][0]["address"], "10.88.0.2/24");
    end(&sb, pid);
    // Any later request unplugs it, the bridge with it.
    ok(
        &call(&sb, "DEL", ("unrelated", "", "eth0"), &net),
        "a later DEL",
    );
    sb.stop_background();
    assert_same(&before, &sb.snapshot());
}

#[test]
fn check_answers_for_its_own_network_only() {
    let sb = sandbox!();
    let (a, b) = (conf("1.0.0"), other("1.0.0"));
    let ra = add(&sb, &a, "ca", "chka");
    let rb = add(&sb, &b, "cb", "chkb");
    // The other network's NAT removed by hand.
    sb.ok("iptables -t nat -D NSNET-POSTROUTING -s 10.89.0.0/24 ! -o cni1 -m comment --comment nsnet:nat:cni1 -j MASQUERADE");
    let mut check = a.clone();
    check["prevResult"] = ra;
    ok(
        &call(&sb, "CHECK", ("ca", &path("chka"), "eth0"), &check),
        "CHECK a",
    );
    let mut check = b.clone();
    check["prevResult"] = rb;
    let x = call(&sb, "CHECK", ("cb", &path("chkb"), "eth0"), &check);
    assert_eq!(x.out["code"], 101, "{}", x.out);
    // One problem: said once, in `msg`.
    assert!(x.out.get("details").is_none(), "{}", x.out);
}

#[test]
fn configurations_nsnet_cannot_serve_are_invalid_and_said_in_their_own_terms() {
    let sb = sandbox!();
    sb.ok("ip netns add bad1");
    add(&sb, &conf("1.0.0"), "first", "bad0");
    let before = sb.snapshot();
    let mut v6 = conf("1.0.0");
    v6["subnet"] = json!("fd00:1::/64");
    let mut taken = other("1.0.0");
    taken["bridge"] = json!("cni0");
    let mut gateway = conf("1.0.0");
    gateway["gateway"] = json!("10.88.0.254");
    for (what, stdin, word) in [
        ("IPv6 only", v6, "IPv4"),
        ("another network's bridge", taken, "serves CNI network"),
        ("a moved gateway", gateway, "`gateway`"),
    ] {
        let a = call(&sb, "ADD", ("b1", &path("bad1"), "eth0"), &stdin);
        assert_eq!(a.out["code"], 7, "{what}: {}", a.out);
        let msg = a.out["msg"].as_str().unwrap();
        assert!(msg.contains(word), "{what}: {msg}");
        // Options only inside a quoted command to run at a terminal.
        let prose: String = msg.split('`').step_by(2).collect();
        assert!(
            !prose.contains("--"),
            "{what}: a command-line option in {msg}"
        );
        assert!(!msg.contains('\n'), "{what}: {msg}");
        assert_same(&before, &sb.snapshot());
    }
}

#[test]
fn host_ip_0_0_0_0_publishes_on_every_ipv4_address_and_no_ipv6_one() {
    let mut sb = sandbox!();
    sb.outside();
    let mut net = conf("1.0.0");
    net.as_object_mut().unwrap().remove("subnet");
    net["subnets"] = json!(["10.88.0.0/24", "fd00:88::/64"]);
    let web = with_ports(
        &net,
        json!([{"hostPort": 8080, "containerPort": 80, "protocol": "tcp", "hostIP": "0.0.0.0"}]),
    );
    add(&sb, &web, "h1", "hip1");
    sb.serve("hip1", "tcp", 80);
    assert_eq!(
        sb.ask(Some("outside"), "tcp", "172.31.0.1", 8080, true),
        "hip1 from 172.31.0.2"
    );
    sb.stop_background();
    let v6 = sb.ok("ip6tables-save -t nat");
    assert!(!v6.contains("--dport 8080"), "{v6}");
    let v4 = sb.ok("iptables-save -t nat");
    assert!(v4.contains("--dport 8080"), "{v4}");
}
