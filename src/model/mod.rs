//! The types every stage shares: checked names (`validate`), port mappings
//! (`ports`), derived interface names (`names`), nsnet's record of what it
//! made (`state`), the rules, sysctls and hairpin settings a record implies
//! (`rules`), and its firewall policy and the user's chain (`policy`). Pure
//! data and pure functions: nothing here reads the host or runs a tool.

pub mod delta;
pub mod names;
pub mod policy;
pub mod ports;
pub mod rules;
pub mod state;
pub mod validate;
