//! The host's interfaces as a command sees them: every one, read in one
//! dump, or (for a command that changes the host) only those it asks
//! about, one netlink request each, so that a command costs what it
//! touches rather than what the host holds. The whole list is still read
//! the first time a command goes through every interface.
//!
//! A request that fails leaves the answer unknown: the command is told so
//! (`failure`) before it may act on a plan built without it.

use super::Link;
use super::netlink::{self, Kernel};
use std::cell::{OnceCell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

/// The host's interfaces by name.
#[derive(Clone)]
pub struct Links {
    /// Every interface, once read (or given whole).
    all: OnceCell<BTreeMap<String, Link>>,
    /// Interfaces asked about one at a time: `None`, there is none.
    named: RefCell<BTreeMap<String, Option<Link>>>,
    /// Interface names by index, for masters, asked one at a time.
    names: RefCell<BTreeMap<u32, Option<String>>>,
    /// Names by index of every interface, once `all` is read.
    indexed: OnceCell<BTreeMap<u32, String>>,
    /// Where requests go; `None`: `all` is the whole answer.
    kernel: Option<Rc<RefCell<Kernel>>>,
    /// The first request that failed.
    failed: RefCell<Option<String>>,
}

/// A link as the kernel describes it, as builders see it, by name.
fn mine(link: netlink::Link) -> (String, Link) {
    let netlink::Link {
        ifindex,
        ifname,
        kind,
        master,
        ..
    } = link;
    (
        ifname,
        Link {
            ifindex,
            kind,
            master,
        },
    )
}

impl Default for Links {
    fn default() -> Links {
        Links::from(BTreeMap::new())
    }
}

impl From<BTreeMap<String, Link>> for Links {
    fn from(all: BTreeMap<String, Link>) -> Links {
        Links {
            all: OnceCell::from(all),
            named: RefCell::default(),
            names: RefCell::default(),
            indexed: OnceCell::new(),
            kernel: None,
            failed: RefCell::default(),
        }
    }
}

impl std::fmt::Debug for Links {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Links")
            .field("all", &self.all.get())
            .field("named", &self.named.borrow())
            .finish()
    }
}

impl Links {
    /// Interfaces asked of `kernel` as they are needed.
    pub fn asking(kernel: Kernel) -> Links {
        Links {
            all: OnceCell::new(),
            kernel: Some(Rc::new(RefCell::new(kernel))),
            ..Links::default()
        }
    }

    /// Interface `name`, if there is one.
    pub fn get(&self, name: &str) -> Option<Link> {
        if let Some(all) = self.all.get() {
            return all.get(name).cloned();
        }
        if let Some(known) = self.named.borrow().get(name) {
            return known.clone();
        }
        let found = self.ask(Some(name), 0);
        self.named
            .borrow_mut()
            .insert(name.to_string(), found.clone());
        found
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Every interface (read whole the first time, if only asked about so
    /// far).
    pub fn all(&self) -> &BTreeMap<String, Link> {
        self.all.get_or_init(|| {
            let kernel = self.kernel.as_ref().expect("links given whole");
            match kernel.borrow_mut().links() {
                Ok(all) => all.into_iter().map(mine).collect(),
                Err(err) => {
                    self.fail(format!("{err:#}"));
                    BTreeMap::new()
                }
            }
        })
    }

    /// Why an interface could not be read, if one could not: a plan built
    /// on this answer must not run.
    pub fn failure(&self) -> Option<String> {
        self.failed.borrow().clone()
    }

    /// Sets (for tests and captured hosts) interface `name`.
    pub fn insert(&mut self, name: String, link: Link) {
        self.whole().insert(name, link);
    }

    pub fn remove(&mut self, name: &str) -> Option<Link> {
        self.whole().remove(name)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut Link> {
        self.whole().get_mut(name)
    }

    fn whole(&mut self) -> &mut BTreeMap<String, Link> {
        self.all();
        // Names by index are worked out again from what is set here.
        self.indexed = OnceCell::new();
        self.all.get_mut().expect("read above")
    }

    fn fail(&self, why: String) {
        self.failed.borrow_mut().get_or_insert(why);
    }

    /// One interface, by name or index, its master named.
    fn ask(&self, name: Option<&str>, index: u32) -> Option<Link> {
        let kernel = self.kernel.as_ref()?;
        let read = kernel.borrow_mut().link(name, index);
        match read {
            Ok(Some((link, master))) => {
                let master = master.and_then(|i| self.name_of(i));
                Some(mine(netlink::Link { master, ..link }).1)
            }
            Ok(None) => None,
            Err(err) => {
                self.fail(format!("{err:#}"));
                None
            }
        }
    }

    /// The name of interface `index`.
    pub fn name_of(&self, index: u32) -> Option<String> {
        if let Some(all) = self.all.get() {
            let indexed = self
                .indexed
                .get_or_init(|| all.iter().map(|(n, l)| (l.ifindex, n.clone())).collect());
            return indexed.get(&index).cloned();
        }
        if let Some(known) = self.names.borrow().get(&index) {
            return known.clone();
        }
        let kernel = self.kernel.as_ref()?;
        let read = kernel.borrow_mut().link(None, index);
        let name = match read {
            Ok(found) => found.map(|(link, _)| link.ifname),
            Err(err) => {
                self.fail(format!("{err:#}"));
                None
            }
        };
        self.names.borrow_mut().insert(index, name.clone());
        name
    }
}
