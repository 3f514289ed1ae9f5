//! Builder tests: the exact plan for a given host and record.

use super::*;
use crate::host::Host;
use crate::host::{Link, Route};
use crate::model::state::{Identities, NsStamp, State};
use crate::model::validate::{End, IfName, InputError, NsName};

fn ns(s: &str) -> NsName {
    s.parse().unwrap()
}

fn nss(list: &[&str]) -> Vec<NsName> {
    list.iter().map(|s| ns(s)).collect()
}

fn ifname(s: &str) -> IfName {
    s.parse().unwrap()
}

/// Compares a plan with the expected script and shows both on mismatch.
#[track_caller]
fn assert_script(change: &Change, expected: &str) {
    let actual = change.plan.script(false);
    assert!(
        actual == expected,
        "plan differs\n--- expected\n{expected}--- actual\n{actual}"
    );
}

fn up(host: &Host, state: &State, names: &[&str], subnet: Option<&str>) -> Result<Change> {
    let (br, eth0) = (ifname("nsnet0"), ifname("eth0"));
    let namespaces = nss(names);
    let args = bridge::Up {
        bridge: &br,
        subnet: subnet.map(|s| s.parse().unwrap()),
        subnet6: None,
        ipv6: false,
        ifname: &eth0,
        namespaces: &namespaces,
        ..bridge::Up::plain(&br, &eth0, &namespaces)
    };
    bridge::up(&args, host, state)
}

/// Identities as a test host hands them out: made up from the name, the
/// same for the same name.
pub(super) struct Fake;

impl Fake {
    pub fn index(name: &str) -> u32 {
        name.bytes()
            .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(b.into()))
            % 100_000
            + 2
    }

    pub fn stamp(name: &str) -> NsStamp {
        NsStamp {
            dev: 4,
            ino: Fake::index(name).into(),
            born: 1,
        }
    }

    pub fn link(kind: &str, name: &str, master: Option<&str>) -> Link {
        Link {
            ifindex: Fake::index(name),
            kind: Some(kind.into()),
            master: master.map(String::from),
        }
    }
}

impl Identities for Fake {
    fn namespace(&self, name: &NsName) -> Option<NsStamp> {
        Some(Fake::stamp(name.as_str()))
    }

    fn link(&self, _ns: Option<&str>, ifname: &str) -> Option<u32> {
        Some(Fake::index(ifname))
    }
}

/// The host after `change` ran: its namespaces and links exist, and the
/// record knows their identities, as after a real run.
fn after(host: &Host, change: &mut Change) -> Host {
    let mut host = host.clone();
    change.state.stamp(&Fake);
    for ns in change.state.namespaces.keys() {
        host.namespaces.insert(ns.to_string());
        host.ns_stamps
            .insert(ns.to_string(), Fake::stamp(ns.as_str()));
    }
    for (name, bridge) in &change.state.bridges {
        host.links
            .insert(name.to_string(), Fake::link("bridge", name.as_str(), None));
        for port in &bridge.ports {
            let link = Fake::link("veth", port.host_ifname.as_str(), Some(name.as_str()));
            host.links.insert(port.host_ifname.to_string(), link);
        }
    }
    for cable in &change.state.cables {
        for (end, ifname) in [(&cable.a, &cable.a_ifname), (&cable.b, &cable.b_ifname)] {
            let name = ifname.to_string();
            match end.ns() {
                None => {
                    host.links
                        .insert(name, Fake::link("veth", ifname.as_str(), None));
                }
                Some(ns) => {
                    _ = host
                        .ns_links
                        .insert((ns.into(), name), Fake::index(ifname.as_str()))
                }
            }
        }
    }
    host
}

#[test]
fn bridge_up_builds_the_tutorial_network() {
    let change = up(
        &Host::default(),
        &State::default(),
        &["red", "blue"],
        Some("192.168.15.0/24"),
    )
    .unwrap();
    assert_script(
        &change,
        "ip link add nsnet0 address 02:c2:18:71:0f:6c type bridge
ip addr add 192.168.15.1/24 dev nsnet0
ip link set nsnet0 up
ip netns add red
ip link add nv-red type veth peer name eth0 netns red
ip link set nv-red master nsnet0
ip link set nv-red up
ip netns add blue
ip link add nv-blue type veth peer name eth0 netns blue
ip link set nv-blue master nsnet0
ip link set nv-blue up
ip -n red link set lo up
ip -n red addr add 192.168.15.2/24 dev eth0
ip -n red link set eth0 up
ip -n red route add default via 192.168.15.1
ip -n blue link set lo up
ip -n blue addr add 192.168.15.3/24 dev eth0
ip -n blue link set eth0 up
ip -n blue route add default via 192.168.15.1
",
    );
}

/// `bridge up NAMES --subnet 192.168.15.0/24` with more options set by `set`.
fn up_with(
    state: &State,
    names: &[&str],
    addresses: &[crate::model::validate::NsAddress],
    set: impl FnOnce(&mut bridge::Up),
) -> Result<Change, String> {
    let (br, eth0) = (ifname("nsnet0"), ifname("eth0"));
    let namespaces = nss(names);
    let mut args = bridge::Up {
        subnet: Some("192.168.15.0/24".parse().unwrap()),
        addresses,
        ..bridge::Up::plain(&br, &eth0, &namespaces)
    };
    set(&mut args);
    bridge::up(&args, &Host::default(), state).map_err(|e| e.to_string())
}

fn at(s: &str) -> crate::model::validate::NsAddress {
    s.parse().unwrap()
}

#[test]
fn the_second_tutorials_layout_gateway_last_and_addresses_asked_for() {
    // Its host is .5, red .1, blue .2, orange .3, green .4.
    let change = up_with(
        &State::default(),
        &["red", "blue", "orange", "green"],
        &[],
        |a| {
            a.gateway = Some("192.168.15.5".parse().unwrap());
        },
    )
    .unwrap();
    let script = change.plan.script(false);
    for line in [
        "ip addr add 192.168.15.5/24 dev nsnet0",
        "ip -n red addr add 192.168.15.1/24 dev eth0",
        "ip -n green addr add 192.168.15.4/24 dev eth0",
        "ip -n green route add default via 192.168.15.5",
    ] {
        assert!(script.contains(line), "{line} in\n{script}");
    }
    let addresses = [at("blue=192.168.15.9")];
    let change = up_with(
        &State::default(),
        &["red", "blue", "orange"],
        &addresses,
        |a| {
            a.default_route = false;
        },
    )
    .unwrap();
    let script = change.plan.script(false);
    for line in [
        "ip -n red addr add 192.168.15.2/24 dev eth0",
        "ip -n blue addr add 192.168.15.9/24 dev eth0",
        "ip -n orange addr add 192.168.15.3/24 dev eth0",
    ] {
        assert!(script.contains(line), "{line} in\n{script}");
    }
    assert!(!script.contains("default"), "{script}");
    assert!(
        change
            .state
            .bridges
            .values()
            .next()
            .unwrap()
            .ports
            .iter()
            .all(|p| !p.default_route)
    );
}

#[test]
fn addresses_and_gateways_that_cannot_be_are_refused_in_one_line() {
    let none = State::default();
    let names = &["red", "blue"];
    let gateway = |g: &str| {
        let g = g.parse().unwrap();
        up_with(&none, names, &[], move |a| a.gateway = Some(g)).unwrap_err()
    };
    assert_eq!(
        gateway("192.168.16.1"),
        "--gateway `192.168.16.1` is not a host address of subnet `192.168.15.0/24` (it is outside it)"
    );
    assert!(gateway("192.168.15.255").ends_with("(it is the broadcast address)"));
    assert!(gateway("192.168.15.0").ends_with("(it is the subnet's own address)"));
    let no_subnet = up_with(&none, names, &[], |a| {
        a.subnet = None;
        a.gateway = Some("10.9.0.5".parse().unwrap());
    });
    assert!(
        no_subnet
            .unwrap_err()
            .starts_with("--gateway `10.9.0.5` needs --subnet")
    );
    let asked = |list: &[&str]| {
        let addresses: Vec<_> = list.iter().map(|s| at(s)).collect();
        up_with(&none, names, &addresses, |_| {}).unwrap_err()
    };
    assert_eq!(
        asked(&["red=192.168.15.1"]),
        "--address for `red` `192.168.15.1` is already the gateway on bridge `nsnet0` (choose another address)"
    );
    assert_eq!(
        asked(&["red=192.168.15.7", "blue=192.168.15.7"]),
        "--address for `blue` `192.168.15.7` is already asked for `red` on bridge `nsnet0` (choose another address)"
    );
    assert!(
        asked(&["green=192.168.15.7"]).starts_with("--address names `green`, which is not among")
    );
    assert!(asked(&["red=10.0.0.7"]).ends_with("(it is outside it)"));
    assert!(asked(&["red=fd00::7"]).ends_with("(the bridge has no IPv6 subnet)"));
    assert!(
        asked(&["red=192.168.15.7", "red=192.168.15.8"]).starts_with("--address is given twice")
    );
}

#[test]
fn a_bridge_in_use_keeps_its_gateway_and_its_namespaces_their_addresses() {
    let mut first = up_with(&State::default(), &["red"], &[], |_| {}).unwrap();
    let host = after(&Host::default(), &mut first);
    let (br, eth0) = (ifname("nsnet0"), ifname("eth0"));
    let namespaces = nss(&["red", "blue"]);
    let taken = [at("blue=192.168.15.2")];
    let args = bridge::Up {
        addresses: &taken,
        ..bridge::Up::plain(&br, &eth0, &namespaces)
    };
    let err = bridge::up(&args, &host, &first.state)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "--address for `blue` `192.168.15.2` is already `red`'s on bridge `nsnet0` (choose another address)"
    );
    let same = [at("red=192.168.15.2")];
    let args = bridge::Up {
        addresses: &same,
        ..bridge::Up::plain(&br, &eth0, &namespaces)
    };
    assert!(
        bridge::up(&args, &host, &first.state).is_ok(),
        "red keeps its own"
    );
    let args = bridge::Up {
        gateway: Some("192.168.15.9".parse().unwrap()),
        ..bridge::Up::plain(&br, &eth0, &namespaces)
    };
    let err = bridge::up(&args, &host, &first.state)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("bridge `nsnet0` has gateway 192.168.15.1, and nsnet does not move"),
        "{err}"
    );
}

#[test]
fn bridge_up_again_changes_nothing_and_more_namespaces_attach() {
    let mut first = up(&Host::default(), &State::default(), &["red", "blue"], None).unwrap();
    let host = after(&Host::default(), &mut first);
    let again = up(&host, &first.state, &["red", "blue"], None).unwrap();
    assert!(again.plan.steps.is_empty());
    assert_eq!(again.state, first.state);
    let more = up(&host, &first.state, &["blue", "green"], None).unwrap();
    assert_script(
        &more,
        "ip netns add green
ip link add nv-green type veth peer name eth0 netns green
ip link set nv-green master nsnet0
ip link set nv-green up
ip -n green link set lo up
ip -n green addr add 10.200.0.4/24 dev eth0
ip -n green link set eth0 up
ip -n green route add default via 10.200.0.1
",
    );
}

#[test]
fn the_default_subnet_avoids_routes_on_the_host() {
    let mut host = Host::default();
    for dst in ["10.200.0.0/24", "10.200.1.7/32", "10.0.0.0/8"] {
        host.routes.push(Route {
            dst: dst.parse().unwrap(),
            dev: None,
            local: false,
        });
    }
    let change = up(&host, &State::default(), &["red"], None).unwrap();
    assert_eq!(
        change.state.bridges[&ifname("nsnet0")].subnet.to_string(),
        "172.30.0.0/24"
    );
}

#[test]
fn a_given_subnet_that_overlaps_a_route_is_refused() {
    let mut host = Host::default();
    host.routes.push(Route {
        dst: "192.168.0.0/16".parse().unwrap(),
        dev: Some("eth0".into()),
        local: false,
    });
    let err = up(&host, &State::default(), &["red"], Some("192.168.15.0/24")).unwrap_err();
    assert_eq!(
        err.downcast_ref::<InputError>()
            .map(ToString::to_string)
            .as_deref(),
        Some(
            "subnet `192.168.15.0/24` overlaps `192.168.0.0/16`, already routed on this host (choose another --subnet)"
        )
    );
}

#[test]
fn a_subnet_too_small_for_the_namespaces_is_refused() {
    let err = up(
        &Host::default(),
        &State::default(),
        &["a", "b"],
        Some("10.9.0.0/30"),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "subnet `10.9.0.0/30` has room for 1 namespace(s) besides the gateway; 2 needed (use a larger --subnet)"
    );
}

#[test]
fn a_bridge_nsnet_did_not_make_is_left_alone() {
    let mut host = Host::default();
    host.links.insert(
        "nsnet0".into(),
        Link {
            ifindex: 9,
            kind: Some("bridge".into()),
            master: None,
        },
    );
    assert!(up(&host, &State::default(), &["red"], None).is_err());
    let err = bridge::down(&ifname("nsnet0"), &[], false, &host, &State::default()).unwrap_err();
    assert!(err.to_string().contains("not created by nsnet"), "{err}");
}

#[test]
fn bridge_down_removes_ports_namespaces_and_bridge_and_each_undo_rebuilds() {
    let mut first = up(
        &Host::default(),
        &State::default(),
        &["red"],
        Some("10.1.0.0/24"),
    )
    .unwrap();
    let host = after(&Host::default(), &mut first);
    let down = bridge::down(&ifname("nsnet0"), &[], false, &host, &first.state).unwrap();
    // red goes, and its veth pair with it: no `ip link del nv-red`, but
    // nsnet waits for the kernel to remove the host end.
    assert_script(&down, "ip netns del red\nip link del nsnet0\n");
    assert_eq!(down.state, State::default());
    assert_eq!(down.plan.steps[0].settle, ["nv-red"]);
    let undo = |i: usize| -> Vec<String> {
        down.plan.steps[i]
            .undo
            .iter()
            .map(ToString::to_string)
            .collect()
    };
    assert_eq!(
        undo(1),
        [
            "ip link add nsnet0 address 02:c2:18:71:0f:6c type bridge",
            "ip addr add 10.1.0.1/24 dev nsnet0",
            "ip link set nsnet0 up"
        ]
    );
    assert_eq!(
        undo(0),
        [
            "ip netns add red",
            "ip -n red link set lo up",
            "ip link add nv-red type veth peer name eth0 netns red",
            "ip link set nv-red master nsnet0",
            "ip link set nv-red up",
            "ip -n red addr add 10.1.0.2/24 dev eth0",
            "ip -n red link set eth0 up",
            "ip -n red route add default via 10.1.0.1",
        ],
        "deleting the namespace is undone by making it and replugging it"
    );
}

#[test]
fn a_namespace_with_processes_is_unplugged_before_it_goes() {
    let mut first = up(&Host::default(), &State::default(), &["red"], None).unwrap();
    let mut host = after(&Host::default(), &mut first);
    host.pids.insert("red".into(), vec![42]);
    let down = bridge::down(&ifname("nsnet0"), &[], true, &host, &first.state).unwrap();
    // A process keeps the namespace, and so the veth, alive: unplug first.
    assert_script(
        &down,
        "ip link del nv-red\nip netns del red\nip link del nsnet0\n",
    );
    assert!(down.plan.steps.iter().all(|s| s.settle.is_empty()));
    assert_eq!(
        down.plan.steps[0].undo.len(),
        6,
        "unplugging is undone by replugging"
    );
}

#[test]
fn bridge_down_of_one_namespace_keeps_the_rest_and_explicit_namespaces() {
    let state = netns::add(&nss(&["red"]), &Host::default(), &State::default())
        .unwrap()
        .state;
    let host = Host {
        namespaces: ["red".to_string()].into(),
        ..Host::default()
    };
    let mut first = up(&host, &state, &["red", "blue"], None).unwrap();
    let host = after(&host, &mut first);
    let down = bridge::down(
        &ifname("nsnet0"),
        &nss(&["red", "blue"]),
        false,
        &host,
        &first.state,
    )
    .unwrap();
    assert_script(&down, "ip link del nv-red\nip netns del blue\n");
    assert!(down.state.bridges[&ifname("nsnet0")].ports.is_empty());
    assert!(
        down.state.namespaces.contains_key(&ns("red")),
        "red was made by `netns add`"
    );
}

#[test]
fn teardown_skips_what_is_already_gone() {
    let mut first = up(&Host::default(), &State::default(), &["red"], None).unwrap();
    let mut host = after(&Host::default(), &mut first);
    host.namespaces.clear();
    host.links.remove("nv-red");
    let down = bridge::down(&ifname("nsnet0"), &[], false, &host, &first.state).unwrap();
    assert_script(&down, "ip link del nsnet0\n");
}

#[test]
fn veth_between_namespaces_is_made_from_one_side() {
    let (red, blue) = (End::Ns(ns("red")), End::Ns(ns("blue")));
    let change = veth::add(
        &red,
        &blue,
        Some("192.168.15.0/24".parse().unwrap()),
        None,
        &Host::default(),
        &State::default(),
    )
    .unwrap();
    assert_script(
        &change,
        "ip netns add red
ip -n red link set lo up
ip netns add blue
ip -n blue link set lo up
ip -n red link add vc-blue type veth peer name vc-red netns blue
ip -n red addr add 192.168.15.1/24 dev vc-blue
ip -n blue addr add 192.168.15.2/24 dev vc-red
ip -n red link set vc-blue up
ip -n blue link set vc-red up
",
    );
    let mut change = change;
    let host = after(&Host::default(), &mut change);
    let del = veth::del(&blue, &red, false, &host, &change.state).unwrap();
    assert_script(
        &del,
        "ip -n red link del vc-blue\nip netns del red\nip netns del blue\n",
    );
    assert_eq!(del.state, State::default());
}

#[test]
fn veth_to_the_host_starts_on_the_host() {
    let change = veth::add(
        &End::Ns(ns("red")),
        &End::Host,
        None,
        None,
        &Host::default(),
        &State::default(),
    )
    .unwrap();
    assert_script(
        &change,
        "ip netns add red
ip -n red link set lo up
ip link add vc-red type veth peer name vc-host netns red
ip -n red link set vc-host up
ip link set vc-red up
",
    );
}

#[test]
fn veth_refuses_a_loop_and_a_host_subnet_that_overlaps() {
    let red = End::Ns(ns("red"));
    assert!(veth::add(&red, &red, None, None, &Host::default(), &State::default()).is_err());
    let mut host = Host::default();
    host.routes.push(Route {
        dst: "10.0.0.0/8".parse().unwrap(),
        dev: None,
        local: false,
    });
    let err = veth::add(
        &End::Host,
        &red,
        Some("10.1.0.0/24".parse().unwrap()),
        None,
        &host,
        &State::default(),
    )
    .unwrap_err();
    assert!(err.downcast_ref::<InputError>().is_some(), "{err}");
}

#[test]
fn netns_del_takes_the_namespace_off_its_bridge() {
    let mut first = up(&Host::default(), &State::default(), &["red", "blue"], None).unwrap();
    let host = after(&Host::default(), &mut first);
    let del = netns::del(&nss(&["red"]), false, &host, &first.state).unwrap();
    // The veth pair goes with the namespace; nsnet waits for its host end.
    assert_script(&del, "ip netns del red\n");
    assert_eq!(del.plan.steps[0].settle, ["nv-red"]);
    assert_eq!(del.state.bridges[&ifname("nsnet0")].ports.len(), 1);
}

mod firewall;

#[test]
fn down_removes_cables_then_namespaces_then_bridges() {
    let first = up(
        &Host::default(),
        &State::default(),
        &["red"],
        Some("10.1.0.0/24"),
    )
    .unwrap();
    let cable = veth::add(
        &End::Ns(ns("red")),
        &End::Ns(ns("blue")),
        None,
        None,
        &Host::default(),
        &first.state,
    )
    .unwrap();
    let mut added = netns::add(&nss(&["lonely"]), &Host::default(), &cable.state).unwrap();
    let mut host = after(&Host::default(), &mut added);
    host.namespaces
        .extend(["blue".to_string(), "lonely".to_string()]);
    let down = down(false, &host, &added.state).unwrap();
    assert_script(
        &down,
        "ip -n red link del vc-blue\nip netns del blue\nip netns del lonely\nip netns del red\nip link del nsnet0\n",
    );
    assert_eq!(down.state, State::default());
}

#[test]
fn a_dual_stack_bridge_addresses_both_families_without_dad() {
    let (br, eth0) = (ifname("nsnet0"), ifname("eth0"));
    let namespaces = nss(&["red"]);
    let args = bridge::Up {
        bridge: &br,
        subnet: Some("10.1.0.0/24".parse().unwrap()),
        subnet6: Some("fd00:1::/64".parse().unwrap()),
        ipv6: false,
        ifname: &eth0,
        namespaces: &namespaces,
        ..bridge::Up::plain(&br, &eth0, &namespaces)
    };
    let mut host = Host::default();
    let err = bridge::up(&args, &host, &State::default()).unwrap_err();
    assert!(
        err.to_string().starts_with("IPv6 is disabled on this host"),
        "{err}"
    );
    host.ipv6 = true;
    let change = bridge::up(&args, &host, &State::default()).unwrap();
    assert_script(
        &change,
        "ip link add nsnet0 address 02:c2:18:71:0f:6c type bridge
ip addr add 10.1.0.1/24 dev nsnet0
ip addr add fd00:1::1/64 dev nsnet0 nodad
ip link set nsnet0 up
ip netns add red
ip link add nv-red type veth peer name eth0 netns red
ip link set nv-red master nsnet0
ip link set nv-red up
ip -n red link set lo up
ip -n red addr add 10.1.0.2/24 dev eth0
ip -n red addr add fd00:1::2/64 dev eth0 nodad
ip -n red link set eth0 up
ip -n red route add default via 10.1.0.1
ip -n red -6 route add default via fd00:1::1
",
    );
    let port = &change.state.bridges[&br].ports[0];
    assert_eq!(port.address6, Some("fd00:1::2".parse().unwrap()));
}

/// A network of red and blue on nsnet0, then red and nsnet0 deleted and
/// made again by hand (new identities, same names).
fn replaced_by_hand() -> (Host, State) {
    let mut first = up(&Host::default(), &State::default(), &["red", "blue"], None).unwrap();
    let mut host = after(&Host::default(), &mut first);
    let mut red = host.ns_stamps.get("red").unwrap();
    red.born += 1;
    host.ns_stamps.insert("red".into(), red);
    host.links.get_mut("nsnet0").unwrap().ifindex += 1;
    host.links.remove("nv-red");
    (host, first.state)
}

#[test]
fn down_leaves_what_was_made_again_by_hand_and_keeps_it_in_the_record() {
    let (host, state) = replaced_by_hand();
    let down = down(false, &host, &state).unwrap();
    // Only blue, nsnet's own, goes; its veth with it.
    assert_script(&down, "ip netns del blue\n");
    assert_eq!(
        down.notes,
        [
            "`red` is not the namespace nsnet made: left alone; `nsnet forget red` drops it from the record",
            "`nsnet0` is not the bridge nsnet made: left alone; `nsnet forget nsnet0` drops it from the record",
        ]
    );
    let kept: Vec<&str> = down.state.namespaces.keys().map(NsName::as_str).collect();
    assert_eq!(kept, ["red"]);
    assert!(down.state.bridges[&ifname("nsnet0")].ports.is_empty());
    // A record naming only what is not nsnet's deletes nothing at all.
    let again = super::down(false, &host, &down.state).unwrap();
    assert_script(&again, "# nothing to do: the host already matches\n");
    let forgotten = forget::forget(&["red".into(), "nsnet0".into()], false, &host, &again.state);
    assert_eq!(forgotten.unwrap().state, State::default());
}

#[test]
fn nothing_is_plugged_into_what_was_made_again_by_hand() {
    let (host, state) = replaced_by_hand();
    let err = up(&host, &state, &["green"], None).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("bridge `nsnet0` is not the bridge nsnet made"),
        "{err}"
    );
    let err = nat::up(&ifname("nsnet0"), None, &host, &state).unwrap_err();
    assert!(err.to_string().contains("`nsnet forget nsnet0`"), "{err}");
}

#[test]
fn forget_refuses_what_is_still_nsnets_unless_forced() {
    let mut first = up(&Host::default(), &State::default(), &["red", "blue"], None).unwrap();
    let host = after(&Host::default(), &mut first);
    let red = ["red".to_string()];
    let err = forget::forget(&red, false, &host, &first.state).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("`red`'s port `nv-red` on `nsnet0` is still the one nsnet made"),
        "{err}"
    );
    let forced = forget::forget(&red, true, &host, &first.state).unwrap();
    assert!(forced.plan.steps.is_empty(), "forget runs nothing");
    assert!(!forced.state.namespaces.contains_key(&ns("red")));
    let ports: Vec<&str> = forced.state.bridges[&ifname("nsnet0")]
        .ports
        .iter()
        .map(|p| p.ns.as_str())
        .collect();
    assert_eq!(ports, ["blue"]);
    let err = forget::forget(&["green".into()], false, &host, &first.state).unwrap_err();
    assert_eq!(
        err.to_string(),
        "`green` is no namespace, bridge or interface in nsnet's record (see `nsnet status`)"
    );
}
mod model;
