//! Where interfaces, routes and rules are read from: the kernel over netlink
//! on a real host (`Roots::kernel`), or `ip -j` through the runner on a
//! captured one. Either way the answer has the shape `ip -j` prints, so the
//! code that makes sense of it is one.

use super::netlink::{self, Kernel};
use crate::exec::runner::Runner;
use crate::host::identity::Roots;
use crate::plan::cmd::Cmd;
use anyhow::{Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Runs `ip` with `args` and deserialises the JSON it prints.
pub fn ip_json<T: for<'de> Deserialize<'de>>(runner: &mut dyn Runner, args: &[&str]) -> Result<T> {
    let cmd = Cmd::ip(args.iter().copied());
    let text = runner.run(&cmd)?;
    serde_json::from_str(&text).with_context(|| format!("cannot read `{cmd}`"))
}

#[derive(Deserialize)]
pub struct JsonLink {
    pub ifindex: u32,
    pub ifname: String,
    pub master: Option<String>,
    pub linkinfo: Option<JsonLinkInfo>,
}

#[derive(Deserialize)]
pub struct JsonLinkInfo {
    pub info_kind: Option<String>,
}

#[derive(Deserialize)]
pub struct JsonRoute {
    pub dst: String,
    pub dev: Option<String>,
    #[serde(default)]
    pub table: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

/// A route from the kernel as `ip -j` prints it.
pub fn json_route(r: netlink::Route) -> JsonRoute {
    JsonRoute {
        dst: r.dst_text(),
        table: r.table_name(),
        kind: r.kind_name(),
        dev: r.dev,
    }
}

#[derive(Deserialize)]
pub struct JsonRule {
    pub priority: u32,
    pub src: Option<String>,
    pub srclen: Option<u8>,
    pub table: Option<String>,
}

/// A reader of the host's (nsnet's own namespace's) links, routes, rules.
pub enum Reader {
    Kernel(Kernel),
    Ip,
}

impl Reader {
    pub fn new(roots: &Roots) -> Result<Reader> {
        Ok(match roots.kernel {
            true => Reader::Kernel(Kernel::here()?),
            false => Reader::Ip,
        })
    }

    /// `ip -j -d link show`.
    pub fn links(&mut self, runner: &mut dyn Runner) -> Result<Vec<JsonLink>> {
        match self {
            Reader::Ip => ip_json(runner, &["-j", "-d", "link", "show"]),
            Reader::Kernel(kernel) => {
                let links = kernel.links()?;
                Ok(links
                    .into_iter()
                    .map(|l| JsonLink {
                        ifindex: l.ifindex,
                        ifname: l.ifname,
                        master: l.master,
                        linkinfo: Some(JsonLinkInfo { info_kind: l.kind }),
                    })
                    .collect())
            }
        }
    }

    /// `ip -j -4 route show table all` (or `-6`); `name_of` names the
    /// interface of an index, as far as the caller needs.
    pub fn routes(
        &mut self,
        runner: &mut dyn Runner,
        v6: bool,
        name_of: &dyn Fn(u32) -> Option<String>,
    ) -> Result<Vec<JsonRoute>> {
        match self {
            Reader::Ip => {
                let family = if v6 { "-6" } else { "-4" };
                ip_json(runner, &["-j", family, "route", "show", "table", "all"])
            }
            Reader::Kernel(kernel) => Ok(kernel
                .routes(v6, name_of)?
                .into_iter()
                .map(json_route)
                .collect()),
        }
    }

    /// `ip -j -4 rule show`.
    pub fn rules(&mut self, runner: &mut dyn Runner) -> Result<Vec<JsonRule>> {
        match self {
            Reader::Ip => ip_json(runner, &["-j", "-4", "rule", "show"]),
            Reader::Kernel(kernel) => Ok(kernel
                .rules()?
                .into_iter()
                .map(|r| JsonRule {
                    priority: r.priority,
                    src: Some(r.from.map_or("all".to_string(), |n| n.addr().to_string())),
                    srclen: r.from.map(|n| n.prefix_len()),
                    // A rule without a table (goto, nop) shows none.
                    table: (r.table != 0).then(|| {
                        netlink::table_name(r.table).unwrap_or_else(|| "main".to_string())
                    }),
                })
                .collect()),
        }
    }
}

/// `indexes`, of interfaces `names` only (those that exist): from the
/// kernel, one request each.
pub fn indexes_of(
    runner: &mut dyn Runner,
    roots: &Roots,
    ns: Option<&str>,
    names: &[&str],
) -> Result<BTreeMap<String, u32>> {
    if !roots.kernel {
        let mut all = indexes(runner, roots, ns)?;
        all.retain(|name, _| names.contains(&name.as_str()));
        return Ok(all);
    }
    let mut kernel = match ns {
        Some(ns) => Kernel::inside(&roots.netns.join(ns))?,
        None => Kernel::here()?,
    };
    let mut found = BTreeMap::new();
    for name in names {
        if let Some((link, _)) = kernel.link(Some(name), 0)? {
            found.insert(link.ifname, link.ifindex);
        }
    }
    Ok(found)
}

/// The interface indexes by name of namespace `ns` (`None`: the host):
/// `ip [-n NS] -j link show`.
pub fn indexes(
    runner: &mut dyn Runner,
    roots: &Roots,
    ns: Option<&str>,
) -> Result<BTreeMap<String, u32>> {
    #[derive(Deserialize)]
    struct JsonIndex {
        ifindex: u32,
        ifname: String,
    }
    if roots.kernel {
        let mut kernel = match ns {
            Some(ns) => Kernel::inside(&roots.netns.join(ns))?,
            None => Kernel::here()?,
        };
        let links = kernel.links()?;
        return Ok(links.into_iter().map(|l| (l.ifname, l.ifindex)).collect());
    }
    let args: Vec<&str> = match ns {
        Some(ns) => vec!["-n", ns, "-j", "link", "show"],
        None => vec!["-j", "link", "show"],
    };
    let links: Vec<JsonIndex> = ip_json(runner, &args)?;
    Ok(links.into_iter().map(|l| (l.ifname, l.ifindex)).collect())
}
