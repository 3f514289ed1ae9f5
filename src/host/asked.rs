//! What a command asks of the host one key at a time (a sysctl, a
//! namespace's stamp): each key read the first time it is asked for and
//! remembered, as found or as absent, for the rest of the command, so that
//! a command reads what it touches, not every key the host holds.

use std::cell::RefCell;
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
pub struct Asked<V> {
    /// Keys read or set: `None`, it could not be read (there is none).
    read: RefCell<BTreeMap<String, Option<V>>>,
}

impl<V> Default for Asked<V> {
    fn default() -> Asked<V> {
        Asked {
            read: RefCell::default(),
        }
    }
}

impl<V: Clone> Asked<V> {
    /// The value of `key`: remembered, or read with `read` and remembered.
    pub fn get(&self, key: &str, read: impl FnOnce() -> Option<V>) -> Option<V> {
        if let Some(known) = self.read.borrow().get(key) {
            return known.clone();
        }
        let value = read();
        self.read
            .borrow_mut()
            .insert(key.to_string(), value.clone());
        value
    }

    /// Sets `key` (for tests and captured hosts).
    pub fn insert(&mut self, key: String, value: V) {
        self.read.get_mut().insert(key, Some(value));
    }
}
