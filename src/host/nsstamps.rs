//! The stamps of named namespaces (see `NsStamp`), each read with one
//! `stat` of /run/netns/NAME the first time a command asks about it (see
//! `Asked`): a command checks the namespaces it touches, not every one on
//! the host.

use super::asked::Asked;
use super::identity::Roots;
use crate::model::state::NsStamp;

#[derive(Clone, Debug, Default)]
pub struct NsStamps {
    /// Where /run/netns is; `None`: only the stamps set with `insert` exist.
    roots: Option<Roots>,
    read: Asked<NsStamp>,
}

impl NsStamps {
    /// Stamps read under `roots`.
    pub fn under(roots: &Roots) -> NsStamps {
        NsStamps {
            roots: Some(roots.clone()),
            read: Asked::default(),
        }
    }

    /// The stamp of namespace `name`, if it can be read.
    pub fn get(&self, name: &str) -> Option<NsStamp> {
        let roots = self.roots.as_ref();
        self.read
            .get(name, || roots.and_then(|r| r.stamp_of_name(name)))
    }

    /// Sets the stamp of `name` (for tests and captured hosts).
    pub fn insert(&mut self, name: String, stamp: NsStamp) {
        self.read.insert(name, stamp);
    }
}
