//! Pictures of a `Status`: the text form of `nsnet status`, and the topology
//! for `nsnet graph` as a text tree, Graphviz DOT or Mermaid. All of them are
//! drawn from the same list of nodes and links, so they always agree.

use crate::report::status::Status;
use std::collections::BTreeSet;
use std::fmt::Write as _;

/// The text form of `nsnet status`.
pub fn status_text(s: &Status) -> String {
    let mut out = String::new();
    for b in &s.bridges {
        let nat = match &b.nat {
            None => String::new(),
            Some(n) => format!(", nat via {}", n.out.as_deref().unwrap_or("any interface")),
        };
        let gone = if b.present { "" } else { " (GONE)" };
        let _ = writeln!(
            out,
            "bridge {} {} gateway {}{nat}{gone}",
            b.name, b.subnet, b.gateway
        );
        for p in &b.ports {
            let _ = writeln!(
                out,
                "  {:<16} {:<6} {:<15} host end {}",
                p.namespace, p.ifname, p.address, p.host_ifname
            );
        }
    }
    if !s.published.is_empty() {
        let _ = writeln!(out, "published");
        for p in &s.published {
            let host = p.host_ip.map_or("*".to_string(), |ip| ip.to_string());
            let from = format!("{host}:{}/{}", p.host_port, p.proto);
            let _ = writeln!(
                out,
                "  {from:<22} -> {} {}:{}",
                p.namespace, p.address, p.port
            );
        }
    }
    for ns in &s.namespaces {
        let origin = match (ns.origin, ns.pid) {
            ("attached", Some(pid)) => format!("attached to pid {pid}"),
            (origin, _) => origin.to_string(),
        };
        let gone = if ns.present { "" } else { ", GONE" };
        let _ = writeln!(out, "namespace {} ({origin}{gone})", ns.name);
        for i in &ns.interfaces {
            let addrs = if i.addresses.is_empty() {
                "-".to_string()
            } else {
                i.addresses.join(",")
            };
            let down = if i.up { "" } else { " (down)" };
            let peer = match &i.peer {
                None => String::new(),
                Some(p) => {
                    let on = p
                        .bridge
                        .as_ref()
                        .map(|b| format!(" on {b}"))
                        .unwrap_or_default();
                    format!("  <-> {} {}{on}", p.namespace, p.ifname)
                }
            };
            let _ = writeln!(out, "  {:<10} {addrs:<18}{down}{peer}", i.ifname);
        }
        for r in &ns.routes {
            let _ = writeln!(out, "  route {r}");
        }
    }
    if s.drift.is_empty() {
        let _ = writeln!(out, "no drift: the host matches nsnet's record");
    } else {
        let _ = writeln!(out, "drift");
        for d in &s.drift {
            let _ = writeln!(out, "  ! {d}");
        }
    }
    out
}

/// A node of the topology: the host, a bridge or a namespace.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Node {
    Host,
    Bridge(String),
    Ns(String),
}

impl Node {
    fn label(&self, s: &Status) -> String {
        match self {
            Node::Host => "host".into(),
            Node::Ns(name) => name.clone(),
            Node::Bridge(name) => match s.bridges.iter().find(|b| &b.name == name) {
                Some(b) => {
                    let prefix = b.subnet.rsplit('/').next().unwrap_or("");
                    let nat = if b.nat.is_some() { " nat" } else { "" };
                    format!("{name} {}/{prefix}{nat}", b.gateway)
                }
                None => name.clone(),
            },
        }
    }
}

/// A link between two nodes, with what each end is.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Link {
    a: Node,
    b: Node,
    label: String,
}

fn links(s: &Status) -> (BTreeSet<Node>, Vec<Link>) {
    let mut nodes = BTreeSet::from([Node::Host]);
    let mut links = BTreeSet::new();
    for b in &s.bridges {
        nodes.insert(Node::Bridge(b.name.clone()));
        links.insert(Link {
            a: Node::Host,
            b: Node::Bridge(b.name.clone()),
            label: String::new(),
        });
    }
    for ns in s.namespaces.iter().filter(|n| n.present) {
        nodes.insert(Node::Ns(ns.name.clone()));
        for i in &ns.interfaces {
            let Some(peer) = &i.peer else { continue };
            let here = format!("{} {}", i.ifname, i.addresses.join(","))
                .trim_end()
                .to_string();
            let link = match (peer.namespace.as_str(), &peer.bridge) {
                ("host", Some(bridge)) => {
                    nodes.insert(Node::Bridge(bridge.clone()));
                    links.insert(Link {
                        a: Node::Host,
                        b: Node::Bridge(bridge.clone()),
                        label: String::new(),
                    });
                    Link {
                        a: Node::Bridge(bridge.clone()),
                        b: Node::Ns(ns.name.clone()),
                        label: here,
                    }
                }
                ("host", None) => {
                    let theirs = format!("{} {}", peer.ifname, peer.addresses.join(","));
                    Link {
                        a: Node::Host,
                        b: Node::Ns(ns.name.clone()),
                        label: format!("{} - {here}", theirs.trim_end()),
                    }
                }
                (other, _) if other < ns.name.as_str() => continue, // drawn from the other side
                (other, _) => {
                    let theirs = format!("{} {}", peer.ifname, peer.addresses.join(","));
                    let label = format!("{here} - {}", theirs.trim_end());
                    Link {
                        a: Node::Ns(ns.name.clone()),
                        b: Node::Ns(other.to_string()),
                        label,
                    }
                }
            };
            links.insert(link);
        }
    }
    (nodes, links.into_iter().collect())
}

/// The topology as a text tree: the host, its bridges with their namespaces,
/// its cables, then cables between namespaces and namespaces on their own.
pub fn graph_text(s: &Status) -> String {
    let (nodes, links) = links(s);
    let mut out = String::from("host\n");
    let from_host: Vec<&Link> = links.iter().filter(|l| l.a == Node::Host).collect();
    for (i, l) in from_host.iter().enumerate() {
        let last = i + 1 == from_host.len();
        let (branch, stem) = if last {
            ("└── ", "    ")
        } else {
            ("├── ", "│   ")
        };
        match &l.b {
            Node::Bridge(_) => {
                let _ = writeln!(out, "{branch}{}", l.b.label(s));
                let members: Vec<&Link> = links.iter().filter(|m| m.a == l.b).collect();
                for (j, m) in members.iter().enumerate() {
                    let twig = if j + 1 == members.len() {
                        "└── "
                    } else {
                        "├── "
                    };
                    let _ = writeln!(out, "{stem}{twig}{:<16} {}", m.b.label(s), m.label);
                }
            }
            other => {
                let _ = writeln!(out, "{branch}{} ({})", other.label(s), l.label);
            }
        }
    }
    for l in links
        .iter()
        .filter(|l| matches!((&l.a, &l.b), (Node::Ns(_), Node::Ns(_))))
    {
        let _ = writeln!(out, "{} <-> {} ({})", l.a.label(s), l.b.label(s), l.label);
    }
    for n in &nodes {
        if matches!(n, Node::Ns(_)) && !links.iter().any(|l| &l.a == n || &l.b == n) {
            let _ = writeln!(out, "{} (no links)", n.label(s));
        }
    }
    out
}

fn id(node: &Node) -> String {
    let (kind, name) = match node {
        Node::Host => return "host".into(),
        Node::Bridge(n) => ("br", n),
        Node::Ns(n) => ("ns", n),
    };
    // Mermaid ids take letters, digits and `_`: escape the rest, reversibly.
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_string()
            } else {
                format!("_{:02x}", c as u32)
            }
        })
        .collect();
    format!("{kind}_{safe}")
}

/// The topology in Graphviz DOT.
pub fn graph_dot(s: &Status) -> String {
    let (nodes, links) = links(s);
    let mut out = String::from("graph nsnet {\n  node [fontname=\"monospace\"];\n");
    for n in &nodes {
        let shape = match n {
            Node::Host => "box3d",
            Node::Bridge(_) => "box",
            Node::Ns(_) => "ellipse",
        };
        let _ = writeln!(
            out,
            "  {} [label=\"{}\", shape={shape}];",
            id(n),
            n.label(s)
        );
    }
    for l in &links {
        let label = if l.label.is_empty() {
            String::new()
        } else {
            format!(" [label=\"{}\"]", l.label)
        };
        let _ = writeln!(out, "  {} -- {}{label};", id(&l.a), id(&l.b));
    }
    out.push_str("}\n");
    out
}

/// The topology as a Mermaid flowchart.
pub fn graph_mermaid(s: &Status) -> String {
    let (nodes, links) = links(s);
    let mut out = String::from("flowchart LR\n");
    for n in &nodes {
        let (open, close) = match n {
            Node::Host => ("[[", "]]"),
            Node::Bridge(_) => ("{{", "}}"),
            Node::Ns(_) => ("([", "])"),
        };
        let _ = writeln!(out, "  {}{open}\"{}\"{close}", id(n), n.label(s));
    }
    for l in &links {
        let label = if l.label.is_empty() {
            String::new()
        } else {
            format!("|\"{}\"|", l.label)
        };
        let _ = writeln!(out, "  {} ---{label} {}", id(&l.a), id(&l.b));
    }
    out
}
