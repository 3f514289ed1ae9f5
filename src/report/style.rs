//! What a terminal gets and a pipe does not: colour (anstream decides for
//! each stream: a terminal, no non-empty NO_COLOR, TERM not `dumb`) and a
//! progress line for long plans.

use anstyle::{AnsiColor, Style};
use std::io::Write;

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

/// Whether colour may be written to stdout (`stdout`) or stderr: anstream's
/// choice for that stream (a terminal, no non-empty NO_COLOR, TERM not
/// `dumb`; CLICOLOR and CLICOLOR_FORCE respected). anstream allows colour
/// under `CI` whatever TERM says; a terminal that says it is dumb still gets
/// none. The one place that decides, for nsnet's own lines and the log alike.
pub fn colour(stdout: bool) -> bool {
    let choice = match stdout {
        true => anstream::AutoStream::choice(&std::io::stdout()),
        false => anstream::AutoStream::choice(&std::io::stderr()),
    };
    choice != anstream::ColorChoice::Never && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
}

/// `text` in `tone`, if `on`.
pub fn paint(text: &str, tone: Tone, on: bool) -> String {
    if !on {
        return text.to_string();
    }
    let style = match tone {
        Tone::Bad => Style::new().bold().fg_color(Some(AnsiColor::Red.into())),
        Tone::Warn => Style::new().fg_color(Some(AnsiColor::Yellow.into())),
        Tone::Good => Style::new().fg_color(Some(AnsiColor::Green.into())),
    };
    format!("{style}{text}{style:#}")
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
    fn paint_wraps_only_when_on() {
        assert_eq!(
            paint("nsnet:", Tone::Bad, true),
            "\x1b[1m\x1b[31mnsnet:\x1b[0m"
        );
        assert_eq!(paint("FAIL", Tone::Bad, false), "FAIL");
        assert_eq!(paint("ok", Tone::Good, true), "\x1b[32mok\x1b[0m");
    }
}
