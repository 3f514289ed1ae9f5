//! `nsnet lab`: a shell, or one command, in a throwaway host: new network and
//! mount namespaces with an empty /run (so no named namespace, no nsnet
//! record, no lock of the real host is seen), a sysfs of their own and
//! loopback up. The same isolation the integration tests use. As root it is
//! two namespaces; as a user it adds a user namespace where the user is root,
//! if the kernel allows unprivileged user namespaces. Everything made inside
//! is gone when the last process inside exits.

use crate::exec::runner::TRUSTED_PATH;
use anyhow::{Context, Result, bail};
use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

/// Runs inside the new namespaces, as `sh -c SETUP nsnet-lab COMMAND...`.
const SETUP: &str = r#"set -e
mount -t tmpfs -o mode=0755 nsnet-lab /run
mkdir -p /run/netns /run/nsnet
mount -t sysfs nsnet-lab /sys 2>/dev/null || true
ip link set lo up
export NSNET_LAB=1 PATH="$NSNET_LAB_BIN:$PATH"
exec "$@"
"#;

/// The words of the `unshare` call: as root, network and mount namespaces;
/// as a user, a user namespace too, mapping the user to root inside.
pub fn unshare_args(root: bool) -> Vec<&'static str> {
    let mut args = vec!["--net", "--mount", "--propagation", "private"];
    if !root {
        args.extend(["--user", "--map-root-user"]);
    }
    args
}

/// The lab as a shell line, for `--dry-run` and `--explain`.
pub fn script(root: bool, command: &[OsString], explain: bool) -> String {
    let mut words: Vec<String> = vec!["unshare".into()];
    words.extend(unshare_args(root).iter().map(|w| w.to_string()));
    words.extend(["--", "/bin/sh", "-c", SETUP, "nsnet-lab"].map(String::from));
    words.extend(command.iter().map(|w| w.to_string_lossy().into_owned()));
    let line: Vec<String> = words.iter().map(|w| crate::plan::cmd::quote(w)).collect();
    let mut out = String::new();
    if explain {
        out.push_str(
            "# New network and mount namespaces (and, for a user, a user namespace where the\n\
             # user is root): a host of its own with only loopback. An empty tmpfs over /run hides\n\
             # the real host's named namespaces and nsnet's record; all goes when the shell exits.\n",
        );
    }
    out.push_str(&line.join(" "));
    out.push('\n');
    out
}

/// Replaces nsnet with the lab; returns only if it cannot start. With
/// `dry_run` or `explain`, prints what it would run instead.
pub fn run(command: &[OsString], quiet: bool, dry_run: bool, explain: bool) -> Result<()> {
    if dry_run || explain {
        print!(
            "{}",
            script(rustix::process::geteuid().is_root(), command, explain)
        );
        return Ok(());
    }
    let unshare = which::which_in("unshare", Some(TRUSTED_PATH), "/").map_err(|_| {
        anyhow::anyhow!(
            "`unshare` is not installed (install the `util-linux` package, e.g. `apt-get install util-linux`)"
        )
    })?;
    let root = rustix::process::geteuid().is_root();
    if !root && !user_namespaces_allowed() {
        bail!(
            "nsnet lab needs root here: this host does not let users create user namespaces \
             (run it with sudo)"
        );
    }
    let exe = std::env::current_exe().context("cannot find nsnet's own path")?;
    let bin = exe.parent().unwrap_or(Path::new("/usr/bin"));
    let mut words: Vec<OsString> = command.to_vec();
    if words.is_empty() {
        let shell = std::env::var_os("SHELL").unwrap_or_else(|| "/bin/sh".into());
        words.push(shell);
        if !quiet {
            eprintln!(
                "nsnet lab: a throwaway host. Nothing done here reaches this machine's network; \
                 exit the shell and it is gone."
            );
        }
    }
    let err = Command::new(unshare)
        .args(unshare_args(root))
        .args(["--", "/bin/sh", "-c", SETUP, "nsnet-lab"])
        .args(&words)
        .env("NSNET_LAB_BIN", bin)
        .env("PS1", "(nsnet lab) # ")
        .exec();
    bail!("cannot start the lab with `unshare`: {err}")
}

/// Whether an unprivileged user may create a user namespace with the powers
/// the lab needs: Debian's switch, where it exists, a non-zero limit, and no
/// AppArmor restriction (Ubuntu 24.04 strips such namespaces of capabilities).
fn user_namespaces_allowed() -> bool {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .ok()
            .map(|t| t.trim().to_string())
    };
    let switch = read("/proc/sys/kernel/unprivileged_userns_clone");
    let limit = read("/proc/sys/user/max_user_namespaces");
    let apparmor = read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns");
    switch.is_none_or(|s| s != "0")
        && limit.is_none_or(|l| l != "0")
        && apparmor.is_none_or(|a| a != "1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_gets_a_user_namespace_and_root_does_not() {
        assert_eq!(
            unshare_args(true),
            ["--net", "--mount", "--propagation", "private"]
        );
        assert!(unshare_args(false).ends_with(&["--user", "--map-root-user"]));
    }

    #[test]
    fn the_dry_run_is_a_runnable_shell_line() {
        let line = script(true, &["ip".into(), "link".into()], false);
        assert!(
            line.starts_with("unshare --net --mount --propagation private -- /bin/sh -c 'set -e\n"),
            "{line}"
        );
        assert!(line.ends_with("' nsnet-lab ip link\n"), "{line}");
    }
}
