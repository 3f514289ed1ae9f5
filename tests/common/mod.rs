//! The throwaway host for integration tests. `Sandbox::new` starts
//! `scripts/sandbox.sh --hold` (fresh network and mount namespaces with empty
//! /run/netns and /run/nsnet) and every command of the test enters it with
//! nsenter, so nothing a test does reaches the real host. Dropping the
//! sandbox ends its processes and, with them, everything made inside.
#![allow(dead_code)]

pub mod cni;
pub mod snapshot;

/// The second tutorial's bridge: `v-net-0` on 192.168.15.0/24 with the host
/// at .5, red .1 and blue .2, and no default routes (the post adds routes
/// one at a time).
pub const POST2_BRIDGE: &[&str] = &[
    "bridge",
    "up",
    "red",
    "blue",
    "--bridge",
    "v-net-0",
    "--subnet",
    "192.168.15.0/24",
    "--gateway",
    "192.168.15.5",
    "--no-default-route",
];

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Output, Stdio};

pub struct Sandbox {
    holder: Child,
    pid: String,
    background: Vec<Child>,
}

/// Whether this process may make throwaway hosts (root, and unshare works).
fn privileged() -> bool {
    Command::new("unshare")
        .args(["--net", "--mount", "true"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Sandbox {
    /// A fresh throwaway host, or `None` (the test is skipped) without the
    /// privileges for one. Under CI=true a missing privilege fails the test.
    pub fn new() -> Option<Sandbox> {
        if !privileged() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but this process cannot create network namespaces: privileged tests must run in CI"
            );
            eprintln!("skipped: needs root to create a throwaway host (unshare --net --mount)");
            return None;
        }
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/sandbox.sh");
        let mut holder = Command::new(script)
            .arg("--hold")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start scripts/sandbox.sh");
        let mut line = String::new();
        BufReader::new(holder.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read sandbox pid");
        let pid = line
            .strip_prefix("ready ")
            .unwrap_or_else(|| panic!("sandbox did not start: {line:?}"))
            .trim()
            .to_string();
        Some(Sandbox {
            holder,
            pid,
            background: Vec::new(),
        })
    }

    /// A command that runs `program` inside the throwaway host.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.args(["-t", &self.pid, "-n", "-m", "--", program]);
        cmd
    }

    /// The nsnet binary under test, inside the throwaway host.
    pub fn nsnet<I, S>(&self, args: I) -> assert_cmd::Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = self.command(env!("CARGO_BIN_EXE_nsnet"));
        cmd.args(args);
        assert_cmd::Command::from_std(cmd)
    }

    /// Runs a bash script inside the throwaway host.
    pub fn sh(&self, script: &str) -> Output {
        self.command("bash")
            .args(["-c", script])
            .output()
            .expect("run bash")
    }

    /// Runs a bash script that must succeed; returns its stdout.
    #[track_caller]
    pub fn ok(&self, script: &str) -> String {
        let out = self.sh(script);
        assert!(
            out.status.success(),
            "`{script}` failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts a bash script in the background, in a process group of its
    /// own; the whole group is killed by `stop_background` or with the sandbox.
    /// Returns its pid, which a script that starts with `exec` hands on to
    /// the program it runs (nsenter, bash and unshare all exec in place).
    pub fn spawn(&mut self, script: &str) -> u32 {
        let child = self
            .command("bash")
            .args(["-c", script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("spawn");
        let pid = child.id();
        self.background.push(child);
        pid
    }

    /// Waits until process `pid` runs `program` (has exec'd past nsenter,
    /// bash and unshare, so it is in its final namespaces).
    #[track_caller]
    pub fn wait_exec(&self, pid: u32, program: &str) {
        self.ok(&format!(
            "for i in $(seq 100); do [ \"$(readlink /proc/{pid}/exe)\" = \"$(command -v {program})\" ] && exit 0; \
             sleep 0.05; done; exit 1"
        ));
    }

    /// Starts a long-running process inside namespace `ns` and waits until
    /// it is there; returns its pid.
    pub fn occupy(&mut self, ns: &str) -> u32 {
        let pid = self.spawn(&format!("exec ip netns exec {ns} sleep 60"));
        self.wait_exec(pid, "sleep");
        pid
    }

    /// Kills every background script and what it started.
    pub fn stop_background(&mut self) {
        for mut child in self.background.drain(..) {
            // procps-ng's `kill -KILL -PGID` exits 0 and signals nothing: the
            // group needs `--` before it.
            let group = format!("-{}", child.id());
            let _ = Command::new("kill")
                .args(["-s", "KILL", "--", &group])
                .status();
            let _ = child.wait();
        }
    }

    /// Whether `from` (a namespace, or `None` for the host) gets an answer to
    /// a ping to `to`.
    pub fn pings(&self, from: Option<&str>, to: &str) -> bool {
        let prefix = from
            .map(|ns| format!("ip netns exec {ns} "))
            .unwrap_or_default();
        // The first IPv6 packet waits for neighbour discovery, which can
        // take a retransmission (a second): one more try for IPv6.
        let tries = if to.contains(':') { 2 } else { 1 };
        (0..tries).any(|_| {
            self.sh(&format!("{prefix}ping -c 1 -W 2 {to}"))
                .status
                .success()
        })
    }

    /// Sends a line over TCP (or UDP) from `from` to a listener started in
    /// `server` on `port`, and returns what the listener received.
    pub fn transfer(
        &mut self,
        proto: &str,
        server: &str,
        from: Option<&str>,
        addr: &str,
        port: u16,
    ) -> String {
        let udp = if proto == "udp" { "-u" } else { "" };
        // OpenBSD nc listens on IPv4 unless told otherwise.
        let family = if addr.contains(':') { "-6" } else { "" };
        let file = format!("/run/nsnet/recv-{server}-{port}-{proto}");
        self.spawn(&format!(
            "ip netns exec {server} timeout --foreground 10 nc {family} {udp} -l -p {port} > {file}"
        ));
        let prefix = from
            .map(|ns| format!("ip netns exec {ns} "))
            .unwrap_or_default();
        let message = format!("hello over {proto} to {addr}:{port}");
        // Retry while the listener starts; a UDP sender closes after a second.
        let send = format!(
            "for i in $(seq 50); do echo '{message}' | {prefix}nc {udp} -q 1 -w 1 {addr} {port} && \
             [ -s {file} ] && break; sleep 0.1; done; cat {file}"
        );
        let received = String::from_utf8_lossy(&self.sh(&send).stdout)
            .trim()
            .to_string();
        self.stop_background();
        received
    }

    /// Builds the world outside the throwaway host: namespace `outside`, the
    /// LAN machine and the internet at once, joined to the host by a cable
    /// (host `wan0` 172.31.0.1/24, outside 172.31.0.2/24) and holding one
    /// "internet" address, 198.51.100.7 on its loopback. The host's default
    /// route goes through it; it knows no route back to nsnet's subnets, so
    /// only NAT lets a namespace talk to it. All inside the throwaway host.
    pub fn outside(&self) {
        self.ok("ip netns add outside && ip -n outside link set lo up && \
             ip link add wan0 type veth peer name eth0 netns outside && \
             ip addr add 172.31.0.1/24 dev wan0 && ip link set wan0 up && \
             ip -n outside addr add 172.31.0.2/24 dev eth0 && ip -n outside link set eth0 up && \
             ip -n outside addr add 198.51.100.7/32 dev lo && \
             ip route add default via 172.31.0.2");
    }

    /// `outside` and a second uplink: namespace `isp2`, host `wan1` 172.32.0.1/24, isp2
    /// 172.32.0.2/24, also answering at the "internet" address 198.51.100.7.
    /// The host's default route stays through `outside`.
    pub fn two_uplinks(&self) {
        self.outside();
        self.ok("ip netns add isp2 && ip -n isp2 link set lo up && \
             ip link add wan1 type veth peer name eth0 netns isp2 && \
             ip addr add 172.32.0.1/24 dev wan1 && ip link set wan1 up && \
             ip -n isp2 addr add 172.32.0.2/24 dev eth0 && ip -n isp2 link set eth0 up && \
             ip -n isp2 addr add 198.51.100.7/32 dev lo");
    }

    /// `outside` in IPv6 too (after `outside`): host `wan0` 2001:db8:9::1/64,
    /// outside 2001:db8:9::2/64 and "internet" address 2001:db8:ffff::7 on
    /// its loopback; the host's IPv6 default route goes through it, which
    /// knows no route back to nsnet's IPv6 subnets. `wan0` takes router
    /// advertisements (accept_ra 1, the kernel's default).
    pub fn outside6(&self) {
        self.ok("ip addr add 2001:db8:9::1/64 dev wan0 nodad && \
             ip -n outside addr add 2001:db8:9::2/64 dev eth0 nodad && \
             ip -n outside addr add 2001:db8:ffff::7/128 dev lo && \
             ip -6 route add default via 2001:db8:9::2 && \
             sysctl -qw net.ipv6.conf.wan0.accept_ra=1");
    }

    /// `serve` over IPv6: the answer names the peer as socat prints an IPv6
    /// address (`[2001:0db8:0009:0000:0000:0000:0000:0001]`, see `long6`).
    pub fn serve6(&mut self, ns: &str, proto: &str, port: u16) {
        let listen = if proto == "udp" {
            "UDP6-RECVFROM"
        } else {
            "TCP6-LISTEN"
        };
        self.spawn(&format!(
            "exec ip netns exec {ns} socat {listen}:{port},fork,reuseaddr,ipv6only=1 SYSTEM:'echo {ns} from $SOCAT_PEERADDR'"
        ));
    }

    /// Starts a server in namespace `ns` on `port`/`proto` that answers each
    /// connection (or datagram) with `NAME from PEER`: who it is, and the
    /// address the client appeared to come from.
    pub fn serve(&mut self, ns: &str, proto: &str, port: u16) {
        let listen = if proto == "udp" {
            "UDP4-RECVFROM"
        } else {
            "TCP4-LISTEN"
        };
        self.spawn(&format!(
            "exec ip netns exec {ns} socat {listen}:{port},fork,reuseaddr SYSTEM:'echo {ns} from $SOCAT_PEERADDR'"
        ));
    }

    /// Connects from `from` (a namespace, or the host) to `addr:port` and
    /// returns the answer, or "" if none came. With `retry`, tries for up to
    /// five seconds (a server may still be starting).
    pub fn ask(
        &self,
        from: Option<&str>,
        proto: &str,
        addr: &str,
        port: u16,
        retry: bool,
    ) -> String {
        let prefix = from
            .map(|ns| format!("ip netns exec {ns} "))
            .unwrap_or_default();
        let six = addr.contains(':');
        let connect = match (proto, six) {
            ("udp", false) => "UDP4",
            ("udp", true) => "UDP6",
            (_, false) => "TCP4",
            (_, true) => "TCP6",
        };
        let addr = if six {
            format!("[{addr}]")
        } else {
            addr.into()
        };
        let once = format!(
            "echo hello | timeout 3 {prefix}socat -T1 - {connect}:{addr}:{port} 2>/dev/null"
        );
        let script = match retry {
            true => format!(
                "for i in $(seq 25); do a=$({once}); [ -n \"$a\" ] && echo \"$a\" && break; sleep 0.2; done"
            ),
            false => once,
        };
        String::from_utf8_lossy(&self.sh(&script).stdout)
            .trim()
            .to_string()
    }

    /// Runs nsnet with `args` and checks it is refused as bad input must
    /// be: a non-zero exit, one line on stderr holding `message`, and the
    /// host still exactly `before`.
    pub fn refused(&self, args: &[&str], message: &str, before: &[String]) {
        let out = self.nsnet(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "{args:?}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert_same(before, &self.snapshot());
    }

    /// A normalised description of the throwaway host's network state.
    pub fn snapshot(&self) -> Vec<String> {
        snapshot::take(self)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.stop_background();
        // Closing its stdin lets the holder exit; its namespaces go with it.
        drop(self.holder.stdin.take());
        let _ = self.holder.wait();
    }
}

/// Whether a user other than root can run programs here at all: the root
/// directory must be searchable by others. A real system's `/` is 0755; a
/// root filesystem unpacked into a `mktemp -d` directory (mode 0700) is not,
/// and there not even `/bin/true` starts as another user. Tests that run
/// nsnet as `nobody` skip, saying why, only in that case.
pub fn others_can_run_programs() -> bool {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata("/")
        .map(|m| m.permissions().mode())
        .unwrap_or(0);
    if mode & 0o001 == 0 {
        eprintln!(
            "skipped: `/` has mode {:o}, so no user but root can run a program on this machine",
            mode & 0o777
        );
        return false;
    }
    true
}

/// A copy of the nsnet under test, as `DIR/nsnet`, in a fresh directory under
/// /tmp that every user may enter and run from (0755), for tests that run it
/// as another user; the build's own directory may be in a checkout only its
/// owner can search. The directory goes when the returned value is dropped.
pub fn public_copy_of_nsnet() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix("nsnet-test-bin.")
        .tempdir_in("/tmp")
        .expect("make a directory under /tmp");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod 0755");
    let bin = dir.path().join("nsnet");
    std::fs::copy(env!("CARGO_BIN_EXE_nsnet"), &bin).expect("copy nsnet");
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).expect("chmod 0755");
    dir
}

/// Asserts that two snapshots match, listing the lines that differ.
#[track_caller]
pub fn assert_same(before: &[String], after: &[String]) {
    let gone: Vec<&String> = before.iter().filter(|l| !after.contains(l)).collect();
    let new: Vec<&String> = after.iter().filter(|l| !before.contains(l)).collect();
    assert!(
        gone.is_empty() && new.is_empty(),
        "the host changed\n--- missing now:\n{}\n--- new now:\n{}",
        gone.iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        new.iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
    );
}

/// An IPv6 address as socat prints a peer: every group in four digits,
/// in brackets.
pub fn long6(addr: &str) -> String {
    let addr: std::net::Ipv6Addr = addr.parse().expect("an IPv6 address");
    let groups: Vec<String> = addr.segments().iter().map(|g| format!("{g:04x}")).collect();
    format!("[{}]", groups.join(":"))
}

/// Macro-free helper: skip the test when no sandbox can be made.
#[macro_export]
macro_rules! sandbox {
    () => {
        match common::Sandbox::new() {
            Some(sb) => sb,
            None => return,
        }
    };
}
