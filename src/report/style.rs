//! What a terminal gets and a pipe does not: colour (off when the stream is
//! not a terminal, when NO_COLOR is set to anything, see no-color.org, or
//! when TERM is `dumb`) and a progress line for long plans.

use std::io::{IsTerminal, Write};

/// How a piece of text is shown.
#[derive(Clone, Copy)]
pub enum Tone {
    /// Something failed.
    Bad,
    /// Something to look at.
    Warn,
    /// All is well.
    Good,
}

/// Whether colour may be written to stdout (`stdout`) or stderr.
pub fn colour(stdout: bool) -> bool {
    let tty = if stdout {
        std::io::stdout().is_terminal()
    } else {
        std::io::stderr().is_terminal()
    };
    tty && allowed(std::env::var_os("NO_COLOR"), std::env::var_os("TERM"))
}

fn allowed(no_color: Option<std::ffi::OsString>, term: Option<std::ffi::OsString>) -> bool {
    no_color.is_none_or(|v| v.is_empty()) && term.is_none_or(|t| t != "dumb")
}

/// `text` in `tone`, if `on`.
pub fn paint(text: &str, tone: Tone, on: bool) -> String {
    if !on {
        return text.to_string();
    }
    let code = match tone {
        Tone::Bad => "1;31",
        Tone::Warn => "33",
        Tone::Good => "32",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// A line on stderr that counts the steps of a long plan as it runs, then
/// disappears. Only on a terminal, only for plans of `MIN_STEPS` or more.
pub struct Progress {
    total: usize,
    on: bool,
    drawn: bool,
}

/// Plans shorter than this finish before a progress line is worth reading.
pub const MIN_STEPS: usize = 50;

impl Progress {
    pub fn new(total: usize, quiet: bool) -> Progress {
        Progress {
            total,
            on: total >= MIN_STEPS && !quiet && colour(false),
            drawn: false,
        }
    }

    /// Shows that the first `done` steps are under way or done.
    pub fn show(&mut self, done: usize) {
        if self.on {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2Knsnet: step {done} of {}", self.total);
            let _ = err.flush();
            self.drawn = true;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if self.drawn {
            eprint!("\r\x1b[2K");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_color_and_a_dumb_terminal_turn_colour_off() {
        assert!(allowed(None, Some("xterm".into())));
        assert!(!allowed(Some("1".into()), Some("xterm".into())));
        // An empty NO_COLOR does not count (no-color.org).
        assert!(allowed(Some("".into()), None));
        assert!(!allowed(None, Some("dumb".into())));
    }

    #[test]
    fn paint_wraps_only_when_on() {
        assert_eq!(paint("FAIL", Tone::Bad, false), "FAIL");
        assert_eq!(paint("ok", Tone::Good, true), "\x1b[32mok\x1b[0m");
    }
}
