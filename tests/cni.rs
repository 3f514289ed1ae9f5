//! nsnet as a CNI plugin, driven the way a runtime drives it: the real
//! binary run with no arguments, the CNI_* environment and the network
//! configuration on stdin, in a throwaway host. The harness stores each
//! ADD's result and feeds it back as `prevResult`, as runtimes do; the
//! containers' namespaces are made by the harness, as a runtime makes them.

mod common;

use common::cni::{
    Answer, add, add_existing, answer, call, call_with, conf, del, path, with_ports,
};
use common::{Sandbox, assert_same};
use serde_json::{Value, json};
use std::process::Stdio;

#[test]
fn containers_reach_each_other_the_outside_and_a_published_port_then_leave_nothing() {
    let mut sb = sandbox!();
    sb.outside();
    let before = sb.snapshot();
    let net = conf("1.0.0");
    let web = with_ports(
        &net,
        json!([{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"},
               {"hostPort": 5353, "containerPort": 53, "protocol": "udp"}]),
    );
    let r1 = add(&sb, &web, "c1", "ctr1");
    let r2 = add(&sb, &net, "c2", "ctr2");
    // The result: bridge, host end, container end in its sandbox.
    assert_eq!(r1["cniVersion"], "1.0.0");
    assert_eq!(r1["interfaces"][0]["name"], "cni0");
    assert_eq!(r1["interfaces"][2]["name"], "eth0");
    assert_eq!(r1["interfaces"][2]["sandbox"], path("ctr1"));
    assert_eq!(r1["ips"][0]["address"], "10.88.0.2/24");
    assert_eq!(r1["ips"][0]["gateway"], "10.88.0.1");
    assert_eq!(r1["ips"][0]["interface"], 2);
    assert_eq!(
        r1["routes"][0],
        json!({"dst": "0.0.0.0/0", "gw": "10.88.0.1"})
    );
    assert_eq!(r2["ips"][0]["address"], "10.88.0.3/24");
    let mac = sb.ok("ip -n ctr1 -j link show eth0 | sed 's/.*\"address\":\"\\([^\"]*\\)\".*/\\1/'");
    assert_eq!(r1["interfaces"][2]["mac"], mac.trim());
    let host_end = r1["interfaces"][1]["name"].as_str().unwrap();
    assert!(
        sb.ok(&format!("ip link show {host_end}"))
            .contains("master cni0")
    );
    // Real traffic: container to container, to the internet through NAT.
    assert!(sb.pings(Some("ctr1"), "10.88.0.3"));
    assert!(sb.pings(Some("ctr2"), "198.51.100.7"));
    // The published ports, from another machine and from the host.
    sb.serve("ctr1", "tcp", 80);
    sb.serve("ctr1", "udp", 53);
    assert_eq!(
        sb.ask(Some("outside"), "tcp", "172.31.0.1", 8080, true),
        "ctr1 from 172.31.0.2"
    );
    assert!(
        sb.ask(None, "tcp", "127.0.0.1", 8080, true)
            .starts_with("ctr1 from")
    );
    assert_eq!(
        sb.ask(Some("outside"), "udp", "172.31.0.1", 5353, true),
        "ctr1 from 172.31.0.2"
    );
    sb.stop_background();
    // status shows them as the runtime's.
    let status = sb.nsnet(["status"]).output().unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("container c1 of CNI network pods"), "{text}");
    let graph = sb.nsnet(["graph"]).output().unwrap();
    let graph = String::from_utf8_lossy(&graph.stdout);
    assert!(graph.contains("ctr1 (container c1, CNI pods)"), "{graph}");
    // DEL, twice each; the runtime then deletes its namespaces.
    del(&sb, &web, "c1", "ctr1", &r1);
    del(&sb, &web, "c1", "ctr1", &r1);
    del(&sb, &net, "c2", "ctr2", &r2);
    del(&sb, &net, "c2", "ctr2", &r2);
    sb.ok("ip netns del ctr1 && ip netns del ctr2");
    assert_same(&before, &sb.snapshot());
}

#[test]
fn every_version_gets_its_own_result_shape() {
    let sb = sandbox!();
    let before = sb.snapshot();
    for (k, version) in ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]
        .iter()
        .enumerate()
    {
        let net = conf(version);
        let (id, ns) = (format!("v{k}"), format!("ver{k}"));
        let r = add(&sb, &net, &id, &ns);
        assert_eq!(r["cniVersion"], *version);
        let old = ["0.3.0", "0.3.1", "0.4.0"].contains(version);
        assert_eq!(r["ips"][0].get("version").is_some(), old, "{version}: {r}");
        del(&sb, &net, &id, &ns, &r);
        sb.ok(&format!("ip netns del {ns}"));
    }
    let v = call(
        &sb,
        "VERSION",
        ("", "", ""),
        &json!({"cniVersion": "1.0.0"}),
    );
    assert_eq!(v.code, 0);
    assert_eq!(v.out["cniVersion"], "1.0.0");
    assert_eq!(v.out["supportedVersions"][4], "1.1.0");
    assert_same(&before, &sb.snapshot());
}

#[test]
fn dual_stack_gives_both_families_and_they_carry_traffic() {
    let sb = sandbox!();
    let before = sb.snapshot();
    let mut net = conf("1.0.0");
    net.as_object_mut().unwrap().remove("subnet");
    net["subnets"] = json!(["10.89.0.0/24", "fd00:89::/64"]);
    let r1 = add(&sb, &net, "d1", "dual1");
    let r2 = add(&sb, &net, "d2", "dual2");
    assert_eq!(r1["ips"][1]["address"], "fd00:89::2/64");
    assert_eq!(r1["ips"][1]["gateway"], "fd00:89::1");
    assert_eq!(r1["routes"][1]["dst"], "::/0");
    assert!(sb.pings(Some("dual1"), "fd00:89::3"));
    assert!(sb.pings(Some("dual2"), "10.89.0.2"));
    del(&sb, &net, "d1", "dual1", &r1);
    del(&sb, &net, "d2", "dual2", &r2);
    sb.ok("ip netns del dual1 && ip netns del dual2");
    assert_same(&before, &sb.snapshot());
}

#[test]
fn del_succeeds_without_a_namespace_a_result_or_an_attachment() {
    let sb = sandbox!();
    let before = sb.snapshot();
    let net = conf("1.0.0");
    add(&sb, &net, "gone", "gone1");
    // The runtime lost the namespace first: no CNI_NETNS, no prevResult.
    sb.ok("ip netns del gone1");
    let a = call(&sb, "DEL", ("gone", "", "eth0"), &net);
    assert_eq!(a.code, 0, "{}{}", a.out, a.err);
    // Never added (a DEL after a failed ADD).
    let a = call(&sb, "DEL", ("never", "", "eth0"), &net);
    assert_eq!(a.code, 0, "{}{}", a.out, a.err);
    assert_same(&before, &sb.snapshot());
}

#[test]
fn gc_removes_every_attachment_the_runtime_no_longer_lists() {
    let sb = sandbox!();
    let before = sb.snapshot();
    let net = conf("1.1.0");
    for k in 1..=3 {
        add(&sb, &net, &format!("g{k}"), &format!("gc{k}"));
    }
    // g2's namespace went without a DEL.
    sb.ok("ip netns del gc2");
    let mut gc = net.clone();
    gc["cni.dev/valid-attachments"] = json!([
        {"containerID": "g1", "ifname": "eth0"},
        {"containerID": "g3", "ifname": "eth0"},
    ]);
    let a = call(&sb, "GC", ("", "", ""), &gc);
    assert_eq!(a.code, 0, "{}{}", a.out, a.err);
    let status =
        String::from_utf8_lossy(&sb.nsnet(["status"]).output().unwrap().stdout).into_owned();
    assert!(status.contains("container g1 "), "{status}");
    assert!(!status.contains("container g2 "), "{status}");
    assert!(status.contains("container g3 "), "{status}");
    assert!(sb.pings(Some("gc1"), "10.88.0.4"));
    // The key's name before the spec's errata works too; an empty list
    // removes everything, the bridge with the last.
    let mut gc = net.clone();
    gc["cni.dev/attachments"] = json!([]);
    let a = call(&sb, "GC", ("", "", ""), &gc);
    assert_eq!(a.code, 0, "{}{}", a.out, a.err);
    sb.ok("ip netns del gc1 && ip netns del gc3");
    assert_same(&before, &sb.snapshot());
}

#[test]
fn check_passes_after_add_and_names_what_drifted() {
    let sb = sandbox!();
    let net = conf("1.0.0");
    let r = add(&sb, &net, "k1", "chk1");
    let mut check = net.clone();
    check["prevResult"] = r.clone();
    let a = call(&sb, "CHECK", ("k1", &path("chk1"), "eth0"), &check);
    assert_eq!(a.code, 0, "{}{}", a.out, a.err);
    // An attachment nsnet does not have: the container is unknown (3).
    sb.ok("ip netns add chk2");
    let a = call(&sb, "CHECK", ("k2", &path("chk2"), "eth0"), &check);
    assert_eq!(a.out["code"], 3, "{}", a.out);
    // The NAT rule removed by hand.
    sb.ok("iptables -t nat -F NSNET-POSTROUTING");
    let a = call(&sb, "CHECK", ("k1", &path("chk1"), "eth0"), &check);
    assert_eq!(a.code, 1);
    assert_eq!(a.out["code"], 101, "{}", a.out);
    assert!(
        a.out["msg"].as_str().unwrap().contains("firewall"),
        "{}",
        a.out
    );
    // The container's address removed.
    sb.ok("ip -n chk1 addr flush dev eth0");
    let a = call(&sb, "CHECK", ("k1", &path("chk1"), "eth0"), &check);
    assert_eq!(a.out["code"], 101, "{}", a.out);
    assert!(
        a.out["msg"]
            .as_str()
            .unwrap()
            .contains("lacks 10.88.0.2/24"),
        "{}",
        a.out
    );
}

#[test]
fn status_says_whether_an_add_can_succeed() {
    let sb = sandbox!();
    let mut net = conf("1.1.0");
    net["subnet"] = json!("10.90.0.0/30");
    let a = call(&sb, "STATUS", ("", "", ""), &net);
    assert_eq!(a.code, 0, "{}{}", a.out, a.err);
    // A /30 holds the gateway and one container.
    add(&sb, &net, "s1", "st1");
    let a = call(&sb, "STATUS", ("", "", ""), &net);
    assert_eq!(a.out["code"], 50, "{}", a.out);
    assert_eq!(a.out["cniVersion"], "1.1.0");
    sb.ok("ip netns add st2");
    let a = call(&sb, "ADD", ("s2", &path("st2"), "eth0"), &net);
    assert_ne!(a.code, 0);
    assert!(a.out["msg"].as_str().is_some(), "{}", a.out);
}

#[test]
fn twenty_concurrent_adds_and_dels() {
    let sb = sandbox!();
    let before = sb.snapshot();
    let net = conf("1.0.0");
    let names: Vec<String> = (0..20).map(|k| format!("cc{k}")).collect();
    sb.ok(&names
        .iter()
        .map(|n| format!("ip netns add {n}"))
        .collect::<Vec<_>>()
        .join(" && "));
    let results: Vec<Value> = std::thread::scope(|s| {
        let handles: Vec<_> = (names.iter())
            .map(|n| {
                let (sb, net) = (&sb, &net);
                s.spawn(move || call(sb, "ADD", (n, &path(n), "eth0"), net))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                let a = h.join().unwrap();
                assert_eq!(a.code, 0, "{}{}", a.out, a.err);
                a.out
            })
            .collect()
    });
    let mut addresses: Vec<&str> = results
        .iter()
        .map(|r| r["ips"][0]["address"].as_str().unwrap())
        .collect();
    addresses.sort();
    addresses.dedup();
    assert_eq!(addresses.len(), 20, "each container its own address");
    assert!(sb.pings(Some("cc0"), "10.88.0.1"));
    assert!(
        sb.pings(
            Some("cc19"),
            results[0]["ips"][0]["address"]
                .as_str()
                .unwrap()
                .split('/')
                .next()
                .unwrap()
        )
    );
    std::thread::scope(|s| {
        for (n, r) in names.iter().zip(&results) {
            let (sb, net) = (&sb, &net);
            s.spawn(move || del(sb, net, n, n, r));
        }
    });
    sb.ok(&names
        .iter()
        .map(|n| format!("ip netns del {n}"))
        .collect::<Vec<_>>()
        .join(" && "));
    assert_same(&before, &sb.snapshot());
}

#[test]
fn a_fault_at_any_step_of_add_or_del_leaves_the_host_exact() {
    let sb = sandbox!();
    sb.outside();
    let net = with_ports(
        &conf("1.0.0"),
        json!([{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]),
    );
    // A first container, so the faults hit both a new bridge (f1 alone)
    // and an existing one.
    for first in [true, false] {
        sb.ok("ip netns add f1");
        if !first {
            add(&sb, &conf("1.0.0"), "f0", "f0");
        }
        let before = sb.snapshot();
        let mut steps = usize::MAX;
        let mut k = 1;
        while k <= steps {
            let a = call_with(
                &sb,
                "ADD",
                ("f1", &path("f1"), "eth0"),
                &net,
                &[("NSNET_FAIL_AT", &k.to_string())],
            );
            assert_eq!(a.code, 1, "step {k}: {}", a.err);
            assert_eq!(a.out["code"], 100, "step {k}: {}", a.out);
            let msg = a.out["msg"].as_str().unwrap();
            let rest = msg
                .strip_prefix(&format!("step {k} of "))
                .unwrap_or_else(|| panic!("{msg}"));
            steps = rest.split(':').next().unwrap().parse().unwrap();
            assert_same(&before, &sb.snapshot());
            // The runtime's DEL after a failed ADD finds nothing to do.
            let d = call(&sb, "DEL", ("f1", &path("f1"), "eth0"), &net);
            assert_eq!(d.code, 0, "{}", d.err);
            k += 1;
        }
        assert!(steps >= 3, "{steps}");
        let r = add_existing(&sb, &net, "f1", "f1");
        let during = sb.snapshot();
        // And DEL, failing at each of its steps.
        let mut steps = usize::MAX;
        let mut k = 1;
        while k <= steps {
            let mut stdin = net.clone();
            stdin["prevResult"] = r.clone();
            let a = call_with(
                &sb,
                "DEL",
                ("f1", &path("f1"), "eth0"),
                &stdin,
                &[("NSNET_FAIL_AT", &k.to_string())],
            );
            assert_eq!(a.code, 1, "DEL step {k}: {}", a.err);
            let msg = a.out["msg"].as_str().unwrap();
            let rest = msg
                .strip_prefix(&format!("step {k} of "))
                .unwrap_or_else(|| panic!("{msg}"));
            steps = rest.split(':').next().unwrap().parse().unwrap();
            assert_same(&during, &sb.snapshot());
            k += 1;
        }
        del(&sb, &net, "f1", "f1", &r);
        assert_same(&before, &sb.snapshot());
        if !first {
            let r0 = Value::Null;
            del(&sb, &conf("1.0.0"), "f0", "f0", &r0);
            sb.ok("ip netns del f0");
        }
        sb.ok("ip netns del f1");
    }
}

#[test]
fn hostile_requests_are_refused_with_the_spec_code_and_change_nothing() {
    let sb = sandbox!();
    sb.ok("ip netns add h1 && ip -n h1 link add eth0 type veth peer name x0 && touch /run/netns/plainfile");
    let before = sb.snapshot();
    let net = conf("1.0.0");
    type Case<'a> = (&'a str, (&'a str, String, &'a str), Value, u64);
    let cases: Vec<Case> = vec![
        // The container already has an interface of that name: refused
        // before anything runs.
        (
            "existing ifname",
            ("h1", path("h1"), "eth0"),
            net.clone(),
            7,
        ),
        (
            "not a namespace",
            ("h1", "/run/netns/plainfile".into(), "eth0"),
            net.clone(),
            4,
        ),
        (
            "no such path",
            ("h1", "/run/netns/nothing".into(), "eth0"),
            net.clone(),
            4,
        ),
        (
            "long ifname",
            ("h1", path("h1"), "eth0123456789abc"),
            net.clone(),
            4,
        ),
        (
            "bad subnet",
            ("h1", path("h1"), "eth1"),
            json!({"cniVersion": "1.0.0", "name": "pods", "bridge": "cni0", "subnet": "10.88.0.0/33"}),
            7,
        ),
        (
            "unknown key",
            ("h1", path("h1"), "eth1"),
            json!({"cniVersion": "1.0.0", "name": "pods", "bridge": "cni0", "ipam": {}}),
            2,
        ),
    ];
    for (what, (id, netns, ifname), stdin, code) in cases {
        let a = call(&sb, "ADD", (id, &netns, ifname), &stdin);
        assert_eq!(a.code, 1, "{what}: {}", a.err);
        assert_eq!(a.out["code"], code, "{what}: {}", a.out);
        assert_eq!(a.out["cniVersion"], "1.0.0", "{what}");
        assert!(!a.out["msg"].as_str().unwrap().is_empty(), "{what}");
        assert_same(&before, &sb.snapshot());
    }
    // Bad JSON: code 6.
    let mut cmd = sb.command(env!("CARGO_BIN_EXE_nsnet"));
    let out = cmd
        .env_clear()
        .env("CNI_COMMAND", "ADD")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["code"], 6, "{answer}");
    // A bridge nsnet did not make.
    sb.ok("ip link add cni0 type bridge");
    let before = sb.snapshot();
    let a = call(&sb, "ADD", ("h1", &path("h1"), "eth1"), &net);
    assert_eq!(a.code, 1, "{}", a.err);
    assert!(a.out["msg"].as_str().unwrap().contains("cni0"), "{}", a.out);
    assert_same(&before, &sb.snapshot());
}

#[test]
fn down_leaves_the_runtime_its_containers_and_says_so() {
    let sb = sandbox!();
    let net = conf("1.0.0");
    let r = add(&sb, &net, "dn1", "down1");
    sb.nsnet(["bridge", "up", "red", "--bridge", "lab0"])
        .assert()
        .success();
    let out = sb.nsnet(["down"]).output().unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("left to the container runtime"), "{err}");
    assert!(!sb.ok("ip netns list").contains("red"));
    assert!(sb.pings(Some("down1"), "10.88.0.1"));
    del(&sb, &net, "dn1", "down1", &r);
    assert!(!sb.ok("ip link").contains("cni0"));
}

#[test]
fn a_previous_result_in_a_chain_is_passed_through() {
    let sb = sandbox!();
    let mut net = conf("1.0.0");
    let prev = json!({
        "cniVersion": "1.0.0",
        "interfaces": [{"name": "lo", "sandbox": path("chain1")}],
        "ips": [{"address": "127.0.0.1/8", "interface": 0}],
        "dns": {"nameservers": ["192.0.2.53"]},
    });
    net["prevResult"] = prev;
    let r = add(&sb, &net, "ch1", "chain1");
    assert_eq!(r["interfaces"][0]["name"], "lo");
    assert_eq!(r["interfaces"][3]["name"], "eth0");
    assert_eq!(r["ips"][0]["address"], "127.0.0.1/8");
    assert_eq!(r["ips"][1]["interface"], 3);
    assert_eq!(r["dns"]["nameservers"][0], "192.0.2.53");
}

/// Runs reference plugin `plugin` (/usr/lib/cni) as a runtime would.
fn reference(sb: &Sandbox, plugin: &str, command: &str, ns: &str, stdin: &Value) -> Answer {
    let mut cmd = sb.command(&format!("/usr/lib/cni/{plugin}"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", "chained")
        .env("CNI_NETNS", path(ns))
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", "/usr/lib/cni");
    answer(cmd, stdin)
}

#[test]
fn chained_before_the_reference_portmap_and_tuning() {
    let mut sb = sandbox!();
    sb.outside();
    let before = sb.snapshot();
    // nsnet's own port handling off: it declares no portMappings capability,
    // so the runtime gives the mappings to portmap only.
    let mut net = conf("1.0.0");
    net.as_object_mut().unwrap().remove("capabilities");
    let r = add(&sb, &net, "chained", "chain2");
    let portmap = |prev: &Value| {
        json!({
            "cniVersion": "1.0.0", "name": "pods", "type": "portmap",
            "capabilities": {"portMappings": true},
            "runtimeConfig": {"portMappings": [{"hostPort": 9090, "containerPort": 80, "protocol": "tcp"}]},
            "prevResult": prev,
        })
    };
    let tuning = |prev: &Value| {
        json!({
            "cniVersion": "1.0.0", "name": "pods", "type": "tuning",
            "sysctl": {"net.ipv4.conf.eth0.arp_announce": "2"},
            "prevResult": prev,
        })
    };
    let p = reference(&sb, "portmap", "ADD", "chain2", &portmap(&r));
    assert_eq!(p.code, 0, "portmap ADD: {}{}", p.out, p.err);
    assert_eq!(p.out["ips"], r["ips"], "portmap passes nsnet's result on");
    let t = reference(&sb, "tuning", "ADD", "chain2", &tuning(&p.out));
    assert_eq!(t.code, 0, "tuning ADD: {}{}", t.out, t.err);
    assert_eq!(
        sb.ok("ip netns exec chain2 sysctl -n net.ipv4.conf.eth0.arp_announce")
            .trim(),
        "2"
    );
    // portmap's DNAT reaches the container on nsnet's bridge.
    sb.serve("chain2", "tcp", 80);
    assert_eq!(
        sb.ask(Some("outside"), "tcp", "172.31.0.1", 9090, true),
        "chain2 from 172.31.0.2"
    );
    sb.stop_background();
    // DEL in reverse, each with the final result.
    let last = t.out.clone();
    for (plugin, stdin) in [("tuning", tuning(&last)), ("portmap", portmap(&last))] {
        let d = reference(&sb, plugin, "DEL", "chain2", &stdin);
        assert_eq!(d.code, 0, "{plugin} DEL: {}{}", d.out, d.err);
    }
    del(&sb, &net, "chained", "chain2", &last);
    sb.ok("ip netns del chain2");
    // portmap leaves its chains (CNI-HOSTPORT-*) and so the nat table
    // behind: not nsnet's. With nsnet's rules gone from it, the table goes
    // by hand, and everything else is as before.
    let nat = sb.ok("iptables-save -t nat");
    assert!(!nat.contains("NSNET"), "{nat}");
    sb.ok("nft delete table ip nat");
    let after = sb.snapshot();
    assert_same(&before, &after);
}
