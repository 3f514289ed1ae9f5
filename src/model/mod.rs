//! The types every stage shares: checked names (`validate`), port mappings
//! (`ports`), derived interface names (`names`), nsnet's record of what it
//! made (`state`), and the rules, sysctls and hairpin settings a record
//! implies (`rules`). Pure data and pure functions: nothing here reads the
//! host or runs a tool.

pub mod names;
pub mod ports;
pub mod rules;
pub mod state;
pub mod validate;
