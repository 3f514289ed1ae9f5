//! The harness that plays a container runtime for the CNI tests: the real
//! nsnet run with no arguments, the CNI_* environment and the network
//! configuration on stdin, in a throwaway host. It stores each ADD's
//! result for the DEL that follows, as runtimes do; the containers'
//! namespaces are made by the tests, as a runtime makes them.

use super::Sandbox;
use serde_json::{Value, json};
use std::io::Write;
use std::process::Stdio;

/// A network configuration on bridge `cni0`, 10.88.0.0/24, with NAT.
pub fn conf(version: &str) -> Value {
    json!({
        "cniVersion": version,
        "name": "pods",
        "type": "nsnet",
        "bridge": "cni0",
        "subnet": "10.88.0.0/24",
        "nat": true,
        "capabilities": {"portMappings": true},
    })
}

/// What one plugin call gave: exit status, stdout as JSON (Null if none),
/// stderr.
pub struct Answer {
    pub code: i32,
    pub out: Value,
    pub err: String,
}

/// Runs nsnet as a plugin in the throwaway host: `command`, the attachment
/// (container id, netns path, interface; empty strings are left unset) and
/// `stdin`.
pub fn call(sb: &Sandbox, command: &str, att: (&str, &str, &str), stdin: &Value) -> Answer {
    call_with(sb, command, att, stdin, &[])
}

pub fn call_with(
    sb: &Sandbox,
    command: &str,
    (id, netns, ifname): (&str, &str, &str),
    stdin: &Value,
    env: &[(&str, &str)],
) -> Answer {
    let mut cmd = sb.command(env!("CARGO_BIN_EXE_nsnet"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("CNI_COMMAND", command)
        .env("CNI_PATH", "/usr/lib/cni");
    for (key, value) in [
        ("CNI_CONTAINERID", id),
        ("CNI_NETNS", netns),
        ("CNI_IFNAME", ifname),
    ] {
        if !value.is_empty() {
            cmd.env(key, value);
        }
    }
    cmd.envs(env.iter().copied());
    answer(cmd, stdin)
}

/// Runs a plugin (`cmd`, its environment set) with `stdin` and reads its
/// answer.
pub fn answer(mut cmd: std::process::Command, stdin: &Value) -> Answer {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = stdin.to_string();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    Answer {
        code: out.status.code().unwrap_or(-1),
        out: serde_json::from_str(stdout.trim()).unwrap_or(Value::Null),
        err: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn path(ns: &str) -> String {
    format!("/run/netns/{ns}")
}

/// ADD of container `id` in namespace `ns` (made first, as a runtime does),
/// which must succeed; returns the result.
pub fn add(sb: &Sandbox, conf: &Value, id: &str, ns: &str) -> Value {
    sb.ok(&format!("ip netns add {ns}"));
    let a = call(sb, "ADD", (id, &path(ns), "eth0"), conf);
    assert_eq!(a.code, 0, "ADD {id}: {}{}", a.out, a.err);
    a.out
}

/// DEL as a runtime sends it: the ADD's result as `prevResult`.
pub fn del(sb: &Sandbox, conf: &Value, id: &str, ns: &str, result: &Value) {
    let mut stdin = conf.clone();
    stdin["prevResult"] = result.clone();
    let a = call(sb, "DEL", (id, &path(ns), "eth0"), &stdin);
    assert_eq!(a.code, 0, "DEL {id}: {}{}", a.out, a.err);
    assert_eq!(a.out, Value::Null, "DEL prints nothing");
}

pub fn with_ports(conf: &Value, ports: Value) -> Value {
    let mut c = conf.clone();
    c["runtimeConfig"] = json!({ "portMappings": ports });
    c
}

/// ADD into a namespace that already exists.
pub fn add_existing(sb: &Sandbox, conf: &Value, id: &str, ns: &str) -> Value {
    let a = call(sb, "ADD", (id, &path(ns), "eth0"), conf);
    assert_eq!(a.code, 0, "ADD {id}: {}{}", a.out, a.err);
    a.out
}
