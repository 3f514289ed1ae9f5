//! The walk-throughs in docs/tutorials/ run as written, each in a throwaway
//! host: every `$ ` line of a `console` block must succeed and print what the
//! page shows under it (`...` shows output that varies). A line ending in
//! ` &` starts in the background. The page must leave the host as it found it.
//!
//! `NSNET_BLESS=1 cargo test --test tutorials` writes the outputs of the
//! current nsnet into the pages instead of comparing (review the diff).

mod common;

use common::{Sandbox, assert_same};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One `$ ` line and the output shown under it.
struct Shown {
    /// Index of the `$ ` line in the page.
    line: usize,
    command: String,
    output: Vec<String>,
}

/// The commands of the page's `console` blocks, in order.
fn commands(text: &str) -> Vec<Shown> {
    let mut found: Vec<Shown> = Vec::new();
    let mut in_console = false;
    for (i, line) in text.lines().enumerate() {
        if let Some(fence) = line.strip_prefix("```") {
            in_console = !in_console && fence.trim() == "console";
            continue;
        }
        if !in_console {
            continue;
        }
        match (line.strip_prefix("$ "), found.last_mut()) {
            (Some(command), _) => found.push(Shown {
                line: i,
                command: command.to_string(),
                output: Vec::new(),
            }),
            (None, Some(last)) => last.output.push(line.to_string()),
            (None, None) => panic!("line {}: output before any command", i + 1),
        }
    }
    found
}

fn run_page(path: &Path) {
    let mut sb = match Sandbox::new() {
        Some(sb) => sb,
        None => return,
    };
    let bless = std::env::var_os("NSNET_BLESS").is_some();
    let bin = Path::new(env!("CARGO_BIN_EXE_nsnet")).parent().unwrap();
    let text = std::fs::read_to_string(path).unwrap();
    let shown = commands(&text);
    assert!(!shown.is_empty(), "{} runs no command", path.display());
    let before = sb.snapshot();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    // Output to write back, by line, when blessing (last first).
    let mut blessed: Vec<(usize, usize, Vec<String>)> = Vec::new();
    for s in &shown {
        let env = format!("set -o pipefail; PATH={}:$PATH", bin.display());
        if let Some(background) = s.command.strip_suffix(" &") {
            sb.spawn(&format!("{env}; exec {background}"));
            continue;
        }
        let script = format!("{env}; {}", s.command);
        let varies = s.output == ["..."];
        // nsnet commands run once; others may wait on a server still starting.
        let retry = !s.command.starts_with("nsnet");
        let deadline = Instant::now() + Duration::from_secs(5);
        let out = loop {
            let out = sb.sh(&script);
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            let got: Vec<String> = stdout.lines().map(|l| l.trim_end().to_string()).collect();
            let same = varies || bless || got == s.output;
            if (out.status.success() && same) || !retry || Instant::now() > deadline {
                break (out, got, same);
            }
            // A server started in the background may not listen yet.
            std::thread::sleep(Duration::from_millis(100));
        };
        let (out, got, same) = out;
        assert!(
            out.status.success(),
            "{}:{}: `{}` failed: {}{}",
            path.display(),
            s.line + 1,
            s.command,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if bless && !varies {
            blessed.push((s.line + 1, s.output.len(), got));
        } else {
            assert!(
                same,
                "{}:{}: `{}` printed\n{}\nbut the page shows\n{}",
                path.display(),
                s.line + 1,
                s.command,
                got.join("\n"),
                s.output.join("\n")
            );
        }
    }
    sb.stop_background();
    assert_same(&before, &sb.snapshot());
    if bless {
        for (at, old, new) in blessed.into_iter().rev() {
            lines.splice(at..at + old, new);
        }
        std::fs::write(path, lines.join("\n") + "\n").unwrap();
    }
}

fn page(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs/tutorials")
        .join(name)
}

#[test]
fn every_page_is_tested() {
    let dir = page("");
    let mut pages: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".md") && n != "README.md")
        .collect();
    pages.sort();
    assert_eq!(
        pages,
        [
            "1-bridge-nat-publish.md",
            "2-cable-then-bridge.md",
            "3-container-namespaces.md",
            "4-diy-container-networking.md"
        ]
    );
}

#[test]
fn page_1_bridge_nat_publish() {
    run_page(&page("1-bridge-nat-publish.md"));
}

#[test]
fn page_2_cable_then_bridge() {
    run_page(&page("2-cable-then-bridge.md"));
}

#[test]
fn page_3_container_namespaces() {
    run_page(&page("3-container-namespaces.md"));
}

#[test]
fn page_4_diy_container_networking() {
    run_page(&page("4-diy-container-networking.md"));
}

#[test]
fn the_parser_reads_commands_and_their_output() {
    let text = "```sh\nip link\n```\n```console\n$ nsnet a\none\ntwo\n$ b &\n```\n";
    let found = commands(text);
    assert_eq!(found.len(), 2);
    assert_eq!(
        (found[0].command.as_str(), found[0].output.clone()),
        ("nsnet a", vec!["one".to_string(), "two".to_string()])
    );
    assert_eq!((found[1].command.as_str(), found[1].line), ("b &", 7));
}
