//! The sysctls a command asks about, each read from /proc/sys the first
//! time it is asked (and remembered for the rest of the command), so that
//! a command reads the few keys it touches, not one per interface.

use super::identity::Roots;
use std::cell::RefCell;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default)]
pub struct Sysctls {
    /// Where /proc is; `None`: only the keys set with `insert` exist.
    roots: Option<Roots>,
    /// Keys read or set: `None`, it cannot be read (no such interface).
    read: RefCell<BTreeMap<String, Option<String>>>,
}

impl From<BTreeMap<String, String>> for Sysctls {
    /// Just these keys (for tests and captured hosts).
    fn from(keys: BTreeMap<String, String>) -> Sysctls {
        let read = keys.into_iter().map(|(k, v)| (k, Some(v))).collect();
        Sysctls {
            roots: None,
            read: RefCell::new(read),
        }
    }
}

impl Sysctls {
    /// Keys read under `roots`.
    pub fn under(roots: &Roots) -> Sysctls {
        Sysctls {
            roots: Some(roots.clone()),
            read: RefCell::default(),
        }
    }

    /// The value of `key` (dotted, or slashed for an interface name with
    /// a dot), if it can be read.
    pub fn get(&self, key: &str) -> Option<String> {
        if let Some(known) = self.read.borrow().get(key) {
            return known.clone();
        }
        let value = self.roots.as_ref().and_then(|r| r.sysctl(key));
        self.read
            .borrow_mut()
            .insert(key.to_string(), value.clone());
        value
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
        self.read.get_mut().insert(key, Some(value));
    }
}
