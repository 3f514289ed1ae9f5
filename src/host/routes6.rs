//! The host's IPv6 routes, as far as a command needs them: the destinations
//! routed in any table (so that nsnet never takes a routed prefix), the
//! host's own addresses and the tables in use. On a host with many
//! interfaces the IPv6 dump is long (a link-local and a multicast route
//! each), so a command that changes the host reads it only when it first
//! asks, which most never do.

use super::netlink::Kernel;
use super::reader::{JsonRoute, json_route};
use ipnet::Ipv6Net;
use std::cell::{OnceCell, RefCell};
use std::collections::BTreeSet;
use std::net::Ipv6Addr;

/// What the IPv6 routes tell.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct V6 {
    /// Destinations routed in any table, but default routes (link-local
    /// and multicast ones included: nothing nsnet may take).
    pub dests: Vec<Ipv6Net>,
    /// The host's own addresses (the `local` routes).
    pub local: BTreeSet<Ipv6Addr>,
    /// The tables the routes are in (main left out).
    pub tables: BTreeSet<u32>,
}

impl V6 {
    /// From routes as `ip -j -6 route show table all` prints them.
    pub fn of(routes: &[JsonRoute]) -> V6 {
        let dst = |r: &JsonRoute| match r.dst.parse::<Ipv6Net>() {
            Ok(net) => Some(net),
            Err(_) => Ipv6Net::new(r.dst.parse().ok()?, 128).ok(),
        };
        let local = routes
            .iter()
            .filter(|r| r.kind.as_deref() == Some("local"))
            .filter_map(|r| r.dst.parse().ok())
            .collect();
        V6 {
            dests: routes.iter().filter_map(dst).collect(),
            local,
            tables: super::tables_of(routes),
        }
    }
}

/// The IPv6 routes, read already or when first asked.
#[derive(Clone, Debug)]
pub struct Routes6 {
    read: OnceCell<V6>,
    /// Why they could not be read, when asked.
    failed: RefCell<Option<String>>,
}

impl From<V6> for Routes6 {
    fn from(v6: V6) -> Routes6 {
        Routes6 {
            read: OnceCell::from(v6),
            failed: RefCell::default(),
        }
    }
}

impl Default for Routes6 {
    /// None (a host without IPv6, tests).
    fn default() -> Routes6 {
        Routes6::from(V6::default())
    }
}

impl Routes6 {
    /// Read from the kernel when first asked.
    pub fn asking() -> Routes6 {
        Routes6 {
            read: OnceCell::new(),
            failed: RefCell::default(),
        }
    }

    pub fn get(&self) -> &V6 {
        self.read.get_or_init(|| {
            let routes = Kernel::here().and_then(|mut k| k.routes(true, &|_| None));
            match routes {
                Ok(routes) => {
                    let routes: Vec<JsonRoute> = routes.into_iter().map(json_route).collect();
                    V6::of(&routes)
                }
                Err(err) => {
                    *self.failed.borrow_mut() = Some(format!("{err:#}"));
                    V6::default()
                }
            }
        })
    }

    /// Why the routes could not be read, if they could not: a plan built
    /// on this answer must not run.
    pub fn failure(&self) -> Option<String> {
        self.failed.borrow().clone()
    }
}
