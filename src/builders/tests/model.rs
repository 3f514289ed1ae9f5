//! Faults at every step, in-process: a model host that the commands of
//! nsnet's plans act on (namespaces, links with their veth peers, addresses,
//! routes, iptables chains and rules, sysctls, hairpin), so that "the host is
//! as before" can be checked without a kernel. The same model stands in for
//! the observed host when the next command is built.

use super::*;
use crate::builders::policy::{self, Edit};
use crate::builders::{self, firewall, nat, publish};
use crate::exec::runner::{RunError, Runner};
use crate::exec::{Watch, execute};
use crate::host::{Firewall, Link};
use crate::model::rules::{FORWARDING, FORWARDING6, forwarding6_of};
use crate::plan::cmd::{Cmd, Tool};
use std::collections::{BTreeMap, BTreeSet};

/// An interface: its namespace (`None`: the host) and name.
type Dev = (Option<String>, String);

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Model {
    netns: BTreeSet<String>,
    /// Kind (`bridge`, `veth`), master, veth peer.
    links: BTreeMap<Dev, (String, Option<String>, Option<Dev>)>,
    up: BTreeSet<Dev>,
    hairpin: BTreeSet<Dev>,
    addrs: BTreeSet<(Dev, String)>,
    routes: BTreeSet<(Option<String>, String)>,
    chains: BTreeSet<(String, String)>,
    /// `(table, "CHAIN rest")`, in the order the chains run them.
    rules: Vec<(String, String)>,
    sysctls: BTreeMap<String, String>,
    /// The host's own IPv6 addresses (for `--host-ip`).
    local6: BTreeSet<std::net::Ipv6Addr>,
}

impl Model {
    /// For comparing: a sysctl at 0 is as if never set (the kernel's default
    /// for all that nsnet sets, and what an undo of a first setting writes).
    fn settled(&self) -> Model {
        let mut m = self.clone();
        m.sysctls.retain(|_, v| v != "0");
        // Order matters in FORWARD and NSNET-POLICY only: a rule deleted
        // and put back elsewhere in another chain changes nothing.
        m.rules.sort_by_key(|(t, r)| {
            let chain = r.split(' ').next().unwrap_or_default().to_string();
            let ordered = chain == "FORWARD" || chain == "NSNET-POLICY";
            (
                t.clone(),
                chain,
                if ordered { String::new() } else { r.clone() },
            )
        });
        m
    }

    fn del_link(&mut self, dev: &Dev) {
        if let Some((_, _, peer)) = self.links.remove(dev) {
            self.forget(dev);
            if let Some(peer) = peer {
                self.links.remove(&peer);
                self.forget(&peer);
            }
        }
    }

    fn forget(&mut self, dev: &Dev) {
        self.up.remove(dev);
        self.hairpin.remove(dev);
        // As the kernel does: a route via a gateway goes with the interface
        // whose subnet holds the gateway.
        let nets: Vec<ipnet::IpNet> = self
            .addrs
            .iter()
            .filter(|(d, _)| d == dev)
            .filter_map(|(_, a)| a.parse().ok())
            .collect();
        let (ns, name) = dev;
        self.routes.retain(|(n, r)| {
            let gw = r
                .strip_prefix("default via ")
                .and_then(|g| g.parse::<std::net::IpAddr>().ok());
            !(n == ns && gw.is_some_and(|gw| nets.iter().any(|net| net.contains(&gw))))
        });
        self.addrs.retain(|(d, _)| d != dev);
        if ns.is_none() {
            let key = crate::model::rules::route_localnet(name);
            self.sysctls.remove(&key);
        }
        for (_, master, _) in self.links.values_mut() {
            if master.as_deref() == Some(name.as_str()) && ns.is_none() {
                *master = None;
            }
        }
    }

    fn apply(&mut self, cmd: &Cmd) -> Result<(), String> {
        let mut args: Vec<&str> = cmd.args.iter().map(String::as_str).collect();
        match cmd.tool {
            Tool::Sysctl => {
                let (key, value) = args[1].split_once('=').ok_or("sysctl without =")?;
                // As the kernel does: all.forwarding sets every interface's.
                if key == FORWARDING6 {
                    for (k, v) in self.sysctls.iter_mut() {
                        if forwarding6_of(k).is_some() {
                            *v = value.into();
                        }
                    }
                }
                self.sysctls.insert(key.into(), value.into());
                return Ok(());
            }
            Tool::IptablesRestore => return self.restore("", cmd.stdin.as_deref().unwrap_or("")),
            Tool::Ip6tablesRestore => {
                return self.restore("6:", cmd.stdin.as_deref().unwrap_or(""));
            }
            Tool::Ip => {}
            _ => return Err(format!("unexpected {cmd}")),
        }
        let ns = if args[0] == "-n" {
            Some(args.drain(..2).nth(1).unwrap().to_string())
        } else {
            None
        };
        let dev = |name: &str| (ns.clone(), name.to_string());
        match args.as_slice() {
            ["netns", "add", name] | ["netns", "attach", name, _] => {
                if !self.netns.insert(name.to_string()) {
                    return Err(format!("namespace {name} exists"));
                }
            }
            ["netns", "del", name] => {
                self.netns.remove(*name);
                let inside: Vec<Dev> = self
                    .links
                    .keys()
                    .filter(|(n, _)| n.as_deref() == Some(*name))
                    .cloned()
                    .collect();
                for d in inside {
                    self.del_link(&d);
                }
                self.up.retain(|(n, _)| n.as_deref() != Some(*name));
                self.routes.retain(|(n, _)| n.as_deref() != Some(*name));
            }
            ["link", "add", name, "type", "bridge"]
            | ["link", "add", name, "address", _, "type", "bridge"] => {
                self.links.insert(dev(name), ("bridge".into(), None, None));
            }
            [
                "link",
                "add",
                name,
                "type",
                "veth",
                "peer",
                "name",
                peer,
                "netns",
                there,
            ] => {
                let (a, b) = (dev(name), (Some(there.to_string()), peer.to_string()));
                if self.links.contains_key(&a) || self.links.contains_key(&b) {
                    return Err(format!("{cmd}: exists"));
                }
                self.links
                    .insert(a.clone(), ("veth".into(), None, Some(b.clone())));
                self.links.insert(b, ("veth".into(), None, Some(a)));
            }
            ["link", "del", name] => self.del_link(&dev(name)),
            ["link", "set", name, "master", master] => {
                self.link(&dev(name))?.1 = Some(master.to_string())
            }
            ["link", "set", name, "nomaster"] => self.link(&dev(name))?.1 = None,
            ["link", "set", name, "up"] => {
                self.up.insert(dev(name));
            }
            ["link", "set", name, "down"] => {
                self.up.remove(&dev(name));
            }
            ["link", "set", name, "type", "bridge_slave", "hairpin", on] => {
                self.link(&dev(name))?;
                if *on == "on" {
                    self.hairpin.insert(dev(name))
                } else {
                    self.hairpin.remove(&dev(name))
                };
            }
            ["addr", "add", addr, "dev", name] | ["addr", "add", addr, "dev", name, "nodad"] => {
                self.link(&dev(name))?;
                self.addrs.insert((dev(name), addr.to_string()));
            }
            ["addr", "del", addr, "dev", name] => {
                self.addrs.remove(&(dev(name), addr.to_string()));
            }
            ["route", "add", "default", "via", gw]
            | ["-6", "route", "add", "default", "via", gw] => {
                self.routes
                    .insert((ns.clone(), format!("default via {gw}")));
            }
            ["route", "del", "default", "via", gw]
            | ["-6", "route", "del", "default", "via", gw] => {
                self.routes
                    .remove(&(ns.clone(), format!("default via {gw}")));
            }
            other => return Err(format!("the model does not know `{}`", other.join(" "))),
        }
        Ok(())
    }

    fn link(&mut self, dev: &Dev) -> Result<&mut (String, Option<String>, Option<Dev>), String> {
        self.links
            .get_mut(dev)
            .ok_or_else(|| format!("no link {dev:?}"))
    }

    /// Applies an `iptables-restore` batch; the tables of ip6tables are
    /// kept apart by `family`, a prefix of their names (`6:nat`).
    fn restore(&mut self, family: &str, batch: &str) -> Result<(), String> {
        let mut table = String::new();
        let mut next = self.clone();
        for line in batch.lines() {
            if let Some(t) = line.strip_prefix('*') {
                table = format!("{family}{t}");
            } else if let Some(chain) = line.strip_prefix(':') {
                let chain = chain.split_whitespace().next().unwrap().to_string();
                // As with --noflush: declaring an existing chain empties it.
                let prefix = format!("{chain} ");
                next.rules
                    .retain(|(t, r)| !(t == &table && r.starts_with(&prefix)));
                next.chains.insert((table.clone(), chain));
            } else if let Some(rule) = line.strip_prefix("-A ") {
                next.rules.push((table.clone(), rule.to_string()));
            } else if let Some(rule) = line.strip_prefix("-I ") {
                let (chain, rest) = rule.split_once(' ').ok_or("-I without a chain")?;
                let (at, rest) = rest.split_once(' ').ok_or("-I without a rule")?;
                let at: usize = at.parse().map_err(|_| format!("-I position {at}"))?;
                let prefix = format!("{chain} ");
                let of_chain: Vec<usize> = (0..next.rules.len())
                    .filter(|i| next.rules[*i].0 == table && next.rules[*i].1.starts_with(&prefix))
                    .collect();
                if at == 0 || at > of_chain.len() + 1 {
                    return Err(format!("-I {chain} {at}: index of insertion too big"));
                }
                let index = of_chain.get(at - 1).copied().unwrap_or(next.rules.len());
                next.rules
                    .insert(index, (table.clone(), format!("{chain} {rest}")));
            } else if let Some(rule) = line.strip_prefix("-D ") {
                let Some(i) = next
                    .rules
                    .iter()
                    .position(|(t, r)| t == &table && r == rule)
                else {
                    return Err(format!("no rule {rule}"));
                };
                next.rules.remove(i);
            } else if let Some(chain) = line.strip_prefix("-X ") {
                let prefix = format!("{chain} ");
                if next
                    .rules
                    .iter()
                    .any(|(t, r)| t == &table && r.starts_with(&prefix))
                {
                    return Err(format!("-X {chain}: the chain is not empty"));
                }
                next.chains.remove(&(table.clone(), chain.to_string()));
            }
        }
        *self = next; // a batch applies whole or not at all
        Ok(())
    }

    /// The model as the observed host that builders take.
    fn host(&self) -> Host {
        let mut host = Host {
            namespaces: self.netns.clone(),
            firewall: Some(Firewall::default()),
            firewall6: Some(Firewall::default()),
            ipv6: true,
            routes6: crate::host::Routes6::from(crate::host::V6 {
                local: self.local6.clone(),
                ..Default::default()
            }),
            sysctls: self.sysctls.clone().into(),
            ..Host::default()
        };
        for ns in &self.netns {
            host.ns_stamps.insert(ns.clone(), Fake::stamp(ns));
        }
        for ((ns, name), (kind, master, _)) in &self.links {
            if let Some(ns) = ns {
                let key = (ns.clone(), name.clone());
                host.ns_links.insert(key, Fake::index(name));
            }
            if ns.is_none() {
                host.links.insert(
                    name.clone(),
                    Link {
                        ifindex: Fake::index(name),
                        kind: Some(kind.clone()),
                        master: master.clone(),
                    },
                );
                if kind == "bridge" {
                    let key = crate::model::rules::route_localnet(name);
                    host.sysctls.insert(
                        key.clone(),
                        self.sysctls.get(&key).cloned().unwrap_or("0".into()),
                    );
                }
            }
        }
        for key in [FORWARDING, FORWARDING6] {
            let value = self.sysctls.get(key).cloned().unwrap_or("0".into());
            host.sysctls.insert(key.to_string(), value);
        }
        for (family, fw) in [("", &mut host.firewall), ("6:", &mut host.firewall6)] {
            let fw = fw.as_mut().unwrap();
            let ours = |t: &String| match family {
                "" => (!t.starts_with("6:")).then(|| t.clone()),
                _ => t.strip_prefix(family).map(str::to_string),
            };
            // The policies stay as read; chains and rules are the model's.
            let policies = std::mem::take(&mut fw.policies);
            *fw = Default::default();
            fw.policies = policies;
            fw.chains = self
                .chains
                .iter()
                .filter_map(|(t, c)| Some((ours(t)?, c.clone())))
                .collect();
            for (t, r) in &self.rules {
                if let Some(table) = ours(t) {
                    fw.push(&table, &format!("-A {r}"));
                }
            }
        }
        host
    }
}

/// Runs commands against the model, batches as `ip` and `sysctl` would.
struct ModelRunner<'a> {
    model: &'a mut Model,
}

impl Runner for ModelRunner<'_> {
    fn run(&mut self, cmd: &Cmd) -> Result<String, RunError> {
        let model = &mut *self.model;
        // The executor's settle step lists the host's links; the model
        // removes a deleted namespace's veths at once.
        if cmd.to_string() == "ip -j link show" {
            let links: Vec<String> = model
                .links
                .keys()
                .filter(|(ns, _)| ns.is_none())
                .map(|(_, name)| format!("{{\"ifname\":\"{name}\"}}"))
                .collect();
            return Ok(format!("[{}]", links.join(",")));
        }
        crate::exec::batch::emulate(cmd, |one| model.apply(one))
            .map(|()| String::new())
            .map_err(|why| RunError::Failed {
                cmd: cmd.to_string(),
                status: crate::exec::runner::Exit::Code(2),
                stderr: why,
            })
    }
}

/// Plans a command on the model host (builder, then reconcile).
fn plan(model: &Model, state: &State, build: impl Fn(&Host, &State) -> Result<Change>) -> Change {
    let host = model.host();
    let mut change = build(&host, state).unwrap();
    firewall::reconcile(&mut change, state, &host).unwrap();
    change
}

/// Runs `change` on `model`; with `fail_at`, checks that the model ends as
/// it began. Returns the number of steps.
fn run(model: &mut Model, change: &Change, fail_at: Option<usize>) -> usize {
    let before = model.clone();
    let mut runner = ModelRunner { model };
    let mut applied = |_, _| Ok(());
    let mut watch = Watch {
        interrupted: &|| None,
        applied: &mut applied,
        fail_at,
        kill_at: None,
        ask: None,
    };
    let result = execute(&change.plan, &mut runner, &mut watch);
    match fail_at {
        None => result.unwrap_or_else(|e| panic!("{e}\n{}", change.plan.script(false))),
        Some(k) => {
            let err = result.unwrap_err();
            assert!(err.undo_errors.is_empty(), "fail at {k}: {err}");
            assert_eq!(
                runner.model.settled(),
                before.settled(),
                "fail at step {k} of\n{}",
                change.plan.script(false)
            );
        }
    }
    change.plan.steps.len()
}

type Build = Box<dyn Fn(&Host, &State) -> Result<Change>>;

/// The bridge of a session: dual stack with an IPv6 subnet, or IPv4 only.
fn bridge_up(h: &Host, s: &State, dual: bool) -> Result<Change> {
    let (br, eth0) = (ifname("nsnet0"), ifname("eth0"));
    let namespaces = nss(&["red", "blue", "green"]);
    let args = bridge::Up {
        bridge: &br,
        subnet: None,
        subnet6: dual.then(|| "fd00:6::/64".parse().unwrap()),
        ipv6: false,
        ifname: &eth0,
        namespaces: &namespaces,
        ..bridge::Up::plain(&br, &eth0, &namespaces)
    };
    bridge::up(&args, h, s)
}

/// `publish add NS MAPPINGS... [--host-ip IP] [--allow CIDR...]`.
fn publish_on_model(
    h: &Host,
    s: &State,
    name: &str,
    maps: &[&str],
    host_ip: Option<&str>,
    allow: &[&str],
) -> Result<Change> {
    let mappings: Vec<crate::model::ports::Mapping> =
        maps.iter().map(|x| x.parse().unwrap()).collect();
    let allow: Vec<ipnet::IpNet> = allow.iter().map(|n| n.parse().unwrap()).collect();
    let args = publish::Add {
        ns: &ns(name),
        mappings: &mappings,
        host_ip: host_ip.map(|ip| ip.parse().unwrap()),
        bridge: None,
        force: false,
        allow: Some(&allow),
    };
    publish::add(&args, h, s)
}

/// Each command of a full session, in order, as a builder: in dual stack,
/// with IPv6 on the bridge and the cable and a port published on an IPv6
/// address of the host.
fn session(dual: bool) -> Vec<(&'static str, Build)> {
    let br = || ifname("nsnet0");
    vec![
        (
            "bridge up red blue green",
            Box::new(move |h, s| bridge_up(h, s, dual)),
        ),
        (
            "veth add red host",
            Box::new(move |h, s| {
                veth::add(
                    &End::Ns(ns("red")),
                    &End::Host,
                    Some("10.60.0.0/30".parse().unwrap()),
                    dual.then(|| "fd00:60::/64".parse().unwrap()),
                    h,
                    s,
                )
            }),
        ),
        ("nat up", Box::new(move |h, s| nat::up(&br(), None, h, s))),
        (
            "firewall deny --log",
            Box::new(move |h, s| {
                let nets = ["198.51.100.0/24".parse().unwrap()];
                policy::edit(&br(), &nets, Edit::Deny { log: true }, h, s)
            }),
        ),
        (
            "firewall allow",
            Box::new(move |h, s| {
                let nets = ["198.51.100.7/32".parse().unwrap()];
                policy::edit(&br(), &nets, Edit::Allow, h, s)
            }),
        ),
        (
            "publish add red",
            Box::new(|h, s| publish_on_model(h, s, "red", &["8080:80", "5353:53/udp"], None, &[])),
        ),
        (
            "publish add red again, for some sources",
            Box::new(move |h, s| {
                let allow: &[&str] = match dual {
                    true => &["192.0.2.0/24", "2001:db8:1::/64"],
                    false => &["192.0.2.0/24"],
                };
                publish_on_model(h, s, "red", &["8080:80"], None, allow)
            }),
        ),
        (
            "publish add blue on loopback",
            Box::new(|h, s| publish_on_model(h, s, "blue", &["9090:90"], Some("127.0.0.1"), &[])),
        ),
        (
            "publish add green on an IPv6 address",
            Box::new(move |h, s| {
                let ip = if dual { "2001:db8::1" } else { "127.0.0.1" };
                publish_on_model(h, s, "green", &["7070:70"], Some(ip), &[])
            }),
        ),
        (
            "publish del red",
            Box::new(|_, s| publish::del(&ns("red"), &["8080".parse().unwrap()], s)),
        ),
        ("nat down", Box::new(move |_, s| nat::down(&br(), s))),
        (
            "bridge down blue",
            Box::new(move |h, s| bridge::down(&br(), &nss(&["blue"]), false, h, s)),
        ),
        (
            "netns del green",
            Box::new(|h, s| netns::del(&nss(&["green"]), false, h, s)),
        ),
        (
            "veth del red host",
            Box::new(|h, s| veth::del(&End::Ns(ns("red")), &End::Host, false, h, s)),
        ),
        ("down", Box::new(|h, s| builders::down(false, h, s))),
    ]
}

#[test]
fn every_step_of_every_command_rolls_back_to_the_same_host() {
    let faults = round_trip(Model::default(), false);
    let dual = dual_stack_host();
    let faults6 = round_trip(dual, true);
    assert!(faults >= 60 && faults6 > faults, "{faults} {faults6}");
    eprintln!(
        "reliability: in-process: {} faults injected over {} commands, 0 leftovers",
        faults + faults6,
        2 * session(false).len()
    );
}

/// A host with an uplink, `wan0`, that takes router advertisements
/// (accept_ra 1) and forwards IPv6 on its own (all.forwarding 0), and an
/// IPv6 address to publish on.
fn dual_stack_host() -> Model {
    let mut model = Model::default();
    let wan0 = (None, "wan0".to_string());
    model
        .links
        .insert(wan0.clone(), ("veth".into(), None, None));
    model.up.insert(wan0);
    for (key, value) in [
        ("net.ipv6.conf.wan0.accept_ra", "1"),
        ("net.ipv6.conf.wan0.forwarding", "1"),
        ("net.ipv6.conf.default.accept_ra", "1"),
        ("net.ipv6.conf.default.forwarding", "0"),
    ] {
        model.sysctls.insert(key.into(), value.into());
    }
    model.local6.insert("2001:db8::1".parse().unwrap());
    model
}

/// Runs a whole session on `start`, failing each step of each command once
/// on a copy first; the session must end where it began. Returns the
/// number of faults injected.
fn round_trip(start: Model, dual: bool) -> usize {
    let (mut model, mut state) = (start.clone(), State::default());
    let mut faults = 0;
    let mut ra_kept = false;
    for (name, build) in session(dual) {
        let change = plan(&model, &state, &build);
        let steps = change.plan.steps.len();
        assert!(steps > 0, "`{name}` planned nothing");
        for k in 1..=steps {
            run(&mut model.clone(), &change, Some(k));
            faults += 1;
        }
        run(&mut model, &change, None);
        state = change.state;
        state.stamp(&Fake);
        // While nsnet keeps IPv6 forwarding on, the uplink takes RAs.
        if model.sysctls.get(FORWARDING6).map(String::as_str) == Some("1") {
            let ra = model.sysctls.get("net.ipv6.conf.wan0.accept_ra");
            assert_eq!(ra.map(String::as_str), Some("2"), "after `{name}`");
            ra_kept = true;
        }
    }
    assert_eq!(ra_kept, dual, "IPv6 forwarding went on in dual stack only");
    assert_eq!(
        model.settled(),
        start.settled(),
        "the session ends where it began"
    );
    faults
}
