//! What nsnet reads from the filesystem rather than from a tool: the named
//! namespaces (the entries of /run/netns), the identity of a namespace (the
//! device and inode of its nsfs file) behind a name, a process or nsnet
//! itself, which processes run in which named namespace (/proc/PID/ns/net),
//! and sysctl values (/proc/sys). Every read goes through `Roots`, so tests
//! point it at a temporary directory; nothing here parses a tool's output.

use crate::model::state::NsStamp;
use anyhow::{Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Where `ip netns` keeps its named namespaces.
pub const NETNS_DIR: &str = "/run/netns";

/// Where `ip netns exec NS` finds files to show as the namespace's /etc.
pub const ETC_NETNS: &str = "/etc/netns";

/// A namespace's identity: the device and inode of its nsfs file. Two paths
/// name the same namespace exactly when their identities are equal.
pub type NsId = (u64, u64);

/// What /etc/netns holds (see `Roots::etc_netns`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EtcNetns {
    pub exists: bool,
    /// Directory name (a namespace's) -> its `resolv.conf`, if any.
    pub dirs: std::collections::BTreeMap<String, Option<String>>,
}

/// Where the kernel's files are: /run/netns, /proc and /etc/netns on a
/// real host.
#[derive(Clone, Debug)]
pub struct Roots {
    /// The named namespaces, one file each.
    pub netns: PathBuf,
    /// The process filesystem: `PID/ns/net`, `self/ns/net`, `sys/…`.
    pub proc: PathBuf,
    /// Per-namespace files `ip netns exec` shows as /etc (`NS/resolv.conf`).
    pub etc_netns: PathBuf,
    /// Whether interfaces, routes and rules are read from the kernel over
    /// netlink (a real host) or by `ip -j` through the runner (a captured one).
    pub kernel: bool,
}

impl Roots {
    /// The real host's.
    pub fn system() -> Roots {
        Roots {
            netns: PathBuf::from(NETNS_DIR),
            proc: PathBuf::from("/proc"),
            etc_netns: PathBuf::from(ETC_NETNS),
            // `NSNET_READ=ip`: read through `ip -j` as before netlink (to
            // compare the two, and a way out should netlink misread a host).
            kernel: std::env::var("NSNET_READ").as_deref() != Ok("ip"),
        }
    }

    /// The names of the named namespaces; none when the directory is absent.
    pub fn namespaces(&self) -> Result<BTreeSet<String>> {
        let dir = &self.netns;
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
            Err(e) => return Err(e).with_context(|| format!("cannot list `{}`", dir.display())),
        };
        Ok(entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect())
    }

    /// What /etc/netns holds: whether it exists, and each directory in it
    /// with the contents of its `resolv.conf`, if it has one.
    pub fn etc_netns(&self) -> EtcNetns {
        let Ok(entries) = std::fs::read_dir(&self.etc_netns) else {
            return EtcNetns::default();
        };
        let dirs = entries
            .filter_map(|e| {
                let e = e.ok()?;
                let name = e.file_name().into_string().ok()?;
                let resolv = std::fs::read_to_string(e.path().join("resolv.conf")).ok();
                Some((name, resolv))
            })
            .collect();
        EtcNetns { exists: true, dirs }
    }

    /// The identity of the named namespace `name`.
    pub fn netns_of_name(&self, name: &str) -> Option<NsId> {
        identity(&self.netns.join(name)).ok()
    }

    /// The stamp of the named namespace `name`: its identity and the time
    /// its nsfs inode was made (see `NsStamp`).
    pub fn stamp_of_name(&self, name: &str) -> Option<NsStamp> {
        let meta = std::fs::metadata(self.netns.join(name)).ok()?;
        let born = meta.ctime().checked_mul(1_000_000_000)? + meta.ctime_nsec();
        Some(NsStamp {
            dev: meta.dev(),
            ino: meta.ino(),
            born,
        })
    }

    /// The identity of the network namespace of process `pid`; an error when
    /// there is no such process (any more).
    pub fn netns_of_pid(&self, pid: u32) -> std::io::Result<NsId> {
        identity(&self.proc.join(pid.to_string()).join("ns/net"))
    }

    /// The identity of the namespace nsnet itself runs in: the host's.
    pub fn own_netns(&self) -> Option<NsId> {
        identity(&self.proc.join("self/ns/net")).ok()
    }

    /// Of `pids`, those with no process any more.
    pub fn exited(&self, pids: impl IntoIterator<Item = u32>) -> BTreeSet<u32> {
        let gone = |pid: &u32| self.netns_of_pid(*pid).is_err();
        pids.into_iter().filter(gone).collect()
    }

    /// For each of `names`, the processes whose network namespace it is (what
    /// `ip netns pids` reports), from one pass over /proc.
    pub fn pids_by_namespace(&self, names: &BTreeSet<String>) -> BTreeMap<String, Vec<u32>> {
        let by_identity: BTreeMap<NsId, &String> = names
            .iter()
            .filter_map(|n| Some((self.netns_of_name(n)?, n)))
            .collect();
        let mut pids: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        let Ok(proc) = std::fs::read_dir(&self.proc) else {
            return pids;
        };
        let numbers = proc
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok());
        for pid in numbers {
            if let Some(name) = self
                .netns_of_pid(pid)
                .ok()
                .and_then(|id| by_identity.get(&id))
            {
                pids.entry((*name).clone()).or_default().push(pid);
            }
        }
        for list in pids.values_mut() {
            list.sort_unstable();
        }
        pids
    }

    /// Whether the kernel has IPv6: /proc/sys/net/ipv6 is missing on a host
    /// booted with `ipv6.disable=1`.
    pub fn ipv6(&self) -> bool {
        self.proc.join("sys/net/ipv6/conf").is_dir()
    }

    /// The value of sysctl `key` (`net.ipv4.ip_forward`), trimmed.
    pub fn sysctl(&self, key: &str) -> Option<String> {
        let relative = if key.contains('/') {
            key.to_string()
        } else {
            key.replace('.', "/")
        };
        let text = std::fs::read_to_string(self.proc.join("sys").join(relative)).ok()?;
        Some(text.trim().to_string())
    }
}

fn identity(path: &Path) -> std::io::Result<NsId> {
    std::fs::metadata(path).map(|m| (m.dev(), m.ino()))
}

/// The identity of the network namespace of process `pid`.
pub fn netns_of_pid(pid: u32) -> std::io::Result<NsId> {
    Roots::system().netns_of_pid(pid)
}

/// The identity of the namespace nsnet itself runs in: the host's.
pub fn own_netns() -> Option<NsId> {
    Roots::system().own_netns()
}

/// The identity of the named namespace `name`.
pub fn netns_of_name(name: &str) -> Option<NsId> {
    Roots::system().netns_of_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// A host with namespaces `red` and `blue`; process 42 runs in `red`
    /// (its ns/net is a hard link to red's file), 7 in another namespace.
    fn fake() -> (tempfile::TempDir, Roots) {
        let dir = tempfile::tempdir().unwrap();
        let roots = Roots {
            netns: dir.path().join("netns"),
            proc: dir.path().join("proc"),
            etc_netns: dir.path().join("etc-netns"),
            kernel: false,
        };
        fs::create_dir_all(&roots.netns).unwrap();
        for name in ["red", "blue"] {
            fs::write(roots.netns.join(name), "").unwrap();
        }
        for pid in ["42", "7", "self"] {
            fs::create_dir_all(roots.proc.join(pid).join("ns")).unwrap();
        }
        fs::hard_link(roots.netns.join("red"), roots.proc.join("42/ns/net")).unwrap();
        fs::write(roots.proc.join("7/ns/net"), "").unwrap();
        fs::write(roots.proc.join("self/ns/net"), "").unwrap();
        fs::create_dir_all(roots.proc.join("sys/net/ipv4/conf/br-x")).unwrap();
        fs::write(roots.proc.join("sys/net/ipv4/ip_forward"), "1\n").unwrap();
        fs::write(
            roots.proc.join("sys/net/ipv4/conf/br-x/route_localnet"),
            "0\n",
        )
        .unwrap();
        (dir, roots)
    }

    #[test]
    fn names_identities_and_processes() {
        let (_dir, roots) = fake();
        let names = roots.namespaces().unwrap();
        assert_eq!(names, BTreeSet::from(["blue".into(), "red".into()]));
        assert_eq!(roots.netns_of_pid(42).ok(), roots.netns_of_name("red"));
        assert_ne!(roots.netns_of_pid(7).ok(), roots.netns_of_name("red"));
        assert!(roots.netns_of_name("green").is_none());
        assert!(roots.own_netns().is_some());
        let pids = roots.pids_by_namespace(&names);
        assert_eq!(pids, BTreeMap::from([("red".into(), vec![42])]));
        assert_eq!(roots.exited([42, 7, 99]), BTreeSet::from([99]));
    }

    #[test]
    fn sysctls_by_dotted_key_or_path() {
        let (_dir, roots) = fake();
        assert_eq!(roots.sysctl("net.ipv4.ip_forward").as_deref(), Some("1"));
        // An interface name may hold a dot: such keys are given as paths.
        let key = "net/ipv4/conf/br-x/route_localnet";
        assert_eq!(roots.sysctl(key).as_deref(), Some("0"));
        assert_eq!(roots.sysctl("net.ipv4.nothing"), None);
    }

    #[test]
    fn no_netns_directory_is_no_namespace() {
        let roots = Roots {
            netns: PathBuf::from("/nonexistent/netns"),
            proc: PathBuf::from("/nonexistent/proc"),
            etc_netns: PathBuf::from("/nonexistent/etc-netns"),
            kernel: false,
        };
        assert!(roots.namespaces().unwrap().is_empty());
        assert!(
            roots
                .pids_by_namespace(&BTreeSet::from(["red".into()]))
                .is_empty()
        );
    }
}
