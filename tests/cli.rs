//! Bad input and the command line itself: every mistake gets one line on
//! stderr naming the problem and the fix, exit status 2, and changes nothing.

mod common;

use common::assert_same;
use predicates::prelude::*;
use predicates::str::contains;

/// Arguments, and a piece of the one-line error they must produce.
const BAD: &[(&[&str], &str)] = &[
    (&["netns", "add", "a b"], "contains a space"),
    (&["netns", "add", "a\nb"], "contains a newline"),
    (&["netns", "add", "a#b"], "contains `#`"),
    (&["netns", "add", "50%"], "contains `%`"),
    (&["netns", "add", "a/b"], "contains `/`"),
    (&["netns", "add", "a..b"], "contains `..`"),
    (
        &["netns", "add", "--", "-x"],
        "must start with a letter or a digit",
    ),
    (&["netns", "add", "rød"], "(not ASCII)"),
    (
        &["netns", "add", "host"],
        "`host` means the host's own namespace",
    ),
    (&["netns", "add", ""], "namespace name is empty"),
    (
        &["bridge", "up", "red", "--bridge", "abcdefghijklmnop"],
        "is 16 bytes; at most 15",
    ),
    (
        &["bridge", "up", "red", "--ifname", "eth0 x"],
        "contains a space",
    ),
    (
        &["bridge", "up", "host"],
        "`host` means the host's own namespace",
    ),
    (
        &["bridge", "up", "red", "--subnet", "10.0.0/24"],
        "is not a subnet in CIDR form",
    ),
    (
        &["bridge", "up", "red", "--subnet", "300.1.1.0/24"],
        "is not a subnet in CIDR form",
    ),
    (
        &["bridge", "up", "red", "--subnet", "10.0.0.5/24"],
        "has host bits set: the subnet is `10.0.0.0/24`",
    ),
    (
        &["bridge", "up", "red", "--subnet", "10.0.0.0/31"],
        "use a prefix of /30 or shorter",
    ),
    (
        &["bridge", "up", "red", "--subnet", "127.0.0.0/24"],
        "loopback",
    ),
    (
        &["bridge", "up", "a", "b", "--subnet", "10.0.0.0/30"],
        "has room for 1 namespace(s)",
    ),
    (&["veth", "add", "red", "red"], "both ends are `red`"),
    (&["veth", "add", "host", "host"], "both ends are `host`"),
    (
        &["veth", "add", "red", "blue", "--subnet", "fe80::/64"],
        "is link-local address space and cannot be used",
    ),
    (&["netns", "attach", "box", "--pid", "0"], "0 is not in 1.."),
    (&["netns", "attach", "box", "--pid", "x"], "invalid digit"),
    (&["netns", "attach", "box"], "--pid <PID>"),
    (
        &["netns", "addd", "red"],
        "a similar subcommand exists: 'add'",
    ),
    (
        &["veth", "add", "red"],
        "required arguments were not provided: <B>",
    ),
    (
        &["bridge", "up", "red", "--ifname", "abcdefghijklmnop"],
        "is 16 bytes; at most 15",
    ),
    (
        &["bridge", "up", "red", "--subnet", "10.0.0.0/8/8"],
        "is not a subnet in CIDR form",
    ),
    (
        &["publish", "add", "red", "0:80"],
        "`0` is not a port from 1 to 65535",
    ),
    (
        &["publish", "add", "red", "8080:65536"],
        "`65536` is not a port from 1 to 65535",
    ),
    (
        &["publish", "add", "red", "80:80/sctp"],
        "protocol `sctp` is not `tcp` or `udp`",
    ),
    (
        &["publish", "add", "red", "8080"],
        "is not a port mapping: write HOSTPORT:PORT",
    ),
    (
        &["publish", "add", "red", "8080:80", "--host-ip", "localhost"],
        "invalid IP address syntax",
    ),
    (
        &["publish", "del", "red", "70000"],
        "`70000` is not a port from 1 to 65535",
    ),
    (&["netns", "exec", "a b", "--", "true"], "contains a space"),
    (&["netns", "del", "x;reboot"], "contains `;`"),
    (&["graph", "--format", "png"], "invalid value 'png'"),
];

/// Mistakes that only the host's state reveals: exit status, message.
const REFUSED: &[(&[&str], i32, &str)] = &[
    (
        &["netns", "attach", "box", "--pid", "999999999"],
        1,
        "there is no process with pid 999999999",
    ),
    (
        &["publish", "add", "nowhere", "8080:80"],
        1,
        "is on no nsnet bridge",
    ),
    (
        &["nat", "up", "--out", "nowhere0"],
        1,
        "interface `nowhere0` does not exist",
    ),
    (
        &[
            "bridge",
            "up",
            "blue",
            "--bridge",
            "br9",
            "--subnet",
            "10.200.0.0/16",
        ],
        2,
        "overlaps `10.200.0.0/24`",
    ),
    (
        &["bridge", "up", "blue", "--bridge", "taken0"],
        1,
        "interface `taken0` exists and was not created by nsnet",
    ),
    (
        &["publish", "add", "red", "8080:80", "--host-ip", "10.9.9.9"],
        2,
        "is not an address of this host",
    ),
    (
        &["bridge", "up", "red", "--subnet", "10.201.0.0/24"],
        2,
        "already uses subnet `10.200.0.0/24`",
    ),
    (
        &["veth", "add", "host", "blue", "--subnet", "10.60.0.0/30"],
        2,
        "subnet `10.60.0.0/30` overlaps `10.60.0.1/32`",
    ),
];

#[test]
fn what_the_host_rules_out_is_refused_clearly_and_changes_nothing() {
    let sb = sandbox!();
    sb.nsnet(["bridge", "up", "red"]).assert().success();
    // An address already in use on the host: 10.60.0.1 on taken0.
    sb.ok("ip link add taken0 type bridge && ip addr add 10.60.0.1/30 dev taken0");
    let before = sb.snapshot();
    for (args, code, expected) in REFUSED {
        let out = sb.nsnet(*args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(*code), "{args:?}: {stderr}");
        assert_eq!(
            stderr.lines().count(),
            1,
            "{args:?}: not one line: {stderr}"
        );
        assert!(
            stderr.starts_with("nsnet: ") && stderr.contains(expected),
            "{args:?}: {stderr}"
        );
    }
    assert_same(&before, &sb.snapshot());
    let tried = BAD.len() + REFUSED.len();
    assert!(tried >= 30, "{tried} cases");
    eprintln!(
        "reliability: hostile and malformed input: {tried} cases, each one clear line, non-zero exit, 0 changes"
    );
}

#[test]
fn bad_input_gets_one_clear_line_exit_status_2_and_changes_nothing() {
    let sb = sandbox!();
    let before = sb.snapshot();
    for (args, expected) in BAD {
        let out = sb.nsnet(*args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?} printed to stdout");
        assert_eq!(
            stderr.lines().count(),
            1,
            "{args:?}: not one line: {stderr}"
        );
        assert!(
            stderr.starts_with("nsnet: ") && stderr.contains(expected),
            "{args:?}: {stderr}"
        );
    }
    assert_same(&before, &sb.snapshot());
}

#[test]
fn explain_and_dry_run_work_without_root_and_change_nothing() {
    if !common::others_can_run_programs() {
        return;
    }
    let sb = sandbox!();
    let before = sb.snapshot();
    // A copy nobody can run: the checkout may be one only root can search.
    let bin = common::public_copy_of_nsnet();
    let nsnet = bin.path().join("nsnet");
    let nobody = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        nsnet.to_str().unwrap(),
    ];
    let out = sb
        .command("setpriv")
        .args(&nobody[1..])
        .args(["bridge", "up", "red", "blue", "--explain"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let script = String::from_utf8(out.stdout).unwrap();
    assert!(
        script.contains("# Create bridge nsnet0: a virtual switch for the namespaces"),
        "{script}"
    );
    assert!(
        script.contains("\nip link add nv-blue type veth peer name eth0 netns blue\n"),
        "{script}"
    );
    let ip = script.lines().filter(|l| l.starts_with("ip ")).count();
    assert_eq!(ip, 3 + 2 * 8, "3 for the bridge, 8 per namespace");
    assert!(script.contains(
        "-A NSNET-FORWARD -i nsnet0 -o nsnet0 -m comment --comment \"nsnet:nsnet0\" -j ACCEPT\n"
    ));
    // nat and publish plans too: the rules cannot be read without root, so
    // the plan says so and assumes none are in place.
    sb.nsnet(["bridge", "up", "red"]).assert().success();
    let before_nat = sb.snapshot();
    for args in [
        &["nat", "up", "--explain"][..],
        &["publish", "add", "red", "8080:80", "--explain"],
    ] {
        let out = sb
            .command("setpriv")
            .args(&nobody[1..])
            .args(args)
            .output()
            .unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(out.status.success(), "{args:?}: {stderr}");
        assert!(
            stderr.contains("warning: cannot read the iptables rules"),
            "{stderr}"
        );
        assert!(
            stdout.contains("iptables-restore --noflush -w <<'EOF'\n"),
            "{stdout}"
        );
    }
    assert_same(&before_nat, &sb.snapshot());
    sb.nsnet(["bridge", "down"]).assert().success();
    // Without root, a real run fails cleanly.
    let out = sb
        .command("setpriv")
        .args(&nobody[1..])
        .args(["bridge", "up", "red"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("run nsnet as root"));
    assert_same(&before, &sb.snapshot());
}

#[test]
fn the_dry_run_script_is_exactly_what_a_real_run_executes() {
    let sb = sandbox!();
    let script = sb
        .nsnet(["bridge", "up", "red", "blue", "--dry-run"])
        .output()
        .unwrap()
        .stdout;
    let script = String::from_utf8(script).unwrap();
    let out = sb
        .nsnet(["bridge", "up", "red", "blue", "-v"])
        .output()
        .unwrap();
    assert!(out.status.success());
    // Each logged command follows `run: `; a here-document continues on
    // the lines after it. Observations (`ip -j …`, `iptables-save`) are not
    // part of the plan.
    let mut logged = String::new();
    for line in String::from_utf8_lossy(&out.stderr).lines() {
        let line = line.split_once("run: ").map_or(line, |(_, cmd)| cmd);
        if !line.starts_with("ip -j ") && line != "iptables-save" {
            logged.push_str(line);
            logged.push('\n');
        }
    }
    assert_eq!(logged, script);
    // Running the printed script by hand in a fresh host builds the same network.
    let fresh = sandbox!();
    fresh.ok(&script);
    assert!(fresh.pings(Some("red"), "10.200.0.3"));
}

#[test]
fn a_missing_ip_binary_names_the_package() {
    let sb = sandbox!();
    let nsnet = env!("CARGO_BIN_EXE_nsnet");
    let out = sb.sh(&format!(
        "unshare --mount sh -c 'for p in /usr/sbin/ip /usr/bin/ip /sbin/ip /bin/ip; do \
         [ -e $p ] && mount --bind /dev/null $p; done; exec {nsnet} netns add red'"
    ));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim(),
        "nsnet: `ip` is not installed (install the `iproute2` package, e.g. `apt-get install iproute2`)"
    );
    assert_eq!(sb.ok("ip netns list"), "");
}

#[test]
fn help_and_version_go_to_stdout() {
    let sb = sandbox!();
    sb.nsnet(["--version"])
        .assert()
        .success()
        .stdout(contains("nsnet "));
    sb.nsnet(["bridge", "up", "--help"])
        .assert()
        .success()
        .stdout(
            contains("--subnet")
                .and(contains("--dry-run"))
                .and(contains("--explain")),
        );
    sb.nsnet(["bridge"])
        .assert()
        .code(2)
        .stderr(contains("Usage: nsnet bridge"));
}

#[test]
fn tools_come_from_trusted_directories_only() {
    let sb = sandbox!();
    let nsnet = env!("CARGO_BIN_EXE_nsnet");
    // A PATH that puts a fake `ip` first is ignored: the real one runs.
    sb.ok(
        "mkdir -p /run/nsnet/evil && printf '#!/bin/sh\\ntouch /run/nsnet/evil/ran\\n' > /run/nsnet/evil/ip && \
         chmod 755 /run/nsnet/evil/ip",
    );
    sb.ok(&format!("PATH=/run/nsnet/evil:$PATH {nsnet} netns add red"));
    assert!(sb.ok("ip netns list").contains("red"));
    assert!(
        !sb.sh("test -e /run/nsnet/evil/ran").status.success(),
        "the fake ip ran"
    );
    // An `ip` that anyone may rewrite is refused, and nothing runs.
    let out = sb.sh(&format!(
        "cp /usr/sbin/ip /run/nsnet/evil/ip-copy && chmod 777 /run/nsnet/evil/ip-copy && \
         unshare --mount sh -c 'mount --bind /run/nsnet/evil/ip-copy /usr/sbin/ip && exec {nsnet} netns add blue'"
    ));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "nsnet: refusing to run `/usr/sbin/ip`: it is writable by users other than root"
    );
    assert!(!sb.ok("ip netns list").contains("blue"));
}
