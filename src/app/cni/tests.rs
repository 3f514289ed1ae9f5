//! The front end's answers that need no host: VERSION, and every request
//! refused before anything is read or changed, with the spec's code.

use super::reply::Code;
use super::serve;
use serde_json::json;

const NET: &str = r#"{"cniVersion":"1.0.0","name":"pods","type":"nsnet","bridge":"nsnet0","subnet":"10.88.0.0/24"}"#;

/// `serve` with `env` as the whole environment.
fn ask(env: &[(&str, &str)], stdin: &str) -> Result<Option<serde_json::Value>, (Code, String)> {
    let var = |key: &str| {
        env.iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.to_string())
    };
    serve(stdin, &var).map_err(|f| (f.code, f.msg))
}

fn code(env: &[(&str, &str)], stdin: &str) -> Code {
    ask(env, stdin).expect_err("refused").0
}

const ADD: [(&str, &str); 4] = [
    ("CNI_COMMAND", "ADD"),
    ("CNI_CONTAINERID", "c1"),
    ("CNI_IFNAME", "eth0"),
    ("CNI_NETNS", "/run/netns/nsnet-unit-test-absent"),
];

#[test]
fn version_answers_with_the_asked_version_and_every_one_spoken() {
    let out = ask(&[("CNI_COMMAND", "VERSION")], r#"{"cniVersion":"0.4.0"}"#)
        .unwrap()
        .unwrap();
    assert_eq!(out["cniVersion"], "0.4.0");
    assert_eq!(
        out["supportedVersions"],
        json!(["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])
    );
    // 0.4.0 sends nothing on stdin; other variables are not looked at.
    let out = ask(&[("CNI_COMMAND", "VERSION"), ("CNI_NETNS", "dummy")], "")
        .unwrap()
        .unwrap();
    assert_eq!(out["cniVersion"], "1.1.0");
}

#[test]
fn bad_requests_get_the_spec_codes() {
    type Env<'a> = &'a [(&'a str, &'a str)];
    let cases: &[(Env, &str, Code)] = &[
        (&[("CNI_COMMAND", "FROB")], NET, Code::Env),
        (&[], NET, Code::Env),
        (&ADD, "{not json", Code::Decode),
        (&ADD, r#"{"cniVersion":"9.9.9","name":"x"}"#, Code::Version),
        (
            &ADD,
            r#"{"cniVersion":"1.0.0","name":"pods","bridge":"nsnet0","subnett":"10.0.0.0/24"}"#,
            Code::Unsupported,
        ),
        (
            &ADD,
            r#"{"cniVersion":"1.0.0","name":"pods","bridge":"nsnet0","subnet":"10.0.0.300/24"}"#,
            Code::InvalidConfig,
        ),
        (
            &ADD,
            r#"{"cniVersion":"1.0.0","name":"pods","bridge":"a-bridge-name-too-long"}"#,
            Code::InvalidConfig,
        ),
        (
            &ADD,
            r#"{"cniVersion":"1.0.0","name":"pods"}"#,
            Code::InvalidConfig,
        ),
        (
            &ADD,
            r#"{"cniVersion":"1.0.0","name":"pods","bridge":"b","subnet":"10.0.0.0/24","subnets":["10.0.1.0/24"]}"#,
            Code::InvalidConfig,
        ),
        (
            &ADD,
            r#"{"cniVersion":"1.0.0","name":"pods","bridge":"b","capabilities":{"portMappings":true},"runtimeConfig":{"portMappings":[{"hostPort":70000,"containerPort":80,"protocol":"tcp"}]}}"#,
            Code::InvalidConfig,
        ),
        (
            &ADD,
            r#"{"cniVersion":"1.0.0","name":"pods","bridge":"b","runtimeConfig":{"portMappings":[{"hostPort":80,"containerPort":80,"protocol":"sctp"}]}}"#,
            Code::InvalidConfig,
        ),
        (
            &[
                ("CNI_COMMAND", "ADD"),
                ("CNI_CONTAINERID", "c1"),
                ("CNI_NETNS", "/run/netns/x"),
            ],
            NET,
            Code::Env,
        ),
        (
            &[
                ("CNI_COMMAND", "ADD"),
                ("CNI_CONTAINERID", "c1"),
                ("CNI_IFNAME", "an-interface-name-too-long"),
                ("CNI_NETNS", "/run/netns/x"),
            ],
            NET,
            Code::Env,
        ),
        (
            &[
                ("CNI_COMMAND", "ADD"),
                ("CNI_CONTAINERID", "-starts-badly"),
                ("CNI_IFNAME", "eth0"),
                ("CNI_NETNS", "/run/netns/x"),
            ],
            NET,
            Code::Env,
        ),
        // A path that is no namespace in /run/netns.
        (
            &[
                ("CNI_COMMAND", "ADD"),
                ("CNI_CONTAINERID", "c1"),
                ("CNI_IFNAME", "eth0"),
                ("CNI_NETNS", "/etc/hostname"),
            ],
            NET,
            Code::Env,
        ),
        (&ADD, NET, Code::Env),
        (&[("CNI_COMMAND", "GC")], NET, Code::Version),
        (
            &[("CNI_COMMAND", "GC")],
            r#"{"cniVersion":"1.1.0","name":"pods","bridge":"b"}"#,
            Code::InvalidConfig,
        ),
        (&[("CNI_COMMAND", "STATUS")], NET, Code::Version),
        (
            &[
                ("CNI_COMMAND", "CHECK"),
                ("CNI_CONTAINERID", "c1"),
                ("CNI_IFNAME", "eth0"),
                ("CNI_NETNS", "/run/netns/x"),
            ],
            r#"{"cniVersion":"0.3.1","name":"pods","bridge":"b"}"#,
            Code::Version,
        ),
    ];
    for (env, stdin, want) in cases {
        assert_eq!(code(env, stdin), *want, "{env:?} {stdin}");
    }
}

#[test]
fn null_lists_of_go_runtimes_are_empty_ones() {
    use super::request::{leave, network};
    let net = network(
        r#"{"cniVersion":"1.0.0","name":"pods","bridge":"b","subnets":null,"deny":null,"allow":null,
            "gateway":null,"runtimeConfig":{"portMappings":null}}"#,
    )
    .unwrap();
    assert!(net.ports.is_empty() && net.deny.is_empty() && net.allow.is_empty());
    assert_eq!((net.subnet, net.gateway), (None, None));
    // GC: `null` is a list with nothing in it (CRI-O's, for a network with
    // no pod left); absent is no list at all.
    let gc = |extra: &str| {
        leave(&format!(r#"{{"cniVersion":"1.1.0","name":"pods"{extra}}}"#))
            .unwrap()
            .valid
    };
    assert_eq!(gc(r#","cni.dev/valid-attachments":null"#), Some(Vec::new()));
    assert_eq!(gc(r#","cni.dev/attachments":null"#), Some(Vec::new()));
    assert_eq!(gc(""), None);
}

#[test]
fn del_reads_only_the_version_and_name_and_never_the_namespace() {
    // Keys nsnet does not know, values it would refuse on ADD, a namespace
    // path that is none and CNI_ARGS it cannot read: none of it is looked
    // at for a DEL.
    let leave = super::request::leave(
        r#"{"cniVersion":"1.0.0","name":"pods","bridge":"far-too-long-a-name","mtu":1400,
            "runtimeConfig":{"portMappings":[{"hostPort":80,"containerPort":80,"protocol":"sctp"}]}}"#,
    )
    .unwrap();
    assert_eq!(
        (leave.version.as_str(), leave.name.as_str()),
        ("1.0.0", "pods")
    );
    let env = |key: &str| match key {
        "CNI_CONTAINERID" => Some("c1".to_string()),
        "CNI_IFNAME" => Some("eth0".to_string()),
        "CNI_NETNS" => Some("/etc/hostname".to_string()),
        "CNI_ARGS" => Some("IP=not-an-address".to_string()),
        _ => None,
    };
    let t = super::request::target(super::request::Command::Del, &env)
        .unwrap()
        .unwrap();
    assert_eq!(t.ns, None);
    // Still: no version, or none nsnet speaks, is refused.
    assert_eq!(
        code(&[("CNI_COMMAND", "DEL")], r#"{"name":"pods"}"#),
        Code::InvalidConfig
    );
    assert_eq!(
        code(
            &[("CNI_COMMAND", "DEL")],
            r#"{"cniVersion":"9.0.0","name":"pods"}"#
        ),
        Code::Version
    );
}

#[test]
fn an_ipv6_subnet_alone_is_refused() {
    let (c, msg) = ask(
        &ADD,
        r#"{"cniVersion":"1.0.0","name":"pods","bridge":"b","subnet":"fd00:1::/64"}"#,
    )
    .unwrap_err();
    assert_eq!(c, Code::InvalidConfig);
    assert!(msg.contains("IPv4"), "{msg}");
}

#[test]
fn messages_name_configuration_keys_not_command_line_options() {
    assert_eq!(
        super::in_config_terms(
            "leave out --gateway, or `nsnet bridge down --bridge cni0` first (choose another --bridge)"
        ),
        "leave out `gateway`, or `nsnet bridge down --bridge cni0` first (choose another `bridge`)"
    );
}

#[test]
fn an_unknown_field_is_named_in_the_message() {
    let (_, msg) = ask(
        &ADD,
        r#"{"cniVersion":"1.0.0","name":"pods","bridge":"nsnet0","ipam":{"type":"host-local"}}"#,
    )
    .unwrap_err();
    assert!(msg.contains("`ipam`"), "{msg}");
    assert!(msg.contains("host-local"), "{msg}");
}
