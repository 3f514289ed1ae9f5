//! The stamps of named namespaces (see `NsStamp`), each read with one
//! `stat` of /run/netns/NAME the first time a command asks about it, and
//! remembered for the rest of the command: a command checks the
//! namespaces it touches, not every one on the host.

use super::identity::Roots;
use crate::model::state::NsStamp;
use std::cell::RefCell;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default)]
pub struct NsStamps {
    /// Where /run/netns is; `None`: only the stamps set with `insert` exist.
    roots: Option<Roots>,
    /// Stamps read or set: `None`, it cannot be read (no such namespace).
    read: RefCell<BTreeMap<String, Option<NsStamp>>>,
}

impl NsStamps {
    /// Stamps read under `roots`.
    pub fn under(roots: &Roots) -> NsStamps {
        NsStamps {
            roots: Some(roots.clone()),
            read: RefCell::default(),
        }
    }

    /// The stamp of namespace `name`, if it can be read.
    pub fn get(&self, name: &str) -> Option<NsStamp> {
        if let Some(known) = self.read.borrow().get(name) {
            return *known;
        }
        let stamp = self.roots.as_ref().and_then(|r| r.stamp_of_name(name));
        self.read.borrow_mut().insert(name.to_string(), stamp);
        stamp
    }

    /// Sets the stamp of `name` (for tests and captured hosts).
    pub fn insert(&mut self, name: String, stamp: NsStamp) {
        self.read.get_mut().insert(name, Some(stamp));
    }
}
