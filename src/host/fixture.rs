//! For tests: a host made of captured output (src/host/fixtures/NAME/, see
//! capture.sh there). `Fixture::load` gives a runner that answers exactly
//! the commands `observe` and `read_world` run with what a real host printed,
//! fails every other command, and a temporary directory standing in for
//! /run/netns and /proc, so the whole read side runs without root.

use crate::exec::runner::{RunError, Runner};
use crate::host::identity::Roots;
use crate::host::live::questions;
use crate::model::state::{Identities, NsStamp, State};
use crate::model::validate::NsName;
use crate::plan::cmd::{Cmd, Tool};
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Answers commands by their text; any other command fails.
#[derive(Debug, Default)]
pub struct FixtureRunner {
    answers: HashMap<String, Result<String, String>>,
    /// Every command asked, as text.
    pub calls: Vec<String>,
}

impl FixtureRunner {
    /// `cmd` prints `stdout`.
    pub fn answer(&mut self, cmd: &Cmd, stdout: &str) {
        self.answers.insert(cmd.to_string(), Ok(stdout.to_string()));
    }

    /// `cmd` fails with `stderr`.
    pub fn fail(&mut self, cmd: &Cmd, stderr: &str) {
        self.answers
            .insert(cmd.to_string(), Err(stderr.to_string()));
    }
}

impl Runner for FixtureRunner {
    fn run(&mut self, cmd: &Cmd) -> Result<String, RunError> {
        let text = cmd.to_string();
        self.calls.push(text.clone());
        let answer = self.answers.get(&text).cloned();
        answer
            .unwrap_or_else(|| Err("no fixture for this command".into()))
            .map_err(|stderr| RunError::Failed {
                cmd: text,
                status: crate::exec::runner::Exit::Code(1),
                stderr,
            })
    }
}

/// A captured host: its runner, its filesystem and nsnet's record.
pub struct Fixture {
    pub runner: FixtureRunner,
    pub roots: Roots,
    pub state: State,
    /// The namespaces listed in /run/netns.
    pub names: Vec<String>,
    _dir: tempfile::TempDir,
}

/// The text of fixture file `file` of capture `name`.
pub fn text(name: &str, file: &str) -> String {
    let path = dir(name).join(file);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/host/fixtures")
        .join(name)
}

/// The command that lists the host's links.
pub fn links_cmd() -> Cmd {
    Cmd::ip(["-j", "-d", "link", "show"])
}

/// The command that lists the host's routes.
pub fn routes_cmd() -> Cmd {
    Cmd::ip(["-j", "-4", "route", "show", "table", "all"])
}

/// The command that reads namespace `ns`.
pub fn questions_for(ns: &str) -> Cmd {
    questions(Some(ns))
}

/// The command that saves the rules.
pub fn iptables_cmd() -> Cmd {
    Cmd::new(Tool::IptablesSave, [] as [&str; 0])
}

/// The identities the captured host had when nsnet saved its record: the
/// record of a capture names no identity (the capture holds none that a
/// test could reproduce), so it is stamped from the capture on loading.
struct Captured {
    roots: Roots,
    links: String,
}

impl Identities for Captured {
    fn namespace(&self, name: &NsName) -> Option<NsStamp> {
        self.roots.stamp_of_name(name.as_str())
    }

    fn link(&self, ns: Option<&str>, ifname: &str) -> Option<u32> {
        let links: Vec<serde_json::Value> = serde_json::from_str(&self.links).ok()?;
        let found = links
            .iter()
            .find(|l| ns.is_none() && l["ifname"] == ifname)?;
        Some(found["ifindex"].as_u64()? as u32)
    }
}

impl Fixture {
    /// Capture `name` (`clean`, `drift`), as its host showed it.
    pub fn load(name: &str) -> Fixture {
        let names: Vec<String> = text(name, "netns.txt")
            .split_whitespace()
            .map(str::to_string)
            .collect();
        let mut runner = FixtureRunner::default();
        runner.answer(&links_cmd(), &text(name, "link.json"));
        runner.answer(&routes_cmd(), &text(name, "route.json"));
        runner.answer(&iptables_cmd(), &text(name, "iptables-save.txt"));
        runner.answer(&questions(None), &text(name, "batch-host.json"));
        for ns in &names {
            runner.answer(
                &questions(Some(ns)),
                &text(name, &format!("batch-{ns}.json")),
            );
        }
        let state = serde_json::from_str(&text(name, "state.json")).expect("state.json");
        let dir = tempfile::tempdir().expect("temporary directory");
        let roots = Roots {
            netns: dir.path().join("netns"),
            proc: dir.path().join("proc"),
            etc_netns: dir.path().join("etc-netns"),
            kernel: false,
        };
        let fixture = Fixture {
            runner,
            roots,
            state,
            names,
            _dir: dir,
        };
        fixture.write_files(name);
        let mut fixture = fixture;
        let captured = Captured {
            roots: fixture.roots.clone(),
            links: text(name, "link.json"),
        };
        fixture.state.stamp(&captured);
        fixture
    }

    /// /run/netns with one file per namespace, /proc/self/ns/net, and the
    /// sysctls nsnet reads.
    fn write_files(&self, name: &str) {
        fs::create_dir_all(&self.roots.netns).unwrap();
        for ns in &self.names {
            fs::write(self.roots.netns.join(ns), "").unwrap();
        }
        let net = self.roots.proc.join("sys/net/ipv4");
        fs::create_dir_all(net.join("conf/nsnet0")).unwrap();
        fs::create_dir_all(self.roots.proc.join("self/ns")).unwrap();
        fs::write(self.roots.proc.join("self/ns/net"), "").unwrap();
        fs::write(net.join("ip_forward"), text(name, "ip_forward.txt")).unwrap();
        let localnet = text(name, "route_localnet.txt");
        fs::write(net.join("conf/nsnet0/route_localnet"), localnet).unwrap();
    }

    /// Makes process `pid` run in namespace `ns`.
    pub fn run_process_in(&self, pid: u32, ns: &str) {
        let dir = self.roots.proc.join(pid.to_string()).join("ns");
        fs::create_dir_all(&dir).unwrap();
        fs::hard_link(self.roots.netns.join(ns), dir.join("net")).unwrap();
    }
}
