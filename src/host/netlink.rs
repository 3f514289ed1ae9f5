//! Reading the kernel over rtnetlink, in-process: interfaces, addresses,
//! routes, rules and namespace ids, as the kernel's own dumps. It answers the
//! same questions as `ip -j … show` (which `Roots::kernel` false still uses,
//! for captured hosts), without a process and a JSON document per question:
//! on a host with a thousand interfaces a dump takes a millisecond or two,
//! where `ip -j -d link show` takes tens. A named namespace is read through
//! a socket opened inside it (by a thread that enters the namespace, opens
//! the socket and ends: a socket stays in the namespace it was opened in).

use anyhow::{Context, Result, bail};
use ipnet::IpNet;
use netlink_packet_core::{
    NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP, NetlinkBuffer,
    NetlinkDeserializable, NetlinkHeader, NetlinkMessage, NetlinkPayload, NlasIterator,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkExtentMask, LinkMessage};
use netlink_packet_route::nsid::{NsidAttribute, NsidMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteMessage, RouteType,
};
use netlink_packet_route::rule::{RuleAttribute, RuleMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;

/// One interface: what `ip -j -d link show` and `ip -j addr show` tell.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Link {
    pub ifindex: u32,
    pub ifname: String,
    /// `bridge`, `veth`, …; `None` for a device without one (loopback).
    pub kind: Option<String>,
    /// The name of the bridge it is plugged into.
    pub master: Option<String>,
    /// A veth's peer: its interface index, and the id of the namespace it
    /// is in when that is another one.
    pub link_index: Option<u32>,
    pub link_netnsid: Option<i32>,
    pub up: bool,
    /// Its hardware address, as `ip` prints it (`02:00:5e:00:53:01`).
    pub mac: Option<String>,
    /// Its addresses, in the kernel's order; filled by `addresses`.
    pub addresses: Vec<IpNet>,
}

/// One route, of any table: `dst` None is a default route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub dst: Option<IpNet>,
    pub gateway: Option<IpAddr>,
    pub dev: Option<String>,
    pub table: u32,
    pub kind: RouteType,
}

impl Route {
    /// Its destination as `ip` prints it: `default`, a prefix, or an
    /// address alone for a host route.
    pub fn dst_text(&self) -> String {
        match self.dst {
            None => "default".to_string(),
            Some(net) if net.prefix_len() == net.max_prefix_len() => net.addr().to_string(),
            Some(net) => net.to_string(),
        }
    }

    /// Its table as `ip` names it, `None` for main.
    pub fn table_name(&self) -> Option<String> {
        table_name(self.table)
    }

    /// Its type as `ip` prints it, `None` for a plain (unicast) route.
    pub fn kind_name(&self) -> Option<String> {
        let name = match self.kind {
            RouteType::Unicast => return None,
            RouteType::Unspec => "none",
            RouteType::Local => "local",
            RouteType::Broadcast => "broadcast",
            RouteType::Anycast => "anycast",
            RouteType::Multicast => "multicast",
            RouteType::BlackHole => "blackhole",
            RouteType::Unreachable => "unreachable",
            RouteType::Prohibit => "prohibit",
            RouteType::Throw => "throw",
            RouteType::Nat => "nat",
            RouteType::ExternalResolve => "xresolve",
            other => return Some(u8::from(other).to_string()),
        };
        Some(name.to_string())
    }
}

/// A table's name as `ip` prints it; `None` for main.
pub fn table_name(table: u32) -> Option<String> {
    match table {
        254 => None,
        255 => Some("local".to_string()),
        253 => Some("default".to_string()),
        n => Some(n.to_string()),
    }
}

/// One IPv4 rule: its priority, its `from` (`None`: all) and table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub priority: u32,
    pub from: Option<IpNet>,
    pub table: u32,
}

/// The messages of an answer, undecoded: (type, payload).
type Messages = Vec<(u16, Vec<u8>)>;

/// An rtnetlink socket in one network namespace.
pub struct Kernel {
    socket: Socket,
    seq: u32,
}

impl Kernel {
    /// A socket in nsnet's own network namespace (the host's).
    pub fn here() -> Result<Kernel> {
        let mut socket = Socket::new(NETLINK_ROUTE).context("cannot open a netlink socket")?;
        socket.bind_auto().context("cannot bind a netlink socket")?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .context("cannot connect a netlink socket")?;
        Ok(Kernel { socket, seq: 0 })
    }

    /// A socket in the network namespace of file `path` (/run/netns/NAME).
    pub fn inside(path: &Path) -> Result<Kernel> {
        let file = std::fs::File::open(path)
            .with_context(|| format!("cannot open `{}`", path.display()))?;
        std::thread::scope(|s| {
            s.spawn(|| {
                rustix::thread::move_into_link_name_space(
                    file.as_fd(),
                    Some(rustix::thread::LinkNameSpaceType::Network),
                )
                .with_context(|| format!("cannot enter the namespace `{}`", path.display()))?;
                Kernel::here()
            })
            .join()
            .unwrap_or_else(|_| bail!("the thread entering `{}` panicked", path.display()))
        })
    }

    /// Sends `request` as a dump (or, `dump` false, a plain request) and
    /// collects the messages of the answer.
    fn ask(
        &mut self,
        request: RouteNetlinkMessage,
        dump: bool,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        let answer = self.exchange(request, dump)?;
        let decode = |(kind, payload): (u16, Vec<u8>)| {
            let mut header = NetlinkHeader::default();
            header.message_type = kind;
            RouteNetlinkMessage::deserialize(&header, &payload)
                .context("cannot decode a netlink answer")
        };
        answer.into_iter().map(decode).collect()
    }

    /// Sends `request` and collects the answer's messages undecoded, as
    /// (type, payload).
    fn exchange(&mut self, request: RouteNetlinkMessage, dump: bool) -> Result<Messages> {
        // A dump that another change to the same table crossed is marked
        // inconsistent by the kernel: asked again, as `ip` would be.
        let flags = NLM_F_REQUEST | if dump { NLM_F_DUMP } else { 0 };
        for _ in 0..4 {
            if let Some(answer) = self.exchange_once(request.clone(), flags)? {
                return Ok(answer);
            }
        }
        anyhow::bail!(
            "the kernel's tables kept changing while nsnet read them (another tool at work?): run the command again"
        )
    }

    /// `exchange`, once: `None` when the kernel says the dump was
    /// interrupted by a change.
    fn exchange_once(
        &mut self,
        request: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Option<Messages>> {
        let dump = flags & NLM_F_DUMP != 0;
        self.seq += 1;
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(request));
        packet.finalize();
        let mut buf = vec![0; packet.buffer_len()];
        packet.serialize(&mut buf);
        self.socket
            .send(&buf, 0)
            .context("cannot send a netlink request")?;
        let mut out = Vec::new();
        let mut interrupted = false;
        loop {
            let (bytes, _) = self
                .socket
                .recv_from_full()
                .context("cannot read a netlink answer")?;
            let mut offset = 0;
            while offset < bytes.len() {
                let message = NetlinkBuffer::new_checked(&bytes[offset..])
                    .context("cannot decode a netlink answer")?;
                let length = message.length() as usize;
                if message.sequence_number() == self.seq {
                    interrupted |= message.flags() & NLM_F_DUMP_INTR != 0;
                    let payload = message.payload();
                    // NLMSG_DONE and NLMSG_ERROR carry an error code: 0,
                    // or a negative errno.
                    let code = payload
                        .get(..4)
                        .map_or(0, |b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
                    match message.message_type() {
                        NLMSG_DONE | NLMSG_ERROR if code < 0 => {
                            return Err(std::io::Error::from_raw_os_error(-code))
                                .context("the kernel refused a netlink request");
                        }
                        NLMSG_DONE | NLMSG_ERROR => return Ok((!interrupted).then_some(out)),
                        NLMSG_NOOP => {}
                        kind => {
                            out.push((kind, payload.to_vec()));
                            if !dump {
                                return Ok(Some(out));
                            }
                        }
                    }
                }
                if length == 0 {
                    break;
                }
                // Each message starts on a 4-byte boundary.
                offset += (length + 3) & !3;
            }
        }
    }

    /// Sends a change (`request`) and waits for the kernel to acknowledge
    /// it: an error carries the kernel's errno (see `os_error`). Only the
    /// executor's runner changes anything through this.
    pub fn change(&mut self, request: RouteNetlinkMessage) -> Result<()> {
        self.exchange_once(request, NLM_F_REQUEST | NLM_F_ACK)?;
        Ok(())
    }

    /// Every interface, with its addresses.
    pub fn links(&mut self) -> Result<Vec<Link>> {
        // Without statistics: half of what the kernel would write per link.
        let mut request = LinkMessage::default();
        request
            .attributes
            .push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
        let answer = self.exchange(RouteNetlinkMessage::GetLink(request), true)?;
        // Read by hand: decoding every attribute of every link (statistics,
        // per-family settings, bridge port state) costs more than the dump.
        let read: Vec<(Link, Option<u32>)> = answer
            .iter()
            .filter(|(kind, _)| *kind == RTM_NEWLINK)
            .map(|(_, payload)| link(payload).context("cannot decode a link the kernel listed"))
            .collect::<Result<_>>()?;
        let names: BTreeMap<u32, String> = read
            .iter()
            .map(|(l, _)| (l.ifindex, l.ifname.clone()))
            .collect();
        // The kernel names a master by its index: as `ip`, by its name.
        let named = |(mut l, master): (Link, Option<u32>)| {
            l.master = master.and_then(|i| names.get(&i).cloned());
            l
        };
        Ok(read.into_iter().map(named).collect())
    }

    /// One interface, by `name` or, without one, by index `index`: `None`
    /// when there is none. Its master is given by index (see `link`).
    pub fn link(&mut self, name: Option<&str>, index: u32) -> Result<Option<(Link, Option<u32>)>> {
        // No interface has a longer name (IFNAMSIZ less its NUL); the
        // kernel would refuse the request rather than find none.
        if name.is_some_and(|n| n.is_empty() || n.len() > 15) {
            return Ok(None);
        }
        let mut request = LinkMessage::default();
        request.header.index = if name.is_some() { 0 } else { index };
        if let Some(name) = name {
            request
                .attributes
                .push(LinkAttribute::IfName(name.to_string()));
        }
        request
            .attributes
            .push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
        let answer = match self.exchange(RouteNetlinkMessage::GetLink(request), false) {
            Ok(answer) => answer,
            Err(err) if os_error(&err) == Some(rustix::io::Errno::NODEV.raw_os_error()) => {
                return Ok(None);
            }
            Err(err) => return Err(err),
        };
        let Some((_, payload)) = answer.iter().find(|(kind, _)| *kind == RTM_NEWLINK) else {
            bail!("the kernel answered a request for one interface with none");
        };
        let read = link(payload).context("cannot decode a link the kernel listed")?;
        // The kernel also finds an interface by one of its alternative
        // names; a list of every interface (and `ip`, iptables) knows it
        // by its name only.
        if name.is_some_and(|n| n != read.0.ifname) {
            return Ok(None);
        }
        Ok(Some(read))
    }

    /// Every interface with its addresses (IPv4, then IPv6, as `ip addr`).
    pub fn links_and_addresses(&mut self) -> Result<Vec<Link>> {
        let mut links = self.links()?;
        let answer = self.ask(
            RouteNetlinkMessage::GetAddress(AddressMessage::default()),
            true,
        )?;
        let mut by_index: BTreeMap<u32, Vec<(u8, IpNet)>> = BTreeMap::new();
        for m in answer {
            let RouteNetlinkMessage::NewAddress(a) = m else {
                continue;
            };
            if let Some(net) = address(&a) {
                let family = if net.addr().is_ipv4() { 4 } else { 6 };
                by_index
                    .entry(a.header.index)
                    .or_default()
                    .push((family, net));
            }
        }
        for l in &mut links {
            let mut nets = by_index.remove(&l.ifindex).unwrap_or_default();
            nets.sort_by_key(|(family, _)| *family);
            l.addresses = nets.into_iter().map(|(_, n)| n).collect();
        }
        Ok(links)
    }

    /// Every route of one family, in every table; `name_of` names the
    /// interface of an index.
    pub fn routes(
        &mut self,
        v6: bool,
        name_of: &dyn Fn(u32) -> Option<String>,
    ) -> Result<Vec<Route>> {
        let mut request = RouteMessage::default();
        request.header.address_family = match v6 {
            true => AddressFamily::Inet6,
            false => AddressFamily::Inet,
        };
        let family = request.header.address_family;
        let answer = self.ask(RouteNetlinkMessage::GetRoute(request), true)?;
        Ok(answer
            .into_iter()
            .filter_map(|m| match m {
                // As `ip`: not the cached exceptions (PMTU, redirects) the
                // kernel adds to a dump, nor another family's routes (a
                // kernel without IPv6 answers an IPv6 dump with all).
                RouteNetlinkMessage::NewRoute(r)
                    if !r.header.flags.contains(RouteFlags::Cloned)
                        && r.header.address_family == family =>
                {
                    Some(route(&r, name_of))
                }
                _ => None,
            })
            .collect())
    }

    /// The IPv4 rules, in priority order.
    pub fn rules(&mut self) -> Result<Vec<Rule>> {
        let mut request = RuleMessage::default();
        request.header.family = AddressFamily::Inet;
        let answer = self.ask(RouteNetlinkMessage::GetRule(request), true)?;
        let mut rules: Vec<Rule> = answer
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewRule(r) => Some(rule(&r)),
                _ => None,
            })
            .collect();
        rules.sort_by_key(|r| r.priority);
        Ok(rules)
    }

    /// The id this namespace knows the namespace of file `path` by, if it
    /// has given it one.
    pub fn nsid_of(&mut self, path: &Path) -> Result<Option<i32>> {
        let file = std::fs::File::open(path)
            .with_context(|| format!("cannot open `{}`", path.display()))?;
        let mut request = NsidMessage::default();
        request
            .attributes
            .push(NsidAttribute::Fd(file.as_raw_fd() as u32));
        let answer = self.ask(RouteNetlinkMessage::GetNsId(request), false)?;
        let id = answer.into_iter().find_map(|m| match m {
            RouteNetlinkMessage::NewNsId(n) => n.attributes.into_iter().find_map(|a| match a {
                NsidAttribute::Id(id) => Some(id),
                _ => None,
            }),
            _ => None,
        });
        Ok(id.filter(|id| *id >= 0))
    }
}

/// The errno a netlink request was refused with, if that was the error.
pub fn os_error(err: &anyhow::Error) -> Option<i32> {
    err.root_cause()
        .downcast_ref::<std::io::Error>()
        .and_then(std::io::Error::raw_os_error)
}

/// The names of `links` by interface index.
pub fn names(links: &[Link]) -> BTreeMap<u32, String> {
    links
        .iter()
        .map(|l| (l.ifindex, l.ifname.clone()))
        .collect()
}

/// The kernel changed the table while dumping it: the dump may be inconsistent.
const NLM_F_DUMP_INTR: u16 = 0x10;
const RTM_NEWLINK: u16 = 16;
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_LINK: u16 = 5;
const IFLA_MASTER: u16 = 10;
const IFLA_LINKINFO: u16 = 18;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_LINK_NETNSID: u16 = 37;
const IFF_UP: u32 = 1;

fn u32_of(value: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(value.get(..4)?.try_into().ok()?))
}

/// A hardware address in `ip`'s form: lower-case hex bytes joined by `:`.
fn mac_of(value: &[u8]) -> String {
    let bytes: Vec<String> = value.iter().map(|b| format!("{b:02x}")).collect();
    bytes.join(":")
}

/// A NUL-terminated attribute string.
fn text_of(value: &[u8]) -> String {
    let end = value.iter().position(|b| *b == 0).unwrap_or(value.len());
    String::from_utf8_lossy(&value[..end]).into_owned()
}

/// One RTM_NEWLINK payload: `struct ifinfomsg` (16 bytes: family, pad,
/// type, index, flags, change) and the attributes nsnet reads.
/// With the index of its master, if it has one.
fn link(payload: &[u8]) -> Option<(Link, Option<u32>)> {
    let mut master = None;
    let mut out = Link {
        ifindex: u32_of(payload.get(4..8)?)?,
        up: u32_of(payload.get(8..12)?)? & IFF_UP != 0,
        ..Link::default()
    };
    for nla in NlasIterator::new(payload.get(16..)?) {
        // A malformed attribute: the link is not read at all, an error
        // (never a link silently left out).
        let nla = nla.ok()?;
        let value = nla.value();
        match nla.kind() {
            IFLA_IFNAME => out.ifname = text_of(value),
            IFLA_ADDRESS => out.mac = Some(mac_of(value)),
            IFLA_MASTER => master = u32_of(value),
            IFLA_LINK => out.link_index = u32_of(value),
            IFLA_LINK_NETNSID => out.link_netnsid = u32_of(value).map(|i| i as i32),
            IFLA_LINKINFO => {
                for info in NlasIterator::new(value).flatten() {
                    if info.kind() == IFLA_INFO_KIND {
                        out.kind = Some(text_of(info.value()));
                    }
                }
            }
            _ => {}
        }
    }
    // A device whose `link` is itself (loopback, most physical ones) has
    // no peer: `ip` does not show one.
    if out.link_index == Some(out.ifindex) && out.link_netnsid.is_none() {
        out.link_index = None;
    }
    Some((out, master))
}

fn address(m: &AddressMessage) -> Option<IpNet> {
    // IPv4's own address is IFA_LOCAL (IFA_ADDRESS is the peer's on a
    // point-to-point link); IPv6 has only IFA_ADDRESS. `ip` shows `local`.
    let local = m.attributes.iter().find_map(|a| match a {
        AddressAttribute::Local(ip) => Some(*ip),
        _ => None,
    });
    let address = m.attributes.iter().find_map(|a| match a {
        AddressAttribute::Address(ip) => Some(*ip),
        _ => None,
    });
    IpNet::new(local.or(address)?, m.header.prefix_len).ok()
}

fn ip(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

fn route(m: &RouteMessage, name_of: &dyn Fn(u32) -> Option<String>) -> Route {
    let mut table = u32::from(m.header.table);
    let (mut dst, mut gateway, mut dev) = (None, None, None);
    for a in &m.attributes {
        match a {
            RouteAttribute::Destination(d) => dst = ip(d),
            RouteAttribute::Gateway(g) => gateway = ip(g),
            RouteAttribute::Oif(i) => dev = name_of(*i),
            RouteAttribute::Table(t) => table = *t,
            _ => {}
        }
    }
    let len = m.header.destination_prefix_length;
    let dst = match (dst, len) {
        (None, 0) => None,
        (Some(addr), len) => IpNet::new(addr, len).ok(),
        // No destination but a prefix length: the family's zero address.
        (None, len) => match m.header.address_family {
            AddressFamily::Inet6 => IpNet::new(IpAddr::from([0u16; 8]), len).ok(),
            _ => IpNet::new(IpAddr::from([0u8; 4]), len).ok(),
        },
    };
    Route {
        dst,
        gateway,
        dev,
        table,
        kind: m.header.kind,
    }
}

fn rule(m: &RuleMessage) -> Rule {
    let mut table = u32::from(m.header.table);
    let (mut priority, mut src) = (0, None);
    for a in &m.attributes {
        match a {
            RuleAttribute::Priority(p) => priority = *p,
            RuleAttribute::Source(s) => src = Some(*s),
            RuleAttribute::Table(t) => table = *t,
            _ => {}
        }
    }
    let from = src.and_then(|s| IpNet::new(s, m.header.src_len).ok());
    Rule {
        priority,
        from,
        table,
    }
}
