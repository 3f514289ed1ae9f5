//! What nsnet reads back from disk and from tools: `iptables-save` output,
//! its record and its journal. Damaged or hostile text must give an error,
//! never a panic, and a record that loads must hold only valid names.
//!
//! A record that loads is also taken as hostile: on a host where every name
//! it holds is something nsnet did not make (same names, other identities),
//! `down` must plan to delete nothing at all.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nsnet::host::{Firewall, Host, Link};
use nsnet::model::state::{NsStamp, State};
use nsnet::plan::Plan;

/// A host holding every name of `state`, none of them nsnet's object.
fn impostors(state: &State) -> Host {
    let mut host = Host {
        firewall: Some(Firewall::default()),
        firewall6: Some(Firewall::default()),
        ..Host::default()
    };
    for (name, entry) in &state.namespaces {
        let other = match entry.stamp {
            Some(s) => NsStamp { born: s.born.wrapping_add(1), ..s },
            None => NsStamp { dev: 4, ino: 1, born: 1 },
        };
        host.namespaces.insert(name.to_string());
        host.ns_stamps.insert(name.to_string(), other);
    }
    let recorded = state.bridges.iter().flat_map(|(name, b)| {
        let ports = b.ports.iter().map(|p| (p.host_ifname.to_string(), p.ifindex));
        std::iter::once((name.to_string(), b.ifindex)).chain(ports)
    });
    let cables = state.cables.iter().flat_map(|c| {
        [(c.a_ifname.to_string(), c.a_index), (c.b_ifname.to_string(), c.b_index)]
    });
    for (name, index) in recorded.chain(cables) {
        let ifindex = index.map_or(1, |i| i.wrapping_add(1));
        let link = Link { ifindex, kind: Some("veth".into()), master: None };
        host.links.insert(name.clone(), link);
    }
    host
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let fw = Firewall::parse(&text);
    for (_, line) in &fw.rules {
        assert!(line.starts_with("-A "));
    }
    if let Ok(state) = serde_json::from_slice::<State>(data) {
        for name in state.namespaces.keys() {
            assert!(name.as_str().parse::<nsnet::model::validate::NsName>().is_ok());
        }
        // A loaded record serializes and loads back the same.
        let again: State = serde_json::from_str(&serde_json::to_string(&state).unwrap()).unwrap();
        assert_eq!(again, state);
        if state.check().is_ok() {
            let host = impostors(&state);
            if let Ok(down) = nsnet::builders::down(true, &host, &state) {
                let deleted = down.plan.deletions();
                assert!(
                    deleted.namespaces.is_empty() && deleted.links.is_empty(),
                    "{}",
                    down.plan.script(false)
                );
            }
        }
    }
    let _ = serde_json::from_slice::<Plan>(data);
});
