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
