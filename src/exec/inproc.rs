//! Commands of a plan that the runner carries out itself, over rtnetlink,
//! instead of starting the tool: the plan, its dry run and its journal still
//! say the command, and the kernel gets a request to the very same effect.
//! Only commands that cost a process for one small request are done so: a
//! bridge port's hairpin mode (`ip link set DEV type bridge_slave hairpin
//! on|off`, one per published namespace), which would otherwise start an
//! `ip` for every `publish add` and `publish del`.
//!
//! The hairpin mode is set by the bridge's own request (what `bridge link
//! set dev DEV hairpin on` sends: an RTM_SETLINK of family AF_BRIDGE with the
//! port's mode in IFLA_PROTINFO), not by `ip`'s RTM_NEWLINK with slave data.
//! Both end in the same bridge port setting, but the kernel answers `ip`'s
//! with a link change notice, and IPv6 then walks every route of the host
//! (`rt6_sync_up`) for that one port. With 500 ports (2,500 IPv6 routes) the
//! request took 0.45 ms that way and 0.03 ms this way (strace -T), and the
//! first grew with every port.
//!
//! A failure reads as the tool's would (`Cannot find device "DEV"`), so the
//! executor's messages and rollback do not tell the two apart.

use super::runner::{Exit, RunError};
use crate::host::netlink::{Kernel, os_error};
use crate::plan::cmd::{Cmd, Tool};
use netlink_packet_core::DefaultNla;
use netlink_packet_route::link::{LinkAttribute, LinkMessage, LinkProtoInfoBridge};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

/// The bridge port attribute of its hairpin mode (`IFLA_BRPORT_MODE`).
const IFLA_BRPORT_MODE: u16 = 4;

/// The bridge port and mode a host `ip link set DEV type bridge_slave
/// hairpin on|off` sets, if `cmd` is exactly that.
pub fn hairpin_of(cmd: &Cmd) -> Option<(&str, bool)> {
    if cmd.tool != Tool::Ip || cmd.stdin.is_some() {
        return None;
    }
    match cmd.args.as_slice() {
        [link, set, dev, ty, slave, hairpin, mode]
            if link == "link"
                && set == "set"
                && ty == "type"
                && slave == "bridge_slave"
                && hairpin == "hairpin" =>
        {
            match mode.as_str() {
                "on" => Some((dev.as_str(), true)),
                "off" => Some((dev.as_str(), false)),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Sets hairpin mode of bridge port `dev`, as `bridge link set` does: the
/// port found by name, then an AF_BRIDGE RTM_SETLINK for its index with the
/// mode, nested in IFLA_PROTINFO (see the module's comment).
pub fn hairpin(cmd: &Cmd, dev: &str, on: bool) -> Result<String, RunError> {
    let failed = |stderr: String| RunError::Failed {
        cmd: cmd.to_string(),
        status: Exit::Code(2),
        stderr,
    };
    let mut kernel = Kernel::here().map_err(|e| failed(format!("{e:#}")))?;
    let missing = || failed(format!("Cannot find device \"{dev}\""));
    let index = match kernel.link(Some(dev), 0) {
        Ok(Some((link, _))) => link.ifindex,
        Ok(None) => return Err(missing()),
        Err(err) => return Err(failed(format!("{err:#}"))),
    };
    match kernel.change(hairpin_request(index, on)) {
        Ok(()) => Ok(String::new()),
        Err(err) if os_error(&err) == Some(rustix::io::Errno::NODEV.raw_os_error()) => {
            Err(missing())
        }
        Err(err) => {
            let why = match os_error(&err) {
                // As `ip` words it: the text alone, without "(os error N)".
                Some(code) => {
                    let text = std::io::Error::from_raw_os_error(code).to_string();
                    text.split(" (os error")
                        .next()
                        .unwrap_or_default()
                        .to_string()
                }
                None => format!("{err:#}"),
            };
            Err(failed(format!("RTNETLINK answers: {why}")))
        }
    }
}

/// The AF_BRIDGE RTM_SETLINK that sets port `index`'s hairpin mode.
fn hairpin_request(index: u32, on: bool) -> RouteNetlinkMessage {
    let mut request = LinkMessage::default();
    request.header.interface_family = AddressFamily::Bridge;
    request.header.index = index;
    request.attributes.push(LinkAttribute::ProtoInfoBridge(vec![
        LinkProtoInfoBridge::Other(DefaultNla::new(IFLA_BRPORT_MODE, vec![u8::from(on)])),
    ]));
    RouteNetlinkMessage::SetLink(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hairpin_request_is_the_bridges_own() {
        use netlink_packet_core::{Emitable, NetlinkHeader, NetlinkMessage, NetlinkPayload};
        for on in [true, false] {
            let mut message = NetlinkMessage::new(
                NetlinkHeader::default(),
                NetlinkPayload::from(hairpin_request(7, on)),
            );
            message.finalize();
            let mut bytes = vec![0; message.buffer_len()];
            message.emit(&mut bytes);
            // nlmsghdr: RTM_SETLINK (19), not the RTM_NEWLINK `ip` sends.
            assert_eq!(u16::from_ne_bytes([bytes[4], bytes[5]]), 19);
            // ifinfomsg: family AF_BRIDGE (7), the port's index.
            assert_eq!(bytes[16], 7);
            assert_eq!(i32::from_ne_bytes(bytes[20..24].try_into().unwrap()), 7);
            // One attribute: IFLA_PROTINFO (12), nested (the kernel reads an
            // unnested one as an old STP state), holding IFLA_BRPORT_MODE.
            // Its length: its own header and the inner attribute (a header
            // and one byte, padded to four).
            let attrs = &bytes[32..];
            assert_eq!(u16::from_ne_bytes([attrs[2], attrs[3]]), 12 | 0x8000);
            assert_eq!(u16::from_ne_bytes([attrs[0], attrs[1]]), 12);
            assert_eq!(u16::from_ne_bytes([attrs[4], attrs[5]]), 5);
            assert_eq!(u16::from_ne_bytes([attrs[6], attrs[7]]), IFLA_BRPORT_MODE);
            assert_eq!(attrs[8], u8::from(on));
            assert_eq!(bytes.len(), 32 + 12);
        }
    }

    #[test]
    fn only_a_host_hairpin_setting_is_done_in_process() {
        let set = |args: &[&str]| Cmd::ip(args.iter().copied());
        let on = set(&[
            "link",
            "set",
            "nv-red",
            "type",
            "bridge_slave",
            "hairpin",
            "on",
        ]);
        assert_eq!(hairpin_of(&on), Some(("nv-red", true)));
        let off = set(&[
            "link",
            "set",
            "nv-red",
            "type",
            "bridge_slave",
            "hairpin",
            "off",
        ]);
        assert_eq!(hairpin_of(&off), Some(("nv-red", false)));
        for other in [
            set(&["link", "set", "nv-red", "up"]),
            set(&[
                "link",
                "set",
                "nv-red",
                "type",
                "bridge_slave",
                "hairpin",
                "maybe",
            ]),
            Cmd::ip_in(
                Some("red"),
                [
                    "link",
                    "set",
                    "eth0",
                    "type",
                    "bridge_slave",
                    "hairpin",
                    "on",
                ],
            ),
        ] {
            assert_eq!(hairpin_of(&other), None, "{other}");
        }
    }
}
