//! Many nsnet processes at once: the lock makes them take turns, so none
//! loses another's rule and no address is handed out twice.

mod common;

use common::Sandbox;

#[test]
fn twenty_processes_attach_and_publish_at_once() {
    let Some(sb) = Sandbox::new() else { return };
    let nsnet = env!("CARGO_BIN_EXE_nsnet");
    sb.ok(&format!(
        "for i in $(seq 1 20); do \
           ( {nsnet} -q bridge up ns$i && {nsnet} -q publish add ns$i $((9000 + i)):80 ) > /dev/null & \
         done; fail=0; for job in $(jobs -p); do wait $job || fail=1; done; exit $fail"
    ));
    let addresses =
        sb.ok("for i in $(seq 1 20); do ip -n ns$i -4 -o addr show eth0 | awk '{print $4}'; done");
    let mut seen: Vec<&str> = addresses.lines().collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 20, "20 distinct addresses: {addresses}");
    let rules = sb.ok("iptables-save -t nat | grep -c -- '-j DNAT'");
    assert_eq!(rules.trim(), "20", "one DNAT rule per published port");
    let status = sb.nsnet(["status", "--json"]).output().unwrap().stdout;
    let status: serde_json::Value = serde_json::from_slice(&status).unwrap();
    assert_eq!(status["drift"], serde_json::json!([]));
    assert_eq!(status["published"].as_array().unwrap().len(), 20);
    eprintln!(
        "reliability: concurrency: 20 nsnet processes at once: 20 distinct addresses, 20 of 20 rules, no drift"
    );
    // Each published port leads to its own namespace.
    let mut sb = sb;
    sb.serve("ns7", "tcp", 80);
    sb.serve("ns13", "tcp", 80);
    assert!(
        sb.ask(None, "tcp", "127.0.0.1", 9007, true)
            .starts_with("ns7 from")
    );
    assert!(
        sb.ask(None, "tcp", "127.0.0.1", 9013, true)
            .starts_with("ns13 from")
    );
}

#[test]
fn two_racing_for_one_host_port_one_wins() {
    let Some(sb) = Sandbox::new() else { return };
    let nsnet = env!("CARGO_BIN_EXE_nsnet");
    sb.nsnet(["bridge", "up", "red", "blue"]).assert().success();
    let out = sb.ok(&format!(
        "{nsnet} publish add red 8080:80 > /dev/null 2> /run/nsnet/red.err & r=$!; \
         {nsnet} publish add blue 8080:80 > /dev/null 2> /run/nsnet/blue.err & b=$!; \
         wait $r; echo red=$?; wait $b; echo blue=$?; cat /run/nsnet/red.err /run/nsnet/blue.err"
    ));
    let winners = ["red=0", "blue=0"]
        .iter()
        .filter(|w| out.contains(*w))
        .count();
    assert_eq!(winners, 1, "{out}");
    assert!(
        out.contains("nsnet: host port 8080/tcp is already published for `"),
        "{out}"
    );
    assert_eq!(
        sb.ok("iptables-save -t nat | grep -c -- '--dport 8080'")
            .trim(),
        "1"
    );
}
