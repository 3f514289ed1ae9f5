//! How nsnet reads the host: interfaces, addresses, routes and rules over
//! netlink, in-process, must tell it exactly what `ip -j` tells it
//! (`NSNET_READ=ip` reads the old way); the rule cache must stay what
//! `iptables-save` prints, and a change made by hand between two commands
//! must be seen by the next one.

mod common;

use common::Sandbox;

/// A host with most of what nsnet makes, and things it did not make.
fn busy_host(sb: &Sandbox) {
    for args in [
        &[
            "bridge",
            "up",
            "red",
            "blue",
            "--subnet",
            "10.0.0.0/24",
            "--subnet",
            "fd00:1::/64",
            "--nat",
        ][..],
        &["publish", "add", "red", "8080:80", "5353:53/udp"],
        &[
            "publish",
            "add",
            "blue",
            "9090:90",
            "--allow",
            "192.0.2.0/24",
        ],
        &[
            "bridge",
            "up",
            "green",
            "--bridge",
            "br2",
            "--subnet",
            "10.9.0.0/24",
        ],
        &["veth", "add", "pink", "yellow", "--subnet", "10.60.0.0/30"],
        &["route", "add", "red", "10.50.0.0/16", "via", "10.0.0.1"],
        &["firewall", "deny", "192.168.0.0/16"],
    ] {
        sb.nsnet(args).assert().success();
    }
    // Another tool's: a namespace with a cable, a bridge with an address,
    // a routing table and its rule, a chain of rules.
    sb.ok(
        "ip netns add other && ip link add ox type veth peer name oy netns other && \
         ip link add lan0 type bridge && ip link property add dev lan0 altname lanalt && ip addr add 192.168.77.1/24 dev lan0 && ip link set lan0 up && \
         ip route add 10.77.0.0/16 via 192.168.77.2 table 55 && ip -6 route add fd77::/64 dev lan0 table 100 && ip rule add from 10.77.0.0/16 table 55 pref 500 && \
         iptables -N OTHER && iptables -A OTHER -s 172.16.0.0/12 -j ACCEPT && iptables -A FORWARD -j OTHER",
    );
}

#[test]
fn netlink_and_ip_read_the_same_host() {
    let Some(sb) = Sandbox::new() else { return };
    busy_host(&sb);
    for args in [
        &["status", "--json"][..],
        &["status"],
        &["graph"],
        &["doctor"],
        &["bridge", "up", "extra", "--dry-run"],
        &["publish", "add", "blue", "9091:80", "--dry-run"],
        &["nat", "down", "--dry-run"],
        &["down", "--dry-run"],
        // Interfaces asked about one at a time: a bridge of another tool,
        // a bridge and ports to take down.
        &["bridge", "up", "x1", "--bridge", "lan0", "--dry-run"],
        &["bridge", "down", "green", "--dry-run"],
        &["publish", "del", "red", "8080", "--dry-run"],
        &["netns", "del", "pink", "--dry-run"],
        // The kernel finds an interface by an alternative name too; nsnet
        // and iptables know it by its name only.
        &["nat", "up", "--out", "lanalt", "--dry-run"],
        // IPv6 routes, read when asked: a routed prefix is not taken, a
        // table in use by IPv6 routes only is not either.
        &[
            "bridge",
            "up",
            "z1",
            "--bridge",
            "br3",
            "--subnet",
            "fd77::/64",
            "--dry-run",
        ],
        &[
            "nat",
            "up",
            "--bridge",
            "br2",
            "--out",
            "lan0",
            "--via",
            "192.168.77.2",
            "--dry-run",
        ],
    ] {
        let kernel = sb.nsnet(args).env("NO_COLOR", "1").output().unwrap();
        let ip = sb
            .nsnet(args)
            .env("NO_COLOR", "1")
            .env("NSNET_READ", "ip")
            .output()
            .unwrap();
        assert_eq!(kernel.status.code(), ip.status.code(), "{args:?}");
        let (k, i) = (
            String::from_utf8_lossy(&kernel.stdout),
            String::from_utf8_lossy(&ip.stdout),
        );
        assert!(
            !k.trim().is_empty() || !kernel.stderr.is_empty(),
            "{args:?} printed nothing"
        );
        assert_eq!(
            k, i,
            "{args:?}: netlink (left) and ip -j (right) read differently"
        );
        assert_eq!(
            String::from_utf8_lossy(&kernel.stderr),
            String::from_utf8_lossy(&ip.stderr),
            "{args:?}"
        );
    }
}

/// `iptables-save` output as the rule cache keeps it: no comment lines, and
/// every chain's counters zero.
fn without_counters(saved: &str) -> String {
    let mut out = String::new();
    for line in saved.lines().filter(|l| !l.starts_with('#')) {
        match line.strip_prefix(':').and_then(|l| l.rsplit_once(' ')) {
            Some((chain, _)) => out.push_str(&format!(":{chain} [0:0]")),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// The saved text of each family in the rule cache's file: after a header
/// and its `host` and `generation` lines, each after a `== TOOL` line.
fn cached_texts(file: &str) -> std::collections::BTreeMap<String, String> {
    let mut lines = file.lines();
    assert!(
        lines
            .next()
            .is_some_and(|l| l.starts_with("nsnet-rule-cache-2 ")),
        "{file}"
    );
    assert!(lines.next().is_some_and(|l| l.starts_with("host ")));
    assert!(lines.next().is_some_and(|l| l.starts_with("generation ")));
    let mut texts = std::collections::BTreeMap::new();
    let mut tool = None;
    for line in lines {
        match line.strip_prefix("== ") {
            Some(name) => tool = Some(name.to_string()),
            None => {
                let text: &mut String = texts.entry(tool.clone().expect("a tool")).or_default();
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    texts
}

#[test]
fn the_rule_cache_is_what_iptables_save_prints_and_is_used() {
    let Some(sb) = Sandbox::new() else { return };
    let steps: &[&[&str]] = &[
        &["bridge", "up", "red", "blue", "--nat", "--ipv6"],
        &["publish", "add", "red", "8080:80"],
        &["publish", "add", "blue", "9090:90"],
        &["firewall", "deny", "10.0.0.0/8", "--log"],
        &["publish", "del", "red", "8080"],
        &["firewall", "del", "10.0.0.0/8"],
        &["bridge", "up", "green"],
        &["nat", "down"],
        &["bridge", "down", "green"],
        &["down"],
    ];
    let mut cached = 0;
    for args in steps {
        let out = sb
            .nsnet(*args)
            .env("RUST_LOG", "nsnet=debug")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let log = String::from_utf8_lossy(&out.stderr);
        cached += log
            .lines()
            .filter(|l| l.contains("cached: iptables-save"))
            .count();
        let file = sb.ok("cat /run/nsnet/rules.cache");
        let cache = cached_texts(&file);
        for (save, tool) in [
            ("iptables-save", "iptables-save"),
            ("ip6tables-save", "ip6tables-save"),
        ] {
            if let Some(text) = cache.get(save) {
                // Line for line, tables, chains and rules in the order the
                // tool prints them (tables it made on first use too).
                assert_eq!(
                    text,
                    &without_counters(&sb.ok(tool)),
                    "after {args:?}: the cached {save} (left) is not the kernel's (right)"
                );
            }
        }
    }
    // Every command after the first read its rules from the cache (the
    // first makes the tables, which the cache follows).
    assert!(
        cached >= steps.len() - 1,
        "the cache answered {cached} reads"
    );
}

/// Runs nsnet with its debug log; the log, after checking it succeeded
/// and that the rule cache holds exactly what `iptables-save` and
/// `ip6tables-save` print.
fn logged_and_cached_right(sb: &Sandbox, args: &[&str], after: &str) -> String {
    let out = sb
        .nsnet(args)
        .env("RUST_LOG", "nsnet=debug")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{args:?}: {log}");
    let cache = cached_texts(&sb.ok("cat /run/nsnet/rules.cache"));
    for tool in ["iptables-save", "ip6tables-save"] {
        if let Some(text) = cache.get(tool) {
            assert_eq!(
                text,
                &without_counters(&sb.ok(tool)),
                "after {after} and {args:?}: the cached {tool} (left) is not the kernel's (right)"
            );
        }
    }
    log
}

#[test]
fn after_a_change_by_hand_only_the_chains_it_changed_are_read_again() {
    let Some(sb) = Sandbox::new() else { return };
    sb.ok("iptables -N OTHER && iptables -A OTHER -s 172.16.0.0/12 -j ACCEPT && iptables -A FORWARD -j OTHER");
    // nsnet's own changes of every kind: batches of the tool (chains
    // made), rules added and deleted by nsnet itself, by a handle it knows
    // and by one it lists.
    for args in [
        &["bridge", "up", "red", "blue", "--nat", "--ipv6"][..],
        &["publish", "add", "red", "8080:80"],
        &["publish", "add", "blue", "9090:90"],
        &["publish", "del", "red", "8080"],
        &["firewall", "deny", "10.0.0.0/8"],
    ] {
        logged_and_cached_right(&sb, args, "nsnet alone");
    }
    let read_again = |log: &str| -> Vec<String> {
        log.lines()
            .filter(|l| l.contains("rule cache:") || l.contains("exec: ip"))
            .map(String::from)
            .collect()
    };
    // Each change by hand, then a command that reads the rules: only the
    // chains changed are listed, with `iptables -S`, and the rest is kept.
    for (change, chain) in [
        (
            "iptables -A OTHER -s 192.0.2.1 -j DROP",
            "-t filter -S OTHER",
        ),
        (
            "iptables -R OTHER 1 -s 172.16.0.0/16 -j ACCEPT",
            "-t filter -S OTHER",
        ),
        (
            "iptables -t nat -I PREROUTING -p tcp --dport 7070 -j DNAT --to-destination 172.31.0.2:80",
            "-t nat -S PREROUTING",
        ),
        (
            "ip6tables -A FORWARD -s 2001:db8::/64 -j ACCEPT",
            "-t filter -S FORWARD",
        ),
    ] {
        sb.ok(change);
        let log = logged_and_cached_right(&sb, &["publish", "add", "blue", "9090:90"], change);
        let seen = read_again(&log);
        assert!(
            seen.iter().any(|l| l.contains(chain)),
            "after `{change}`: {seen:#?}"
        );
        assert!(
            !seen.iter().any(|l| l.contains("exec: iptables-save")
                || l.contains("exec: ip6tables-save")
                || l.contains("read again whole")),
            "after `{change}`: {seen:#?}"
        );
    }
    // What was changed by hand is what the next command plans with: the
    // port another tool now forwards is refused.
    sb.nsnet(["publish", "add", "red", "7070:80"])
        .assert()
        .failure()
        .stderr(predicates::str::contains("another tool's rule forwards it"));
    // A chain made by hand, or a policy changed: the whole ruleset is read.
    for change in ["iptables -N MORE", "iptables -P FORWARD DROP"] {
        sb.ok(change);
        let log = logged_and_cached_right(&sb, &["publish", "add", "blue", "9090:90"], change);
        assert!(log.contains("read again whole"), "after `{change}`: {log}");
        assert!(
            log.contains("exec: iptables-save"),
            "after `{change}`: {log}"
        );
    }
    // A change by hand and back (a rule added, then deleted): nothing to
    // read again.
    sb.ok("iptables -A OTHER -j RETURN && iptables -D OTHER -j RETURN");
    let log = logged_and_cached_right(
        &sb,
        &["publish", "add", "blue", "9090:90"],
        "a change and back",
    );
    let seen = read_again(&log);
    assert!(
        seen.iter()
            .any(|l| l.contains("0 chains of iptables-save read again")),
        "{seen:#?}"
    );
    assert!(!seen.iter().any(|l| l.contains(" -S ")), "{seen:#?}");
    sb.nsnet(["down"]).assert().success();
}

#[test]
fn rules_changed_by_hand_between_two_commands_are_seen() {
    let Some(mut sb) = Sandbox::new() else { return };
    sb.outside();
    sb.nsnet(["bridge", "up", "red", "--nat"])
        .assert()
        .success();
    sb.nsnet(["publish", "add", "red", "8080:80"])
        .assert()
        .success();
    let dnat = sb.ok("iptables -t nat -S NSNET-DNAT | grep -- '--dport 8080'");
    sb.ok(&format!(
        "iptables -t nat {}",
        dnat.trim().replacen("-A", "-D", 1)
    ));
    let status = sb.nsnet(["status"]).output().unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("missing") && text.contains("8080"), "{text}");
    // A cache that missed the change would delete the rule again, which
    // iptables-restore refuses: the command would fail.
    sb.nsnet(["publish", "del", "red", "8080"])
        .assert()
        .success();
    assert!(!sb.ok("iptables-save").contains("--dport 8080"));
    // A rule added by hand is seen too: a port another tool forwards.
    sb.ok(
        "iptables -t nat -A PREROUTING -p tcp --dport 7070 -j DNAT --to-destination 172.31.0.2:80",
    );
    sb.nsnet(["publish", "add", "red", "7070:80"])
        .assert()
        .failure()
        .stderr(predicates::str::contains("another tool's rule forwards it"));
    sb.nsnet(["publish", "add", "red", "8080:80"])
        .assert()
        .success();
    sb.serve("red", "tcp", 80);
    let answer = sb.ask(Some("outside"), "tcp", "172.31.0.1", 8080, true);
    assert!(answer.starts_with("red from"), "{answer}");
}
