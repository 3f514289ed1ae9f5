//! A real runtime drives nsnet: podman 4.3 with its CNI backend, offline, in
//! a throwaway host. podman needs more of the file system covered than the
//! other tests: everything it writes (/run, /var/lib/containers and
//! /var/lib/cni, /etc/cni/net.d, /var/tmp, /tmp) is a tmpfs here, and
//! /sys/fs/cgroup a cgroup2 mount of this mount namespace only. Containers
//! run a static busybox from a directory (`--rootfs`): no image, no registry.

mod common;

use common::{Sandbox, assert_same};

/// The network podman is given: nsnet on bridge `nsnet-pods`, with NAT and
/// port mappings.
const CONFLIST: &str = r#"{
  "cniVersion": "1.0.0",
  "name": "pods",
  "plugins": [
    {
      "type": "nsnet",
      "bridge": "nsnet-pods",
      "subnet": "10.88.0.0/24",
      "nat": true,
      "capabilities": {"portMappings": true}
    }
  ]
}"#;

/// Covers what podman writes with tmpfs, copies nsnet where podman looks
/// for plugins (copied, not linked: the build may be under /tmp, which is
/// covered next) and a busybox root file system, inside the throwaway host.
fn podman_host(sb: &Sandbox) {
    let nsnet = env!("CARGO_BIN_EXE_nsnet");
    sb.ok(&format!(
        "set -e
        mount -t tmpfs podman-run /run
        mkdir -p /run/netns /run/nsnet /run/lock /run/cni-bin /run/rootfs
        cp {nsnet} /run/cni-bin/nsnet
        mount -t tmpfs podman-lib /var/lib
        mkdir -p /var/lib/containers /var/lib/cni
        for d in /etc/cni/net.d /var/tmp /tmp; do mkdir -p $d && mount -t tmpfs podman-tmp $d; done
        umount -R /sys/fs/cgroup 2>/dev/null || true
        mount -t cgroup2 none /sys/fs/cgroup
        printf '[engine]\\nevents_logger = \"file\"\\ncgroup_manager = \"cgroupfs\"\\n[network]\\nnetwork_backend = \"cni\"\\ncni_plugin_dirs = [\"/run/cni-bin\", \"/usr/lib/cni\"]\\n' > /run/containers.conf
        cd /run/rootfs && mkdir -p bin proc sys dev etc tmp run var www
        cp /bin/busybox bin/ && for a in $(bin/busybox --list); do [ $a = busybox ] || ln -sf busybox bin/$a; done
        echo hello-from-web > www/index.html"
    ));
    sb.ok(&format!(
        "printf '%s' '{CONFLIST}' > /etc/cni/net.d/10-nsnet.conflist"
    ));
}

/// Runs podman with the throwaway host's settings.
fn podman(sb: &Sandbox, args: &str) -> String {
    sb.ok(&format!(
        "CONTAINERS_CONF=/run/containers.conf podman --network-backend cni --cgroup-manager cgroupfs --storage-driver vfs {args}"
    ))
}

/// `podman run` options every container here needs (before `--rootfs DIR`,
/// after which the command follows).
const RUN: &str =
    "run --cgroups disabled --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 --network pods";

#[test]
fn podman_containers_talk_publish_and_leave_the_host_as_before() {
    let mut sb = sandbox!();
    // /run first: `outside` lives in /run/netns.
    podman_host(&sb);
    sb.outside();
    let before = sb.snapshot();
    podman(
        &sb,
        &format!("{RUN} -d --name web -p 8080:80 --rootfs /run/rootfs /bin/httpd -f -p 80 -h /www"),
    );
    // The container's address, as nsnet answered podman.
    let ip = podman(
        &sb,
        "inspect -f '{{.NetworkSettings.Networks.pods.IPAddress}}' web",
    );
    let ip = ip.trim();
    assert_eq!(ip, "10.88.0.2");
    // The build's own binary may be under /tmp, now covered: its copy.
    let status = sb.ok("/run/cni-bin/nsnet status");
    assert!(status.contains("of CNI network pods"), "{status}");
    // From another machine and from the host, through the published port.
    // (Debian's static busybox wget crashes outside a container: socat.)
    let fetch = |from: &str, addr: &str| {
        let get = format!(
            "printf 'GET /index.html HTTP/1.0\r\n\r\n' | {from} socat -T2 - TCP4:{addr}:8080"
        );
        sb.sh(&format!(
            "for i in $(seq 25); do {get} | grep hello && break; sleep 0.2; done"
        ))
    };
    let remote = fetch("ip netns exec outside", "172.31.0.1");
    assert_eq!(
        String::from_utf8_lossy(&remote.stdout).trim(),
        "hello-from-web"
    );
    let local = fetch("", "127.0.0.1");
    assert_eq!(
        String::from_utf8_lossy(&local.stdout).trim(),
        "hello-from-web"
    );
    // A second container reaches the first, and the outside through NAT.
    sb.serve("outside", "tcp", 7);
    let out = podman(
        &sb,
        &format!(
            "{RUN} --rm --rootfs /run/rootfs /bin/sh -c 'printf \"GET /index.html HTTP/1.0\\r\\n\\r\\n\" | nc -w 2 {ip} 80; for i in 1 2 3 4 5; do echo hi | nc -w 2 198.51.100.7 7 && break; sleep 0.2; done'"
        ),
    );
    assert!(out.contains("hello-from-web"), "{out}");
    assert!(out.contains("outside from 172.31.0.1"), "{out}");
    sb.stop_background();
    // The last container goes: nothing of the network stays.
    podman(&sb, "rm -f -t 0 web");
    assert_same(&before, &sb.snapshot());
}
