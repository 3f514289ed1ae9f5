//! Prints of the kernel's iptables chains, to tell which chains someone
//! else changed since the rule cache last knew them, without reading what
//! the rules say: on a host with thousands of other tools' rules,
//! `iptables-save` spends most of its time turning them into text, and a
//! change by hand touches one chain.
//!
//! A rule's print is a hash of its handle and of what the kernel holds of
//! it (its expressions and its comment), leaving out what traffic changes
//! (counters, a quota's bytes used, when a `last` expression last saw a
//! packet), which `iptables-save` without `-c` does not print either. A
//! chain's print is how many rules it holds and the sum of their prints:
//! the kernel gives every rule of a table a handle of its own, never given
//! again, and never moves a rule, so the same handles in a chain are the
//! same rules in the same order, and a rule replaced in place (`iptables
//! -R`, which keeps the handle) changes its print. The sum is updated rule
//! by rule as nsnet adds (the kernel echoes each rule it adds) and deletes.

use crate::exec::nfbatch::{self, NFNL_SUBSYS_NFTABLES, NLM_F_REQUEST, NotHere, c_string};
use crate::model::rules::Family;
use netlink_packet_core::NlasIterator;
use std::collections::BTreeMap;

const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_GETCHAIN: u16 = 4;
const NFT_MSG_NEWRULE: u16 = 6;
const NFT_MSG_GETRULE: u16 = 7;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_HANDLE: u16 = 3;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_RULE_USERDATA: u16 = 7;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_QUOTA_CONSUMED: u16 = 4;

/// The tables `iptables-save` prints, when they exist.
pub const TABLES: [&str; 5] = ["mangle", "security", "raw", "filter", "nat"];

/// A chain's print: its rules, counted and summed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Print {
    pub rules: u32,
    pub sum: u64,
}

impl Print {
    /// One more rule, of print `rule`.
    pub fn add(&mut self, rule: u64) {
        self.rules += 1;
        self.sum = self.sum.wrapping_add(rule);
    }

    /// One rule less, of print `rule`.
    pub fn remove(&mut self, rule: u64) {
        self.rules = self.rules.saturating_sub(1);
        self.sum = self.sum.wrapping_sub(rule);
    }
}

/// One rule as the kernel shows it: where it is, and its print.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub table: String,
    pub chain: String,
    pub handle: u64,
    pub print: u64,
}

/// Every chain of the tables of iptables, of one family.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ruleset {
    /// (table, chain) → its policy as `iptables-save` prints it: `ACCEPT`
    /// or `DROP` for a built-in chain, `-` for one of its own.
    pub chains: BTreeMap<(String, String), String>,
    /// (table, chain) → its print; a chain without rules has none here.
    pub prints: BTreeMap<(String, String), Print>,
}

impl Ruleset {
    /// The print of `chain` in `table`: empty when it holds no rule.
    pub fn print(&self, table: &str, chain: &str) -> Print {
        self.prints
            .get(&(table.to_string(), chain.to_string()))
            .copied()
            .unwrap_or_default()
    }
}

/// Reads every chain of `family`'s iptables tables and the print of each.
pub fn ruleset(family: Family) -> Result<Ruleset, NotHere> {
    let mut set = Ruleset::default();
    let socket = nfbatch::open()?;
    dump(&socket, family, NFT_MSG_GETCHAIN, &[], |kind, body| {
        if kind == (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWCHAIN
            && let Some((table, chain, policy)) = chain_of(body)
            && TABLES.contains(&table.as_str())
        {
            set.chains.insert((table, chain), policy);
        }
        Ok(())
    })?;
    dump(&socket, family, NFT_MSG_GETRULE, &[], |kind, body| {
        if kind == (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWRULE {
            let seen = seen(body).ok_or(NotHere::Garbled)?;
            if TABLES.contains(&seen.table.as_str()) {
                let print = set.prints.entry((seen.table, seen.chain)).or_default();
                print.add(seen.print);
            }
        }
        Ok(())
    })?;
    Ok(set)
}

/// The rules of `chain` in `table`, in order, as the kernel shows them;
/// `None` when there is no such chain.
pub fn chain(family: Family, table: &str, chain: &str) -> Result<Option<Vec<Seen>>, NotHere> {
    let socket = nfbatch::open()?;
    chain_on(&socket, family, table, chain)
}

/// `chain`, on an open socket.
pub(crate) fn chain_on(
    socket: &netlink_sys::Socket,
    family: Family,
    table: &str,
    chain: &str,
) -> Result<Option<Vec<Seen>>, NotHere> {
    let mut rules = Vec::new();
    let asked = [
        (NFTA_RULE_TABLE, c_string(table)),
        (NFTA_RULE_CHAIN, c_string(chain)),
    ];
    let asked: Vec<(u16, &[u8])> = asked.iter().map(|(k, v)| (*k, v.as_slice())).collect();
    let done = dump(socket, family, NFT_MSG_GETRULE, &asked, |kind, body| {
        if kind == (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWRULE {
            rules.push(seen(body).ok_or(NotHere::Garbled)?);
        }
        Ok(())
    });
    match done {
        Ok(()) => Ok(Some(rules)),
        Err(NotHere::Refused(e)) if e.raw_os_error() == Some(2) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Asks a dump of `what` (with `attributes`) and gives each message of the
/// answer to `each`, until the kernel says it is done.
fn dump(
    socket: &netlink_sys::Socket,
    family: Family,
    what: u16,
    attributes: &[(u16, &[u8])],
    mut each: impl FnMut(u16, &[u8]) -> Result<(), NotHere>,
) -> Result<(), NotHere> {
    let mut request = Vec::new();
    nfbatch::message(
        &mut request,
        (NFNL_SUBSYS_NFTABLES << 8) | what,
        NLM_F_REQUEST | NLM_F_DUMP,
        1,
        nfbatch::address_family(family),
        0,
        attributes,
    );
    socket.send(&request, 0)?;
    let mut answer = Vec::with_capacity(nfbatch::DATAGRAM);
    loop {
        nfbatch::receive(socket, &mut answer)?;
        for (kind, body) in nfbatch::messages(&answer)? {
            match kind {
                NLMSG_DONE => return Ok(()),
                NLMSG_ERROR => {
                    nfbatch::refused(body)?;
                    return Err(NotHere::Garbled);
                }
                _ => each(kind, body)?,
            }
        }
    }
}

/// A chain message's table, name and policy (`-` without a hook).
fn chain_of(body: &[u8]) -> Option<(String, String, String)> {
    let (mut table, mut name, mut hooked, mut policy) = (None, None, false, None);
    for nla in NlasIterator::new(body.get(4..)?) {
        let nla = nla.ok()?;
        match nla.kind() {
            NFTA_CHAIN_TABLE => table = Some(text(nla.value())?),
            NFTA_CHAIN_NAME => name = Some(text(nla.value())?),
            NFTA_CHAIN_HOOK => hooked = true,
            NFTA_CHAIN_POLICY => {
                policy = Some(u32::from_be_bytes(nla.value().get(..4)?.try_into().ok()?));
            }
            _ => {}
        }
    }
    let policy = match (hooked, policy) {
        (false, _) => "-",
        (true, Some(0)) => "DROP",
        (true, _) => "ACCEPT",
    };
    Some((table?, name?, policy.to_string()))
}

/// A rule message's place and print (see the module's comment).
pub(crate) fn seen(body: &[u8]) -> Option<Seen> {
    let (mut table, mut chain, mut handle) = (None, None, None);
    let mut hash = Fnv::default();
    for nla in NlasIterator::new(body.get(4..)?) {
        let nla = nla.ok()?;
        match nla.kind() {
            NFTA_RULE_TABLE => table = Some(text(nla.value())?),
            NFTA_RULE_CHAIN => chain = Some(text(nla.value())?),
            NFTA_RULE_HANDLE => {
                handle = Some(u64::from_be_bytes(nla.value().get(..8)?.try_into().ok()?));
            }
            NFTA_RULE_EXPRESSIONS => {
                for element in NlasIterator::new(nla.value()) {
                    expression(&mut hash, element.ok()?.value())?;
                }
            }
            NFTA_RULE_USERDATA => {
                hash.write(b"userdata");
                hash.write(nla.value());
            }
            // The position (the handle of the rule before) follows from
            // the handles; nothing else is shown.
            _ => {}
        }
    }
    let handle = handle?;
    hash.write(&handle.to_be_bytes());
    Some(Seen {
        table: table?,
        chain: chain?,
        handle,
        print: mix(hash.0),
    })
}

/// Adds one expression (a list element's attributes) to `hash`: its name
/// and its data, but for what traffic changes.
fn expression(hash: &mut Fnv, element: &[u8]) -> Option<()> {
    let mut name: Vec<u8> = Vec::new();
    for nla in NlasIterator::new(element) {
        let nla = nla.ok()?;
        match nla.kind() {
            NFTA_EXPR_NAME => {
                name = nla.value().to_vec();
                hash.write(b"expr");
                hash.write(&name);
            }
            NFTA_EXPR_DATA => {
                let name = name.strip_suffix(b"\0").unwrap_or(&name);
                match name {
                    b"counter" | b"last" => {}
                    b"quota" => {
                        for part in NlasIterator::new(nla.value()) {
                            let part = part.ok()?;
                            if part.kind() != NFTA_QUOTA_CONSUMED {
                                hash.write(&part.kind().to_ne_bytes());
                                hash.write(part.value());
                            }
                        }
                    }
                    _ => hash.write(nla.value()),
                }
            }
            kind => {
                hash.write(&kind.to_ne_bytes());
                hash.write(nla.value());
            }
        }
    }
    Some(())
}

/// A NUL-terminated name.
fn text(value: &[u8]) -> Option<String> {
    let value = value.split(|b| *b == 0).next()?;
    std::str::from_utf8(value).ok().map(String::from)
}

/// FNV-1a, 64 bits: stable from one build to the next, unlike std's
/// hasher, as prints are kept in the cache's file. Each write is framed by
/// its length, so two writes never read as one.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        let length = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        for b in length.to_le_bytes().iter().chain(bytes) {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// Spreads a hash's bits (splitmix64's finalizer), so that sums of prints
/// do not keep FNV's weak low bits.
fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A rule message's body: nfgenmsg, then `attributes`.
    fn body(attributes: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let refs: Vec<(u16, &[u8])> = attributes.iter().map(|(k, v)| (*k, v.as_slice())).collect();
        let mut out = Vec::new();
        nfbatch::message(&mut out, 0, 0, 0, 2, 0, &refs);
        out[16..].to_vec()
    }

    /// An attribute's bytes, padded: length, kind, value.
    fn nla(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&u16::try_from(4 + value.len()).unwrap().to_ne_bytes());
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(value);
        out.resize(out.len().next_multiple_of(4), 0);
        out
    }

    /// A rule of `expressions` (name, data), with `handle`.
    fn rule(handle: u64, expressions: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut list = Vec::new();
        for (name, data) in expressions {
            let mut element = nla(NFTA_EXPR_NAME, &c_string(name));
            element.extend(nla(NFTA_EXPR_DATA | 0x8000, data));
            list.extend(nla(1 | 0x8000, &element));
        }
        body(&[
            (NFTA_RULE_TABLE, c_string("filter")),
            (NFTA_RULE_CHAIN, c_string("FORWARD")),
            (NFTA_RULE_HANDLE, handle.to_be_bytes().to_vec()),
            (NFTA_RULE_EXPRESSIONS | 0x8000, list),
        ])
    }

    #[test]
    fn a_print_leaves_out_what_traffic_changes_and_nothing_else() {
        let counter = |packets: u64| nla(2, &packets.to_be_bytes());
        let quota = |consumed: u64| {
            let mut data = nla(1, &1000u64.to_be_bytes());
            data.extend(nla(NFTA_QUOTA_CONSUMED, &consumed.to_be_bytes()));
            data
        };
        let accept = nla(1, &1u32.to_be_bytes());
        let of = |handle, packets, consumed, verdict: &Vec<u8>| {
            let seen = seen(&rule(
                handle,
                &[
                    ("counter", counter(packets)),
                    ("quota", quota(consumed)),
                    ("immediate", verdict.clone()),
                ],
            ))
            .expect("a rule");
            assert_eq!(
                (seen.table.as_str(), seen.chain.as_str()),
                ("filter", "FORWARD")
            );
            assert_eq!(seen.handle, handle);
            seen.print
        };
        let first = of(7, 0, 0, &accept);
        // Traffic: counters and the quota's bytes used.
        assert_eq!(of(7, 90, 4096, &accept), first);
        // Another rule (`-R` keeps the handle), or the same at another handle.
        assert_ne!(of(7, 0, 0, &nla(1, &0u32.to_be_bytes())), first);
        assert_ne!(of(8, 0, 0, &accept), first);
    }

    #[test]
    fn a_chain_message_says_its_policy_as_iptables_save_does() {
        let hook = nla(1, &2u32.to_be_bytes());
        let base = |policy: u32| {
            body(&[
                (NFTA_CHAIN_TABLE, c_string("filter")),
                (NFTA_CHAIN_NAME, c_string("FORWARD")),
                (NFTA_CHAIN_HOOK | 0x8000, hook.clone()),
                (NFTA_CHAIN_POLICY, policy.to_be_bytes().to_vec()),
            ])
        };
        let own = body(&[
            (NFTA_CHAIN_TABLE, c_string("nat")),
            (NFTA_CHAIN_NAME, c_string("NSNET-DNAT")),
        ]);
        let got = |b: &[u8]| chain_of(b).map(|(t, c, p)| format!("{t} {c} {p}"));
        assert_eq!(got(&base(1)).as_deref(), Some("filter FORWARD ACCEPT"));
        assert_eq!(got(&base(0)).as_deref(), Some("filter FORWARD DROP"));
        assert_eq!(got(&own).as_deref(), Some("nat NSNET-DNAT -"));
    }

    #[test]
    fn a_chain_print_is_the_same_whichever_way_its_rules_came() {
        let (a, b) = (0x1234_5678_9abc_def0, 0x0fed_cba9_8765_4321);
        let mut one = Print::default();
        one.add(a);
        one.add(b);
        let mut other = Print::default();
        other.add(b);
        other.add(a);
        other.add(0x55);
        other.remove(0x55);
        assert_eq!(one, other);
        assert_eq!(one.rules, 2);
    }
}
