//! Status, its drift and its renderings, built from output captured from a
//! throwaway host (src/host/fixtures/) and compared with the golden files the
//! integration tests hold the real binary to, so the read side is checked
//! end to end without root.

use super::*;
use crate::host::fixture::Fixture;
use crate::host::live::read_world_in;
use crate::host::{Wants, observe_in};
use crate::report::render;

const STATUS_WANTS: Wants = Wants {
    rules: false,
    inside: &[],
    pids: false,
    firewall: true,
    firewall6: true,
    sockets: false,
    best_effort: true,
    by_name: false,
};

/// The status of capture `name`, as `nsnet status` would build it.
fn status_of(f: &mut Fixture) -> Status {
    let host = observe_in(&mut f.runner, &f.roots, STATUS_WANTS).unwrap();
    let names: Vec<String> = host.namespaces.iter().cloned().collect();
    let world = read_world_in(&mut f.runner, &f.roots, &names, &f.state).unwrap();
    build(&f.state, &world, &host)
}

#[track_caller]
fn same(actual: &str, expected: &str) {
    assert!(
        actual == expected,
        "differs\n--- expected\n{expected}--- actual\n{actual}"
    );
}

#[test]
fn clean_host_renders_as_the_golden_files() {
    let status = status_of(&mut Fixture::load("clean"));
    let json = serde_json::to_string_pretty(&status).unwrap() + "\n";
    same(&json, include_str!("../../../tests/golden/status.json"));
    let golden = include_str!("../../../tests/golden/status.txt");
    same(&render::status_text(&status), golden);
    same(
        &render::graph_text(&status),
        include_str!("../../../tests/golden/graph.txt"),
    );
    same(
        &render::graph_dot(&status),
        include_str!("../../../tests/golden/graph.dot"),
    );
    same(
        &render::graph_mermaid(&status),
        include_str!("../../../tests/golden/graph.mmd"),
    );
}

#[test]
fn changes_by_hand_are_drift() {
    let status = status_of(&mut Fixture::load("drift"));
    let drift: Vec<&str> = status.drift.iter().map(String::as_str).collect();
    assert_eq!(
        drift,
        [
            "`nv-red` (`red`'s eth0) is not plugged into bridge `nsnet0`",
            "`blue`'s eth0 has lost its address 10.200.0.3/24",
            "namespace `green` is gone (deleted by hand?); `nsnet down` or `nsnet netns del green` clears the record",
            "the process `sleeper` was attached to has exited; its namespace lives on under the name",
            "iptables rule missing from table nat: -A NSNET-DNAT -p udp -m udp --dport 5353 -m comment --comment \"nsnet:publish:red:5353/udp\" -j DNAT --to-destination 10.200.0.2:53",
            "net.ipv4.ip_forward is 0; nsnet needs 1",
        ]
    );
    let text = render::status_text(&status);
    assert!(text.contains("namespace green (nsnet, GONE)\n"), "{text}");
    assert!(text.contains("\ndrift\n  ! `nv-red`"), "{text}");
}

#[test]
fn attached_namespaces_say_their_process() {
    let status = status_of(&mut Fixture::load("drift"));
    let sleeper = status.namespaces.iter().find(|n| n.name == "sleeper");
    let sleeper = sleeper.unwrap();
    let pid = match sleeper.origin {
        Origin::Attached { pid } => pid,
        other => panic!("{other:?}"),
    };
    let json = serde_json::to_string(sleeper).unwrap();
    let start = format!(r#"{{"name":"sleeper","origin":"attached","pid":{pid},"present":true,"#);
    assert!(json.starts_with(&start), "{json}");
    let text = render::status_text(&status);
    let line = format!("namespace sleeper (attached to pid {pid})\n");
    assert!(text.contains(&line), "{text}");
}

#[test]
fn a_gone_bridge_and_its_gateway() {
    let mut f = Fixture::load("clean");
    let mut host = observe_in(&mut f.runner, &f.roots, STATUS_WANTS).unwrap();
    host.firewall = None;
    let names: Vec<String> = host.namespaces.iter().cloned().collect();
    let mut world = read_world_in(&mut f.runner, &f.roots, &names, &f.state).unwrap();
    let bridge = world.host.ifaces.iter_mut().find(|i| i.ifname == "nsnet0");
    bridge.unwrap().addresses = vec!["10.200.0.1/16".parse().unwrap()];
    let drift = build(&f.state, &world, &host).drift;
    assert_eq!(
        drift,
        ["bridge `nsnet0` has lost its gateway address 10.200.0.1/24"]
    );
    world.host.ifaces.retain(|i| !i.ifname.starts_with("n"));
    let status = build(&f.state, &world, &host);
    assert_eq!(
        status.drift,
        [
            "bridge `nsnet0` is gone from the host (`nsnet bridge down --bridge nsnet0` clears the record)"
        ]
    );
    assert!(render::status_text(&status).starts_with(
        "bridge nsnet0 10.200.0.0/24 gateway 10.200.0.1, nat via any interface (GONE)\n"
    ));
}

#[test]
fn an_empty_host_and_record_is_no_drift() {
    let status = build(&State::default(), &World::default(), &Host::default());
    let json = serde_json::to_string(&status).unwrap();
    assert_eq!(
        json,
        r#"{"bridges":[],"namespaces":[],"published":[],"drift":[]}"#
    );
    same(
        &render::status_text(&status),
        "no drift: the host matches nsnet's record\n",
    );
    same(&render::graph_text(&status), "host\n");
}

#[test]
fn netns_list_shows_the_record_and_the_host() {
    let mut f = Fixture::load("drift");
    let host = observe_in(&mut f.runner, &f.roots, Wants::default()).unwrap();
    let listed = listed(&f.state, &host);
    let json = serde_json::to_value(&listed).unwrap();
    let names: Vec<&str> = listed.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["blue", "green", "red", "sleeper", "theirs"]);
    assert_eq!(
        json[1],
        serde_json::json!({
            "name": "green", "origin": "nsnet", "present": false,
            "interfaces": [{"ifname": "vc-red", "address": "10.5.0.2/30", "peer": "red"}],
        })
    );
    assert_eq!(
        json[0]["interfaces"][0],
        serde_json::json!({"ifname": "eth0", "address": "10.200.0.3/24", "bridge": "nsnet0"})
    );
    assert_eq!(json[3]["origin"], "attached");
    assert!(json[3]["pid"].is_u64());
    assert_eq!(
        json[4],
        serde_json::json!({"name": "theirs", "origin": "external", "present": true, "interfaces": []})
    );
}

#[test]
fn published_ports_are_matched_to_their_namespace_once() {
    let f = Fixture::load("clean");
    let all = published(&f.state, |_, _| true);
    let from: Vec<String> = all.iter().map(PublishedPort::from).collect();
    assert_eq!(from, ["*:8080/tcp", "*:5353/udp"]);
    assert!(
        all.iter()
            .all(|p| p.address == Ipv4Addr::new(10, 200, 0, 2))
    );
    let none = published(&f.state, |ns, _| ns.as_str() == "blue");
    assert!(none.is_empty());
    let mut state = f.state.clone();
    let bridge = state.bridges.values_mut().next().unwrap();
    bridge.published[0].host_ip = Some(Ipv4Addr::new(192, 0, 2, 1).into());
    // A published port whose namespace has left the bridge is not shown.
    bridge.ports.retain(|p| p.ns.as_str() != "red");
    assert!(published(&state, |_, _| true).is_empty());
}
