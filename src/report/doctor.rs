//! `doctor`: checks the host for what would break nsnet or surprise its
//! user, and says how to fix each. `gather` reads the facts (the only I/O
//! here); `check` turns them into findings and is a pure function.

use crate::exec::runner::{Runner, System};
use crate::host::{Firewall, Host};
use crate::model::policy;
use crate::model::rules::{self, Family, comment};
use crate::model::state::State;
use crate::plan::cmd::{Cmd, Tool};
use crate::report::shadow::{self, Traffic};
use crate::report::{doctor6, forward};
use serde::Serialize;

/// The kernel's limit on ports per bridge (BR_MAX_PORTS).
const BRIDGE_MAX_PORTS: usize = 1024;

/// What `check` looks at.
#[derive(Debug, Default)]
pub struct Facts {
    /// Tools nsnet needs that are not installed: (program, package).
    pub missing: Vec<(&'static str, &'static str)>,
    /// `nf_tables` or `legacy`: the backend `iptables` writes to.
    pub backend: Option<String>,
    /// Rules (`-A` lines) in the other backend, which nsnet's rules never meet.
    pub other_backend_rules: usize,
    pub firewall: Option<Firewall>,
    /// What `ip6tables-save` prints, when it runs.
    pub firewall6: Option<Firewall>,
    /// ufw or firewalld: installed, or their chains present.
    pub ufw: bool,
    pub firewalld: bool,
    /// br_netfilter: loaded (with bridge-nf-call-iptables), loadable, or neither.
    pub br_netfilter: BrNetfilter,
    /// net.ipv4.neigh.default.gc_thresh3, where this namespace can see it.
    pub gc_thresh3: Option<usize>,
    /// What drops forwarded traffic whatever nsnet's own rules say.
    pub forward: forward::Facts,
    pub root: bool,
    /// What the IPv6 checks need.
    pub ipv6: doctor6::Facts,
    /// The name servers of the host's /etc/resolv.conf.
    pub nameservers: Vec<std::net::IpAddr>,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub enum BrNetfilter {
    Loaded {
        call_iptables: bool,
    },
    Loadable,
    #[default]
    Unavailable,
}

#[derive(Debug, Serialize, PartialEq, Eq, PartialOrd, Ord, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Serialize)]
pub struct Finding {
    pub check: &'static str,
    pub level: Level,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

pub(super) fn finding(
    check: &'static str,
    level: Level,
    message: String,
    fix: Option<String>,
) -> Finding {
    Finding {
        check,
        level,
        message,
        fix,
    }
}

/// Reads the facts `check` needs.
pub fn gather(runner: &mut System) -> Facts {
    let mut facts = Facts::default();
    for tool in [
        Tool::Ip,
        Tool::IptablesRestore,
        Tool::IptablesSave,
        Tool::Sysctl,
    ] {
        if runner.resolve(tool).is_err() {
            facts.missing.push((tool.program(), tool.package()));
        }
    }
    backends(runner, &mut facts);
    facts.firewall = runner
        .run(&Cmd::new(Tool::IptablesSave, [] as [&str; 0]))
        .ok()
        .map(|t| Firewall::parse(&t));
    facts.firewall6 = runner
        .run(&Cmd::new(Tool::Ip6tablesSave, [] as [&str; 0]))
        .ok()
        .map(|t| Firewall::parse(&t));
    let chains = |prefix: &str| {
        facts
            .firewall
            .as_ref()
            .is_some_and(|fw| fw.chains.iter().any(|(_, c)| c.starts_with(prefix)))
    };
    let installed =
        |name: &str| which::which_in(name, Some(crate::exec::runner::TRUSTED_PATH), "/").is_ok();
    facts.ufw = installed("ufw") || chains("ufw-");
    facts.firewalld = installed("firewalld") || chains("FWDI_") || chains("IN_public");
    facts.br_netfilter = br_netfilter(runner);
    facts.forward = forward::gather(runner);
    facts.gc_thresh3 = std::fs::read_to_string("/proc/sys/net/ipv4/neigh/default/gc_thresh3")
        .ok()
        .and_then(|v| v.trim().parse().ok());
    facts.root = rustix::process::geteuid().is_root();
    facts.ipv6 = doctor6::gather(runner);
    facts.nameservers = std::fs::read_to_string("/etc/resolv.conf")
        .map(|text| nameservers(&text))
        .unwrap_or_default();
    facts
}

/// The `nameserver` lines of a resolv.conf.
pub fn nameservers(text: &str) -> Vec<std::net::IpAddr> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|rest| rest.trim().parse().ok())
        .collect()
}

/// Which iptables backend `iptables-save` uses, and how many rules sit in
/// the other one.
fn backends(runner: &mut System, facts: &mut Facts) {
    let version = runner
        .run(&Cmd::new(Tool::IptablesSave, ["--version"]))
        .unwrap_or_default();
    facts.backend = doctor6::backend_of(&version);
    let other = match facts.backend.as_deref() {
        Some("nf_tables") => Some(Tool::IptablesLegacySave),
        Some("legacy") => Some(Tool::IptablesNftSave),
        _ => None,
    };
    if let Some(other) = other {
        let saved = runner
            .run(&Cmd::new(other, [] as [&str; 0]))
            .unwrap_or_default();
        facts.other_backend_rules = saved.lines().filter(|l| l.starts_with("-A ")).count();
    }
}

/// Whether br_netfilter is loaded (and passes bridged frames to iptables),
/// could be, or is not there at all.
fn br_netfilter(runner: &mut System) -> BrNetfilter {
    match std::fs::read_to_string("/proc/sys/net/bridge/bridge-nf-call-iptables") {
        Ok(v) => BrNetfilter::Loaded {
            call_iptables: v.trim() == "1",
        },
        Err(_)
            if runner
                .run(&Cmd::new(Tool::Modprobe, ["-n", "-q", "br_netfilter"]))
                .is_ok() =>
        {
            BrNetfilter::Loadable
        }
        Err(_) => BrNetfilter::Unavailable,
    }
}

/// Every finding, worst last within each check.
pub fn check(f: &Facts, host: &Host, state: &State) -> Vec<Finding> {
    let mut out = Vec::new();
    if f.missing.is_empty() {
        out.push(finding(
            "tools",
            Level::Ok,
            "ip, iptables-restore, iptables-save and sysctl are installed".into(),
            None,
        ));
    }
    for (program, package) in &f.missing {
        let fix = Some(format!("apt-get install {package}"));
        out.push(finding(
            "tools",
            Level::Fail,
            format!("`{program}` is not installed"),
            fix,
        ));
    }
    if !f.root {
        let fix = Some("run nsnet with sudo".into());
        out.push(finding(
            "root",
            Level::Warn,
            "not root: nsnet can show plans, not apply them".into(),
            fix,
        ));
    }
    match (&f.backend, f.other_backend_rules) {
        (None, _) => {}
        (Some(b), 0) => out.push(finding("iptables", Level::Ok, format!("iptables uses the {b} backend"), None)),
        (Some(b), n) => out.push(finding(
            "iptables",
            Level::Warn,
            format!("iptables uses the {b} backend, but {n} rule(s) sit in the other one; the two never see each other's rules"),
            Some("keep every tool on one backend (update-alternatives --config iptables)".into()),
        )),
    }
    if let Some(fw) = &f.firewall {
        firewall_checks(fw, f, &mut out);
    }
    for (family, fw) in [(Family::V4, &f.firewall), (Family::V6, &f.firewall6)] {
        if let Some(fw) = fw {
            forward_order(family, fw, state, &mut out);
        }
    }
    for block in forward::check(&f.forward, &Traffic::of(state, Family::V4)) {
        out.push(finding(
            "forward",
            Level::Fail,
            block.message,
            Some(block.fix),
        ));
    }
    out.push(br_netfilter_finding(&f.br_netfilter));
    subnet_checks(host, state, &mut out);
    bridge_checks(host, f, &mut out);
    out.extend(doctor6::check(&f.ipv6, f.backend.as_deref(), host, state));
    if let Some(lo) = f.nameservers.iter().find(|a| a.is_loopback()) {
        out.push(finding(
            "dns",
            Level::Warn,
            format!("the host's resolver is {lo}, a loopback address: inside a namespace that is the namespace's own loopback, where nothing answers, so names do not resolve there"),
            Some("give namespaces a name server they can reach with --dns (`nsnet bridge up NS --dns IP`; `resolvectl status` shows the servers systemd-resolved uses)".into()),
        ));
    }
    out
}

/// What br_netfilter means for nsnet's bridges (nothing that breaks them).
fn br_netfilter_finding(brnf: &BrNetfilter) -> Finding {
    match brnf {
        BrNetfilter::Loaded { call_iptables: true } => finding(
            "br_netfilter",
            Level::Ok,
            "br_netfilter passes bridged traffic through iptables: nsnet's bridges get accept rules and hairpin mode for it".into(),
            None,
        ),
        BrNetfilter::Loaded { call_iptables: false } => {
            finding("br_netfilter", Level::Ok, "br_netfilter is loaded, off for bridged traffic".into(), None)
        }
        BrNetfilter::Loadable | BrNetfilter::Unavailable => {
            finding("br_netfilter", Level::Ok, "br_netfilter is not loaded; nsnet does not need it".into(), None)
        }
    }
}

fn firewall_checks(fw: &Firewall, f: &Facts, out: &mut Vec<Finding>) {
    let policy = fw
        .policies
        .get(&("filter".to_string(), "FORWARD".to_string()));
    if policy.map(String::as_str) == Some("DROP") {
        out.push(finding(
            "forward",
            Level::Ok,
            "the FORWARD policy is DROP: nsnet accepts its own bridges' traffic in NSNET-FORWARD, first in FORWARD".into(),
            None,
        ));
    }
    if fw
        .chains
        .iter()
        .any(|(_, c)| c == "DOCKER" || c == "DOCKER-USER")
    {
        out.push(finding(
            "docker",
            Level::Warn,
            "Docker's chains are present: Docker sets FORWARD to DROP; nsnet's jump comes first in FORWARD, Docker's rules still apply to its own bridges".into(),
            Some("choose nsnet subnets that do not overlap Docker's (see `docker network ls`)".into()),
        ));
    }
    for (present, name) in [(f.ufw, "ufw"), (f.firewalld, "firewalld")] {
        if present {
            out.push(finding(
                "host firewall",
                Level::Warn,
                format!("{name} is present: ports published by nsnet bypass its rules (DNAT happens before them), as Docker's do"),
                                Some("choose who reaches each published port with `nsnet publish add … --allow CIDR`, or publish it on `--host-ip 127.0.0.1` only".into()),
            ));
        }
    }
}

/// In one family's FORWARD: nsnet's jumps in their order, and the host's
/// DROP and REJECT rules that meet nsnet's traffic after its accepts, where
/// they never see it (see `shadow`).
fn forward_order(family: Family, fw: &Firewall, state: &State, out: &mut Vec<Finding>) {
    let tool = family.tool_name();
    let forward = fw.chain("filter", "FORWARD");
    for chain in policy::misplaced(&forward) {
        out.push(finding(
            "jump order",
            Level::Warn,
            format!("in {tool}'s FORWARD, nsnet's jump to {chain} comes before one it must follow (NSNET-USER, then NSNET-POLICY, then NSNET-FORWARD): the user's rules or the policy are bypassed"),
            Some("the next nsnet command that changes anything puts it back (`nsnet bridge up NS` again for a namespace already up will do)".into()),
        ));
    }
    let jump = format!("-A FORWARD {} -j {}", comment("nsnet"), rules::FORWARD);
    let Some(at) = forward.iter().position(|l| *l == jump) else {
        return;
    };
    let traffic = Traffic::of(state, family);
    for line in forward[at + 1..].iter().filter(|l| shadow::stops(l)) {
        if shadow::catch_all(line) {
            out.push(finding(
                "shadowed",
                Level::Ok,
                format!("`{line}` in {tool}'s FORWARD stops what no earlier rule accepted; nsnet's accepts for its bridges come first"),
                None,
            ));
            continue;
        }
        let bridges = traffic.meets(line);
        if bridges.is_empty() {
            continue;
        }
        let names: Vec<String> = bridges.iter().map(|b| format!("`{b}`")).collect();
        let spec = shadow::spec(line);
        let mut fix = format!(
            "move it into NSNET-USER, which runs ahead of nsnet's accepts: `{tool} -A NSNET-USER {spec} && {tool} -D FORWARD {spec}`"
        );
        if let Some(to) = shadow::destination(line) {
            let denies: Vec<String> = bridges
                .iter()
                .map(|b| format!("`nsnet firewall deny --bridge {b} {to}`"))
                .collect();
            fix.push_str(&format!(
                "; or, for nsnet's namespaces, {}",
                denies.join(" and ")
            ));
        }
        out.push(finding(
            "shadowed",
            Level::Warn,
            format!("`{line}` in {tool}'s FORWARD comes after nsnet's accepts: it never sees the traffic of {} that nsnet lets through (an appended rule fares the same beside Docker)", names.join(", ")),
            Some(fix),
        ));
    }
}

fn subnet_checks(host: &Host, state: &State, out: &mut Vec<Finding>) {
    for (name, bridge) in &state.bridges {
        let clash = host.routes.iter().find(|r| {
            let overlaps = r.dst.contains(&bridge.subnet.network())
                || bridge.subnet.contains(&r.dst.network());
            overlaps && !r.local && r.dev.as_deref() != Some(name.as_str())
        });
        if let Some(route) = clash {
            let dev = route.dev.as_deref().unwrap_or("?");
            out.push(finding(
                "subnets",
                Level::Fail,
                                format!(
                    "bridge `{name}`'s subnet {} overlaps route {} on {dev}: addresses in both are reached through only one of them",
                    bridge.subnet, route.dst
                ),
                Some(format!("move the bridge to a free subnet (`nsnet bridge down --bridge {name}`, then `bridge up … --subnet`)")),
            ));
        }
    }
}

fn bridge_checks(host: &Host, f: &Facts, out: &mut Vec<Finding>) {
    let mut ports_total = 0;
    for (name, link) in host.links.all() {
        if link.kind.as_deref() != Some("bridge") {
            continue;
        }
        let ports = host
            .links
            .all()
            .values()
            .filter(|l| l.master.as_deref() == Some(name))
            .count();
        ports_total += ports;
        let level = match ports {
            n if n >= BRIDGE_MAX_PORTS => Level::Fail,
            n if n * 10 >= BRIDGE_MAX_PORTS * 8 => Level::Warn,
            _ => continue,
        };
        out.push(finding(
            "bridge ports",
            level,
            format!("bridge `{name}` has {ports} of the kernel's {BRIDGE_MAX_PORTS} ports"),
            Some("spread namespaces over several bridges (--bridge)".into()),
        ));
    }
    match f.gc_thresh3 {
        Some(limit) if ports_total * 4 > limit * 3 => out.push(finding(
            "neighbours",
            Level::Warn,
            format!("{ports_total} bridge ports and net.ipv4.neigh.default.gc_thresh3 = {limit}: the host's neighbour table will overflow and drop traffic"),
            Some(format!("sysctl -w net.ipv4.neigh.default.gc_thresh3={}", (ports_total * 2).next_power_of_two())),
        )),
        Some(limit) => out.push(finding("neighbours", Level::Ok, format!("neighbour table limit {limit} is ample for {ports_total} bridge ports"), None)),
        None => {}
    }
}

#[cfg(test)]
#[path = "doctor_tests.rs"]
mod tests;
