//! Reading every namespace's interfaces, addresses and routes from the live
//! kernel (`ip -j`, never parsed text), and working out where each veth's
//! other end is: the kernel reports a peer as (namespace id, ifindex), and the
//! ids are local to the namespace that reports them.

use crate::exec::runner::Runner;
use crate::plan::cmd::{Cmd, Tool};
use anyhow::{Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;

/// One interface as `ip -j addr show` reports it.
#[derive(Clone, Debug, Deserialize)]
pub struct Iface {
    pub ifindex: u32,
    pub ifname: String,
    #[serde(default)]
    pub link_index: Option<u32>,
    #[serde(default)]
    pub link_netnsid: Option<i32>,
    #[serde(default)]
    pub master: Option<String>,
    #[serde(default)]
    pub flags: Vec<String>,
    #[serde(default)]
    pub addr_info: Vec<AddrInfo>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct AddrInfo {
    pub family: String,
    pub local: String,
    pub prefixlen: u8,
}

impl Iface {
    /// IPv4 addresses, as `10.200.0.2/24`.
    pub fn ipv4(&self) -> Vec<String> {
        let v4 = self.addr_info.iter().filter(|a| a.family == "inet");
        v4.map(|a| format!("{}/{}", a.local, a.prefixlen)).collect()
    }

    pub fn is_up(&self) -> bool {
        self.flags.iter().any(|f| f == "UP")
    }
}

#[derive(Deserialize)]
struct JsonRoute {
    dst: String,
    gateway: Option<String>,
    dev: Option<String>,
}

#[derive(Deserialize)]
struct JsonNsid {
    nsid: i32,
    name: Option<String>,
}

#[derive(Deserialize)]
struct JsonNetns {
    name: String,
    id: Option<i32>,
}

/// One network namespace: the host's (`name` None) or a named one.
#[derive(Clone, Debug, Default)]
pub struct Netns {
    pub ifaces: Vec<Iface>,
    /// `default via 10.200.0.1 dev eth0`, `10.200.0.0/24 dev eth0`.
    pub routes: Vec<String>,
    /// Names of the namespaces this one knows by id.
    pub ids: BTreeMap<i32, String>,
}

/// The host and every named namespace.
#[derive(Clone, Debug, Default)]
pub struct World {
    pub host: Netns,
    pub namespaces: BTreeMap<String, Netns>,
}

/// Where a veth's other end is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// `None` for the host's namespace.
    pub ns: Option<String>,
    pub ifname: String,
    /// The bridge the other end is plugged into, if any.
    pub bridge: Option<String>,
    /// Its IPv4 addresses.
    pub addresses: Vec<String>,
}

/// What one namespace is asked, in one `ip -j [-n NS] -batch -`: each line
/// prints one JSON array (`[]` when empty), in this order. `route show`
/// lists IPv4 routes unless told otherwise.
const QUESTIONS: [&str; 3] = ["addr show", "route show", "netns list-id"];

fn read(runner: &mut dyn Runner, ns: Option<&str>) -> Result<Netns> {
    let mut args = vec!["-j".to_string()];
    if let Some(ns) = ns {
        args.extend(["-n".to_string(), ns.to_string()]);
    }
    args.extend(["-batch".to_string(), "-".to_string()]);
    let lines = match ns {
        Some(_) => QUESTIONS.join("\n"),
        // The host names the namespaces it knows by id with `netns list`.
        None => [QUESTIONS[0], QUESTIONS[1], "netns list"].join("\n"),
    };
    let cmd = Cmd {
        stdin: Some(lines + "\n"),
        ..Cmd::new(Tool::Ip, args)
    };
    let text = runner.run(&cmd)?;
    let context = || format!("cannot read the output of `{cmd}`");
    let mut answers = serde_json::Deserializer::from_str(&text).into_iter::<serde_json::Value>();
    let mut next = || -> Result<serde_json::Value> {
        answers
            .next()
            .transpose()
            .with_context(context)?
            .with_context(context)
    };
    let ifaces: Vec<Iface> = serde_json::from_value(next()?).with_context(context)?;
    let routes: Vec<JsonRoute> = serde_json::from_value(next()?).with_context(context)?;
    let routes = routes
        .into_iter()
        .map(|r| {
            let mut text = r.dst;
            if let Some(gw) = r.gateway {
                text.push_str(&format!(" via {gw}"));
            }
            if let Some(dev) = r.dev {
                text.push_str(&format!(" dev {dev}"));
            }
            text
        })
        .collect();
    let ids = match ns {
        Some(_) => {
            let ids: Vec<JsonNsid> = serde_json::from_value(next()?).with_context(context)?;
            ids.into_iter()
                .filter_map(|i| Some((i.nsid, i.name?)))
                .collect()
        }
        None => {
            let named: Vec<JsonNetns> = serde_json::from_value(next()?).with_context(context)?;
            named
                .into_iter()
                .filter_map(|n| Some((n.id?, n.name)))
                .collect()
        }
    };
    Ok(Netns {
        ifaces,
        routes,
        ids,
    })
}

/// Reads the host and each of `names`; a namespace that cannot be read (gone
/// since it was listed) is left out.
pub fn read_world(runner: &mut dyn Runner, names: &[String]) -> Result<World> {
    let host = read(runner, None)?;
    let mut namespaces = BTreeMap::new();
    for name in names {
        if let Ok(ns) = read(runner, Some(name)) {
            namespaces.insert(name.clone(), ns);
        }
    }
    Ok(World { host, namespaces })
}

impl World {
    fn netns(&self, ns: Option<&str>) -> Option<&Netns> {
        match ns {
            None => Some(&self.host),
            Some(name) => self.namespaces.get(name),
        }
    }

    /// The other end of veth `iface`, which lives in `ns` (`None`: the host).
    pub fn peer(&self, ns: Option<&str>, iface: &Iface) -> Option<Peer> {
        let index = iface.link_index?;
        let here = self.netns(ns)?;
        // Where the kernel says the peer is, as a name; an id without a name
        // seen from a named namespace is (usually) the host's, checked below.
        let there: Option<String> = match iface.link_netnsid {
            None => ns.map(str::to_string),
            Some(id) => here.ids.get(&id).cloned(),
        };
        let netns = self.netns(there.as_deref())?;
        let other = netns.ifaces.iter().find(|i| {
            i.ifindex == index && self.points_back(there.as_deref(), i, ns, iface.ifindex)
        })?;
        Some(Peer {
            ns: there,
            ifname: other.ifname.clone(),
            bridge: other.master.clone(),
            addresses: other.ipv4(),
        })
    }

    /// Whether `iface` (in `ns`) names `(back_ns, back_index)` as its peer.
    fn points_back(
        &self,
        ns: Option<&str>,
        iface: &Iface,
        back_ns: Option<&str>,
        back_index: u32,
    ) -> bool {
        if iface.link_index != Some(back_index) {
            return false;
        }
        let Some(here) = self.netns(ns) else {
            return false;
        };
        match (iface.link_netnsid, back_ns) {
            (None, _) => ns == back_ns,
            (Some(id), Some(name)) => here.ids.get(&id).map(String::as_str) == Some(name),
            // The host has no name: an id with no name, seen from a named namespace.
            (Some(id), None) => ns.is_some() && !here.ids.contains_key(&id),
        }
    }
}
