//! What nsnet answers a runtime, as the spec's JSON: an ADD's result in
//! the version the runtime asked for (merged into `prevResult` when nsnet is
//! not first in a chain), VERSION's list, and errors with the spec's codes.

use super::request::{VERSIONS, at_least};
use ipnet::IpNet;
use serde_json::{Value, json};
use std::net::IpAddr;

/// An error code of the spec (0-99) or of nsnet's own (100 and up).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// 1: a version nsnet does not speak.
    Version = 1,
    /// 2: a field nsnet does not know.
    Unsupported = 2,
    /// 3: the container is unknown (CHECK of an attachment nsnet lacks).
    Unknown = 3,
    /// 4: a missing or bad CNI_* variable.
    Env = 4,
    /// 5: stdin could not be read.
    Io = 5,
    /// 6: stdin is not JSON of the right shape.
    Decode = 6,
    /// 7: a configuration nsnet cannot serve.
    InvalidConfig = 7,
    /// 11: try again later (interrupted while waiting for the lock).
    TryAgain = 11,
    /// 50: STATUS: nsnet cannot serve an ADD now.
    Unavailable = 50,
    /// 100: the host refused a step; the change was rolled back.
    Failed = 100,
    /// 101: CHECK: the attachment is not as nsnet made it.
    Drifted = 101,
}

/// An error for the runtime: `msg` is one line, `details` the whole story.
#[derive(Debug, thiserror::Error)]
#[error("{msg}")]
pub struct Failure {
    pub code: Code,
    pub msg: String,
    pub details: String,
}

impl Failure {
    pub fn new(code: Code, msg: impl Into<String>) -> Failure {
        Failure {
            code,
            msg: msg.into(),
            details: String::new(),
        }
    }

    /// The same failure, of a plan that never ran because its builder
    /// refused the request: an invalid configuration, unless it is already
    /// something more precise than a failure.
    pub fn refused(self) -> Failure {
        match self.code {
            Code::Failed => Failure {
                code: Code::InvalidConfig,
                ..self
            },
            _ => self,
        }
    }

    /// The error JSON, in `version`.
    pub fn json(&self, version: &str) -> Value {
        let mut out = json!({
            "cniVersion": version,
            "code": self.code as u32,
            "msg": self.msg,
        });
        if !self.details.is_empty() {
            out["details"] = json!(self.details);
        }
        out
    }
}

/// VERSION's answer.
pub fn versions(version: &str) -> Value {
    json!({ "cniVersion": version, "supportedVersions": VERSIONS })
}

/// One interface of a result; `sandbox` is set for the container's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Iface {
    pub name: String,
    pub mac: Option<String>,
    pub sandbox: Option<String>,
}

/// What one ADD made: the bridge, the host end, the container end (in this
/// order), the container's addresses with their gateway, and its routes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attached {
    pub interfaces: Vec<Iface>,
    /// An address of the container's interface (the last of `interfaces`).
    pub ips: Vec<(IpNet, Option<IpAddr>)>,
    /// Routes in the container: destination and gateway.
    pub routes: Vec<(IpNet, IpAddr)>,
}

/// The ADD result in `version`: `prev` (a result of earlier plugins in the
/// chain) with nsnet's interfaces, addresses and routes after its own.
pub fn result(version: &str, prev: Option<&Value>, ours: &Attached, dns: Option<&Value>) -> Value {
    let old = !at_least(version, "1.0.0");
    let list = |key: &str| -> Vec<Value> {
        prev.and_then(|p| p.get(key))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let mut interfaces = list("interfaces");
    let offset = interfaces.len();
    for i in &ours.interfaces {
        let mut iface = json!({ "name": i.name });
        if let Some(mac) = &i.mac {
            iface["mac"] = json!(mac);
        }
        if let Some(sandbox) = &i.sandbox {
            iface["sandbox"] = json!(sandbox);
        }
        interfaces.push(iface);
    }
    let container = offset + ours.interfaces.len() - 1;
    let mut ips = list("ips");
    for (address, gateway) in &ours.ips {
        let mut ip = json!({ "address": address.to_string(), "interface": container });
        if let Some(gw) = gateway {
            ip["gateway"] = json!(gw.to_string());
        }
        ips.push(ip);
    }
    // 0.3.x and 0.4.0 name each address's family; 1.0.0 dropped the field.
    for ip in &mut ips {
        let Some(obj) = ip.as_object_mut() else {
            continue;
        };
        match old {
            true => {
                let v6 = obj
                    .get("address")
                    .and_then(Value::as_str)
                    .is_some_and(|a| a.contains(':'));
                obj.insert("version".into(), json!(if v6 { "6" } else { "4" }));
            }
            false => {
                obj.remove("version");
            }
        }
    }
    let mut routes = list("routes");
    for (dst, gw) in &ours.routes {
        routes.push(json!({ "dst": dst.to_string(), "gw": gw.to_string() }));
    }
    let mut out = json!({
        "cniVersion": version,
        "interfaces": interfaces,
        "ips": ips,
        "routes": routes,
    });
    match dns.or_else(|| prev.and_then(|p| p.get("dns"))) {
        Some(dns) => out["dns"] = dns.clone(),
        None => out["dns"] = json!({}),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours() -> Attached {
        Attached {
            interfaces: vec![
                Iface {
                    name: "cni0".into(),
                    mac: Some("02:00:00:00:00:01".into()),
                    sandbox: None,
                },
                Iface {
                    name: "nv1".into(),
                    mac: Some("02:00:00:00:00:02".into()),
                    sandbox: None,
                },
                Iface {
                    name: "eth0".into(),
                    mac: Some("02:00:00:00:00:03".into()),
                    sandbox: Some("/run/netns/c1".into()),
                },
            ],
            ips: vec![
                (
                    "10.88.0.2/24".parse().unwrap(),
                    Some("10.88.0.1".parse().unwrap()),
                ),
                (
                    "fd00::2/64".parse().unwrap(),
                    Some("fd00::1".parse().unwrap()),
                ),
            ],
            routes: vec![("0.0.0.0/0".parse().unwrap(), "10.88.0.1".parse().unwrap())],
        }
    }

    #[test]
    fn a_1_0_result_points_addresses_at_the_container_end_without_versions() {
        let out = result("1.0.0", None, &ours(), None);
        assert_eq!(out["cniVersion"], "1.0.0");
        assert_eq!(out["interfaces"][2]["sandbox"], "/run/netns/c1");
        assert_eq!(out["interfaces"][0].get("sandbox"), None);
        assert_eq!(out["ips"][0]["interface"], 2);
        assert_eq!(out["ips"][0]["address"], "10.88.0.2/24");
        assert_eq!(out["ips"][1]["gateway"], "fd00::1");
        assert_eq!(out["ips"][0].get("version"), None);
        assert_eq!(out["routes"][0]["dst"], "0.0.0.0/0");
        assert_eq!(out["dns"], json!({}));
    }

    #[test]
    fn a_0_4_result_names_each_address_family() {
        let out = result("0.4.0", None, &ours(), None);
        assert_eq!(out["ips"][0]["version"], "4");
        assert_eq!(out["ips"][1]["version"], "6");
    }

    #[test]
    fn a_previous_result_is_kept_and_indices_move_past_it() {
        let prev = json!({
            "cniVersion": "1.0.0",
            "interfaces": [{"name": "lo0", "sandbox": "/run/netns/c1"}],
            "ips": [{"address": "192.0.2.9/32", "interface": 0}],
            "routes": [{"dst": "192.0.2.0/24"}],
            "dns": {"nameservers": ["192.0.2.53"]},
        });
        let out = result("1.0.0", Some(&prev), &ours(), None);
        assert_eq!(out["interfaces"].as_array().unwrap().len(), 4);
        assert_eq!(out["interfaces"][0]["name"], "lo0");
        assert_eq!(out["ips"][0]["interface"], 0);
        assert_eq!(out["ips"][1]["interface"], 3);
        assert_eq!(out["routes"].as_array().unwrap().len(), 2);
        assert_eq!(out["dns"]["nameservers"][0], "192.0.2.53");
    }

    #[test]
    fn errors_carry_the_code_and_details_only_when_given() {
        let mut f = Failure::new(Code::InvalidConfig, "bad subnet");
        assert_eq!(
            f.json("0.4.0"),
            json!({"cniVersion": "0.4.0", "code": 7, "msg": "bad subnet"})
        );
        f.details = "more".into();
        assert_eq!(f.json("1.1.0")["details"], "more");
    }
}
