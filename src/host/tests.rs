//! `observe` and `read_world` on output captured from a throwaway host
//! (fixtures/), and on broken output: a namespace gone mid-read, an unknown
//! link kind, empty or malformed JSON.

use crate::host::fixture::{Fixture, iptables_cmd, links_cmd, questions_for, routes_cmd, text};
use crate::host::live::{LiveRoute, Peer, read_world_in};
use crate::host::{Link, Wants, observe_in};
use crate::model::state::State;
use ipnet::IpNet;

const ALL: Wants = Wants {
    rules: false,
    inside: &[],
    pids: true,
    firewall: true,
    firewall6: true,
    sockets: false,
    best_effort: false,
    by_name: false,
};

fn net(text: &str) -> IpNet {
    text.parse().unwrap()
}

#[test]
fn observe_reads_namespaces_links_routes_rules_and_sysctls() {
    let mut f = Fixture::load("clean");
    f.run_process_in(4242, "red");
    let host = observe_in(&mut f.runner, &f.roots, ALL).unwrap();
    let names: Vec<&str> = host.namespaces.iter().map(String::as_str).collect();
    assert_eq!(names, ["blue", "green", "red", "theirs"]);
    let bridge = Link {
        ifindex: 2,
        kind: Some("bridge".into()),
        master: None,
    };
    assert_eq!(host.links.get("nsnet0"), Some(bridge));
    let port = host.links.get("nv-red").unwrap();
    assert_eq!(port.kind.as_deref(), Some("veth"));
    assert_eq!(port.master.as_deref(), Some("nsnet0"));
    assert_eq!(host.links.get("lo").unwrap().kind, None);
    assert!(host.is_local("10.200.0.1".parse().unwrap()));
    assert!(!host.is_local("10.200.0.2".parse().unwrap()));
    assert!(
        host.routes
            .iter()
            .any(|r| r.dst == "10.6.0.0/30".parse().unwrap())
    );
    assert_eq!(host.pids_in("red"), [4242]);
    assert_eq!(host.pids_in("blue"), [] as [u32; 0]);
    assert_eq!(host.firewall.as_ref().unwrap().rules.len(), 18);
    let localnet = "net.ipv4.conf.nsnet0.route_localnet";
    assert!(host.sysctls.is(localnet, "1"));
    assert!(host.sysctls.is("net.ipv4.ip_forward", "1"));
    assert_eq!(
        host.sysctls.get("net.ipv4.conf.nothere.route_localnet"),
        None
    );
    assert!(host.warnings.is_empty());
    assert_eq!(
        f.runner.calls,
        [links_cmd(), routes_cmd(), iptables_cmd()].map(|c| c.to_string())
    );
}

#[test]
fn observe_reads_only_what_it_is_asked_for() {
    let mut f = Fixture::load("clean");
    f.run_process_in(4242, "red");
    let host = observe_in(&mut f.runner, &f.roots, Wants::default()).unwrap();
    assert!(host.pids.is_empty() && host.firewall.is_none());
    assert_eq!(f.runner.calls.len(), 2, "{:?}", f.runner.calls);
}

#[test]
fn unreadable_rules_fail_unless_best_effort() {
    let mut f = Fixture::load("clean");
    f.runner
        .fail(&iptables_cmd(), "Permission denied (you must be root)");
    let err = observe_in(&mut f.runner, &f.roots, ALL).unwrap_err();
    assert!(
        format!("{err:#}").contains("`iptables-save` failed"),
        "{err:#}"
    );
    let wants = Wants {
        best_effort: true,
        ..ALL
    };
    let host = observe_in(&mut f.runner, &f.roots, wants).unwrap();
    assert!(host.firewall.unwrap().rules.is_empty());
    assert!(host.warnings[0].starts_with("cannot read the iptables rules"));
}

#[test]
fn empty_or_malformed_json_is_a_clear_error() {
    for (output, says) in [
        ("", "EOF while parsing"),
        ("[{\"ifname\": 3}]", "invalid type"),
        ("not json", "at line 1 column 2"),
    ] {
        let mut f = Fixture::load("clean");
        f.runner.answer(&links_cmd(), output);
        let err = observe_in(&mut f.runner, &f.roots, Wants::default()).unwrap_err();
        let message = format!("{err:#}");
        assert!(
            message.starts_with("cannot read `ip -j -d link show`") && message.contains(says),
            "{message}"
        );
    }
}

#[test]
fn an_unknown_link_kind_is_kept_as_said() {
    let mut f = Fixture::load("clean");
    let links = r#"[{"ifindex":1,"ifname":"lo"},{"ifindex":2,"ifname":"w0","linkinfo":{"info_kind":"wireguard2"}},
        {"ifindex":3,"ifname":"x","master":"nsnet0","linkinfo":{"info_data":{}}}]"#;
    f.runner.answer(&links_cmd(), links);
    let host = observe_in(&mut f.runner, &f.roots, Wants::default()).unwrap();
    assert_eq!(
        host.links.get("w0").unwrap().kind.as_deref(),
        Some("wireguard2")
    );
    assert_eq!(host.links.get("x").unwrap().kind, None);
    assert_eq!(
        host.links.get("x").unwrap().master.as_deref(),
        Some("nsnet0")
    );
}

#[test]
fn world_reads_every_namespace_and_finds_each_veths_other_end() {
    let mut f = Fixture::load("clean");
    let world = read_world_in(&mut f.runner, &f.roots, &f.names, &f.state).unwrap();
    assert_eq!(world.namespaces.len(), 4);
    let red = &world.namespaces["red"];
    let eth0 = red.ifaces.iter().find(|i| i.ifname == "eth0").unwrap();
    assert!(eth0.is_up());
    assert_eq!(eth0.ipv4_addresses(), [net("10.200.0.2/24")]);
    // IPv6 addresses are read too, and left out of `ipv4_addresses`.
    assert!(eth0.addresses.iter().any(|a| matches!(a, IpNet::V6(_))));
    assert_eq!(
        world.peer(Some("red"), eth0),
        Some(Peer {
            ns: None,
            ifname: "nv-red".into(),
            bridge: Some("nsnet0".into()),
            addresses: vec![],
        })
    );
    let vc = red.ifaces.iter().find(|i| i.ifname == "vc-green").unwrap();
    let peer = world.peer(Some("red"), vc).unwrap();
    assert_eq!(
        (peer.ns.as_deref(), peer.ifname.as_str()),
        (Some("green"), "vc-red")
    );
    assert_eq!(peer.addresses, [net("10.5.0.2/30")]);
    let vc_blue = world.host_iface("vc-blue").unwrap();
    let peer = world.peer(None, vc_blue).unwrap();
    assert_eq!(
        (peer.ns.as_deref(), peer.ifname.as_str()),
        (Some("blue"), "vc-host")
    );
    let routes: Vec<String> = red.routes.iter().map(LiveRoute::to_string).collect();
    assert_eq!(
        routes,
        [
            "default via 10.200.0.1 dev eth0",
            "10.5.0.0/30 dev vc-green",
            "10.200.0.0/24 dev eth0"
        ]
    );
    assert!(world.namespaces["theirs"].routes.is_empty());
    assert!(world.exited.is_empty());
}

#[test]
fn a_namespace_deleted_mid_read_is_left_out() {
    let mut f = Fixture::load("clean");
    let gone = "Cannot open network namespace \"green\": No such file or directory";
    f.runner.fail(&questions_for("green"), gone);
    let world = read_world_in(&mut f.runner, &f.roots, &f.names, &f.state).unwrap();
    assert!(!world.namespaces.contains_key("green"));
    // red's cable now leads nowhere that can be seen.
    let red = &world.namespaces["red"];
    let vc = red.ifaces.iter().find(|i| i.ifname == "vc-green").unwrap();
    assert_eq!(world.peer(Some("red"), vc), None);
}

#[test]
fn a_batch_that_prints_too_little_or_garbage_is_a_clear_error() {
    let full = text("clean", "batch-red.json");
    let first = full.lines().next().unwrap().to_string();
    for (output, says) in [
        (String::new(), "(addr show): it printed nothing"),
        (first, "(route show): it printed nothing"),
        ("[{]".to_string(), "(addr show)"),
    ] {
        let mut f = Fixture::load("clean");
        f.runner.answer(&questions_for("red"), &output);
        f.runner
            .answer(&crate::host::live::questions(None), &output);
        let err = read_world_in(&mut f.runner, &f.roots, &f.names, &f.state).unwrap_err();
        let message = format!("{err:#}");
        assert!(
            message.starts_with("cannot read the output of `ip -j -batch -")
                && message.contains(says),
            "{message}"
        );
    }
}

#[test]
fn an_attached_process_that_exited_is_noted() {
    let mut f = Fixture::load("drift");
    let pid = f.state.namespaces.values().find_map(|e| e.pid).unwrap();
    let world = read_world_in(&mut f.runner, &f.roots, &f.names, &f.state).unwrap();
    assert_eq!(world.exited.iter().copied().collect::<Vec<_>>(), [pid]);
    f.run_process_in(pid, "sleeper");
    let world = read_world_in(&mut f.runner, &f.roots, &f.names, &State::default()).unwrap();
    assert!(world.exited.is_empty());
    let world = read_world_in(&mut f.runner, &f.roots, &f.names, &f.state).unwrap();
    assert!(world.exited.is_empty());
}
