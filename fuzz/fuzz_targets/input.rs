//! Every parser of user input, on arbitrary text. None may panic, and what
//! they accept must be safe to put in an argument vector or a batch line:
//! only the allowed characters, within the limits, no `..`, never `host`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nsnet::model::names;
use nsnet::model::ports::{HostPort, Mapping};
use nsnet::model::validate::{self, End, IFNAME_MAX, IfName, NS_NAME_MAX, NsName};

fn safe(name: &str, max: usize) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        && name.len() <= max
        && !name.contains("..")
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(ns) = text.parse::<NsName>() {
        assert!(
            safe(ns.as_str(), NS_NAME_MAX) && ns.as_str() != "host",
            "{text:?}"
        );
        let eth0: IfName = "eth0".parse().unwrap();
        for derived in [names::port(&ns, &eth0), names::cable(&End::Ns(ns.clone()))] {
            assert!(
                safe(derived.as_str(), IFNAME_MAX),
                "{derived} from {text:?}"
            );
        }
    }
    if let Ok(ifname) = text.parse::<IfName>() {
        assert!(safe(ifname.as_str(), IFNAME_MAX), "{text:?}");
    }
    if let Ok(end) = text.parse::<End>() {
        assert_eq!(end.to_string(), text);
    }
    if let Ok(net) = validate::subnet(text) {
        assert!(
            net.prefix_len() <= 30 && net.addr() == net.network(),
            "{text:?}"
        );
    }
    if let Ok(m) = text.parse::<Mapping>() {
        assert!(m.host_port > 0 && m.port > 0, "{text:?}");
    }
    if let Ok(p) = text.parse::<HostPort>() {
        assert!(p.port > 0, "{text:?}");
    }
});
