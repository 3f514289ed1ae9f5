//! `doctor`'s IPv6 checks: whether the kernel has IPv6 at all, whether
//! ip6tables is there and on the same backend as iptables, which interfaces
//! ignore router advertisements because the host forwards IPv6, and what
//! publishing in IPv6 cannot do ([::1]). `gather` reads the two facts that
//! need a tool; the rest comes from the observed host and the record.

use super::doctor::{Finding, Level, finding};
use crate::exec::runner::{Runner, System};
use crate::host::{Host, may_face_a_router};
use crate::model::rules::{FORWARDING6, accept_ra, accept_ra_of};
use crate::model::state::State;
use crate::plan::cmd::{Cmd, Tool};

/// What the IPv6 checks need besides the host and the record.
#[derive(Debug, Default)]
pub struct Facts {
    /// ip6tables tools that are not installed: (program, package).
    pub missing: Vec<(&'static str, &'static str)>,
    /// `nf_tables` or `legacy`: the backend of `ip6tables`, if it runs.
    pub backend: Option<String>,
}

/// Reads which ip6tables tools are missing and the backend they use.
pub fn gather(runner: &mut System) -> Facts {
    let mut facts = Facts::default();
    for tool in [Tool::Ip6tablesRestore, Tool::Ip6tablesSave] {
        if runner.resolve(tool).is_err() {
            facts.missing.push((tool.program(), tool.package()));
        }
    }
    let version = runner
        .run(&Cmd::new(Tool::Ip6tablesSave, ["--version"]))
        .unwrap_or_default();
    facts.backend = backend_of(&version);
    facts
}

/// The backend an `iptables-save --version` line names.
pub fn backend_of(version: &str) -> Option<String> {
    ["nf_tables", "legacy"]
        .into_iter()
        .find(|b| version.contains(&format!("({b})")))
        .map(String::from)
}

/// The IPv6 findings; `backend4` is the backend iptables uses.
pub fn check(f: &Facts, backend4: Option<&str>, host: &Host, state: &State) -> Vec<Finding> {
    let mut out = Vec::new();
    let dual = state.bridges.values().any(|b| b.ipv6.is_some());
    if !host.ipv6 {
        out.push(finding(
            "ipv6",
            Level::Ok,
            "the kernel has no IPv6 (booted with ipv6.disable=1): nsnet runs IPv4 only and refuses --ipv6 and IPv6 subnets".into(),
            None,
        ));
        return out;
    }
    tools(f, backend4, dual, &mut out);
    router_advertisements(host, state, &mut out);
    loopback(state, &mut out);
    out
}

fn tools(f: &Facts, backend4: Option<&str>, dual: bool, out: &mut Vec<Finding>) {
    for (program, package) in &f.missing {
        // Needed only once a bridge has IPv6: then nothing of it works.
        let level = if dual { Level::Fail } else { Level::Warn };
        out.push(finding(
            "ip6tables",
            level,
            format!("`{program}` is not installed: bridges with IPv6 cannot get their rules (NAT66, published ports, FORWARD accepts)"),
            Some(format!("apt-get install {package}")),
        ));
    }
    match (f.backend.as_deref(), backend4) {
        (Some(six), Some(four)) if six != four => out.push(finding(
            "ip6tables",
            Level::Warn,
            format!("ip6tables uses the {six} backend but iptables uses {four}: a firewall that reads one never sees the other's rules"),
            Some("put both on one backend (update-alternatives --config ip6tables)".into()),
        )),
        (Some(six), _) => out.push(finding(
            "ip6tables",
            Level::Ok,
            format!("ip6tables uses the {six} backend, as iptables does"),
            None,
        )),
        (None, _) => {}
    }
}

/// With IPv6 forwarding on, an interface with accept_ra 1 ignores router
/// advertisements: what it learned from them (a default route, a SLAAC
/// address) expires. nsnet sets 2 on the interfaces it finds when it turns
/// forwarding on; one that appears later, or was set back, is reported.
fn router_advertisements(host: &Host, state: &State, out: &mut Vec<Finding>) {
    let forwarding = host.sysctls.is(FORWARDING6, "1");
    let kept: Vec<&str> = state.saved.keys().filter_map(|k| accept_ra_of(k)).collect();
    if !forwarding {
        out.push(finding(
            "router advertisements",
            Level::Ok,
            "IPv6 forwarding is off; when a bridge's IPv6 needs it, nsnet first sets accept_ra=2 on the interfaces that take router advertisements, so the host keeps its SLAAC routes".into(),
            None,
        ));
        return;
    }
    let deaf: Vec<&str> = host
        .links
        .all()
        .iter()
        .filter(|(name, link)| may_face_a_router(name, link))
        .map(|(name, _)| name.as_str())
        .filter(|name| host.sysctls.is(&accept_ra(name), "1"))
        .collect();
    for name in &deaf {
        out.push(finding(
            "router advertisements",
            Level::Warn,
            format!("`{name}` ignores router advertisements: IPv6 forwarding is on and its accept_ra is 1, so a default route or address it learned by SLAAC expires"),
            Some(format!("sysctl -w net.ipv6.conf.{name}.accept_ra=2")),
        ));
    }
    if deaf.is_empty() {
        let by = match kept.is_empty() {
            true => String::new(),
            false => format!(
                " (nsnet set accept_ra=2 on {} while it keeps forwarding on, and puts 1 back after)",
                kept.join(", ")
            ),
        };
        out.push(finding(
            "router advertisements",
            Level::Ok,
            format!("IPv6 forwarding is on and every interface that may face a router still takes router advertisements{by}"),
            None,
        ));
    }
}

/// Ports published in IPv6 on every address are not on [::1].
fn loopback(state: &State, out: &mut Vec<Finding>) {
    let on_all = state.bridges.values().filter_map(|b| {
        let v6 = b.ipv6?;
        let p = b.published.iter().find(|p| p.host_ip.is_none())?;
        Some((v6.gateway, p.host_port))
    });
    if let Some((gateway, port)) = on_all.into_iter().next() {
        out.push(finding(
            "ipv6 loopback",
            Level::Warn,
            "ports published in IPv6 answer on the host's IPv6 addresses but not on [::1]: the kernel never routes a packet from ::1 out of an interface (IPv6 has no route_localnet), so nsnet leaves ::1 out of its DNAT and a connection there is refused".into(),
            Some(format!("from the host, use 127.0.0.1:{port} or [{gateway}]:{port}")),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::Link;

    fn host(forwarding: &str, ra: &str) -> Host {
        let mut host = Host {
            ipv6: true,
            ..Host::default()
        };
        let link = |kind: Option<&str>, master: Option<&str>| Link {
            ifindex: 2,
            kind: kind.map(String::from),
            master: master.map(String::from),
        };
        host.links.insert("eth0".into(), link(None, None));
        host.links.insert("br0".into(), link(Some("bridge"), None));
        host.links
            .insert("p0".into(), link(Some("veth"), Some("br0")));
        host.sysctls.insert(FORWARDING6.into(), forwarding.into());
        for name in ["eth0", "br0", "p0"] {
            host.sysctls.insert(accept_ra(name), ra.into());
        }
        host
    }

    fn levels(findings: &[Finding], check: &str) -> Vec<Level> {
        let of = findings.iter().filter(|f| f.check == check);
        of.map(|f| f.level).collect()
    }

    #[test]
    fn an_uplink_deaf_to_router_advertisements_is_named_with_its_fix() {
        let findings = check(&Facts::default(), None, &host("1", "1"), &State::default());
        let ra: Vec<&Finding> = findings
            .iter()
            .filter(|f| f.check == "router advertisements")
            .collect();
        // The bridge and its port face no router: only eth0 is named.
        assert_eq!(ra.len(), 1, "{findings:?}");
        assert_eq!(ra[0].level, Level::Warn);
        assert!(ra[0].message.contains("`eth0`"));
        assert_eq!(
            ra[0].fix.as_deref(),
            Some("sysctl -w net.ipv6.conf.eth0.accept_ra=2")
        );
        for (forwarding, ra) in [("1", "2"), ("0", "1")] {
            let findings = check(
                &Facts::default(),
                None,
                &host(forwarding, ra),
                &State::default(),
            );
            assert_eq!(levels(&findings, "router advertisements"), [Level::Ok]);
        }
    }

    #[test]
    fn ip6tables_missing_or_on_another_backend_is_reported() {
        let facts = Facts {
            missing: vec![("ip6tables-restore", "iptables")],
            backend: Some("legacy".into()),
        };
        let findings = check(
            &facts,
            Some("nf_tables"),
            &host("0", "1"),
            &State::default(),
        );
        assert_eq!(levels(&findings, "ip6tables"), [Level::Warn, Level::Warn]);
        let same = Facts {
            backend: Some("nf_tables".into()),
            ..Facts::default()
        };
        let findings = check(&same, Some("nf_tables"), &host("0", "1"), &State::default());
        assert_eq!(levels(&findings, "ip6tables"), [Level::Ok]);
    }

    #[test]
    fn a_kernel_without_ipv6_is_one_finding() {
        let findings = check(&Facts::default(), None, &Host::default(), &State::default());
        assert_eq!(findings.len(), 1);
        assert!(findings[0].message.contains("ipv6.disable=1"));
    }
}
