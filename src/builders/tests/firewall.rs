//! Plans for `nat` and `publish`: the rules, sysctls and hairpin settings
//! that `firewall::reconcile` derives from the record.

use super::*;
use crate::builders::{firewall, nat, publish};

/// A host with nsnet0 (10.1.0.0/24, red at .2), forwarding off, and only
/// the bridge's own accept rule in place.
fn bridged() -> (Host, State) {
    let mut first = up(
        &Host::default(),
        &State::default(),
        &["red"],
        Some("10.1.0.0/24"),
    )
    .unwrap();
    let mut host = after(&Host::default(), &mut first);
    host.sysctls
        .insert("net.ipv4.ip_forward".into(), "0".into());
    host.sysctls
        .insert("net.ipv4.conf.nsnet0.route_localnet".into(), "0".into());
    host.firewall = Some(crate::host::Firewall::default());
    let host = installed(&host, &first.state);
    (host, first.state)
}

/// The host as `iptables-save` shows it once `state`'s rules are in place.
fn installed(host: &Host, state: &State) -> Host {
    let mut host = host.clone();
    let fw = host.firewall.get_or_insert_with(Default::default);
    let policy = crate::model::policy::chain(state, crate::model::rules::Family::V4);
    let mut lines = Vec::new();
    for rule in crate::model::rules::rules(state).into_iter().chain(policy) {
        fw.chains.insert((rule.table.into(), rule.chain.into()));
        // The chain a jump leads to exists too (NSNET-USER holds no rule).
        if let Some((_, to)) = rule.spec.rsplit_once("-j NSNET-") {
            fw.chains.insert((rule.table.into(), format!("NSNET-{to}")));
        }
        lines.push((rule.table, rule.saved_line()));
    }
    // nsnet's jumps from FORWARD in the order it keeps them.
    let rank = |line: &str| {
        ["NSNET-USER", "NSNET-POLICY", "NSNET-FORWARD"]
            .iter()
            .position(|c| line.starts_with("-A FORWARD ") && line.ends_with(c))
    };
    lines.sort_by_key(|(_, line)| rank(line));
    for (table, line) in lines {
        fw.push(table, &line);
    }
    host
}

fn reconciled(mut change: Change, before: &State, host: &Host) -> Change {
    firewall::reconcile(&mut change, before, host).unwrap();
    change
}

/// The plan for `nat up` on nsnet0.
fn nat_up(host: &Host, state: &State) -> Change {
    reconciled(
        nat::up(&ifname("nsnet0"), None, host, state).unwrap(),
        state,
        host,
    )
}

/// The plan for `publish add red 8080:80 [--host-ip IP]`.
fn publish_8080(host: &Host, state: &State, host_ip: Option<&str>) -> Change {
    reconciled(
        publish_from(host, state, host_ip, &[]).unwrap(),
        state,
        host,
    )
}

/// `publish add red 8080:80 [--host-ip IP] [--allow CIDR...]`, unreconciled.
fn publish_from(
    host: &Host,
    state: &State,
    host_ip: Option<&str>,
    allow: &[&str],
) -> Result<Change> {
    publish_red(host, state, host_ip, allow, false)
}

/// `publish add red 8080:80 [--host-ip IP] [--allow CIDR...] [--force]`.
fn publish_red(
    host: &Host,
    state: &State,
    host_ip: Option<&str>,
    allow: &[&str],
    force: bool,
) -> Result<Change> {
    let mappings = ["8080:80".parse().unwrap()];
    let allow: Vec<ipnet::IpNet> = allow
        .iter()
        .map(|n| crate::model::validate::destination(n).unwrap())
        .collect();
    let args = publish::Add {
        ns: &ns("red"),
        mappings: &mappings,
        host_ip: host_ip.map(|ip| ip.parse().unwrap()),
        bridge: None,
        force,
        allow: Some(&allow),
    };
    publish::add(&args, host, state)
}

const NAT_UP: &str = r#"iptables-restore --noflush -w <<'EOF'
*nat
:NSNET-POSTROUTING - [0:0]
-A NSNET-POSTROUTING -s 10.1.0.0/24 ! -o nsnet0 -m comment --comment "nsnet:nat:nsnet0" -j MASQUERADE
-A POSTROUTING -m comment --comment nsnet -j NSNET-POSTROUTING
COMMIT
EOF
iptables-restore --noflush -w <<'EOF'
*filter
-A NSNET-FORWARD -i nsnet0 ! -o nsnet0 -m comment --comment "nsnet:nat:nsnet0" -j ACCEPT
-A NSNET-FORWARD -i nsnet0 -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment "nsnet:nsnet0" -j ACCEPT
-A NSNET-FORWARD -o nsnet0 -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment "nsnet:nsnet0" -j ACCEPT
COMMIT
EOF
sysctl -w net.ipv4.ip_forward=1
"#;

#[test]
fn nat_up_is_one_batch_per_table_then_forwarding() {
    let (host, state) = bridged();
    let change = nat_up(&host, &state);
    assert_script(&change, NAT_UP);
    assert_eq!(
        change
            .state
            .saved
            .get("net.ipv4.ip_forward")
            .map(String::as_str),
        Some("0")
    );
    let undo: Vec<String> = change.plan.steps[0]
        .undo
        .iter()
        .map(ToString::to_string)
        .collect();
    let expected = "iptables-restore --noflush -w <<'EOF'\n*nat\n\
                    -D POSTROUTING -m comment --comment nsnet -j NSNET-POSTROUTING\n\
                    -D NSNET-POSTROUTING -s 10.1.0.0/24 ! -o nsnet0 -m comment --comment \"nsnet:nat:nsnet0\" -j MASQUERADE\n\
                    -X NSNET-POSTROUTING\nCOMMIT\nEOF";
    assert_eq!(undo, [expected]);
}

#[test]
fn nat_down_removes_what_nat_up_added_and_puts_forwarding_back() {
    let (host, state) = bridged();
    let up = nat_up(&host, &state);
    let mut host = installed(&host, &up.state);
    host.sysctls
        .insert("net.ipv4.ip_forward".into(), "1".into());
    let down = reconciled(
        nat::down(&ifname("nsnet0"), &up.state).unwrap(),
        &up.state,
        &host,
    );
    let script = down.plan.script(false);
    assert!(
        script.starts_with("sysctl -w net.ipv4.ip_forward=0\n"),
        "{script}"
    );
    assert!(
        script.contains("-D POSTROUTING -m comment --comment nsnet -j NSNET-POSTROUTING\n"),
        "{script}"
    );
    // NSNET-FORWARD stays: it holds the bridge's own accept rule until bridge down.
    assert!(
        script.contains("-X NSNET-POSTROUTING\n") && !script.contains("-X NSNET-FORWARD\n"),
        "{script}"
    );
    assert_eq!(down.state, state, "the record is the bridged one again");
    // nat up on a host that has the rules already plans nothing.
    let again = reconciled(
        nat::up(&ifname("nsnet0"), None, &host, &up.state).unwrap(),
        &up.state,
        &host,
    );
    assert!(again.plan.steps.is_empty(), "{}", again.plan.script(false));
}

#[test]
fn forwarding_already_on_is_neither_set_nor_put_back() {
    let (mut host, state) = bridged();
    host.sysctls
        .insert("net.ipv4.ip_forward".into(), "1".into());
    let up = nat_up(&host, &state);
    assert!(!up.plan.script(false).contains("sysctl"));
    assert!(up.state.saved.is_empty());
}

#[test]
fn a_rule_removed_by_hand_is_not_deleted_again() {
    let (host, state) = bridged();
    let up = nat_up(&host, &state);
    let mut host = installed(&host, &up.state);
    let fw = host.firewall.as_mut().unwrap();
    fw.rules.retain(|(table, _)| table != "nat");
    let down = reconciled(
        nat::down(&ifname("nsnet0"), &up.state).unwrap(),
        &up.state,
        &host,
    );
    assert!(
        !down.plan.script(false).contains("*nat"),
        "a batch deleting a missing rule would fail whole"
    );
}

#[test]
fn publish_dnats_only_local_destinations_and_sets_hairpin_and_route_localnet() {
    let (host, state) = bridged();
    let script = publish_8080(&host, &state, None).plan.script(false);
    for line in [
        "-A PREROUTING -m addrtype --dst-type LOCAL -m comment --comment nsnet -j NSNET-DNAT\n",
        "-A OUTPUT -m addrtype --dst-type LOCAL -m comment --comment nsnet -j NSNET-DNAT\n",
        "-A NSNET-DNAT -p tcp -m tcp --dport 8080 -m comment --comment \"nsnet:publish:red:8080/tcp\" -j DNAT --to-destination 10.1.0.2:80\n",
        "-A NSNET-POSTROUTING -s 10.1.0.0/24 -o nsnet0 -m conntrack --ctstate DNAT -m comment --comment \"nsnet:publish:nsnet0\" -j MASQUERADE\n",
        "-A NSNET-POSTROUTING -s 127.0.0.0/8 -o nsnet0 -m comment --comment \"nsnet:publish:nsnet0\" -j MASQUERADE\n",
        "-A NSNET-INPUT ! -s 127.0.0.0/8 -d 127.0.0.0/8 -i nsnet0 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -m comment --comment \"nsnet:publish:nsnet0\" -j DROP\n",
        "ip link set nv-red type bridge_slave hairpin on\n",
        "sysctl -w net.ipv4.conf.nsnet0.route_localnet=1\n",
        "sysctl -w net.ipv4.ip_forward=1\n",
    ] {
        assert!(script.contains(line), "missing {line}in\n{script}");
    }
    assert!(
        !script.contains("*raw"),
        "no raw rule without a loopback --host-ip"
    );
    assert!(
        !script.contains("conf.all"),
        "route_localnet is never set on all"
    );
}

#[test]
fn a_port_published_on_another_address_needs_no_loopback_rules() {
    let (mut host, state) = bridged();
    let local = Route {
        dst: "172.31.0.1/32".parse().unwrap(),
        dev: Some("wan0".into()),
        local: true,
    };
    host.routes.push(local);
    let script = publish_8080(&host, &state, Some("172.31.0.1"))
        .plan
        .script(false);
    assert!(
        script.contains("-A NSNET-DNAT -d 172.31.0.1/32 -p tcp -m tcp --dport 8080"),
        "{script}"
    );
    assert!(
        !script.contains("route_localnet") && !script.contains("127.0.0.0/8"),
        "{script}"
    );
}

#[test]
fn a_bridge_name_with_a_dot_gets_a_slash_sysctl_key() {
    let mut first = up(&Host::default(), &State::default(), &["red"], None).unwrap();
    let mut br = first.state.bridges.remove(&ifname("nsnet0")).unwrap();
    br.ifindex = Some(Fake::index("br.1"));
    first.state.bridges.insert(ifname("br.1"), br);
    let mut host = Host {
        firewall: Some(Default::default()),
        ..after(&Host::default(), &mut first)
    };
    let state = first.state;
    host.sysctls
        .insert("net/ipv4/conf/br.1/route_localnet".into(), "0".into());
    let script = publish_8080(&host, &state, None).plan.script(false);
    assert!(
        script.contains("sysctl -w net/ipv4/conf/br.1/route_localnet=1\n"),
        "{script}"
    );
}

#[test]
fn every_bridge_accepts_traffic_between_its_namespaces_until_it_goes() {
    let host = Host {
        firewall: Some(Default::default()),
        ..Host::default()
    };
    let mut change = reconciled(
        up(&host, &State::default(), &["red"], Some("10.1.0.0/24")).unwrap(),
        &State::default(),
        &host,
    );
    let script = change.plan.script(false);
    assert!(
        script.ends_with(
            "iptables-restore --noflush -w <<'EOF'\n*filter\n:NSNET-FORWARD - [0:0]\n:NSNET-USER - [0:0]\n\
             -A NSNET-FORWARD -i nsnet0 -o nsnet0 -m comment --comment \"nsnet:nsnet0\" -j ACCEPT\n\
             -I FORWARD 1 -m comment --comment nsnet -j NSNET-USER\n\
             -I FORWARD 2 -m comment --comment nsnet -j NSNET-FORWARD\nCOMMIT\nEOF\n"
        ),
        "{script}"
    );
    let host = installed(&after(&host, &mut change), &change.state);
    let down = reconciled(
        bridge::down(&ifname("nsnet0"), &[], false, &host, &change.state).unwrap(),
        &change.state,
        &host,
    );
    let script = down.plan.script(false);
    assert!(
        script.starts_with("iptables-restore --noflush -w <<'EOF'\n*filter\n-D FORWARD"),
        "{script}"
    );
    assert!(
        script.contains("-X NSNET-FORWARD\n")
            && script.contains("-X NSNET-USER\n")
            && script.ends_with("ip link del nsnet0\n"),
        "{script}"
    );
}

/// `publish add red 8080:80 [--host-ip IP] [--force]` on `host`.
fn publish_on(host: &Host, state: &State, host_ip: Option<&str>, force: bool) -> Result<Change> {
    publish_red(host, state, host_ip, &[], force)
}

#[test]
fn a_port_a_host_program_listens_on_is_refused_unless_forced() {
    use crate::host::sockets::Listener;
    use crate::model::ports::Proto;
    let (mut host, state) = bridged();
    host.listeners.push(Listener {
        proto: Proto::Tcp,
        addr: "127.0.0.1".parse().unwrap(),
        port: 8080,
        inode: 7,
        holder: Some((812, "devserver".into())),
    });
    let err = publish_on(&host, &state, None, false).unwrap_err();
    assert_eq!(
        err.to_string(),
        "host port 8080/tcp is taken: `devserver` (pid 812) listens on 127.0.0.1:8080 \
         (choose another host port, or add --force to publish over it)"
    );
    // Bound to 127.0.0.1 only: another host address is free, and
    // 127.0.0.1 itself is not.
    assert!(publish_on(&host, &state, Some("127.0.0.2"), false).is_ok());
    assert!(publish_on(&host, &state, Some("127.0.0.1"), false).is_err());
    let forced = publish_on(&host, &state, None, true).unwrap();
    assert_eq!(forced.state.bridges[&ifname("nsnet0")].published.len(), 1);
    assert!(
        forced.notes[0].starts_with("warning: publishing host port 8080/tcp with --force"),
        "{:?}",
        forced.notes
    );
}

#[test]
fn a_port_another_tools_dnat_takes_is_refused() {
    let (mut host, state) = bridged();
    let fw = host.firewall.as_mut().unwrap();
    let docker =
        "-A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80";
    fw.push("nat", docker);
    let err = publish_on(&host, &state, None, false).unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("another tool's rule forwards it: `{docker}`")),
        "{err}"
    );
    // A rule for one address leaves a port published on another alone; a
    // udp rule, or another port, is no clash.
    let fw = host.firewall.as_mut().unwrap();
    fw.retain(|_, line| line != docker);
    for line in [
        "-A PREROUTING -d 192.0.2.9/32 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.9.0.2",
        "-A DOCKER -p udp -m udp --dport 8080 -j DNAT --to-destination 172.17.0.2:80",
        "-A DOCKER -p tcp -m tcp --dport 18080 -j DNAT --to-destination 172.17.0.2:80",
    ] {
        fw.push("nat", line);
    }
    // Both addresses are the host's own.
    host.routes.push(crate::host::Route {
        dst: "192.0.2.0/24".parse().unwrap(),
        dev: Some("eth0".into()),
        local: true,
    });
    assert!(publish_on(&host, &state, Some("192.0.2.1"), false).is_ok());
    let err = publish_on(&host, &state, Some("192.0.2.9"), false).unwrap_err();
    assert!(err.to_string().contains("-d 192.0.2.9/32"), "{err}");
    assert!(
        publish_on(&host, &state, None, false).is_err(),
        "all addresses include .9"
    );
}

#[test]
fn an_unknown_namespace_is_answered_with_the_known_ones_not_a_way_to_make_it() {
    let (host, state) = bridged();
    let mappings = ["8080:80".parse().unwrap()];
    let add = |host: &Host, name: &str| {
        let ns = ns(name);
        let args = publish::Add {
            ns: &ns,
            mappings: &mappings,
            host_ip: None,
            bridge: None,
            force: false,
            allow: Some(&[]),
        };
        publish::add(&args, host, &state).unwrap_err().to_string()
    };
    assert_eq!(
        add(&host, "rde"),
        "namespace `rde` does not exist and is on no nsnet bridge; those on one are `red`"
    );
    let mut host = host.clone();
    host.namespaces.insert("lonely".into());
    assert_eq!(
        add(&host, "lonely"),
        "namespace `lonely` is on no nsnet bridge (put it on one with `nsnet bridge up lonely`)"
    );
}

#[test]
fn allowed_sources_get_one_dnat_each_and_loopback_only_when_allowed() {
    let (host, state) = bridged();
    let change = publish_from(&host, &state, None, &["192.168.1.0/24", "10.1.0.2"]).unwrap();
    let note = change.notes.join("\n");
    assert!(note.contains("add --allow 127.0.0.1"), "{note}");
    let script = reconciled(change, &state, &host).plan.script(false);
    for source in ["10.1.0.2/32", "192.168.1.0/24"] {
        let line = format!(
            "-A NSNET-DNAT -s {source} -p tcp -m tcp --dport 8080 -m comment --comment \"nsnet:publish:red:8080/tcp\" -j DNAT --to-destination 10.1.0.2:80\n"
        );
        assert!(script.contains(&line), "missing {line}in\n{script}");
    }
    assert!(
        !script.contains("-A NSNET-DNAT -p tcp"),
        "no DNAT for any source:\n{script}"
    );
    assert!(
        !script.contains("route_localnet") && !script.contains("127.0.0.0/8"),
        "loopback is not an allowed source:\n{script}"
    );
    let change = publish_from(&host, &state, None, &["127.0.0.1", "192.168.1.0/24"]).unwrap();
    let script = reconciled(change, &state, &host).plan.script(false);
    assert!(
        script.contains("-A NSNET-DNAT -s 127.0.0.1/32 -p tcp")
            && script.contains("sysctl -w net.ipv4.conf.nsnet0.route_localnet=1"),
        "{script}"
    );
}

#[test]
fn publishing_again_with_other_sources_replaces_them() {
    let (host, state) = bridged();
    let first = reconciled(
        publish_from(&host, &state, None, &["192.168.1.0/24"]).unwrap(),
        &state,
        &host,
    );
    let host = installed(&host, &first.state);
    let again = publish_from(&host, &first.state, None, &["192.168.1.0/24"]).unwrap();
    assert_eq!(again.state, first.state, "the same sources change nothing");
    let change = publish_from(&host, &first.state, None, &["192.168.2.0/24"]).unwrap();
    assert_eq!(
        change.notes.first().map(String::as_str),
        Some("host port 8080/tcp now reached from 192.168.2.0/24 (was: 192.168.1.0/24)")
    );
    let published: Vec<_> = change.state.published().collect();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].allow, ["192.168.2.0/24".parse().unwrap()]);
    let script = reconciled(change, &first.state, &host).plan.script(false);
    assert!(
        script.contains("-D NSNET-DNAT -s 192.168.1.0/24 ")
            && script.contains("-A NSNET-DNAT -s 192.168.2.0/24 "),
        "{script}"
    );
    let open = publish_from(&host, &first.state, None, &[]).unwrap();
    assert!(open.state.published().all(|p| p.allow.is_empty()));
}

#[test]
fn a_source_of_a_family_the_port_is_not_published_in_is_refused() {
    let (host, state) = bridged();
    let err = publish_from(&host, &state, None, &["2001:db8::/64"]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "--allow `2001:db8::/64` can never match: the port is published in IPv4 only (bridge `nsnet0` has no IPv6 subnet); give IPv4 sources"
    );
    assert!(err.downcast_ref::<InputError>().is_some(), "exits 2");
}
