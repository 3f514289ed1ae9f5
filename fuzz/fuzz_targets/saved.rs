//! What nsnet reads back from disk and from tools: `iptables-save` output,
//! its record and its journal. Damaged or hostile text must give an error,
//! never a panic, and a record that loads must hold only valid names.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nsnet::host::Firewall;
use nsnet::plan::Plan;
use nsnet::model::state::State;

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
    }
    let _ = serde_json::from_slice::<Plan>(data);
});
