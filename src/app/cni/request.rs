//! What a runtime hands a CNI plugin, checked at the boundary: the CNI_*
//! environment and the network configuration on stdin become a `Request`
//! of real types, or an error with the spec's code. Nothing past here sees
//! raw strings.

use super::reply::{Code, Failure};
use crate::model::ports::{Mapping, Proto};
use crate::model::validate::{self, IfName, NsName};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The spec versions nsnet speaks, oldest first.
pub const VERSIONS: [&str; 5] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// A CNI operation (`CNI_COMMAND`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Add,
    Del,
    Check,
    Version,
    Gc,
    Status,
}

impl Command {
    pub fn parse(s: &str) -> Result<Command, Failure> {
        Ok(match s {
            "ADD" => Command::Add,
            "DEL" => Command::Del,
            "CHECK" => Command::Check,
            "VERSION" => Command::Version,
            "GC" => Command::Gc,
            "STATUS" => Command::Status,
            other => {
                return Err(Failure::new(
                    Code::Env,
                    format!(
                        "unknown CNI_COMMAND `{other}` (ADD, DEL, CHECK, VERSION, GC or STATUS)"
                    ),
                ));
            }
        })
    }
}

/// The attachment a request is about: ADD, DEL and CHECK carry one.
#[derive(Clone, Debug)]
pub struct Target {
    pub container: String,
    pub ifname: IfName,
    /// `CNI_NETNS` as given; `None` for a DEL whose namespace is gone.
    pub netns: Option<String>,
    /// The name of that namespace in /run/netns.
    pub ns: Option<NsName>,
    /// The namespace's identity (device and inode of its file) when the
    /// request came: the namespace a plan may plug into.
    pub identity: Option<(u64, u64)>,
    /// For a namespace named nowhere (`/proc/PID/ns/net`): the process
    /// whose namespace nsnet names `ns` (see `adopted_name`).
    pub adopt: Option<u32>,
    /// `IP=` of `CNI_ARGS`: the addresses to keep (`podman network reload`).
    pub addresses: Vec<IpAddr>,
}

/// The network configuration, as the runtime derived it for this plugin.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    cni_version: Option<String>,
    name: Option<String>,
    bridge: Option<String>,
    subnet: Option<String>,
    #[serde(default, deserialize_with = "null_is_default")]
    subnets: Vec<String>,
    #[serde(default, deserialize_with = "null_is_default")]
    gateway: OneOrMore,
    #[serde(alias = "ipMasq")]
    nat: Option<bool>,
    default_route: Option<bool>,
    #[serde(default)]
    dns: Option<Value>,
    #[serde(default, deserialize_with = "null_is_default")]
    deny: Vec<String>,
    #[serde(default, deserialize_with = "null_is_default")]
    allow: Vec<String>,
    #[serde(default)]
    runtime_config: Option<RuntimeConfig>,
    #[serde(default)]
    prev_result: Option<Value>,
    #[serde(flatten)]
    listed: Listed,
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

/// GC's list of the attachments the runtime still has. A runtime with no
/// container left on the network sends `null` (CRI-O's ocicni does): an
/// empty list, not a missing one.
#[derive(Debug, Default, Deserialize)]
struct Listed {
    #[serde(
        default,
        rename = "cni.dev/valid-attachments",
        deserialize_with = "present"
    )]
    valid: Option<Vec<Key>>,
    /// The key's name in the 1.1.0 text, before the errata.
    #[serde(default, rename = "cni.dev/attachments", deserialize_with = "present")]
    valid_before_errata: Option<Vec<Key>>,
}

impl Listed {
    fn valid(self) -> Option<Vec<Key>> {
        self.valid.or(self.valid_before_errata)
    }
}

/// A value that may be `null`, read as its default: Go runtimes write an
/// empty list as `null` (containerd's `"portMappings": null` for a pod
/// without host ports).
fn null_is_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A key that is there, even as `null` (an empty list); absent is `None`.
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Some(Option::<T>::deserialize(d)?.unwrap_or_default()))
}

/// Keys a runtime adds or the spec defines that nsnet reads nothing from.
const PASSED: [&str; 6] = [
    "type",
    "capabilities",
    "args",
    "cniVersions",
    "disableCheck",
    "disableGC",
];

#[derive(Debug, Default, Deserialize)]
#[serde(untagged)]
enum OneOrMore {
    #[default]
    None,
    One(String),
    More(Vec<String>),
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RuntimeConfig {
    #[serde(default, deserialize_with = "null_is_default")]
    port_mappings: Vec<RawMapping>,
}

/// One `portMappings` entry: podman writes `hostPort`, containerd
/// `HostPort`.
#[derive(Debug, Deserialize)]
struct RawMapping {
    #[serde(rename = "hostPort", alias = "HostPort")]
    host_port: u32,
    #[serde(rename = "containerPort", alias = "ContainerPort")]
    container_port: u32,
    #[serde(default, rename = "protocol", alias = "Protocol")]
    protocol: Option<String>,
    #[serde(default, rename = "hostIP", alias = "HostIP")]
    host_ip: Option<String>,
}

/// An attachment the runtime still has (GC's list).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Key {
    #[serde(rename = "containerID")]
    pub container: String,
    pub ifname: String,
}

/// A network configuration, checked.
#[derive(Debug)]
pub struct Network {
    pub version: String,
    pub name: String,
    pub bridge: IfName,
    pub subnet: Option<Ipv4Net>,
    pub subnet6: Option<Ipv6Net>,
    pub gateway: Option<Ipv4Addr>,
    pub gateway6: Option<Ipv6Addr>,
    pub nat: bool,
    pub default_route: bool,
    /// `dns`, passed into the result as given.
    pub dns: Option<Value>,
    pub deny: Vec<IpNet>,
    pub allow: Vec<IpNet>,
    /// Ports to publish: the host address (`None`: all) and the mapping.
    pub ports: Vec<(Option<IpAddr>, Mapping)>,
    pub prev_result: Option<Value>,
    /// GC: the attachments to keep.
    pub valid: Option<Vec<Key>>,
}

/// The version a configuration asks for, read on its own so that even an
/// error about the rest is answered in it. An unreadable one is 1.0.0.
pub fn version_of(stdin: &str) -> String {
    #[derive(Deserialize)]
    struct Version {
        #[serde(rename = "cniVersion")]
        v: String,
    }
    serde_json::from_str::<Version>(stdin)
        .ok()
        .map(|v| v.v)
        .filter(|v| VERSIONS.contains(&v.as_str()))
        .unwrap_or_else(|| "1.0.0".to_string())
}

/// Whether `version` is at least `least` (both among `VERSIONS`).
pub fn at_least(version: &str, least: &str) -> bool {
    let rank = |v: &str| VERSIONS.iter().position(|x| *x == v);
    rank(version) >= rank(least)
}

/// An error for a version nsnet does not speak.
fn known_version(version: &str) -> Result<(), Failure> {
    if VERSIONS.contains(&version) {
        return Ok(());
    }
    Err(Failure::new(
        Code::Version,
        format!(
            "nsnet does not speak CNI version `{version}` (it speaks {})",
            VERSIONS.join(", ")
        ),
    ))
}

fn invalid(msg: impl Into<String>) -> Failure {
    Failure::new(Code::InvalidConfig, msg)
}

/// The configuration on stdin, as JSON of shape `T`.
fn decode<T: serde::de::DeserializeOwned>(stdin: &str) -> Result<T, Failure> {
    serde_json::from_str(stdin).map_err(|e| {
        Failure::new(
            Code::Decode,
            format!("cannot read the network configuration on stdin: {e}"),
        )
    })
}

/// The version (one nsnet speaks) and the network's name, both required.
fn named(version: Option<String>, name: Option<String>) -> Result<(String, String), Failure> {
    let version =
        version.ok_or_else(|| invalid("the network configuration has no `cniVersion`"))?;
    known_version(&version)?;
    let name = name.ok_or_else(|| invalid("the network configuration has no `name`"))?;
    Ok((version, name))
}

/// Parses and checks the configuration on stdin.
pub fn network(stdin: &str) -> Result<Network, Failure> {
    let raw: Raw = decode(stdin)?;
    let (version, name) = named(raw.cni_version, raw.name)?;
    validate::check_name("network name", &name, 128).map_err(|e| invalid(e.to_string()))?;
    if let Some(key) = raw
        .other
        .keys()
        .find(|k| !PASSED.contains(&k.as_str()) && !k.starts_with("cni.dev/"))
    {
        let value = raw.other[key].to_string();
        return Err(Failure::new(
            Code::Unsupported,
            format!(
                "unsupported field `{key}` (value {value}) in network `{name}`: nsnet reads bridge, subnet, subnets, gateway, nat, defaultRoute, dns, deny and allow"
            ),
        ));
    }
    let bridge = raw.bridge.ok_or_else(|| {
        invalid(format!(
            "network `{name}` names no bridge: add `\"bridge\": \"NAME\"` (at most 15 characters)"
        ))
    })?;
    let bridge = validate::bridge_name(&bridge).map_err(|e| invalid(e.to_string()))?;
    let subnets: Vec<String> = match (raw.subnet, raw.subnets.is_empty()) {
        (Some(_), false) => {
            return Err(invalid(format!(
                "network `{name}` has both `subnet` and `subnets`: keep one"
            )));
        }
        (Some(one), true) => vec![one],
        (None, _) => raw.subnets,
    };
    let subnets: Vec<IpNet> = subnets
        .iter()
        .map(|s| validate::any_subnet(s))
        .collect::<Result<_, _>>()
        .map_err(|e| invalid(format!("network `{name}`: {e}")))?;
    let (subnet, subnet6) =
        validate::by_family(&subnets).map_err(|e| invalid(format!("network `{name}`: {e}")))?;
    // An nsnet bridge always has IPv4: an IPv6 subnet alone would be
    // joined by a /24 nobody asked for.
    if let (None, Some(v6)) = (subnet, subnet6) {
        return Err(invalid(format!(
            "network `{name}` has only the IPv6 subnet {v6}: nsnet bridges are IPv4 or dual stack; give `subnets` an IPv4 subnet too"
        )));
    }
    let gateways: Vec<String> = match raw.gateway {
        OneOrMore::None => Vec::new(),
        OneOrMore::One(g) => vec![g],
        OneOrMore::More(g) => g,
    };
    let gateways: Vec<IpAddr> = gateways
        .iter()
        .map(|g| {
            g.parse()
                .map_err(|_| invalid(format!("network `{name}`: gateway `{g}` is not an address")))
        })
        .collect::<Result<_, _>>()?;
    let (gateway, gateway6) = validate::addresses_by_family("gateway", &gateways)
        .map_err(|e| invalid(format!("network `{name}`: {e}")))?;
    let nets = |list: &[String], key: &str| -> Result<Vec<IpNet>, Failure> {
        list.iter()
            .map(|s| validate::destination(s))
            .collect::<Result<_, _>>()
            .map_err(|e| invalid(format!("network `{name}`, `{key}`: {e}")))
    };
    let deny = nets(&raw.deny, "deny")?;
    let allow = nets(&raw.allow, "allow")?;
    let ports = raw
        .runtime_config
        .unwrap_or_default()
        .port_mappings
        .iter()
        .map(|m| mapping(&name, m))
        .collect::<Result<_, _>>()?;
    Ok(Network {
        version,
        name,
        bridge,
        subnet,
        subnet6,
        gateway,
        gateway6,
        nat: raw.nat.unwrap_or(false),
        default_route: raw.default_route.unwrap_or(true),
        dns: raw.dns,
        deny,
        allow,
        ports,
        prev_result: raw.prev_result,
        valid: raw.listed.valid(),
    })
}

/// What DEL and GC need of the configuration: its version and network
/// name, and GC's list. Nothing else is checked: a DEL must succeed with
/// the configuration as it is now, even one that would not ADD (containerd
/// DELs after every failed ADD, with the file as it is on disk then), and
/// a DEL that fails leaves the runtime unable to remove its container.
#[derive(Debug)]
pub struct Leave {
    pub version: String,
    pub name: String,
    /// GC: the attachments to keep.
    pub valid: Option<Vec<Key>>,
}

/// Reads the configuration of a DEL or GC (see `Leave`).
pub fn leave(stdin: &str) -> Result<Leave, Failure> {
    #[derive(Deserialize)]
    struct Raw {
        #[serde(rename = "cniVersion")]
        version: Option<String>,
        name: Option<String>,
        #[serde(flatten)]
        listed: Listed,
    }
    let raw: Raw = decode(stdin)?;
    let (version, name) = named(raw.version, raw.name)?;
    Ok(Leave {
        version,
        name,
        valid: raw.listed.valid(),
    })
}

fn mapping(name: &str, m: &RawMapping) -> Result<(Option<IpAddr>, Mapping), Failure> {
    let port = |what: &str, p: u32| {
        u16::try_from(p).ok().filter(|p| *p != 0).ok_or_else(|| {
            invalid(format!(
                "network `{name}`: port mapping {what} {p} is not a port (1-65535)"
            ))
        })
    };
    let proto = match m
        .protocol
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("") | Some("tcp") => Proto::Tcp,
        Some("udp") => Proto::Udp,
        Some(other) => {
            return Err(invalid(format!(
                "network `{name}`: nsnet publishes tcp and udp ports, not `{other}`"
            )));
        }
    };
    let host_ip = match m.host_ip.as_deref() {
        None | Some("") => None,
        // `0.0.0.0` (`::`): every address of that family only.
        Some(ip) => match ip.parse::<IpAddr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                return Err(invalid(format!(
                    "network `{name}`: port mapping hostIP `{ip}` is not an address"
                )));
            }
        },
    };
    let mapping = Mapping {
        host_port: port("hostPort", m.host_port)?,
        port: port("containerPort", m.container_port)?,
        proto,
    };
    Ok((host_ip, mapping))
}

/// The environment variables a runtime sets, as read from `var`.
pub fn target(
    command: Command,
    var: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Target>, Failure> {
    if matches!(command, Command::Version | Command::Gc | Command::Status) {
        return Ok(None);
    }
    let need = |key: &str| {
        var(key).filter(|v| !v.is_empty()).ok_or_else(|| {
            Failure::new(
                Code::Env,
                format!("{key} is not set: a runtime sets it for {command:?}"),
            )
        })
    };
    let container = need("CNI_CONTAINERID")?;
    validate::check_name("CNI_CONTAINERID", &container, 1024)
        .map_err(|e| Failure::new(Code::Env, e.to_string()))?;
    let ifname = need("CNI_IFNAME")?;
    let ifname =
        IfName::parse("CNI_IFNAME", &ifname).map_err(|e| Failure::new(Code::Env, e.to_string()))?;
    // DEL reads neither the namespace nor CNI_ARGS: it must succeed with the
    // namespace gone (or never in /run/netns), whatever the runtime passes.
    if command == Command::Del {
        return Ok(Some(Target {
            container,
            ifname,
            netns: var("CNI_NETNS").filter(|v| !v.is_empty()),
            ns: None,
            identity: None,
            adopt: None,
            addresses: Vec::new(),
        }));
    }
    let netns = need("CNI_NETNS")?;
    let found = ns_name(&netns, &container)?;
    let mut addresses = Vec::new();
    for pair in var("CNI_ARGS").unwrap_or_default().split(';') {
        if let Some(("IP", value)) = pair.split_once('=') {
            for ip in value.split(',') {
                let ip = ip.split('/').next().unwrap_or(ip);
                let ip: IpAddr = ip.parse().map_err(|_| {
                    Failure::new(
                        Code::Env,
                        format!("CNI_ARGS: IP=`{value}` is not an address"),
                    )
                })?;
                addresses.push(ip);
            }
        }
    }
    Ok(Some(Target {
        container,
        ifname,
        netns: Some(netns),
        ns: Some(found.name),
        identity: Some(found.identity),
        adopt: found.adopt,
        addresses,
    }))
}

/// The name in /run/netns of the namespace at `path`: runtimes name theirs
/// there (podman's `/run/netns/netns-UUID`, CRI's `/var/run/netns/cni-UUID`).
fn ns_name(path: &str, container: &str) -> Result<Netns, Failure> {
    let bad = |why: String| Failure::new(Code::Env, format!("CNI_NETNS `{path}` {why}"));
    let p = std::path::Path::new(path);
    let name = p
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| bad("names no file".into()))?;
    let named = std::path::Path::new("/run/netns").join(name);
    let (same, identity) = match (rustix::fs::stat(p), rustix::fs::stat(&named)) {
        (Ok(a), Ok(b)) => (
            a.st_dev == b.st_dev && a.st_ino == b.st_ino,
            (a.st_dev, a.st_ino),
        ),
        (Ok(a), Err(_)) => (false, (a.st_dev, a.st_ino)),
        (Err(e), _) => return Err(bad(format!("cannot be read ({e})"))),
    };
    let is_netns = rustix::fs::statfs(p).is_ok_and(|s| s.f_type == NSFS_MAGIC)
        && crate::host::netlink::Kernel::inside(p).is_ok();
    if !is_netns {
        return Err(bad("is not a network namespace".into()));
    }
    if same {
        let name = name
            .parse()
            .map_err(|e: validate::InputError| bad(e.to_string()))?;
        return Ok(Netns {
            name,
            identity,
            adopt: None,
        });
    }
    // A process's own namespace, named nowhere (ctr, nerdctl): nsnet names
    // it after the container, as `ip netns attach` names a process's.
    let pid = path
        .strip_prefix("/proc/")
        .and_then(|rest| rest.strip_suffix("/ns/net"))
        .and_then(|pid| pid.parse::<u32>().ok())
        .ok_or_else(|| {
            bad("is neither a namespace in /run/netns nor a process's (/proc/PID/ns/net)".into())
        })?;
    Ok(Netns {
        name: adopted_name(container),
        identity,
        adopt: Some(pid),
    })
}

/// The namespace of a request, as found.
struct Netns {
    name: NsName,
    identity: (u64, u64),
    adopt: Option<u32>,
}

/// The name nsnet gives a container's namespace it names itself: `cni-`
/// and the container id, or, for an id too long or with other characters,
/// a digest of it (the same id always gets the same name).
fn adopted_name(container: &str) -> NsName {
    if let Ok(name) = format!("cni-{container}").parse::<NsName>()
        && container.len() <= 64
    {
        return name;
    }
    // FNV-1a: stable from one build of nsnet to the next.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in container.bytes() {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("cni-{hash:016x}").parse().expect("a valid name")
}

/// `statfs`'s type of nsfs, the file system of namespace files.
const NSFS_MAGIC: i64 = 0x6e73_6673;
