//! Interrupts: SIGINT, SIGTERM and SIGHUP do not kill nsnet mid-plan. They
//! are noted, the executor stops before its next step and rolls back, and
//! nsnet exits with 128 + the signal's number. The tools nsnet runs are in
//! process groups of their own, so a Ctrl-C at the terminal reaches nsnet
//! alone and never kills an undo half-way.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The signal that arrived, if any (0: none).
#[derive(Clone, Default)]
pub struct Interrupts(Arc<AtomicUsize>);

impl Interrupts {
    /// Catches SIGINT, SIGTERM and SIGHUP from now on.
    pub fn catch() -> std::io::Result<Interrupts> {
        let flag = Interrupts::default();
        for signal in [
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGHUP,
        ] {
            signal_hook::flag::register_usize(signal, Arc::clone(&flag.0), signal as usize)?;
        }
        Ok(flag)
    }

    /// The signal received so far, if any.
    pub fn received(&self) -> Option<i32> {
        match self.0.load(Ordering::SeqCst) {
            0 => None,
            n => Some(n as i32),
        }
    }
}

/// The signal's usual name, for messages.
pub fn name(signal: i32) -> &'static str {
    match signal {
        signal_hook::consts::SIGINT => "SIGINT",
        signal_hook::consts::SIGTERM => "SIGTERM",
        signal_hook::consts::SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}
