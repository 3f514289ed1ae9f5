//! `nat`: outbound NAT for a bridge's subnet. The builder only records the
//! wish; `firewall::reconcile` turns it into rules and sysctls.

use super::Change;
use crate::host::Host;
use crate::model::state::{Nat, State};
use crate::model::validate::IfName;
use anyhow::{Result, bail};

/// `nat up`: masquerade the bridge's subnet on its way out (through `out`
/// only, or any interface but the bridge).
pub fn up(bridge: &IfName, out: Option<&IfName>, host: &Host, state: &State) -> Result<Change> {
    let mut change = Change::from(state);
    let Some(entry) = change.state.bridges.get_mut(bridge) else {
        bail!(
            "bridge `{bridge}` was not made by nsnet (make it with `nsnet bridge up NS... --bridge {bridge}`)"
        );
    };
    super::bridge::owned(bridge, entry, host)?;
    if let Some(out) = out {
        if out == bridge {
            bail!(crate::model::validate::InputError::OutIsBridge(
                out.to_string()
            ));
        }
        if !host.links.contains_key(out.as_str()) {
            bail!("interface `{out}` does not exist on the host (see `ip link`)");
        }
    }
    entry.nat = Some(Nat { out: out.cloned() });
    Ok(change)
}

/// `nat down`: no more NAT for the bridge.
pub fn down(bridge: &IfName, state: &State) -> Result<Change> {
    let mut change = Change::from(state);
    if let Some(entry) = change.state.bridges.get_mut(bridge) {
        entry.nat = None;
    }
    Ok(change)
}
