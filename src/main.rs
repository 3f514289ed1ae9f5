//! nsnet: builds container networks on a Linux host with `ip`, the way the
//! tutorials do by hand, as plans of steps that roll back on failure.
//!
//! main parses the command line, sets up logging, runs the command and turns
//! an error into one line on stderr and an exit status: 2 for bad input, 1
//! for a failure.

use clap::Parser;
use clap::error::ErrorKind;
use nsnet::app::usage;
use nsnet::model::validate;
use nsnet::report::style::{self, Tone};
use nsnet::{app, cli, exec};
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    if app::cni::invoked() {
        return app::cni::main();
    }
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage_error(err),
    };
    init_tracing(&cli.global);
    match app::run(cli) {
        Ok(code) => code,
        Err(err) => {
            let label = style::paint("nsnet:", Tone::Bad, style::colour(false));
            eprintln!("{label} {err:#}");
            let usage = err.chain().any(|e| e.is::<validate::InputError>());
            let signal =
                err.chain()
                    .find_map(|e| match e.downcast_ref::<exec::ExecError>()?.cause {
                        exec::Cause::Interrupted(signal) => Some(signal),
                        exec::Cause::Failed(_)
                        | exec::Cause::Unrecorded(_)
                        | exec::Cause::Declined => None,
                    });
            match signal {
                Some(signal) => ExitCode::from(128 + signal as u8),
                None => ExitCode::from(if usage { 2 } else { 1 }),
            }
        }
    }
}

/// Help and version go to stdout as clap prints them; a usage error becomes
/// one line on stderr and exit status 2.
fn usage_error(err: clap::Error) -> ExitCode {
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = err.print();
            return ExitCode::SUCCESS;
        }
        // `nsnet bridge` alone: that command's help, on stderr.
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = err.print();
            return ExitCode::from(2);
        }
        _ => {}
    }
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let label = style::paint("nsnet:", Tone::Bad, style::colour(false));
    eprintln!("{label} {}", usage::line(&err, &args));
    ExitCode::from(2)
}

fn init_tracing(g: &cli::Global) {
    let level = match (g.quiet, g.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, _) => "debug",
    };
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if g.verbose == 0 && !g.quiet => EnvFilter::new(spec),
        _ => EnvFilter::new(format!("nsnet={level}")),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(style::colour(false))
        .without_time()
        .with_target(false)
        .init();
}
