//! A restore batch that only deletes rules (a `publish del`'s firewall
//! step, say), sent by the runner itself as one nf_tables transaction
//! instead of starting `iptables-restore`: the plan, its dry run and its
//! journal still say the restore, and the kernel ends up exactly as the
//! tool would leave it.
//!
//! Why: `iptables-restore` commits each table of a batch as a transaction
//! of its own, and the kernel frees the rules a transaction deleted after
//! an RCU grace period, in a work item that the release of any nf_tables
//! netlink socket of the namespace waits for. A batch deleting in two
//! tables waits two grace periods (10 to 30 ms each on a 2-core machine):
//! one when the tool closes the socket it asked an extension's revision on,
//! after the first table's commit, one as it exits. One transaction waits
//! one.
//!
//! Which rule each line deletes comes from the rule cache, good at the
//! kernel's present generation (see `Saved::deletions`): its place in its
//! chain as saved. Its handle is the one at that place in the kernel's list
//! of the chain, which must hold as many rules as the cache says. The
//! transaction names the generation the handles were read at, so the kernel
//! refuses it whole (ERESTART) if anyone changed the ruleset in between,
//! and then the tool runs instead, as it does for anything else this
//! module cannot show: an iptables over the legacy backend, a line other
//! than `-D`, a rule the cache does not hold.
//!
//! Its nfnetlink wire helpers (`open`, `message`, `messages`, `receive`)
//! are also what `rulecache::generation` asks the generation with.

use crate::exec::nfdump::{self, Seen};
use crate::exec::rulecache::Deletion;
use crate::model::rules::Family;
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_NETFILTER};
use std::collections::BTreeMap;

pub(crate) const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_NEWRULE: u16 = 6;
const NFT_MSG_DELRULE: u16 = 8;
const NFNL_MSG_BATCH_BEGIN: u16 = 16;
const NFNL_MSG_BATCH_END: u16 = 17;
const NFNL_BATCH_GENID: u16 = 1;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_HANDLE: u16 = 3;
pub(crate) const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_ECHO: u16 = 8;
const NLM_F_APPEND: u16 = 0x800;
const NLM_F_CREATE: u16 = 0x400;
const NLMSG_ERROR: u16 = 2;

/// The address family nf_tables knows the tables of `family` by: those of
/// iptables are `ip`, those of ip6tables `ip6`.
pub(crate) fn address_family(family: Family) -> u8 {
    match family {
        Family::V4 => 2,  // AF_INET
        Family::V6 => 10, // AF_INET6
    }
}

/// A netlink socket to nf_tables in nsnet's network namespace.
pub(crate) fn open() -> std::io::Result<Socket> {
    let mut socket = Socket::new(NETLINK_NETFILTER)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    Ok(socket)
}

/// Why the batch was not made here: nothing was changed, and the tool
/// runs instead.
#[derive(Debug, thiserror::Error)]
pub enum NotHere {
    #[error("netlink: {0}")]
    Socket(#[from] std::io::Error),
    #[error("chain {chain} of table {table} holds {found} rules, the cache {cached}")]
    Changed {
        table: String,
        chain: String,
        found: usize,
        cached: usize,
    },
    #[error("the kernel refused the transaction: {0}")]
    Refused(std::io::Error),
    #[error("unreadable answer from the kernel")]
    Garbled,
}

/// Deletes `rules` (of `family`) in one transaction, at ruleset
/// `generation`; on `Err` nothing was deleted. A rule whose handle the
/// cache knows is deleted by it; for the others their chain is listed.
/// Returns the print of each rule deleted, in order, where it is known
/// (see `nfdump`): the cache's, or the listing's.
pub fn delete(
    family: Family,
    rules: &[Deletion],
    generation: u32,
) -> Result<Vec<Option<u64>>, NotHere> {
    let socket = open()?;
    // The rules of each chain listed, in the chain's order.
    let mut chains: BTreeMap<(&str, &str), Vec<Seen>> = BTreeMap::new();
    for rule in rules.iter().filter(|r| r.handle.is_none()) {
        let key = (rule.table.as_str(), rule.chain.as_str());
        if let std::collections::btree_map::Entry::Vacant(slot) = chains.entry(key) {
            let listed = nfdump::chain_on(&socket, family, key.0, key.1)?;
            slot.insert(listed.ok_or(NotHere::Garbled)?);
        }
    }
    let mut deletes = Vec::with_capacity(rules.len());
    let mut prints = Vec::with_capacity(rules.len());
    for rule in rules {
        if let Some(handle) = rule.handle {
            deletes.push((rule, handle));
            prints.push(rule.print);
            continue;
        }
        let listed = &chains[&(rule.table.as_str(), rule.chain.as_str())];
        if listed.len() != rule.length {
            return Err(NotHere::Changed {
                table: rule.table.clone(),
                chain: rule.chain.clone(),
                found: listed.len(),
                cached: rule.length,
            });
        }
        deletes.push((rule, listed[rule.index].handle));
        prints.push(Some(listed[rule.index].print));
    }
    let batch = transaction(family, generation, &deletes);
    commit(&socket, &batch, deletes.len())?;
    Ok(prints)
}

/// Appends `rules` (of `family`; each the attributes of its NEWRULE
/// message, see `nfrule::encode`) in one transaction, at ruleset
/// `generation`, each to the end of its chain in order; on `Err` nothing
/// was added. Returns each rule as the kernel echoed it (its handle and
/// print), in order; none if it did not echo every rule.
pub fn append(family: Family, rules: &[Vec<u8>], generation: u32) -> Result<Vec<Seen>, NotHere> {
    let socket = open()?;
    let batch = appending(family, generation, rules);
    let echoed = commit(&socket, &batch, rules.len())?;
    Ok(match echoed.len() == rules.len() {
        true => echoed,
        false => Vec::new(),
    })
}

/// Sends `batch` and reads the kernel's answers: one acknowledgement for
/// each of its `changes`, or an error, after which the kernel aborted the
/// transaction whole. Returns the rules it echoed (each new rule of an
/// appending batch, at its commit, before the acknowledgements).
fn commit(socket: &Socket, batch: &[u8], changes: usize) -> Result<Vec<Seen>, NotHere> {
    socket.send(batch, 0)?;
    // The kernel works through a batch while it is sent: every answer is
    // queued when `send` returns.
    socket.set_non_blocking(true)?;
    let mut acked = 0;
    let mut echoed = Vec::new();
    let mut answer = Vec::with_capacity(DATAGRAM);
    while acked < changes {
        receive(socket, &mut answer).map_err(|e| match e {
            NotHere::Socket(e) if e.kind() == std::io::ErrorKind::WouldBlock => NotHere::Garbled,
            e => e,
        })?;
        for (kind, body) in messages(&answer)? {
            if kind == (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWRULE {
                echoed.push(nfdump::seen(body).ok_or(NotHere::Garbled)?);
            }
            if kind != NLMSG_ERROR {
                continue;
            }
            refused(body)?;
            acked += 1;
        }
    }
    Ok(echoed)
}

/// The room for one datagram from the kernel. The kernel sizes each part
/// of a dump to the largest buffer its reader has offered (up to 32 KiB), so
/// a reader that offers a large one gets a chain of a thousand rules in some
/// thirty datagrams, not hundreds: `recv_from_full`'s peek offers none.
pub(crate) const DATAGRAM: usize = 128 * 1024;

/// Receives one datagram into `buf` (emptied first); one longer than
/// `DATAGRAM` is garbled, not cut short.
pub(crate) fn receive(socket: &Socket, buf: &mut Vec<u8>) -> Result<(), NotHere> {
    buf.clear();
    let length = socket.recv(buf, MSG_TRUNC)?;
    if length > buf.len() {
        return Err(NotHere::Garbled);
    }
    Ok(())
}

/// With it `recv` says a datagram's whole length, even when the buffer was
/// too short for it (Linux's value on every architecture).
const MSG_TRUNC: i32 = 0x20;

/// The code of an error message (`body`: what follows its header): `Ok`
/// for 0, an acknowledgement.
pub(crate) fn refused(body: &[u8]) -> Result<(), NotHere> {
    let code = body
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .map(i32::from_ne_bytes)
        .ok_or(NotHere::Garbled)?;
    match code {
        0 => Ok(()),
        code => Err(NotHere::Refused(std::io::Error::from_raw_os_error(-code))),
    }
}

/// The batch: begin (at `generation`), a deletion by handle for each rule,
/// end.
fn transaction(family: Family, generation: u32, deletes: &[(&Deletion, u64)]) -> Vec<u8> {
    framed(generation, |batch, seq| {
        for (rule, handle) in deletes {
            message(
                batch,
                (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_DELRULE,
                NLM_F_REQUEST | NLM_F_ACK,
                seq(),
                address_family(family),
                0,
                &[
                    (NFTA_RULE_TABLE, &c_string(&rule.table)),
                    (NFTA_RULE_CHAIN, &c_string(&rule.chain)),
                    (NFTA_RULE_HANDLE, &handle.to_be_bytes()),
                ],
            );
        }
    })
}

/// The batch: begin (at `generation`), each rule added at the end of its
/// chain (the flags iptables-nft gives an `-A`, an acknowledgement, and
/// the rule echoed back, with its handle), end.
fn appending(family: Family, generation: u32, rules: &[Vec<u8>]) -> Vec<u8> {
    framed(generation, |batch, seq| {
        for rule in rules {
            let start = batch.len();
            message(
                batch,
                (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWRULE,
                NLM_F_REQUEST | NLM_F_CREATE | NLM_F_APPEND | NLM_F_ACK | NLM_F_ECHO,
                seq(),
                address_family(family),
                0,
                &[],
            );
            batch.extend_from_slice(rule);
            let length = u32::try_from(batch.len() - start).unwrap_or(u32::MAX);
            batch[start..start + 4].copy_from_slice(&length.to_ne_bytes());
        }
    })
}

/// A transaction of nf_tables: begin, at `generation`, the messages
/// `changes` writes (each numbered by `seq`, from 2), end.
fn framed(generation: u32, changes: impl FnOnce(&mut Vec<u8>, &mut dyn FnMut() -> u32)) -> Vec<u8> {
    let mut batch = Vec::new();
    message(
        &mut batch,
        NFNL_MSG_BATCH_BEGIN,
        NLM_F_REQUEST,
        1,
        0,
        NFNL_SUBSYS_NFTABLES,
        &[(NFNL_BATCH_GENID, &generation.to_be_bytes())],
    );
    let mut next = 1u32;
    changes(&mut batch, &mut || {
        next += 1;
        next
    });
    message(
        &mut batch,
        NFNL_MSG_BATCH_END,
        NLM_F_REQUEST,
        next + 1,
        0,
        NFNL_SUBSYS_NFTABLES,
        &[],
    );
    batch
}

/// Appends one netlink message: the header, `struct nfgenmsg` (family,
/// version 0, resource id in network byte order), then the attributes, each
/// padded to four bytes.
pub(crate) fn message(
    out: &mut Vec<u8>,
    kind: u16,
    flags: u16,
    seq: u32,
    family: u8,
    res_id: u16,
    attributes: &[(u16, &[u8])],
) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]); // length, filled in below
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(&flags.to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    out.extend_from_slice(&[family, 0]);
    out.extend_from_slice(&res_id.to_be_bytes());
    for (kind, value) in attributes {
        let length = u16::try_from(4 + value.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&length.to_ne_bytes());
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(value);
        out.resize(out.len().next_multiple_of(4), 0);
    }
    let length = u32::try_from(out.len() - start).unwrap_or(u32::MAX);
    out[start..start + 4].copy_from_slice(&length.to_ne_bytes());
}

/// A name as nf_tables takes it: NUL-terminated.
pub(crate) fn c_string(text: &str) -> Vec<u8> {
    let mut bytes = text.as_bytes().to_vec();
    bytes.push(0);
    bytes
}

/// The messages of one datagram from the kernel: each one's type and
/// body (what follows its 16-byte header).
pub(crate) fn messages(datagram: &[u8]) -> Result<Vec<(u16, &[u8])>, NotHere> {
    let mut out = Vec::new();
    let mut rest = datagram;
    while rest.len() >= 16 {
        let length = u32::from_ne_bytes(rest[..4].try_into().map_err(|_| NotHere::Garbled)?);
        let length = usize::try_from(length).map_err(|_| NotHere::Garbled)?;
        if length < 16 || length > rest.len() {
            return Err(NotHere::Garbled);
        }
        let kind = u16::from_ne_bytes([rest[4], rest[5]]);
        out.push((kind, &rest[16..length]));
        rest = &rest[length.next_multiple_of(4).min(rest.len())..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deletion(table: &str, chain: &str, index: usize) -> Deletion {
        Deletion {
            table: table.into(),
            chain: chain.into(),
            index,
            length: 3,
            handle: None,
            print: None,
        }
    }

    #[test]
    fn a_transaction_is_begin_one_deletion_by_handle_per_rule_and_end() {
        let nat = deletion("nat", "NSNET-DNAT", 1);
        let filter = deletion("filter", "NSNET-FORWARD", 0);
        let batch = transaction(
            Family::V4,
            0x0102_0304,
            &[(&nat, 7), (&filter, 0x1_0000_0009)],
        );
        let parts = messages(&batch).expect("well formed");
        let kinds: Vec<u16> = parts.iter().map(|(k, _)| *k).collect();
        let del = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_DELRULE;
        assert_eq!(kinds, [NFNL_MSG_BATCH_BEGIN, del, del, NFNL_MSG_BATCH_END]);
        // Begin: AF_UNSPEC, the subsystem as resource id, the generation
        // as its one attribute, in network byte order.
        let begin = parts[0].1;
        assert_eq!(&begin[..4], &[0, 0, 0, 10]);
        assert_eq!(&begin[8..12], &[1, 2, 3, 4]);
        // Each deletion: AF_INET, table, chain and handle.
        let attributes = |body: &[u8]| -> Vec<(u16, Vec<u8>)> {
            netlink_packet_core::NlasIterator::new(&body[4..])
                .map(|nla| {
                    let nla = nla.expect("attribute");
                    (nla.kind(), nla.value().to_vec())
                })
                .collect()
        };
        assert_eq!(parts[1].1[0], 2);
        assert_eq!(
            attributes(parts[1].1),
            [
                (NFTA_RULE_TABLE, b"nat\0".to_vec()),
                (NFTA_RULE_CHAIN, b"NSNET-DNAT\0".to_vec()),
                (NFTA_RULE_HANDLE, 7u64.to_be_bytes().to_vec()),
            ]
        );
        assert_eq!(
            nfdump::seen(parts[2].1).map(|r| r.handle),
            Some(0x1_0000_0009)
        );
        // Every message asks for its acknowledgement but begin and end.
        let flags: Vec<u16> = {
            let mut rest = &batch[..];
            let mut out = Vec::new();
            while !rest.is_empty() {
                let length = u32::from_ne_bytes(rest[..4].try_into().unwrap()) as usize;
                out.push(u16::from_ne_bytes([rest[6], rest[7]]));
                rest = &rest[length..];
            }
            out
        };
        assert_eq!(
            flags,
            [
                NLM_F_REQUEST,
                NLM_F_REQUEST | NLM_F_ACK,
                NLM_F_REQUEST | NLM_F_ACK,
                NLM_F_REQUEST
            ]
        );
    }

    #[test]
    fn a_short_or_overlong_message_is_garbled() {
        let mut one = Vec::new();
        // NLMSG_DONE, as a dump ends.
        message(&mut one, 3, 0, 1, 0, 0, &[]);
        assert_eq!(messages(&one).expect("one message").len(), 1);
        let mut long = one.clone();
        long[0] = 200;
        assert!(matches!(messages(&long), Err(NotHere::Garbled)));
        let mut short = one;
        short[0] = 8;
        assert!(matches!(messages(&short), Err(NotHere::Garbled)));
    }
}
