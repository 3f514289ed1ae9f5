//! Interface names nsnet derives itself. They are deterministic (the same
//! inputs always give the same name, so a later command finds what an earlier
//! one made), at most 15 bytes, and distinct for distinct inputs:
//!
//! - a short input gives `PP-INPUT` (`nv-red`), readable in `ip link`;
//! - a long one gives `PP` and 13 hex digits of a 64-bit FNV-1a hash.
//!
//! The two forms cannot meet, since only the short one has `-` third; two long
//! inputs would need a 52-bit hash collision, and builders still refuse a name
//! that some other interface already holds.

use crate::model::validate::{End, IfName, NsName};

/// How long an input may be to keep the readable form.
const SHORT: usize = 12;

fn derive(prefix: &str, input: &str, readable: bool) -> IfName {
    let name = if readable && input.len() <= SHORT {
        format!("{prefix}-{input}")
    } else {
        format!("{prefix}{:013x}", fnv1a(input.as_bytes()) >> 12)
    };
    IfName::parse("derived interface name", &name).expect("derived names are valid")
}

/// 64-bit FNV-1a: tiny, and stable across Rust releases, unlike std's hasher.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The MAC address nsnet gives bridge `name`: locally administered, unicast,
/// the rest from a hash of the name, so the same bridge gets the same one.
/// Set at creation, it never changes; a bridge left to choose takes the
/// lowest of its ports' and changes when a port with a lower one joins.
pub fn bridge_mac(name: &IfName) -> String {
    let h = fnv1a(name.as_str().as_bytes()).to_be_bytes();
    format!(
        "02:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        h[0], h[1], h[2], h[3], h[4]
    )
}

/// The host end of the veth that puts `ifname` of namespace `ns` on a bridge.
pub fn port(ns: &NsName, ifname: &IfName) -> IfName {
    if ifname.as_str() == "eth0" {
        derive("nv", ns.as_str(), true)
    } else {
        // `/` cannot occur in a namespace name, so this input differs from
        // every plain namespace name.
        derive("nv", &format!("{ns}/{ifname}"), false)
    }
}

/// The end of a cable that lives in one namespace and leads to `peer`.
pub fn cable(peer: &End) -> IfName {
    derive("vc", &peer.to_string(), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(s: &str) -> NsName {
        s.parse().unwrap()
    }

    #[test]
    fn short_names_stay_readable() {
        let eth0: IfName = "eth0".parse().unwrap();
        assert_eq!(port(&ns("red"), &eth0).as_str(), "nv-red");
        assert_eq!(port(&ns("abcdefghijkl"), &eth0).as_str(), "nv-abcdefghijkl");
        assert_eq!(cable(&End::Host).as_str(), "vc-host");
        assert_eq!(cable(&End::Ns(ns("blue"))).as_str(), "vc-blue");
    }

    #[test]
    fn long_names_are_hashed_deterministically_within_the_limit() {
        let eth0: IfName = "eth0".parse().unwrap();
        let long = ns("a-very-long-namespace-name-for-ci-job-1234");
        let name = port(&long, &eth0);
        assert_eq!(name.as_str().len(), 15);
        assert!(name.as_str().starts_with("nv") && !name.as_str().starts_with("nv-"));
        assert_eq!(name, port(&long, &eth0));
    }

    #[test]
    fn distinct_inputs_give_distinct_names() {
        let eth0: IfName = "eth0".parse().unwrap();
        let eth1: IfName = "eth1".parse().unwrap();
        let mut seen = std::collections::HashSet::new();
        for i in 0..20_000 {
            let short = ns(&format!("n{i}"));
            let long = ns(&format!("namespace-with-a-long-name-{i}"));
            for name in [
                port(&short, &eth0),
                port(&short, &eth1),
                port(&long, &eth0),
                port(&long, &eth1),
            ] {
                assert!(seen.insert(name.clone()), "collision on {name}");
            }
        }
    }
}
