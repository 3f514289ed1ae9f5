//! Who listens on the host's ports: TCP sockets in LISTEN and bound UDP
//! sockets of the host's network namespace, from the kernel's sock_diag
//! (from /proc/net/{tcp,tcp6,udp,udp6} on a captured host), and, for one
//! socket, the process that holds it (its inode among the links in
//! /proc/PID/fd). `publish` reads these so that it never takes
//! a port a program on the host is serving.

use crate::host::Roots;
use crate::model::ports::Proto;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A socket that owns a local port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub proto: Proto,
    /// The address it is bound to; unspecified (`0.0.0.0`, `::`) for all.
    pub addr: IpAddr,
    pub port: u16,
    pub inode: u64,
    /// The process that holds it, `(pid, name)`, where it could be found.
    pub holder: Option<(u32, String)>,
}

impl Listener {
    /// Whether it takes `port`/`proto` on `host_ip` (`None`: every address).
    pub fn takes(&self, proto: Proto, port: u16, host_ip: Option<IpAddr>) -> bool {
        self.proto == proto
            && self.port == port
            && (self.addr.is_unspecified() || host_ip.is_none_or(|ip| ip == self.addr))
    }
}

/// TCP state LISTEN and UDP state CLOSE ("unconnected": bound, waiting).
const TCP_LISTEN: &str = "0A";
const UDP_UNCONNECTED: &str = "07";

/// Asks the kernel (sock_diag) for the sockets of one protocol and family
/// in `states`: only the tables that hold them are walked, where reading
/// /proc/net/tcp walks every established connection of every namespace.
fn diag(proto: Proto, v6: bool) -> std::io::Result<Vec<Listener>> {
    use netlink_packet_core::{
        NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
    };
    use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
    use netlink_packet_sock_diag::{AF_INET, AF_INET6, IPPROTO_TCP, IPPROTO_UDP, SockDiagMessage};
    use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_SOCK_DIAG};
    let mut socket = Socket::new(NETLINK_SOCK_DIAG)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    let (protocol, states) = match proto {
        Proto::Tcp => (IPPROTO_TCP, StateFlags::LISTEN),
        Proto::Udp => (IPPROTO_UDP, StateFlags::CLOSE),
    };
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    let request = InetRequest {
        family: if v6 { AF_INET6 } else { AF_INET },
        protocol,
        extensions: ExtensionFlags::empty(),
        states,
        socket_id: if v6 {
            SocketId::new_v6()
        } else {
            SocketId::new_v4()
        },
    };
    let mut packet = NetlinkMessage::new(header, SockDiagMessage::InetRequest(request).into());
    packet.finalize();
    let mut buf = vec![0; packet.buffer_len()];
    packet.serialize(&mut buf);
    socket.send(&buf, 0)?;
    let mut out = Vec::new();
    loop {
        let (bytes, _) = socket.recv_from_full()?;
        let mut offset = 0;
        while offset < bytes.len() {
            let message = NetlinkMessage::<SockDiagMessage>::deserialize(&bytes[offset..])
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            match message.payload {
                NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(r)) => {
                    out.push(Listener {
                        proto,
                        addr: r.header.socket_id.source_address,
                        port: r.header.socket_id.source_port,
                        inode: u64::from(r.header.inode),
                        holder: None,
                    });
                }
                NetlinkPayload::Done(_) => return Ok(out),
                NetlinkPayload::Error(e) => {
                    return Err(e.to_io());
                }
                _ => {}
            }
            let length = message.header.length as usize;
            if length == 0 {
                break;
            }
            offset += length;
        }
    }
}

impl Roots {
    /// Every listening TCP and bound UDP socket of this network namespace.
    pub fn listeners(&self) -> Vec<Listener> {
        if self.kernel {
            let all = [
                (Proto::Tcp, false),
                (Proto::Tcp, true),
                (Proto::Udp, false),
                (Proto::Udp, true),
            ]
            .into_iter()
            .map(|(proto, v6)| diag(proto, v6))
            .collect::<std::io::Result<Vec<Vec<Listener>>>>();
            if let Ok(all) = all {
                let mut out: Vec<Listener> = all.into_iter().flatten().collect();
                self.hold(&mut out);
                return out;
            }
        }
        let mut out = Vec::new();
        for (file, proto, state) in [
            ("tcp", Proto::Tcp, TCP_LISTEN),
            ("tcp6", Proto::Tcp, TCP_LISTEN),
            ("udp", Proto::Udp, UDP_UNCONNECTED),
            ("udp6", Proto::Udp, UDP_UNCONNECTED),
        ] {
            if let Ok(text) = std::fs::read_to_string(self.proc.join("net").join(file)) {
                out.extend(parse(&text, proto, state));
            }
        }
        self.hold(&mut out);
        out
    }

    /// Names the process holding each of `listeners`.
    fn hold(&self, listeners: &mut [Listener]) {
        let inodes: BTreeSet<u64> = listeners.iter().map(|l| l.inode).collect();
        let holders = self.socket_holders(inodes);
        for l in listeners {
            l.holder = holders.get(&l.inode).cloned();
        }
    }

    /// The process holding each socket of `inodes`, `(pid, name)`: one pass
    /// over /proc/PID/fd, ending once all are found.
    fn socket_holders(&self, mut inodes: BTreeSet<u64>) -> BTreeMap<u64, (u32, String)> {
        let mut found = BTreeMap::new();
        let Ok(procs) = std::fs::read_dir(&self.proc) else {
            return found;
        };
        for entry in procs.flatten() {
            if inodes.is_empty() {
                break;
            }
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
                continue;
            };
            for fd in fds.flatten() {
                let Ok(link) = std::fs::read_link(fd.path()) else {
                    continue;
                };
                let inode = link
                    .to_str()
                    .and_then(|l| l.strip_prefix("socket:["))
                    .and_then(|l| l.strip_suffix(']'))
                    .and_then(|n| n.parse::<u64>().ok());
                if let Some(inode) = inode.filter(|i| inodes.remove(i)) {
                    let name =
                        std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
                    found.insert(inode, (pid, name.trim().to_string()));
                }
            }
        }
        found
    }
}

/// The sockets in one /proc/net table that are in `state`.
fn parse(text: &str, proto: Proto, state: &str) -> Vec<Listener> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.get(3) != Some(&state) {
                return None;
            }
            let (addr, port) = f.get(1)?.split_once(':')?;
            Some(Listener {
                proto,
                addr: address(addr)?,
                port: u16::from_str_radix(port, 16).ok()?,
                inode: f.get(9)?.parse().ok()?,
                holder: None,
            })
        })
        .collect()
}

/// A /proc/net address: 8 hex digits (IPv4) or 32 (IPv6), each 32-bit word
/// in the host's byte order, as the kernel prints them.
fn address(hex: &str) -> Option<IpAddr> {
    let word = |i: usize| -> Option<[u8; 4]> {
        let w = u32::from_str_radix(hex.get(i * 8..i * 8 + 8)?, 16).ok()?;
        Some(w.to_ne_bytes())
    };
    match hex.len() {
        8 => Some(IpAddr::V4(Ipv4Addr::from(word(0)?))),
        32 => {
            let mut bytes = [0u8; 16];
            for i in 0..4 {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            Some(IpAddr::V6(Ipv6Addr::from(bytes)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured from a throwaway host: sshd-like listeners on 0.0.0.0:2222
    /// and 127.0.0.1:8080, a connected socket, and udp on [::]:5353.
    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:08AE 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 41273 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 41274 1 0000000000000000 100 0 0 10 0
   2: 0100007F:1F90 0100007F:A0C2 01 00000000:00000000 00:00000000 00000000     0        0 41299 1 0000000000000000 20 4 30 10 -1
";
    const UDP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  12: 00000000000000000000000000000000:14E9 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 41400 2 0000000000000000 0
";

    #[test]
    fn listeners_are_read_and_connected_sockets_are_not() {
        let tcp = parse(TCP, Proto::Tcp, TCP_LISTEN);
        assert_eq!(tcp.len(), 2, "{tcp:?}");
        assert_eq!(tcp[0].addr, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert_eq!((tcp[0].port, tcp[0].inode), (2222, 41273));
        assert_eq!(tcp[1].addr, IpAddr::V4(Ipv4Addr::LOCALHOST));
        let udp = parse(UDP6, Proto::Udp, UDP_UNCONNECTED);
        assert_eq!(udp[0].addr, IpAddr::V6(Ipv6Addr::UNSPECIFIED));
        assert_eq!(udp[0].port, 5353);
    }

    #[test]
    fn a_listener_takes_a_port_on_its_address_or_on_all() {
        let tcp = parse(TCP, Proto::Tcp, TCP_LISTEN);
        let lo = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let other = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
        assert!(
            tcp[0].takes(Proto::Tcp, 2222, other),
            "0.0.0.0 takes every address"
        );
        assert!(
            !tcp[0].takes(Proto::Udp, 2222, None),
            "not another protocol"
        );
        assert!(
            tcp[1].takes(Proto::Tcp, 8080, None),
            "publishing on all takes 127.0.0.1 too"
        );
        assert!(tcp[1].takes(Proto::Tcp, 8080, lo));
        assert!(!tcp[1].takes(Proto::Tcp, 8080, other));
    }
}
