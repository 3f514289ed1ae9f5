//! `firewall`: what a bridge's namespaces may not reach (`deny`), and the
//! exceptions (`allow`), which also open the isolation between nsnet's
//! bridges. The builder only changes the record's `Policy`;
//! `firewall::reconcile` writes NSNET-POLICY from it (see `model::policy`).

use super::Change;
use crate::host::Host;
use crate::model::state::{Deny, Policy, State};
use crate::model::validate::IfName;
use anyhow::{Result, bail};
use ipnet::IpNet;

/// What a `firewall` command does to a bridge's policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edit {
    Deny { log: bool },
    Allow,
    Del,
}

/// Applies `edit` for each of `nets` to `bridge`'s policy.
pub fn edit(
    bridge: &IfName,
    nets: &[IpNet],
    edit: Edit,
    host: &Host,
    state: &State,
) -> Result<Change> {
    let mut change = Change::from(state);
    let Some(entry) = change.state.bridges.get_mut(bridge) else {
        bail!(
            "bridge `{bridge}` was not made by nsnet, so nsnet keeps no firewall for it (make one with `nsnet bridge up NS... --bridge {bridge}`)"
        );
    };
    super::bridge::owned(bridge, entry, host)?;
    if edit != Edit::Del
        && let Some(net) = nets
            .iter()
            .find(|n| n.addr().is_ipv6() && entry.ipv6.is_none())
    {
        bail!(
            "`{net}` is IPv6 but bridge `{bridge}` has no IPv6 subnet, so its namespaces cannot reach it anyway (give an IPv4 destination)"
        );
    }
    let policy = &mut entry.policy;
    for net in nets {
        let was_allowed = policy.allow.contains(net);
        let was_denied = policy.deny.iter().any(|d| d.to == *net);
        policy.allow.retain(|n| n != net);
        policy.deny.retain(|d| d.to != *net);
        match edit {
            Edit::Deny { log } => {
                policy.deny.push(Deny { to: *net, log });
                if was_allowed {
                    change.notes.push(format!(
                        "`{net}` was allowed for `{bridge}`: now denied instead"
                    ));
                }
            }
            Edit::Allow => {
                policy.allow.push(*net);
                if was_denied {
                    change.notes.push(format!(
                        "`{net}` was denied for `{bridge}`: now allowed instead"
                    ));
                }
            }
            Edit::Del if !was_allowed && !was_denied => change.notes.push(format!(
                "`{bridge}` has no firewall rule for `{net}`; nothing to do for it"
            )),
            Edit::Del => {}
        }
    }
    policy.allow.sort();
    policy.deny.sort();
    Ok(change)
}

/// A bridge's policy as `firewall list` and `status` show it, with the
/// bridges it is isolated from (every other nsnet bridge in a family they
/// share, unless an allow covers its subnet).
#[derive(Clone, Debug, serde::Serialize)]
pub struct View {
    pub bridge: IfName,
    #[serde(flatten)]
    pub policy: Policy,
    pub isolated_from: Vec<IfName>,
}

/// The views of every bridge, or of `only`.
pub fn views(state: &State, only: Option<&IfName>) -> Vec<View> {
    let mut out = Vec::new();
    for (name, bridge) in &state.bridges {
        if only.is_some_and(|o| o != name) {
            continue;
        }
        let isolated_from = state
            .bridges
            .iter()
            .filter(|(other, _)| *other != name)
            .filter(|(_, b)| {
                let subnet = IpNet::V4(b.subnet);
                !bridge.policy.allow.iter().any(|a| a.contains(&subnet))
            })
            .map(|(other, _)| other.clone())
            .collect();
        out.push(View {
            bridge: name.clone(),
            policy: bridge.policy.clone(),
            isolated_from,
        });
    }
    out
}
