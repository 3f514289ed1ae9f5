//! Ports as the user writes them: `HOSTPORT:PORT[/tcp|/udp]` for `publish
//! add`, `NS=HOSTPORT:PORT[/tcp|/udp]` for `bridge up --publish`,
//! `HOSTPORT[/tcp|/udp]` for `publish del`, checked at the boundary.

use crate::model::validate::{InputError, NsName, shown};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A transport protocol of a published port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
    }
}

/// `HOSTPORT:PORT[/tcp|/udp]`: a port of a namespace and the host port that
/// reaches it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub host_port: u16,
    pub port: u16,
    pub proto: Proto,
}

/// `NS=HOSTPORT:PORT[/tcp|/udp]`: a mapping and the namespace it is for
/// (`bridge up --publish`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NsMapping {
    pub ns: NsName,
    pub mapping: Mapping,
}

/// `HOSTPORT[/tcp|/udp]`: a published host port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostPort {
    pub port: u16,
    pub proto: Proto,
}

fn port(s: &str, whole: &str) -> Result<u16, InputError> {
    match s.parse::<u16>() {
        Ok(0) | Err(_) => Err(InputError::BadPort {
            whole: shown(whole),
            part: shown(s),
        }),
        Ok(p) => Ok(p),
    }
}

fn split_proto(s: &str) -> Result<(&str, Proto), InputError> {
    match s.split_once('/') {
        None => Ok((s, Proto::Tcp)),
        Some((ports, "tcp")) => Ok((ports, Proto::Tcp)),
        Some((ports, "udp")) => Ok((ports, Proto::Udp)),
        Some((_, other)) => Err(InputError::BadProto {
            whole: shown(s),
            proto: shown(other),
        }),
    }
}

impl FromStr for Mapping {
    type Err = InputError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (ports, proto) = split_proto(s)?;
        let Some((host, inner)) = ports.split_once(':') else {
            return Err(InputError::NotMapping(shown(s)));
        };
        Ok(Mapping {
            host_port: port(host, s)?,
            port: port(inner, s)?,
            proto,
        })
    }
}

impl FromStr for NsMapping {
    type Err = InputError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Some((ns, mapping)) = s.split_once('=') else {
            return Err(InputError::NoNamespace(shown(s)));
        };
        Ok(NsMapping {
            ns: ns.parse()?,
            mapping: mapping.parse()?,
        })
    }
}

impl FromStr for HostPort {
    type Err = InputError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (p, proto) = split_proto(s)?;
        Ok(HostPort {
            port: port(p, s)?,
            proto,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_namespace_mapping_names_both() {
        let m: NsMapping = "red=8080:80/udp".parse().unwrap();
        assert_eq!(m.ns.as_str(), "red");
        assert_eq!((m.mapping.host_port, m.mapping.proto), (8080, Proto::Udp));
        assert_eq!(
            "8080:80".parse::<NsMapping>().unwrap_err().to_string(),
            "`8080:80` does not say which namespace: write NS=HOSTPORT:PORT (e.g. `red=8080:80`)"
        );
        assert!("re d=8080:80".parse::<NsMapping>().is_err());
        assert!("red=8080".parse::<NsMapping>().is_err());
    }

    #[test]
    fn port_mappings_are_checked() {
        let m: Mapping = "8080:80".parse().unwrap();
        assert_eq!((m.host_port, m.port, m.proto), (8080, 80, Proto::Tcp));
        let m: Mapping = "53:5353/udp".parse().unwrap();
        assert_eq!((m.host_port, m.port, m.proto), (53, 5353, Proto::Udp));
        let cases = [
            (
                "8080",
                "`8080` is not a port mapping: write HOSTPORT:PORT, optionally with /tcp or /udp (e.g. `8080:80/tcp`)",
            ),
            ("0:80", "`0:80`: `0` is not a port from 1 to 65535"),
            (
                "8080:65536",
                "`8080:65536`: `65536` is not a port from 1 to 65535",
            ),
            (
                "80:80/sctp",
                "`80:80/sctp`: protocol `sctp` is not `tcp` or `udp`",
            ),
            ("a:80", "`a:80`: `a` is not a port from 1 to 65535"),
        ];
        for (input, message) in cases {
            assert_eq!(
                input.parse::<Mapping>().unwrap_err().to_string(),
                message,
                "input {input:?}"
            );
        }
        assert_eq!(
            "53/udp".parse::<HostPort>().unwrap(),
            HostPort {
                port: 53,
                proto: Proto::Udp
            }
        );
        assert!("70000".parse::<HostPort>().is_err());
    }
}
