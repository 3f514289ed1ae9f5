//! nsnet as a library. The folders are the stages of one pipeline, and
//! imports only point down this list (reports and host reading sit beside):
//!
//! ```text
//! cli       the clap tree: every value parsed into a checked type
//! app       one line per command: arguments -> builder input; apply (lock,
//!           observe, build, reconcile, print or execute); output, usage
//!           errors, man pages, the lab
//! builders  pure functions: (arguments, observed host, record) -> (plan, record)
//! model     the types the rest share: names, subnets, ports, the record,
//!           the rules and sysctls a record implies
//! plan      Cmd, Step, Plan: commands as values, printed as a shell script
//! exec      the executor and rollback, batching, settling, journal,
//!           signals, and the runners (the only code that starts a tool)
//! host      reading the live host: `ip -j`, `iptables-save`, /run/netns, /proc
//! report    status, graph, doctor, terminal style
//! ```
//!
//! The binary in `main.rs` only parses arguments, sets up logging and maps
//! errors to exit statuses; the fuzz targets in `fuzz/` call the parsers.

pub mod app;
pub mod builders;
pub mod cli;
pub mod exec;
pub mod host;
pub mod model;
pub mod plan;
pub mod report;
