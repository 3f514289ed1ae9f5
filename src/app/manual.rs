//! What nsnet says about itself to other programs: shell completion scripts
//! (clap_complete) and man pages (clap_mangen), both drawn from the clap
//! command tree, so they cannot drift from the real options.

use crate::cli::Cli;
use crate::model::validate::InputError;
use anyhow::{Context, Result};
use clap::CommandFactory;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes the completion script for `shell`.
pub fn completions(shell: clap_complete::Shell, out: &mut dyn Write) -> Result<()> {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "nsnet", out);
    Ok(())
}

/// The man page of the command at `path` (`["bridge", "up"]`; empty for
/// nsnet's own page), as roff.
pub fn man_page(path: &[String]) -> Result<Vec<u8>> {
    let mut cmd = Cli::command();
    cmd.build();
    let mut name = "nsnet".to_string();
    let mut page = &cmd;
    for word in path {
        page = page
            .get_subcommands()
            .find(|s| s.get_name() == word && s.get_name() != "help")
            .ok_or_else(|| {
                let known: Vec<&str> = page
                    .get_subcommands()
                    .map(|s| s.get_name())
                    .filter(|n| *n != "help")
                    .collect();
                InputError::UnknownPage {
                    page: format!("{} {word}", name.replace('-', " ")),
                    known: known.join(", "),
                }
            })?;
        name = format!("{name}-{word}");
    }
    let mut text = Vec::new();
    clap_mangen::Man::new(page.clone().name(name)).render(&mut text)?;
    Ok(text)
}

/// Writes `nsnet.1` and a page for every command and subcommand
/// (`nsnet-bridge.1`, `nsnet-bridge-up.1`, ...) into `dir`; returns their paths.
pub fn man_pages(dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    let mut written = Vec::new();
    let mut cmd = Cli::command();
    cmd.build();
    write_tree(&cmd, "nsnet", dir, &mut written)?;
    Ok(written)
}

fn write_tree(
    cmd: &clap::Command,
    name: &str,
    dir: &Path,
    written: &mut Vec<PathBuf>,
) -> Result<()> {
    let page = cmd.clone().name(name.to_string());
    let mut text = Vec::new();
    clap_mangen::Man::new(page).render(&mut text)?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, text).with_context(|| format!("cannot write `{}`", path.display()))?;
    written.push(path);
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        write_tree(sub, &format!("{name}-{}", sub.get_name()), dir, written)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_know_every_command() {
        let mut out = Vec::new();
        completions(clap_complete::Shell::Bash, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        for word in [
            "bridge",
            "publish",
            "--publish",
            "--dry-run",
            "lab",
            "completions",
        ] {
            assert!(
                text.contains(word),
                "{word} missing from the bash completions"
            );
        }
    }

    #[test]
    fn one_page_by_its_command_path() {
        let page = String::from_utf8(man_page(&["bridge".into(), "up".into()]).unwrap()).unwrap();
        assert!(page.contains(".TH nsnet-bridge-up 1"), "{page}");
        assert!(page.contains("\\-\\-publish"), "{page}");
        let top = String::from_utf8(man_page(&[]).unwrap()).unwrap();
        assert!(top.contains(".TH nsnet "), "{top}");
        let err = man_page(&["bridge".into(), "sideways".into()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`nsnet bridge sideways` has no man page: its commands are up, down"
        );
    }

    #[test]
    fn man_pages_cover_every_subcommand() {
        let dir = std::env::temp_dir().join(format!("nsnet-man-{}", std::process::id()));
        let pages = man_pages(&dir).unwrap();
        let names: Vec<String> = pages
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        for name in [
            "nsnet.1",
            "nsnet-bridge-up.1",
            "nsnet-publish-add.1",
            "nsnet-lab.1",
        ] {
            assert!(names.iter().any(|n| n == name), "{name} not in {names:?}");
        }
        let page = std::fs::read_to_string(dir.join("nsnet-bridge-up.1")).unwrap();
        assert!(page.starts_with(".ie") || page.contains(".TH"), "{page}");
        assert!(page.contains("\\-\\-publish"), "options are documented");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
