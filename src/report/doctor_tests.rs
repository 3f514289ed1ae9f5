//! Tests of `doctor::check`: thresholds and fixes, on made-up facts.
use super::*;
use crate::host::Link;

fn bridge_with(ports: usize) -> Host {
    let mut host = Host::default();
    host.links.insert(
        "br0".into(),
        Link {
            ifindex: 3,
            kind: Some("bridge".into()),
            master: None,
        },
    );
    for i in 0..ports {
        host.links.insert(
            format!("p{i}"),
            Link {
                ifindex: 3,
                kind: Some("veth".into()),
                master: Some("br0".into()),
            },
        );
    }
    host
}

fn levels(findings: &[Finding], check: &str) -> Vec<Level> {
    findings
        .iter()
        .filter(|f| f.check == check)
        .map(|f| f.level)
        .collect()
}

#[test]
fn a_small_neighbour_table_is_flagged_with_a_fix() {
    let facts = Facts {
        gc_thresh3: Some(8),
        root: true,
        ..Facts::default()
    };
    let findings = check(&facts, &bridge_with(10), &State::default());
    let warn = findings.iter().find(|f| f.check == "neighbours").unwrap();
    assert_eq!(warn.level, Level::Warn);
    assert_eq!(
        warn.fix.as_deref(),
        Some("sysctl -w net.ipv4.neigh.default.gc_thresh3=32")
    );
    let facts = Facts {
        gc_thresh3: Some(1024),
        root: true,
        ..Facts::default()
    };
    assert_eq!(
        levels(
            &check(&facts, &bridge_with(10), &State::default()),
            "neighbours"
        ),
        [Level::Ok]
    );
}

#[test]
fn a_bridge_near_or_at_the_port_limit_is_flagged() {
    let facts = Facts {
        root: true,
        ..Facts::default()
    };
    assert!(
        levels(
            &check(&facts, &bridge_with(800), &State::default()),
            "bridge ports"
        )
        .is_empty()
    );
    assert_eq!(
        levels(
            &check(&facts, &bridge_with(820), &State::default()),
            "bridge ports"
        ),
        [Level::Warn]
    );
    assert_eq!(
        levels(
            &check(&facts, &bridge_with(1024), &State::default()),
            "bridge ports"
        ),
        [Level::Fail]
    );
}

#[test]
fn missing_tools_fail_and_name_their_package() {
    let facts = Facts {
        missing: vec![("iptables-restore", "iptables")],
        root: true,
        ..Facts::default()
    };
    let findings = check(&facts, &Host::default(), &State::default());
    let fail = findings.iter().find(|f| f.check == "tools").unwrap();
    assert_eq!(
        (fail.level, fail.fix.as_deref()),
        (Level::Fail, Some("apt-get install iptables"))
    );
}

/// nsnet0 (10.200.0.0/24) with NAT, as the record has it.
fn natted() -> State {
    serde_json::from_str(
        r#"{"bridges": {"nsnet0": {"subnet": "10.200.0.0/24", "gateway": "10.200.0.1", "nat": {}}}}"#,
    )
    .unwrap()
}

#[test]
fn appended_rejects_nsnet_shadows_are_named_with_both_fixes() {
    // The fourth tutorial's appendix, appended after nsnet's jumps, then a
    // distribution's catch-all, and a rule for Docker's bridge.
    let saved = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:NSNET-USER - [0:0]\n:NSNET-FORWARD - [0:0]\n\
        -A FORWARD -m comment --comment nsnet -j NSNET-USER\n\
        -A FORWARD -m comment --comment nsnet -j NSNET-FORWARD\n\
        -A FORWARD -d 192.168.0.0/16 -j REJECT --reject-with icmp-port-unreachable\n\
        -A FORWARD -i docker0 -o docker0 -j DROP\n\
        -A FORWARD -j REJECT --reject-with icmp-host-prohibited\nCOMMIT\n";
    let facts = Facts {
        firewall: Some(Firewall::parse(saved)),
        root: true,
        ..Facts::default()
    };
    let findings = check(&facts, &Host::default(), &natted());
    let shadowed: Vec<&Finding> = findings.iter().filter(|f| f.check == "shadowed").collect();
    assert_eq!(shadowed.len(), 2, "{shadowed:?}");
    assert_eq!(shadowed[0].level, Level::Warn);
    assert!(
        shadowed[0]
            .message
            .starts_with("`-A FORWARD -d 192.168.0.0/16 -j REJECT --reject-with icmp-port-unreachable` in iptables's FORWARD comes after nsnet's accepts"),
        "{shadowed:?}"
    );
    assert_eq!(
        shadowed[0].fix.as_deref(),
        Some(
            "move it into NSNET-USER, which runs ahead of nsnet's accepts: `iptables -A NSNET-USER -d 192.168.0.0/16 -j REJECT --reject-with icmp-port-unreachable && iptables -D FORWARD -d 192.168.0.0/16 -j REJECT --reject-with icmp-port-unreachable`; or, for nsnet's namespaces, `nsnet firewall deny --bridge nsnet0 192.168.0.0/16`"
        )
    );
    assert_eq!(shadowed[1].level, Level::Ok, "the catch-all is no problem");
    assert_eq!(levels(&findings, "jump order"), []);
}

#[test]
fn a_jump_out_of_order_is_named() {
    let saved = "*filter\n:FORWARD ACCEPT [0:0]\n:NSNET-USER - [0:0]\n:NSNET-FORWARD - [0:0]\n\
        -A FORWARD -m comment --comment nsnet -j NSNET-FORWARD\n\
        -A FORWARD -m comment --comment nsnet -j NSNET-USER\nCOMMIT\n";
    let facts = Facts {
        firewall6: Some(Firewall::parse(saved)),
        root: true,
        ..Facts::default()
    };
    let findings = check(&facts, &Host::default(), &natted());
    let order: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.check == "jump order")
        .collect();
    assert_eq!(order.len(), 1, "{order:?}");
    assert!(
        order[0].message.starts_with(
            "in ip6tables's FORWARD, nsnet's jump to NSNET-FORWARD comes before one it must follow"
        ),
        "{order:?}"
    );
}

#[test]
fn a_loopback_resolver_is_named_with_the_way_to_give_namespaces_one() {
    let text = "# systemd-resolved\nnameserver 127.0.0.53\noptions edns0\nsearch lan\n";
    let facts = Facts {
        nameservers: nameservers(text),
        root: true,
        ..Facts::default()
    };
    assert_eq!(
        facts.nameservers,
        ["127.0.0.53".parse::<std::net::IpAddr>().unwrap()]
    );
    let findings = check(&facts, &Host::default(), &State::default());
    let dns: Vec<&Finding> = findings.iter().filter(|f| f.check == "dns").collect();
    assert_eq!(dns.len(), 1);
    assert!(
        dns[0]
            .message
            .starts_with("the host's resolver is 127.0.0.53, a loopback address")
    );
    assert!(dns[0].fix.as_deref().unwrap().contains("--dns"));
    let plain = Facts {
        nameservers: nameservers("nameserver 192.0.2.53\n"),
        root: true,
        ..Facts::default()
    };
    assert_eq!(
        levels(&check(&plain, &Host::default(), &State::default()), "dns"),
        []
    );
}
