//! Pictures of a `Status`: the text form of `nsnet status`, and the topology
//! for `nsnet graph` as a text tree, Graphviz DOT or Mermaid. The graphs are
//! all drawn from the same list of nodes and links, so they always agree.
//! Pure functions from a `Status` to text.

use crate::report::status::{
    BridgeStatus, IfaceStatus, NsStatus, Origin, PeerStatus, PublishedPort, Status,
};
use ipnet::IpNet;
use std::collections::BTreeSet;
use std::fmt::Write as _;

/// The text form of `nsnet status`: bridges, published ports, namespaces,
/// then drift.
pub fn status_text(s: &Status) -> String {
    let mut out = String::new();
    for b in &s.bridges {
        bridge_text(&mut out, b);
    }
    published_text(&mut out, &s.published);
    for ns in &s.namespaces {
        namespace_text(&mut out, ns);
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

fn bridge_text(out: &mut String, b: &BridgeStatus) {
    let nat = match &b.nat {
        None => String::new(),
        Some(n) => {
            let via = n.out.as_ref().map_or("any interface", |o| o.as_str());
            format!(", nat via {via}")
        }
    };
    let gone = if b.present { "" } else { " (GONE)" };
    let (name, subnet, gateway) = (&b.name, b.subnet, b.gateway);
    let v6 = b
        .ipv6
        .map(|n| format!(", {} gateway {}", n.subnet, n.gateway))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "bridge {name} {subnet} gateway {gateway}{v6}{nat}{gone}"
    );
    for p in &b.ports {
        let v6 = p.address6.map(|a| format!(" {a}")).unwrap_or_default();
        let _ = writeln!(
            out,
            "  {:<16} {:<6} {:<15} host end {}{v6}",
            p.namespace, p.ifname, p.address, p.host_ifname
        );
        if let Some(a) = &p.runtime {
            let short = a.container.get(..12).unwrap_or(&a.container);
            let _ = writeln!(
                out,
                "  {:<16} container {short} of CNI network {}: the runtime's, removed by its DEL",
                "", a.network
            );
        }
    }
    for a in &b.policy.allow {
        let _ = writeln!(out, "  firewall allow {a}");
    }
    for d in &b.policy.deny {
        let logged = if d.log { " (logged)" } else { "" };
        let _ = writeln!(out, "  firewall deny  {}{logged}", d.to);
    }
}

fn published_text(out: &mut String, published: &[PublishedPort]) {
    if published.is_empty() {
        return;
    }
    let _ = writeln!(out, "published");
    for p in published {
        let from = p.from();
        let (ns, to) = (&p.namespace, p.to());
        let _ = writeln!(out, "  {from:<22} -> {ns} {to}{}", p.sources());
    }
}

fn namespace_text(out: &mut String, ns: &NsStatus) {
    let origin = match ns.origin {
        Origin::Attached { pid } => format!("attached to pid {pid}"),
        origin => origin.to_string(),
    };
    let gone = if ns.present { "" } else { ", GONE" };
    let _ = writeln!(out, "namespace {} ({origin}{gone})", ns.name);
    for i in &ns.interfaces {
        let _ = writeln!(out, "{}", iface_line(i));
    }
    for r in &ns.routes {
        let _ = writeln!(out, "  route {r}");
    }
}

/// `  eth0       10.200.0.2/24       <-> host nv-red on nsnet0`.
fn iface_line(i: &IfaceStatus) -> String {
    let addrs = match i.addresses.is_empty() {
        true => "-".to_string(),
        false => join(&i.addresses),
    };
    let down = if i.up { "" } else { " (down)" };
    let peer = match &i.peer {
        None => String::new(),
        Some(p) => {
            let on = p.bridge.as_ref().map(|b| format!(" on {b}"));
            format!(
                "  <-> {} {}{}",
                p.namespace,
                p.ifname,
                on.unwrap_or_default()
            )
        }
    };
    format!("  {:<10} {addrs:<18}{down}{peer}", i.ifname)
}

/// Addresses as `10.5.0.1/30,10.5.0.5/30`.
fn join(addresses: &[IpNet]) -> String {
    let text: Vec<String> = addresses.iter().map(ToString::to_string).collect();
    text.join(",")
}

/// An interface and its addresses, `vc-red 10.5.0.2/30`, or only its name.
fn end_label(ifname: &str, addresses: &[IpNet]) -> String {
    format!("{ifname} {}", join(addresses))
        .trim_end()
        .to_string()
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
            Node::Ns(name) => {
                // A runtime's container (CNI): its id and network.
                let runtime = (s.bridges.iter().flat_map(|b| &b.ports))
                    .filter(|p| p.namespace.as_str() == name)
                    .find_map(|p| p.runtime.as_ref());
                match runtime {
                    Some(a) => {
                        let short = a.container.get(..12).unwrap_or(&a.container);
                        format!("{name} (container {short}, CNI {})", a.network)
                    }
                    None => name.clone(),
                }
            }
            Node::Bridge(name) => match s.bridges.iter().find(|b| &b.name == name) {
                Some(b) => {
                    let prefix = b.subnet.prefix_len();
                    let nat = if b.nat.is_some() { " nat" } else { "" };
                    let v6 = b
                        .ipv6
                        .map(|n| format!(" {}/{}", n.gateway, n.subnet.prefix_len()))
                        .unwrap_or_default();
                    let fw = match b.policy.is_empty() {
                        true => String::new(),
                        false => format!(
                            " firewall: {} deny, {} allow",
                            b.policy.deny.len(),
                            b.policy.allow.len()
                        ),
                    };
                    format!("{name} {}/{prefix}{v6}{nat}{fw}", b.gateway)
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

/// Every node and link: the host's bridges, present namespaces and the veths
/// between them, each cable once.
fn links(s: &Status) -> (BTreeSet<Node>, Vec<Link>) {
    let mut nodes = BTreeSet::from([Node::Host]);
    let mut links = BTreeSet::new();
    for b in &s.bridges {
        add_bridge(&mut nodes, &mut links, &b.name);
    }
    for ns in s.namespaces.iter().filter(|n| n.present) {
        nodes.insert(Node::Ns(ns.name.clone()));
        for i in &ns.interfaces {
            let Some(peer) = &i.peer else { continue };
            if let ("host", Some(bridge)) = (peer.namespace.as_str(), &peer.bridge) {
                add_bridge(&mut nodes, &mut links, bridge);
            }
            links.extend(veth_link(ns, i, peer));
        }
    }
    (nodes, links.into_iter().collect())
}

/// Bridge `name` and its link to the host.
fn add_bridge(nodes: &mut BTreeSet<Node>, links: &mut BTreeSet<Link>, name: &str) {
    let bridge = Node::Bridge(name.to_string());
    nodes.insert(bridge.clone());
    links.insert(Link {
        a: Node::Host,
        b: bridge,
        label: String::new(),
    });
}

/// The link veth `i` of `ns` makes to its `peer`; `None` for a cable
/// between namespaces seen from the later name (it is drawn from the other).
fn veth_link(ns: &NsStatus, i: &IfaceStatus, peer: &PeerStatus) -> Option<Link> {
    let here = end_label(&i.ifname, &i.addresses);
    let theirs = end_label(&peer.ifname, &peer.addresses);
    let node = Node::Ns(ns.name.clone());
    let link = match (peer.namespace.as_str(), &peer.bridge) {
        ("host", Some(bridge)) => Link {
            a: Node::Bridge(bridge.clone()),
            b: node,
            label: here,
        },
        ("host", None) => Link {
            a: Node::Host,
            b: node,
            label: format!("{theirs} - {here}"),
        },
        (other, _) if other < ns.name.as_str() => return None,
        (other, _) => Link {
            a: node,
            b: Node::Ns(other.to_string()),
            label: format!("{here} - {theirs}"),
        },
    };
    Some(link)
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
