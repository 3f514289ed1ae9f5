//! Every `up`/`add` run twice changes nothing the second time; every
//! `down`/`del` run twice succeeds, and the host ends as it began.

mod common;

use common::{Sandbox, assert_same};

const UPS: &[&[&str]] = &[
    &["netns", "add", "solo"],
    &["veth", "add", "solo", "host", "--subnet", "10.60.0.0/30"],
    &["netns", "add", "solo", "--dns", "192.0.2.53"],
    &["route", "add", "solo", "default", "via", "10.60.0.2"],
    &["bridge", "up", "red", "blue"],
    &["bridge", "up", "green", "--bridge", "br2"],
    &["nat", "up"],
    &["publish", "add", "red", "8080:80", "5353:53/udp"],
    &[
        "publish",
        "add",
        "blue",
        "9090:90",
        "--host-ip",
        "127.0.0.1",
    ],
    &[
        "publish",
        "add",
        "green",
        "7070:70",
        "--allow",
        "192.0.2.0/24,127.0.0.1",
    ],
    &["firewall", "deny", "10.0.0.0/8", "192.168.0.0/16", "--log"],
    &["firewall", "allow", "10.1.2.0/24"],
    &["firewall", "allow", "--bridge", "br2", "10.200.0.0/24"],
];

const DOWNS: &[&[&str]] = &[
    &["route", "del", "solo", "default"],
    &["firewall", "del", "10.0.0.0/8", "10.1.2.0/24"],
    &["firewall", "del", "--bridge", "br2", "10.200.0.0/24"],
    &["publish", "del", "green", "7070"],
    &["publish", "del", "blue", "9090"],
    &["publish", "del", "red", "8080", "5353/udp"],
    &["nat", "down"],
    &["bridge", "down", "green", "--bridge", "br2"],
    &["bridge", "down", "--bridge", "br2"],
    &["bridge", "down"],
    &["veth", "del", "host", "solo"],
    &["netns", "del", "solo"],
    &["down"],
];

#[test]
fn ups_twice_change_nothing_the_second_time_and_downs_twice_succeed() {
    let Some(sb) = Sandbox::new() else { return };
    let before = sb.snapshot();
    for args in UPS {
        sb.nsnet(*args).assert().success();
        let once = sb.snapshot();
        sb.nsnet(*args).assert().success();
        assert_same(&once, &sb.snapshot());
        let dry = sb.nsnet(*args).arg("--dry-run").output().unwrap().stdout;
        assert_eq!(
            String::from_utf8_lossy(&dry),
            "# nothing to do: the host already matches\n",
            "{args:?}"
        );
    }
    for args in DOWNS {
        sb.nsnet(*args).assert().success();
        let once = sb.snapshot();
        sb.nsnet(*args).assert().success();
        assert_same(&once, &sb.snapshot());
    }
    assert_same(&before, &sb.snapshot());
    eprintln!(
        "reliability: idempotency: {} up/add commands run twice (second: no change), {} down/del twice (both succeed)",
        UPS.len(),
        DOWNS.len()
    );
}
