//! A normalised snapshot of a throwaway host: its links, addresses, routes
//! (both families) and those of every named namespace, the routing rules,
//! the forwarding, accept_ra and bridge sysctls, and the iptables and
//! ip6tables rules. Indexes, MAC addresses, counters and the link-local
//! IPv6 addresses derived from MACs are left out: they change on every run.

use super::Sandbox;
use serde_json::Value;

fn json(sb: &Sandbox, ns: Option<&str>, args: &str) -> Vec<Value> {
    let prefix = ns.map(|n| format!("-n {n} ")).unwrap_or_default();
    let text = sb.ok(&format!("ip {prefix}-j {args}"));
    serde_json::from_str(if text.trim().is_empty() { "[]" } else { &text }).expect("ip -j output")
}

fn s(v: &Value, key: &str) -> String {
    match &v[key] {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn net(sb: &Sandbox, ns: Option<&str>, out: &mut Vec<String>) {
    let at = ns.unwrap_or("host");
    for l in json(sb, ns, "-d link show") {
        let up = l["flags"]
            .as_array()
            .is_some_and(|f| f.iter().any(|x| x == "UP"));
        let info = &l["linkinfo"];
        out.push(format!(
            "{at}: link {} kind={} master={} up={up} mtu={} hairpin={} nf_call_iptables={}",
            s(&l, "ifname"),
            s(info, "info_kind"),
            s(&l, "master"),
            s(&l, "mtu"),
            s(&info["info_slave_data"], "hairpin"),
            s(&info["info_data"], "nf_call_iptables"),
        ));
    }
    for l in json(sb, ns, "addr show") {
        for a in l["addr_info"].as_array().into_iter().flatten() {
            if a["family"] == "inet6" && a["scope"] == "link" {
                continue;
            }
            out.push(format!(
                "{at}: addr {} {}/{} scope={}",
                s(&l, "ifname"),
                s(a, "local"),
                s(a, "prefixlen"),
                s(a, "scope")
            ));
        }
    }
    for family in ["-4", "-6"] {
        for r in json(sb, ns, &format!("{family} route show table all")) {
            let dst = s(&r, "dst");
            if dst.starts_with("fe80") {
                continue;
            }
            out.push(format!(
                "{at}: route{family} {dst} table={} type={} via={} dev={} scope={} proto={} src={}",
                s(&r, "table"),
                s(&r, "type"),
                s(&r, "gateway"),
                s(&r, "dev"),
                s(&r, "scope"),
                s(&r, "protocol"),
                s(&r, "prefsrc"),
            ));
        }
    }
}

pub fn take(sb: &Sandbox) -> Vec<String> {
    let mut out = Vec::new();
    net(sb, None, &mut out);
    // Each entry with its filesystem type: `nsfs` for a namespace. An `ip
    // netns add` killed between making the file and bind-mounting the
    // namespace on it leaves a plain file (tmpfs), with no network to read.
    let namespaces = sb.ok(
        "for f in /run/netns/*; do [ -e \"$f\" ] && echo \"${f##*/} $(stat -f -c %T \"$f\")\"; done; true",
    );
    for line in namespaces.lines() {
        let (ns, fs) = line.split_once(' ').unwrap_or((line, ""));
        if fs != "nsfs" {
            out.push(format!("namespace {ns} half-made ({fs}, not a namespace)"));
            continue;
        }
        out.push(format!("namespace {ns}"));
        net(sb, Some(ns), &mut out);
    }
    let sysctls = sb.ok(r"sysctl -a -r '^net\.(ipv4\.(ip_forward|conf\..*\.(forwarding|route_localnet))|ipv6\.conf\..*\.(forwarding|accept_ra)|bridge\.)' 2>/dev/null | sort");
    out.extend(sysctls.lines().map(|l| format!("sysctl {l}")));
    for family in ["-4", "-6"] {
        let rules = sb.ok(&format!("ip {family} rule show"));
        out.extend(rules.lines().map(|l| format!("rule{family} {l}")));
    }
    // What `ip netns exec` shows as a namespace's /etc: every file, with
    // its contents (the sandbox has a tmpfs there).
    let etc = sb.ok(
        "cd /etc/netns 2>/dev/null && find . -mindepth 1 | sort | while read -r f; do \
         if [ -f \"$f\" ]; then echo \"$f: $(tr '\\n' '|' < \"$f\")\"; else echo \"$f/\"; fi; done",
    );
    out.extend(etc.lines().map(|l| format!("etc-netns {l}")));
    let rules = sb.ok("if command -v iptables-save >/dev/null; then iptables-save; fi");
    out.extend(iptables(&rules));
    let rules6 = sb.ok("if command -v ip6tables-save >/dev/null; then ip6tables-save; fi");
    out.extend(iptables(&rules6).into_iter().map(|l| format!("ip6 {l}")));
    out.sort();
    out
}

/// `iptables-save` lines without counters. iptables-nft creates a table the
/// first time it is used and iptables cannot delete one, so a table holding
/// only empty built-in chains with an ACCEPT policy (which filter nothing) is
/// left out: it is the same ruleset as no table at all.
fn iptables(saved: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut table: Vec<&str> = Vec::new();
    for line in saved.lines().filter(|l| !l.starts_with('#')) {
        table.push(line);
        if line != "COMMIT" {
            continue;
        }
        let inert = table.iter().all(|l| {
            l.starts_with('*')
                || *l == "COMMIT"
                || (l.starts_with(':') && l.contains(" ACCEPT [") && {
                    let chain = l[1..].split_whitespace().next().unwrap_or_default();
                    !table.iter().any(|r| r.starts_with(&format!("-A {chain} ")))
                })
        });
        if !inert {
            out.extend(
                table
                    .iter()
                    .map(|l| format!("iptables {}", l.split(" [").next().unwrap_or(l))),
            );
        }
        table.clear();
    }
    out
}
