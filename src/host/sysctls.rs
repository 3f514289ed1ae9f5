//! The sysctls a command asks about, each read from /proc/sys the first
//! time it is asked (see `Asked`), so that a command reads the few keys it
//! touches, not one per interface.

use super::asked::Asked;
use super::identity::Roots;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default)]
pub struct Sysctls {
    /// Where /proc is; `None`: only the keys set with `insert` exist.
    roots: Option<Roots>,
    /// Keys read or set; one that cannot be read (no such interface) is none.
    read: Asked<String>,
}

impl From<BTreeMap<String, String>> for Sysctls {
    /// Just these keys (for tests and captured hosts).
    fn from(keys: BTreeMap<String, String>) -> Sysctls {
        let mut sysctls = Sysctls::default();
        for (key, value) in keys {
            sysctls.insert(key, value);
        }
        sysctls
    }
}

impl Sysctls {
    /// Keys read under `roots`.
    pub fn under(roots: &Roots) -> Sysctls {
        Sysctls {
            roots: Some(roots.clone()),
            read: Asked::default(),
        }
    }

    /// The value of `key` (dotted, or slashed for an interface name with
    /// a dot), if it can be read.
    pub fn get(&self, key: &str) -> Option<String> {
        let roots = self.roots.as_ref();
        self.read.get(key, || roots.and_then(|r| r.sysctl(key)))
    }

    /// Whether `key` has `value`.
    pub fn is(&self, key: &str, value: &str) -> bool {
        self.get(key).as_deref() == Some(value)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Sets `key` (for tests and captured hosts).
    pub fn insert(&mut self, key: String, value: String) {
        self.read.insert(key, value);
    }
}
