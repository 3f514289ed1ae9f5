//! Input types checked at the boundary: namespace names, interface names and
//! subnets. A value of these types is safe to put in any argument vector or
//! batch line; the rest of nsnet never sees a raw string from the user.

use compact_str::CompactString;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use thiserror::Error;

/// The kernel's limit on interface names (IFNAMSIZ less the terminating NUL).
pub const IFNAME_MAX: usize = 15;
/// nsnet's limit on namespace names: they name files under /run/netns.
pub const NS_NAME_MAX: usize = 128;

/// Bad input: the user can fix it by changing the command line. Exit status 2.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum InputError {
    #[error("{what} is empty: give a name of letters, digits, `_`, `.` or `-`")]
    Empty { what: &'static str },
    #[error("{what} `{value}` is {len} bytes; at most {max} are allowed")]
    TooLong {
        what: &'static str,
        value: String,
        len: usize,
        max: usize,
    },
    #[error("{what} `{value}` must start with a letter or a digit")]
    BadStart { what: &'static str, value: String },
    #[error("{what} `{value}` contains {found}: use only letters, digits, `_`, `.` and `-`")]
    BadChar {
        what: &'static str,
        value: String,
        found: String,
    },
    #[error("{what} `{value}` contains `..`: use another name")]
    DotDot { what: &'static str, value: String },
    #[error("`host` means the host's own namespace: choose another namespace name")]
    Host,
    #[error("`{0}` is not a subnet in CIDR form, such as `10.0.0.0/24` or `fd00:1::/64`")]
    NotCidr(String),
    #[error(
        "`{0}` is not an address or a CIDR, such as `10.0.0.0/8`, `192.0.2.7` or `2001:db8::/32`"
    )]
    NotDestination(String),
    #[error("`{given}` has host bits set: the subnet is `{network}`")]
    HostBits { given: String, network: IpNet },
    #[error("subnet `{subnet}` is too small: use a prefix of /{max} or shorter")]
    PrefixTooLong { subnet: IpNet, max: u8 },
    #[error("subnet `{subnet}` is {kind} address space and cannot be used for a network")]
    Reserved { subnet: IpNet, kind: &'static str },
    #[error(
        "--subnet is given twice for {family} (`{first}` and `{second}`): give at most one IPv4 and one IPv6 subnet"
    )]
    TwoSubnets {
        family: &'static str,
        first: IpNet,
        second: IpNet,
    },
    #[error(
        "IPv6 is disabled on this host (no /proc/sys/net/ipv6: booted with ipv6.disable=1?): leave out the IPv6 --subnet and --ipv6, or enable IPv6"
    )]
    NoIpv6,
    #[error(
        "subnet `{subnet}` has room for {room} namespace(s) besides the gateway; {wanted} needed (use a larger --subnet)"
    )]
    SubnetFull {
        subnet: IpNet,
        room: u64,
        wanted: u64,
    },
    #[error(
        "subnet `{subnet}` overlaps `{route}`, already routed on this host (choose another --subnet)"
    )]
    Overlap { subnet: IpNet, route: IpNet },
    #[error("`{page}` has no man page: its commands are {known}")]
    UnknownPage { page: String, known: String },
    #[error("`{whole}`: `{part}` is not a port from 1 to 65535")]
    BadPort { whole: String, part: String },
    #[error("`{whole}`: protocol `{proto}` is not `tcp` or `udp`")]
    BadProto { whole: String, proto: String },
    #[error(
        "`{0}` is not a port mapping: write HOSTPORT:PORT, optionally with /tcp or /udp (e.g. `8080:80/tcp`)"
    )]
    NotMapping(String),
    #[error("`{0}` does not say which namespace: write NS=HOSTPORT:PORT (e.g. `red=8080:80`)")]
    NoNamespace(String),
    #[error(
        "`{0}`: the host end of a cable keeps the name nsnet gives it (`vc-NS`), by which nsnet knows its own; name only a namespace's end (e.g. `container-one:eth0`)"
    )]
    HostEndNamed(String),
    #[error("`{0}` is not NS=ADDRESS: write e.g. `red=192.168.15.1`")]
    NotNsAddress(String),
    #[error(
        "{option} is given twice for one family (the second is `{second}`): give at most one IPv4 and one IPv6 address"
    )]
    TwiceInFamily {
        option: &'static str,
        second: std::net::IpAddr,
    },
    #[error(
        "{option} `{address}` needs --subnet for its family: the bridge's subnet it is in (e.g. `192.168.15.0/24`)"
    )]
    NeedsSubnet {
        option: &'static str,
        address: std::net::IpAddr,
    },
    #[error(
        "--address names `{0}`, which is not among the namespaces to plug in (add `{0}` to them)"
    )]
    AddressNotJoining(String),
    #[error("{what} `{address}` is not a host address of subnet `{subnet}` ({why})")]
    NotInSubnet {
        what: String,
        address: std::net::IpAddr,
        subnet: IpNet,
        why: &'static str,
    },
    #[error("{what} `{address}` is already {holder} on bridge `{bridge}` (choose another address)")]
    AddressTaken {
        what: String,
        address: std::net::IpAddr,
        holder: String,
        bridge: IfName,
    },
    #[error("both ends are `{0}`: a cable joins two different namespaces")]
    SameEnds(String),
    #[error("--out `{0}` is the bridge itself: name the interface that leads out of the host")]
    OutIsBridge(String),
    #[error("--host-ip `{0}` is not an address of this host (see `ip addr`)")]
    NotLocal(std::net::IpAddr),
    #[error(
        "--host-ip `::1` cannot be published: the kernel never routes a packet from ::1 out of an interface (IPv6 has no route_localnet); publish on 127.0.0.1, or on the bridge's IPv6 gateway or another of the host's IPv6 addresses"
    )]
    Loopback6,
    #[error(
        "--host-ip `{ip}` is IPv6 but bridge `{bridge}` has no IPv6 subnet (make it with `nsnet bridge up ... --ipv6`, or give an IPv4 --host-ip)"
    )]
    NoIpv6Here {
        ip: std::net::IpAddr,
        bridge: IfName,
    },
    #[error(
        "--allow `{net}` can never match: the port is published in {only} only ({why}); give {only} sources"
    )]
    AllowNoFamily {
        net: IpNet,
        only: &'static str,
        why: String,
    },
    #[error(
        "bridge `{bridge}` already uses subnet `{subnet}` (leave out --subnet, or choose another --bridge)"
    )]
    SubnetInUse { bridge: IfName, subnet: IpNet },
}

/// Shows a value inside an error on one line, whatever it holds.
pub(crate) fn shown(value: &str) -> String {
    value.escape_debug().to_string()
}

fn describe(c: char) -> String {
    match c {
        ' ' => "a space".into(),
        '\n' => "a newline".into(),
        '\t' => "a tab".into(),
        c if !c.is_ascii() => format!("`{c}` (not ASCII)"),
        c if c.is_ascii_control() => format!("a control character ({})", c.escape_debug()),
        c => format!("`{c}`"),
    }
}

/// Checks `value` against `^[A-Za-z0-9][A-Za-z0-9_.-]*$`, no `..`, at most `max` bytes.
pub fn check_name(what: &'static str, value: &str, max: usize) -> Result<(), InputError> {
    // Every name of a record is checked as it is read: a good one passes
    // on one look at its bytes, and only a bad one is looked at again to
    // say what is wrong.
    let good = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-');
    let bytes = value.as_bytes();
    if bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && value.len() <= max
        && bytes.iter().all(good)
        && !bytes.windows(2).any(|w| w == b"..")
    {
        return Ok(());
    }
    let first = value.chars().next().ok_or(InputError::Empty { what })?;
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "_.-".contains(*c)))
    {
        return Err(InputError::BadChar {
            what,
            value: shown(value),
            found: describe(c),
        });
    }
    if value.len() > max {
        return Err(InputError::TooLong {
            what,
            value: shown(value),
            len: value.len(),
            max,
        });
    }
    if !first.is_ascii_alphanumeric() {
        return Err(InputError::BadStart {
            what,
            value: shown(value),
        });
    }
    if value.contains("..") {
        return Err(InputError::DotDot {
            what,
            value: shown(value),
        });
    }
    Ok(())
}

/// The name of a network namespace nsnet may create or use (never `host`).
/// Names are kept inline (up to 24 bytes) rather than each in an
/// allocation of its own: a record of a thousand namespaces holds thousands.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NsName(CompactString);

impl FromStr for NsName {
    type Err = InputError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        check_name("namespace name", s, NS_NAME_MAX)?;
        if s == "host" {
            return Err(InputError::Host);
        }
        Ok(NsName(CompactString::new(s)))
    }
}

/// A network interface name: a valid name of at most 15 bytes (always
/// inline: see `NsName`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IfName(CompactString);

impl IfName {
    /// Parses an interface name, naming it `what` in errors ("bridge name").
    pub fn parse(what: &'static str, s: &str) -> Result<IfName, InputError> {
        check_name(what, s, IFNAME_MAX)?;
        Ok(IfName(CompactString::new(s)))
    }
}

impl FromStr for IfName {
    type Err = InputError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        IfName::parse("interface name", s)
    }
}

/// Parses a `--bridge` value.
pub fn bridge_name(s: &str) -> Result<IfName, InputError> {
    IfName::parse("bridge name", s)
}

macro_rules! string_newtype {
    ($t:ty) => {
        impl TryFrom<String> for $t {
            type Error = InputError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                s.parse()
            }
        }
        impl From<$t> for String {
            fn from(v: $t) -> String {
                v.0.into_string()
            }
        }
        impl Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
        // Read from the text in place (a name never has an escape), and
        // checked as every name given is.
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct Name;
                impl serde::de::Visitor<'_> for Name {
                    type Value = $t;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("a name")
                    }
                    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<$t, E> {
                        s.parse().map_err(E::custom)
                    }
                }
                d.deserialize_str(Name)
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(&self.0)
            }
        }
        impl $t {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
    };
}
string_newtype!(NsName);
string_newtype!(IfName);

/// One end of a cable: the host's own namespace or a named one.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum End {
    Host,
    Ns(NsName),
}

impl End {
    /// The namespace to pass to `ip -n`, or `None` for the host.
    pub fn ns(&self) -> Option<&str> {
        match self {
            End::Host => None,
            End::Ns(n) => Some(n.as_str()),
        }
    }

    /// The namespace at this end, `None` for the host.
    pub fn ns_name(&self) -> Option<NsName> {
        match self {
            End::Host => None,
            End::Ns(n) => Some(n.clone()),
        }
    }
}

impl FromStr for End {
    type Err = InputError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "host" {
            Ok(End::Host)
        } else {
            s.parse().map(End::Ns)
        }
    }
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.ns().unwrap_or("host"))
    }
}

/// An end of a cable as `veth add` takes it: `host`, `NS`, or `NS:IF` to
/// name the interface inside the namespace (the fourth tutorial's `eth0`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CableEnd {
    pub end: End,
    pub ifname: Option<IfName>,
}

impl FromStr for CableEnd {
    type Err = InputError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Some((end, ifname)) = s.split_once(':') else {
            return Ok(CableEnd {
                end: s.parse()?,
                ifname: None,
            });
        };
        let end: End = end.parse()?;
        if end == End::Host {
            return Err(InputError::HostEndNamed(shown(s)));
        }
        Ok(CableEnd {
            end,
            ifname: Some(ifname.parse()?),
        })
    }
}

/// Parses a destination for the firewall: a CIDR of either family (`/0`
/// allowed: everything), or one address, taken as its /32 or /128.
pub fn destination(s: &str) -> Result<IpNet, InputError> {
    let net: IpNet = match s.parse::<IpNet>() {
        Ok(net) => net,
        Err(_) => match s.parse::<std::net::IpAddr>() {
            Ok(addr) => IpNet::from(addr),
            Err(_) => return Err(InputError::NotDestination(shown(s))),
        },
    };
    if net.addr() != net.network() {
        return Err(InputError::HostBits {
            given: s.to_string(),
            network: net.trunc(),
        });
    }
    Ok(net)
}

/// Parses a subnet for a network: an IPv4 network address with a prefix of
/// /30 or shorter, outside loopback, multicast and other special ranges.
pub fn subnet(s: &str) -> Result<Ipv4Net, InputError> {
    let net: Ipv4Net = s.parse().map_err(|_| InputError::NotCidr(shown(s)))?;
    if net.addr() != net.network() {
        return Err(InputError::HostBits {
            given: s.to_string(),
            network: net.trunc().into(),
        });
    }
    if net.prefix_len() > 30 {
        return Err(InputError::PrefixTooLong {
            subnet: net.into(),
            max: 30,
        });
    }
    let first = net.network();
    let reserved = [
        (
            Ipv4Net::new(Ipv4Addr::new(0, 0, 0, 0), 8),
            "\"this network\"",
        ),
        (Ipv4Net::new(Ipv4Addr::new(127, 0, 0, 0), 8), "loopback"),
        (
            Ipv4Net::new(Ipv4Addr::new(169, 254, 0, 0), 16),
            "link-local",
        ),
        (
            Ipv4Net::new(Ipv4Addr::new(224, 0, 0, 0), 3),
            "multicast or reserved",
        ),
    ];
    for (range, kind) in reserved {
        let range = range.expect("valid prefix");
        if range.contains(&first) || net.contains(&range.network()) {
            return Err(InputError::Reserved {
                subnet: net.into(),
                kind,
            });
        }
    }
    Ok(net)
}

/// An IPv6 subnet for a bridge or cable: the gateway takes `::1` and the
/// namespaces the addresses after it (`::0` is the subnet-router anycast
/// address of a forwarding host), so a /126 is the smallest that holds one
/// namespace; never unspecified, loopback, IPv4-mapped, link-local or
/// multicast space.
pub fn subnet6(s: &str) -> Result<Ipv6Net, InputError> {
    let net: Ipv6Net = s.parse().map_err(|_| InputError::NotCidr(shown(s)))?;
    if net.addr() != net.network() {
        return Err(InputError::HostBits {
            given: s.to_string(),
            network: net.trunc().into(),
        });
    }
    if net.prefix_len() > 126 {
        return Err(InputError::PrefixTooLong {
            subnet: net.into(),
            max: 126,
        });
    }
    let reserved = [
        ("::/127", "unspecified or loopback"),
        ("::ffff:0:0/96", "IPv4-mapped"),
        ("fe80::/10", "link-local"),
        ("ff00::/8", "multicast"),
    ];
    for (range, kind) in reserved {
        let range: Ipv6Net = range.parse().expect("valid prefix");
        if range.contains(&net.network()) || net.contains(&range.network()) {
            return Err(InputError::Reserved {
                subnet: net.into(),
                kind,
            });
        }
    }
    Ok(net)
}

/// Address number `n` of `net` (`::1`, the gateway, is number 1).
pub fn nth6(net: Ipv6Net, n: u128) -> Ipv6Addr {
    Ipv6Addr::from(u128::from(net.network()) + n)
}

/// Refuses `subnet` when it overlaps any of `taken` (routes of the host,
/// nsnet's other subnets); subnets of different families never overlap.
pub fn free_of(subnet: IpNet, taken: impl IntoIterator<Item = IpNet>) -> Result<(), InputError> {
    let overlaps = |net: &IpNet| net.contains(&subnet.network()) || subnet.contains(&net.network());
    match taken.into_iter().find(overlaps) {
        Some(route) => Err(InputError::Overlap { subnet, route }),
        None => Ok(()),
    }
}

/// `--subnet`, either family: IPv6 when it holds a colon.
pub fn any_subnet(s: &str) -> Result<IpNet, InputError> {
    match s.contains(':') {
        true => subnet6(s).map(IpNet::V6),
        false => subnet(s).map(IpNet::V4),
    }
}

/// The subnets of a repeated `--subnet`: at most one of each family.
/// `NS=IP`: the address a namespace takes on a bridge (`--address`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NsAddress {
    pub ns: NsName,
    pub address: IpAddr,
}

impl FromStr for NsAddress {
    type Err = InputError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Some((ns, address)) = s.split_once('=') else {
            return Err(InputError::NotNsAddress(shown(s)));
        };
        let address = address
            .parse()
            .map_err(|_| InputError::NotNsAddress(shown(s)))?;
        Ok(NsAddress {
            ns: ns.parse()?,
            address,
        })
    }
}

/// At most one address per family (`--gateway` given once or twice).
pub fn addresses_by_family(
    option: &'static str,
    given: &[IpAddr],
) -> Result<(Option<Ipv4Addr>, Option<Ipv6Addr>), InputError> {
    let (mut v4, mut v6) = (None, None);
    for addr in given {
        let again = match addr {
            IpAddr::V4(a) => v4.replace(*a).is_some(),
            IpAddr::V6(a) => v6.replace(*a).is_some(),
        };
        if again {
            return Err(InputError::TwiceInFamily {
                option,
                second: *addr,
            });
        }
    }
    Ok((v4, v6))
}

pub fn by_family(nets: &[IpNet]) -> Result<(Option<Ipv4Net>, Option<Ipv6Net>), InputError> {
    let (mut v4, mut v6): (Option<Ipv4Net>, Option<Ipv6Net>) = (None, None);
    for net in nets {
        let (family, first) = match net {
            IpNet::V4(n) => ("IPv4", v4.replace(*n).map(IpNet::V4)),
            IpNet::V6(n) => ("IPv6", v6.replace(*n).map(IpNet::V6)),
        };
        if let Some(first) = first {
            return Err(InputError::TwoSubnets {
                family,
                first,
                second: *net,
            });
        }
    }
    Ok((v4, v6))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_names_pass() {
        for name in [
            "red",
            "a",
            "container-one",
            "x_1.b",
            "0",
            &"n".repeat(NS_NAME_MAX),
        ] {
            assert!(name.parse::<NsName>().is_ok(), "{name}");
        }
    }

    #[test]
    fn bad_names_say_what_is_wrong() {
        let cases = [
            (
                "",
                "namespace name is empty: give a name of letters, digits, `_`, `.` or `-`",
            ),
            (
                "a b",
                "namespace name `a b` contains a space: use only letters, digits, `_`, `.` and `-`",
            ),
            (
                "a\nb",
                "namespace name `a\\nb` contains a newline: use only letters, digits, `_`, `.` and `-`",
            ),
            (
                "a#b",
                "namespace name `a#b` contains `#`: use only letters, digits, `_`, `.` and `-`",
            ),
            (
                "50%",
                "namespace name `50%` contains `%`: use only letters, digits, `_`, `.` and `-`",
            ),
            (
                "a/b",
                "namespace name `a/b` contains `/`: use only letters, digits, `_`, `.` and `-`",
            ),
            (
                "rød",
                "namespace name `rød` contains `ø` (not ASCII): use only letters, digits, `_`, `.` and `-`",
            ),
            (
                "-x",
                "namespace name `-x` must start with a letter or a digit",
            ),
            (
                ".x",
                "namespace name `.x` must start with a letter or a digit",
            ),
            (
                "a..b",
                "namespace name `a..b` contains `..`: use another name",
            ),
            (
                "host",
                "`host` means the host's own namespace: choose another namespace name",
            ),
        ];
        for (input, message) in cases {
            let err = input.parse::<NsName>().unwrap_err();
            assert_eq!(err.to_string(), message, "input {input:?}");
        }
        let long = "n".repeat(NS_NAME_MAX + 1);
        assert!(matches!(
            long.parse::<NsName>(),
            Err(InputError::TooLong { .. })
        ));
    }

    #[test]
    fn interface_names_stop_at_fifteen_bytes() {
        assert!(bridge_name("abcdefghijklmno").is_ok());
        assert_eq!(
            bridge_name("abcdefghijklmnop").unwrap_err().to_string(),
            "bridge name `abcdefghijklmnop` is 16 bytes; at most 15 are allowed"
        );
    }

    #[test]
    fn the_word_host_is_an_end_not_a_namespace() {
        assert_eq!("host".parse::<End>(), Ok(End::Host));
        assert_eq!("red".parse::<End>().unwrap().ns(), Some("red"));
    }

    #[test]
    fn subnets_are_checked() {
        assert_eq!(subnet("10.1.2.0/24").unwrap().to_string(), "10.1.2.0/24");
        assert_eq!(subnet("192.168.15.0/30").unwrap().prefix_len(), 30);
        let cases = [
            (
                "10.0.0/24",
                "`10.0.0/24` is not a subnet in CIDR form, such as `10.0.0.0/24` or `fd00:1::/64`",
            ),
            (
                "10.0.0.0",
                "`10.0.0.0` is not a subnet in CIDR form, such as `10.0.0.0/24` or `fd00:1::/64`",
            ),
            (
                "10.0.0.0/33",
                "`10.0.0.0/33` is not a subnet in CIDR form, such as `10.0.0.0/24` or `fd00:1::/64`",
            ),
            (
                "10.0.0.5/24",
                "`10.0.0.5/24` has host bits set: the subnet is `10.0.0.0/24`",
            ),
            (
                "10.0.0.0/31",
                "subnet `10.0.0.0/31` is too small: use a prefix of /30 or shorter",
            ),
            (
                "127.0.0.0/24",
                "subnet `127.0.0.0/24` is loopback address space and cannot be used for a network",
            ),
            (
                "224.0.0.0/24",
                "subnet `224.0.0.0/24` is multicast or reserved address space and cannot be used for a network",
            ),
            (
                "0.0.0.0/0",
                "subnet `0.0.0.0/0` is \"this network\" address space and cannot be used for a network",
            ),
            (
                "fd00:1::/127",
                "subnet `fd00:1::/127` is too small: use a prefix of /126 or shorter",
            ),
            (
                "fd00:1::5/64",
                "`fd00:1::5/64` has host bits set: the subnet is `fd00:1::/64`",
            ),
            (
                "fd00:1:/64",
                "`fd00:1:/64` is not a subnet in CIDR form, such as `10.0.0.0/24` or `fd00:1::/64`",
            ),
            (
                "fe80::/64",
                "subnet `fe80::/64` is link-local address space and cannot be used for a network",
            ),
            (
                "ff02::/16",
                "subnet `ff02::/16` is multicast address space and cannot be used for a network",
            ),
            (
                "::/0",
                "subnet `::/0` is unspecified or loopback address space and cannot be used for a network",
            ),
            (
                "::ffff:10.0.0.0/120",
                "subnet `::ffff:10.0.0.0/120` is IPv4-mapped address space and cannot be used for a network",
            ),
        ];
        assert_eq!(
            any_subnet("fd00:1::/126").unwrap().to_string(),
            "fd00:1::/126"
        );
        let twice = by_family(&[
            any_subnet("10.1.0.0/24").unwrap(),
            any_subnet("fd00:1::/64").unwrap(),
            any_subnet("10.2.0.0/24").unwrap(),
        ]);
        assert_eq!(
            twice.unwrap_err().to_string(),
            "--subnet is given twice for IPv4 (`10.1.0.0/24` and `10.2.0.0/24`): give at most one IPv4 and one IPv6 subnet"
        );
        for (input, message) in cases {
            assert_eq!(
                any_subnet(input).unwrap_err().to_string(),
                message,
                "input {input:?}"
            );
        }
    }
}
