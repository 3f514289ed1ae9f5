//! What a person at a terminal sees and a script reading a pipe does not:
//! colour and a progress line. `script` gives nsnet a real terminal.

mod common;

/// Runs `command` in the throwaway host on a pseudo-terminal (stdout and
/// stderr both go to it) that says what it is, as a terminal emulator does
/// (TERM=xterm, and no CI variable to count on); `env` may override that.
/// Returns everything written there.
fn on_terminal(sb: &common::Sandbox, env: &str, command: &str) -> String {
    let out = sb.sh(&format!(
        "env -u CI TERM=xterm {env} script -qec '{} {command}' /dev/null",
        env!("CARGO_BIN_EXE_nsnet")
    ));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn colour_on_a_terminal_and_never_with_no_color_or_in_a_pipe() {
    let sb = sandbox!();
    let doctor = on_terminal(&sb, "", "doctor");
    assert!(doctor.contains("\x1b[32mok  \x1b[0m"), "{doctor:?}");
    let error = on_terminal(&sb, "", "bridge up bad/name");
    assert!(
        error.starts_with("\x1b[1m\x1b[31mnsnet:\x1b[0m "),
        "{error:?}"
    );
    for plain in [
        on_terminal(&sb, "NO_COLOR=1", "doctor"),
        on_terminal(&sb, "TERM=dumb", "doctor"),
        sb.ok(&format!("{} doctor | cat", env!("CARGO_BIN_EXE_nsnet"))),
    ] {
        assert!(
            plain.contains("ok    tools:") && !plain.contains('\x1b'),
            "{plain:?}"
        );
    }
}

#[test]
fn a_long_plan_shows_its_progress_on_a_terminal_only() {
    let sb = sandbox!();
    // Sixty namespaces, under a new prefix for each bridge.
    let names = |p: &str| -> String {
        let all: Vec<String> = (1..=60).map(|i| format!("{p}{i}")).collect();
        all.join(" ")
    };
    let shown = on_terminal(&sb, "", &format!("-q bridge up {} --bridge b1", names("a")));
    assert!(shown.is_empty(), "-q shows nothing: {shown:?}");
    let shown = on_terminal(
        &sb,
        "",
        &format!("bridge up {} --bridge b2 >/dev/null", names("b")),
    );
    assert!(shown.contains("\r\x1b[2Knsnet: step "), "{shown:?}");
    assert!(
        shown.ends_with("\r\x1b[2K"),
        "the line is cleared at the end: {shown:?}"
    );
    let piped = sb.sh(&format!(
        "{} bridge up {} --bridge b3 2>&1 >/dev/null | cat",
        env!("CARGO_BIN_EXE_nsnet"),
        names("c")
    ));
    assert!(piped.status.success());
    // Notes may come (the new bridge is isolated from the others), but no
    // progress line: nothing that redraws.
    let piped = String::from_utf8_lossy(&piped.stdout);
    assert!(
        !piped.contains('\r') && !piped.contains("step"),
        "{piped:?}"
    );
}
