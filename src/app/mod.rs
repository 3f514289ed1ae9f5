//! The application layer: one line per command, from parsed arguments to the
//! function that runs it (`commands`), the pipeline that every change goes
//! through (`apply`), and what the user sees: results (`output`), usage
//! errors (`usage`), man pages and completions (`manual`), the lab (`lab`).

pub mod apply;
pub mod cni;
pub mod commands;
pub mod lab;
pub mod manual;
pub mod output;
pub mod usage;

use crate::cli::{BridgeCmd, Cli, Command, Global};
use crate::exec::runner::System;
use anyhow::Result;
use std::process::ExitCode;

/// What every command runs with: the global flags and the runner that
/// starts the real tools.
pub struct Ctx<'a> {
    pub global: &'a Global,
    pub runner: System,
}

/// Runs `cli`; the exit code is nsnet's own or, for `netns exec` and
/// `lab -- CMD`, the command's.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let g = &cli.global;
    let cx = &mut Ctx {
        global: g,
        runner: System::cached(),
    };
    match &cli.command {
        Command::Netns(cmd) => commands::netns(cx, cmd),
        Command::Veth(cmd) => commands::veth(cx, cmd),
        Command::Bridge(BridgeCmd::Up(args)) => commands::bridge_up(cx, args),
        Command::Bridge(BridgeCmd::Down(args)) => commands::bridge_down(cx, args),
        Command::Nat(cmd) => commands::nat(cx, cmd),
        Command::Route(cmd) => commands::route(cx, cmd),
        Command::Publish(cmd) => commands::publish(cx, cmd),
        Command::Firewall(cmd) => commands::firewall(cx, cmd),
        Command::Status => commands::status(cx),
        Command::Graph { format } => commands::graph(cx, *format),
        Command::Doctor => commands::doctor(cx),
        Command::Recover => commands::recover(cx),
        Command::Down { force } => commands::down(cx, *force),
        Command::Forget { names, force } => commands::forget(cx, names, *force),
        Command::Lab { command } => lab::run(command, g.quiet, g.dry_run, g.explain).map(done),
        Command::Completions { shell } => {
            manual::completions(*shell, &mut std::io::stdout()).map(done)
        }
        Command::Man { command, dir } => commands::man(cx, command, dir.as_deref()),
    }
}

/// The exit code of a command that has nothing to report but success.
fn done(_: ()) -> ExitCode {
    ExitCode::SUCCESS
}
