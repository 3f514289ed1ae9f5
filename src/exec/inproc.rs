//! Commands of a plan that the runner carries out itself, over rtnetlink,
//! instead of starting the tool: the plan, its dry run and its journal still
//! say the command, and the kernel gets the very request the tool would
//! send. Only commands that cost a process for one small request are done
//! so: a bridge port's hairpin mode (`ip link set DEV type bridge_slave
//! hairpin on|off`, one per published namespace), which would otherwise
//! start an `ip` for every `publish add` and `publish del`.
//!
//! A failure reads as the tool's would (`Cannot find device "DEV"`), so the
//! executor's messages and rollback do not tell the two apart.

use super::runner::{Exit, RunError};
use crate::host::netlink::{Kernel, os_error};
use crate::plan::cmd::{Cmd, Tool};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::{
    InfoBridgePort, InfoPortData, InfoPortKind, LinkAttribute, LinkInfo, LinkMessage,
};

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

/// Sets hairpin mode of bridge port `dev`, as `ip link set` does: an
/// RTM_NEWLINK for the existing interface, found by name, with the bridge
/// port's mode in its slave data.
pub fn hairpin(cmd: &Cmd, dev: &str, on: bool) -> Result<String, RunError> {
    let failed = |stderr: String| RunError::Failed {
        cmd: cmd.to_string(),
        status: Exit::Code(2),
        stderr,
    };
    let mut request = LinkMessage::default();
    request
        .attributes
        .push(LinkAttribute::IfName(dev.to_string()));
    request.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::PortKind(InfoPortKind::Bridge),
        LinkInfo::PortData(InfoPortData::BridgePort(vec![InfoBridgePort::HairpinMode(
            on,
        )])),
    ]));
    let mut kernel = Kernel::here().map_err(|e| failed(format!("{e:#}")))?;
    match kernel.change(RouteNetlinkMessage::NewLink(request)) {
        Ok(()) => Ok(String::new()),
        Err(err) if os_error(&err) == Some(rustix::io::Errno::NODEV.raw_os_error()) => {
            Err(failed(format!("Cannot find device \"{dev}\"")))
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

#[cfg(test)]
mod tests {
    use super::*;

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
