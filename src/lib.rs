//! nsnet as a library: the command line (`cli`), the builders that turn it
//! into plans (`build`), the executor and its runners (`exec`, `runner`),
//! and what reads the host (`host`, `live`, `status`, `doctor`). The binary
//! in `main.rs` only parses arguments, sets up logging and maps errors to
//! exit statuses; the fuzz targets in `fuzz/` call the parsers directly.

pub mod app;
pub mod batch;
pub mod build;
pub mod cli;
pub mod cmd;
pub mod doctor;
pub mod exec;
pub mod host;
pub mod journal;
pub mod lab;
pub mod live;
pub mod manual;
pub mod names;
pub mod output;
pub mod plan;
pub mod ports;
pub mod render;
pub mod runner;
pub mod signals;
pub mod state;
pub mod status;
pub mod style;
pub mod usage;
pub mod validate;
