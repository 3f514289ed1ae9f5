//! `nsnet publish`: a published port answers from every path (another
//! machine, the host, a neighbour namespace, the namespace itself), over TCP
//! and UDP, with and without br_netfilter, and nothing else is captured.

mod common;

use common::{Sandbox, assert_same};
use predicates::prelude::*;
use predicates::str::contains;

/// (who asks, address asked) for every path a published port must answer on.
const PATHS: [(Option<&str>, &str); 7] = [
    (Some("outside"), "172.31.0.1"), // 1. another machine, to the host's address
    (None, "127.0.0.1"),             // 2. the host, to loopback …
    (None, "172.31.0.1"),            //    … and to each of its addresses
    (None, "10.200.0.1"),
    (Some("blue"), "172.31.0.1"), // 3. a neighbour on the bridge (hairpin)
    (Some("blue"), "10.200.0.1"),
    (Some("red"), "172.31.0.1"), // 4. the serving namespace itself
];

fn world(brnf: u8, forward_policy: &str) -> Option<(Sandbox, Vec<String>)> {
    let mut sb = Sandbox::new()?;
    sb.outside();
    sb.ok(&format!(
        "sysctl -qw net.bridge.bridge-nf-call-iptables={brnf} && iptables -P FORWARD {forward_policy}"
    ));
    let before = sb.snapshot();
    sb.nsnet(["bridge", "up", "red", "blue"]).assert().success();
    sb.serve("red", "tcp", 80);
    sb.serve("red", "udp", 53);
    Some((sb, before))
}

fn published_port_answers_everywhere(brnf: u8, forward_policy: &str) {
    let Some((mut sb, before)) = world(brnf, forward_policy) else {
        return;
    };
    sb.nsnet(["publish", "add", "red", "8080:80", "5353:53/udp"])
        .assert()
        .success()
        .stdout("*:8080/tcp               -> red 10.200.0.2:80 on nsnet0\n*:5353/udp               -> red 10.200.0.2:53 on nsnet0\n");
    for proto_port in [("tcp", 8080), ("udp", 5353)] {
        let (proto, port) = proto_port;
        for (from, addr) in PATHS {
            let answer = sb.ask(from, proto, addr, port, true);
            assert!(
                answer.starts_with("red from "),
                "{proto} {from:?} -> {addr}:{port}: {answer:?}"
            );
            if from == Some("outside") {
                assert_eq!(
                    answer, "red from 172.31.0.2",
                    "a LAN client keeps its own address"
                );
            }
        }
        let answer = sb.ask(Some("red"), proto, "10.200.0.1", port, true);
        assert!(
            answer.starts_with("red from "),
            "{proto} red -> gateway: {answer:?}"
        );
    }
    // The host's connection to another machine's port 8080 is not hijacked.
    sb.serve("outside", "tcp", 8080);
    assert_eq!(
        sb.ask(None, "tcp", "172.31.0.2", 8080, true),
        "outside from 172.31.0.1"
    );
    sb.nsnet(["publish", "del", "red", "8080", "5353/udp"])
        .assert()
        .success();
    for (proto, port) in [("tcp", 8080), ("udp", 5353)] {
        for (from, addr) in PATHS {
            assert_eq!(
                sb.ask(from, proto, addr, port, false),
                "",
                "{proto} {from:?} -> {addr}:{port} after del"
            );
        }
    }
    sb.stop_background();
    sb.nsnet(["bridge", "down"]).assert().success();
    assert_same(&before, &sb.snapshot());
}

#[test]
fn every_path_answers_without_br_netfilter() {
    published_port_answers_everywhere(0, "ACCEPT");
}

#[test]
fn every_path_answers_with_br_netfilter_and_a_forward_policy_of_drop() {
    published_port_answers_everywhere(1, "DROP");
}

#[test]
fn nat_and_publish_round_trip_leaves_rules_sysctls_and_links_as_before() {
    let Some((mut sb, before)) = world(1, "DROP") else {
        return;
    };
    sb.stop_background();
    let bridged = sb.snapshot();
    sb.nsnet(["nat", "up"]).assert().success();
    sb.nsnet(["publish", "add", "red", "8080:80", "5353:53/udp"])
        .assert()
        .success();
    sb.nsnet([
        "publish",
        "add",
        "blue",
        "9090:90",
        "--host-ip",
        "127.0.0.1",
    ])
    .assert()
    .success();
    let published = sb.snapshot();
    // Publishing the same again changes nothing.
    sb.nsnet(["publish", "add", "red", "8080:80", "5353:53/udp"])
        .assert()
        .success();
    assert_same(&published, &sb.snapshot());
    sb.nsnet(["publish", "del", "red", "8080", "5353/udp"])
        .assert()
        .success();
    sb.nsnet(["publish", "del", "blue", "9090"])
        .assert()
        .success();
    sb.nsnet(["nat", "down"]).assert().success();
    assert_same(&bridged, &sb.snapshot());
    // And all at once: bridge down removes nat and published ports too.
    sb.nsnet(["nat", "up"]).assert().success();
    sb.nsnet(["publish", "add", "red", "8080:80"])
        .assert()
        .success();
    sb.nsnet(["bridge", "down"]).assert().success();
    assert_same(&before, &sb.snapshot());
}

#[test]
fn a_port_published_on_loopback_answers_the_host_only() {
    let Some((mut sb, _)) = world(1, "ACCEPT") else {
        return;
    };
    sb.nsnet([
        "publish",
        "add",
        "red",
        "8080:80",
        "5353:53/udp",
        "--host-ip",
        "127.0.0.1",
    ])
    .assert()
    .success();
    assert_eq!(
        sb.ask(None, "tcp", "127.0.0.1", 8080, true),
        "red from 10.200.0.1"
    );
    assert_eq!(sb.ask(None, "tcp", "172.31.0.1", 8080, false), "");
    assert_eq!(
        sb.ask(Some("outside"), "tcp", "172.31.0.1", 8080, false),
        ""
    );
    // A LAN machine that sends to 127.0.0.1 through the host's MAC address:
    // without nsnet's raw-table drop, the DNAT rule would carry it into red.
    sb.ok(
        "ip -n outside route del local 127.0.0.1 dev lo table local && \
         ip -n outside route add 127.0.0.1/32 via 172.31.0.1 dev eth0 onlink && \
         ip netns exec outside sysctl -qw net.ipv4.conf.all.route_localnet=1",
    );
    sb.spawn("exec ip netns exec red socat -u UDP4-RECV:5300 OPEN:/run/nsnet/forged,creat,append");
    sb.nsnet([
        "publish",
        "add",
        "red",
        "5300:5300/udp",
        "--host-ip",
        "127.0.0.1",
    ])
    .assert()
    .success();
    let send = "for i in 1 2 3; do echo forged | ip netns exec outside socat -u - UDP4-SENDTO:127.0.0.1:5300; sleep 0.2; done";
    sb.ok(send);
    sb.ok("touch /run/nsnet/forged");
    assert_eq!(
        sb.ok("cat /run/nsnet/forged"),
        "",
        "forged datagrams reached red"
    );
    // The same without the drop (deleted by hand) does reach red: the rule
    // is what stops it.
    sb.ok("iptables -t raw -D NSNET-PREROUTING -d 127.0.0.1/32 ! -i lo -p udp -m udp --dport 5300 -m comment --comment nsnet:publish:red:5300/udp -j DROP");
    sb.ok(send);
    assert!(sb.ok("cat /run/nsnet/forged").contains("forged"));
}

#[test]
fn publish_refuses_clashes_and_bad_requests_and_changes_nothing() {
    let Some((sb, _)) = world(1, "ACCEPT") else {
        return;
    };
    sb.nsnet(["publish", "add", "red", "8080:80"])
        .assert()
        .success();
    let published = sb.snapshot();
    sb.nsnet(["publish", "add", "blue", "8080:81"])
        .assert()
        .code(1)
        .stderr(contains("host port 8080/tcp is already published for `red` (free it with `nsnet publish del red 8080/tcp`)"));
    sb.nsnet([
        "publish",
        "add",
        "blue",
        "8080:81",
        "--host-ip",
        "127.0.0.1",
    ])
    .assert()
    .code(1);
    sb.nsnet(["publish", "add", "red", "8080:81"])
        .assert()
        .code(1);
    sb.nsnet(["publish", "add", "blue", "8081:80", "--host-ip", "10.9.9.9"])
        .assert()
        .code(2)
        .stderr(contains("is not an address of this host"));
    sb.nsnet(["publish", "add", "nowhere", "8081:80"])
        .assert()
        .code(1)
        .stderr(contains("is on no nsnet bridge"));
    for bad in ["8081", "0:80", "8081:65536", "8081:80/sctp"] {
        sb.nsnet(["publish", "add", "blue", bad])
            .assert()
            .code(2)
            .stderr(contains("nsnet: "));
    }
    assert_same(&published, &sb.snapshot());
    // Another protocol on the same port number is another port.
    sb.nsnet(["publish", "add", "blue", "8080:80/udp"])
        .assert()
        .success();
    let list = sb
        .nsnet(["publish", "list", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let list: serde_json::Value = serde_json::from_slice(&list).unwrap();
    assert_eq!(
        list,
        serde_json::json!([
            {"host_ip": null, "host_port": 8080, "proto": "tcp", "namespace": "red", "address": "10.200.0.2", "port": 80, "bridge": "nsnet0", "allow": []},
            {"host_ip": null, "host_port": 8080, "proto": "udp", "namespace": "blue", "address": "10.200.0.3", "port": 80, "bridge": "nsnet0", "allow": []}
        ])
    );
    sb.nsnet(["publish", "del", "blue", "9999"])
        .assert()
        .success()
        .stderr(contains("nothing to do"));
}

#[test]
fn deleting_a_namespace_removes_its_published_ports() {
    let Some((sb, _)) = world(1, "ACCEPT") else {
        return;
    };
    sb.nsnet(["publish", "add", "red", "8080:80"])
        .assert()
        .success();
    sb.nsnet(["netns", "del", "red", "--force"])
        .assert()
        .success();
    sb.nsnet(["publish", "list"]).assert().success().stdout("");
    let rules = sb.ok("iptables-save");
    assert!(
        !rules.contains("publish:red") && !rules.contains("NSNET-DNAT"),
        "{rules}"
    );
    assert!(
        predicate::str::contains("red")
            .not()
            .eval(&sb.ok("ip netns list"))
    );
}

#[test]
fn one_bridge_up_builds_nat_and_published_ports_like_the_separate_commands() {
    let mut sb = sandbox!();
    sb.outside();
    let before = sb.snapshot();
    // The same network as bridge up + nat up + publish add, in one command.
    let one = [
        "bridge",
        "up",
        "red",
        "blue",
        "--nat",
        "--publish",
        "red=8080:80",
        "--publish",
        "blue=5353:53/udp",
    ];
    let out = sb.nsnet(one).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("nat out through any interface")
            && text.contains("*:8080/tcp")
            && text.contains("-> red 10.200.0.2:80"),
        "{text}"
    );
    let together = sb.snapshot();
    sb.serve("red", "tcp", 80);
    sb.serve("blue", "udp", 53);
    assert_eq!(
        sb.ask(Some("outside"), "tcp", "172.31.0.1", 8080, true),
        "red from 172.31.0.2"
    );
    assert_eq!(
        sb.ask(Some("outside"), "udp", "172.31.0.1", 5353, true),
        "blue from 172.31.0.2"
    );
    assert!(sb.pings(Some("blue"), "172.31.0.2"), "NAT takes blue out");
    sb.stop_background();
    sb.nsnet(["down"]).assert().success();
    assert_same(&before, &sb.snapshot());
    // Step by step, the host ends the same.
    sb.nsnet(["bridge", "up", "red", "blue"]).assert().success();
    sb.nsnet(["nat", "up"]).assert().success();
    sb.nsnet(["publish", "add", "red", "8080:80"])
        .assert()
        .success();
    sb.nsnet(["publish", "add", "blue", "5353:53/udp"])
        .assert()
        .success();
    assert_same(&together, &sb.snapshot());
    sb.nsnet(["down"]).assert().success();
    assert_same(&before, &sb.snapshot());
    // A mapping that names no namespace is refused before anything runs.
    sb.nsnet(["bridge", "up", "red", "--publish", "8080:80"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("does not say which namespace"));
    assert_same(&before, &sb.snapshot());
}

#[test]
fn a_port_someone_else_holds_is_refused_naming_them_and_force_overrides() {
    let Some((mut sb, _)) = world(0, "ACCEPT") else {
        return;
    };
    // A program on the host serves 2222, as sshd would serve 22.
    let pid = sb.spawn("exec socat TCP4-LISTEN:2222,fork,reuseaddr SYSTEM:'echo the host'");
    sb.wait_exec(pid, "socat");
    assert_eq!(
        sb.ask(Some("outside"), "tcp", "172.31.0.1", 2222, true),
        "the host"
    );
    let before = sb.snapshot();
    let out = sb
        .nsnet(["publish", "add", "red", "2222:80"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("host port 2222/tcp is taken: `socat` (pid ")
            && stderr
                .contains(") listens on 0.0.0.0:2222 (choose another host port, or add --force"),
        "{stderr}"
    );
    assert_same(&before, &sb.snapshot());
    assert_eq!(
        sb.ask(Some("outside"), "tcp", "172.31.0.1", 2222, true),
        "the host"
    );
    // --force publishes over it, says so, and the LAN now reaches red.
    sb.nsnet(["publish", "add", "red", "2222:80", "--force"])
        .assert()
        .success()
        .stderr(contains(
            "warning: publishing host port 2222/tcp with --force",
        ));
    let answer = sb.ask(Some("outside"), "tcp", "172.31.0.1", 2222, true);
    assert_eq!(answer, "red from 172.31.0.2");
    sb.nsnet(["publish", "del", "red", "2222"])
        .assert()
        .success();

    // Another tool's DNAT (Docker's, here by hand) takes 8080 first.
    sb.ok(
        "iptables -t nat -N DOCKER && \
         iptables -t nat -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER && \
         iptables -t nat -A DOCKER -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.99.0.2:80",
    );
    sb.nsnet(["publish", "add", "red", "8080:80"])
        .assert()
        .code(1)
        .stderr(contains(
            "host port 8080/tcp is taken: another tool's rule forwards it: \
             `-A DOCKER -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.99.0.2:80`",
        ));
    // A port nobody holds is published as ever.
    sb.nsnet(["publish", "add", "red", "8081:80"])
        .assert()
        .success();
}
