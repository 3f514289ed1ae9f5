//! A command as a value: one of the system tools nsnet drives and its argument
//! vector. Nothing here runs anything; `Display` renders the command as a shell
//! line, and that one rendering serves the dry-run script, the log and errors.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The programs nsnet runs. Each names the Debian package that provides it, so
/// that a missing tool produces an error that says how to get it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tool {
    Ip,
    /// `iptables` itself: the rule cache lists one chain with it (`-S`).
    Iptables,
    Ip6tables,
    IptablesRestore,
    IptablesSave,
    IptablesLegacySave,
    IptablesNftSave,
    Ip6tablesRestore,
    Ip6tablesSave,
    Ip6tablesLegacySave,
    Ip6tablesNftSave,
    Modprobe,
    Nft,
    Sysctl,
    /// Files nsnet writes for namespaces (/etc/netns/NS/resolv.conf).
    Mkdir,
    Rmdir,
    Tee,
    Rm,
}

impl Tool {
    /// The program name, looked up in the trusted system directories.
    pub fn program(self) -> &'static str {
        match self {
            Tool::Ip => "ip",
            Tool::Iptables => "iptables",
            Tool::Ip6tables => "ip6tables",
            Tool::IptablesRestore => "iptables-restore",
            Tool::IptablesSave => "iptables-save",
            Tool::IptablesLegacySave => "iptables-legacy-save",
            Tool::IptablesNftSave => "iptables-nft-save",
            Tool::Ip6tablesRestore => "ip6tables-restore",
            Tool::Ip6tablesSave => "ip6tables-save",
            Tool::Ip6tablesLegacySave => "ip6tables-legacy-save",
            Tool::Ip6tablesNftSave => "ip6tables-nft-save",
            Tool::Modprobe => "modprobe",
            Tool::Nft => "nft",
            Tool::Sysctl => "sysctl",
            Tool::Mkdir => "mkdir",
            Tool::Rmdir => "rmdir",
            Tool::Tee => "tee",
            Tool::Rm => "rm",
        }
    }

    /// The Debian/Ubuntu package that ships the program.
    pub fn package(self) -> &'static str {
        match self {
            Tool::Ip => "iproute2",
            Tool::Iptables | Tool::Ip6tables => "iptables",
            Tool::IptablesRestore | Tool::IptablesSave => "iptables",
            Tool::IptablesLegacySave | Tool::IptablesNftSave => "iptables",
            Tool::Ip6tablesRestore | Tool::Ip6tablesSave => "iptables",
            Tool::Ip6tablesLegacySave | Tool::Ip6tablesNftSave => "iptables",
            Tool::Modprobe => "kmod",
            Tool::Nft => "nftables",
            Tool::Sysctl => "procps",
            Tool::Mkdir | Tool::Rmdir | Tool::Tee | Tool::Rm => "coreutils",
        }
    }
}

/// A program, its arguments and what it reads on stdin, never passed
/// through a shell.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cmd {
    pub tool: Tool,
    pub args: Vec<String>,
    /// Fed to the program's standard input (an `iptables-restore` batch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<String>,
}

impl Cmd {
    pub fn new<I, S>(tool: Tool, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Cmd {
            tool,
            args: args.into_iter().map(Into::into).collect(),
            stdin: None,
        }
    }

    /// `iptables-restore --noflush -w` (or `ip6tables-restore`, as `tool`
    /// says) fed `batch`: the rules it holds are applied together or not at
    /// all, and nothing else is flushed.
    pub fn restore(tool: Tool, batch: String) -> Cmd {
        Cmd {
            stdin: Some(batch),
            ..Cmd::new(tool, ["--noflush", "-w"])
        }
    }

    /// `sysctl -w KEY=VALUE`.
    pub fn sysctl(key: &str, value: &str) -> Cmd {
        Cmd::new(Tool::Sysctl, ["-w".to_string(), format!("{key}={value}")])
    }

    /// `ip ARGS…` in the host's namespace.
    pub fn ip<I, S>(args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Cmd::new(Tool::Ip, args)
    }

    /// `ip -n NS ARGS…`, or plain `ip ARGS…` when `ns` is `None` (the host).
    pub fn ip_in<I, S>(ns: Option<&str>, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut cmd = Cmd::ip(
            ns.map(|n| ["-n".to_string(), n.to_string()])
                .into_iter()
                .flatten(),
        );
        cmd.args.extend(args.into_iter().map(Into::into));
        cmd
    }
}

impl Cmd {
    /// The namespace an `ip -n NS …` command runs in; `None` for the host.
    pub fn netns(&self) -> Option<&str> {
        match (self.tool, self.args.as_slice()) {
            (Tool::Ip, [flag, ns, ..]) if flag == "-n" => Some(ns),
            _ => None,
        }
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.tool.program())?;
        for arg in &self.args {
            write!(f, " {}", quote(arg))?;
        }
        if let Some(stdin) = &self.stdin {
            // A here-document: the script stays runnable as printed.
            write!(f, " <<'EOF'\n{}EOF", stdin)?;
        }
        Ok(())
    }
}

/// Quotes `arg` for a POSIX shell when it holds anything but plainly safe
/// characters, so that the printed line runs as exactly this argument vector.
pub fn quote(arg: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_-./:=@%+,".contains(c);
    if !arg.is_empty() && arg.chars().all(safe) {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_arguments_print_bare() {
        let cmd = Cmd::ip_in(Some("red"), ["addr", "add", "10.0.0.2/24", "dev", "eth0"]);
        assert_eq!(cmd.to_string(), "ip -n red addr add 10.0.0.2/24 dev eth0");
    }

    #[test]
    fn awkward_arguments_are_quoted_for_the_shell() {
        let cmd = Cmd::ip(["a b", "it's", "", "$x"]);
        assert_eq!(cmd.to_string(), r"ip 'a b' 'it'\''s' '' '$x'");
    }

    #[test]
    fn standard_input_prints_as_a_here_document() {
        let cmd = Cmd::restore(Tool::IptablesRestore, "*nat\nCOMMIT\n".into());
        assert_eq!(
            cmd.to_string(),
            "iptables-restore --noflush -w <<'EOF'\n*nat\nCOMMIT\nEOF"
        );
    }

    #[test]
    fn host_namespace_adds_no_flag() {
        assert_eq!(Cmd::ip_in(None, ["link"]).to_string(), "ip link");
    }
}
