//! The rules of a restore batch that only appends (a `publish add`'s
//! firewall step, say), encoded as nf_tables expressions exactly as
//! iptables-nft 1.8 encodes them, so that `nfbatch::append` can add them in
//! one transaction of nsnet's own instead of starting `iptables-restore`:
//! `iptables-save` then prints them as the lines written, `iptables -D`
//! finds them by their spec, and the counters, comments and targets are the
//! tool's.
//!
//! Why: a restore is a process that loads its extensions and reads the
//! tables it touches before it changes anything, 4 to 7 ms a batch here
//! whatever it adds; the rules themselves are a few hundred bytes to the
//! kernel.
//!
//! Only the options nsnet's rules use are known: `[!] -s/-d NET`,
//! `[!] -i/-o IFACE`, `-p tcp|udp` with `-m tcp|udp --dport PORT`,
//! `-m conntrack [!] --ctstate STATES`, `-m comment --comment TEXT`, and
//! `-j ACCEPT|DROP|RETURN|NSNET-…|DNAT --to-destination ADDR:PORT`. A line
//! with anything else is not encoded, and the tool runs. The unit tests
//! hold each shape against the bytes iptables-nft itself sent for it
//! (fixtures/nft-rules.txt, made by fixtures/capture.sh).

use crate::model::rules::Family;
use ipnet::IpNet;
use std::net::IpAddr;

// Attributes of a rule and of its expressions (linux/netfilter/nf_tables.h).
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_RULE_COMPAT: u16 = 5;
const NFTA_RULE_COMPAT_PROTO: u16 = 1;
const NFTA_RULE_COMPAT_FLAGS: u16 = 2;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;
const NFTA_VERDICT_CHAIN: u16 = 2;
const NLA_F_NESTED: u16 = 0x8000;

const NFT_REG_VERDICT: u32 = 0;
const NFT_REG_1: u32 = 1;
const NFT_META_IIFNAME: u32 = 6;
const NFT_META_OIFNAME: u32 = 7;
const NFT_META_L4PROTO: u32 = 16;
const NFT_PAYLOAD_NETWORK_HEADER: u32 = 1;
const NFT_PAYLOAD_TRANSPORT_HEADER: u32 = 2;
const NFT_CMP_EQ: u32 = 0;
const NFT_CMP_NEQ: u32 = 1;
const NF_DROP: u32 = 0;
const NF_ACCEPT: u32 = 1;
const NFT_JUMP: u32 = -3i32 as u32;
const NFT_RETURN: u32 = -5i32 as u32;

/// The rule `spec` (what follows `-A CHAIN`) of `family` in `table` and
/// `chain`: the attributes of its NEWRULE message, after struct nfgenmsg;
/// `None` for a line with an option this module does not know.
pub fn encode(family: Family, table: &str, chain: &str, spec: &str) -> Option<Vec<u8>> {
    let rule = Rule::parse(family, &words(spec)?)?;
    let mut out = Vec::with_capacity(1024);
    put(&mut out, NFTA_RULE_TABLE, &c_string(table));
    put(&mut out, NFTA_RULE_CHAIN, &c_string(chain));
    nest(&mut out, NFTA_RULE_EXPRESSIONS, |out| rule.expressions(out));
    nest(&mut out, NFTA_RULE_COMPAT, |out| {
        put(
            out,
            NFTA_RULE_COMPAT_PROTO,
            &u32::from(rule.proto.unwrap_or(0)).to_be_bytes(),
        );
        put(out, NFTA_RULE_COMPAT_FLAGS, &0u32.to_be_bytes());
    });
    Some(out)
}

/// Every rule of restore batch `batch` of `family`, encoded, when the batch
/// only appends rules (`*TABLE`, `-A CHAIN SPEC` and `COMMIT` lines) and
/// each is one `encode` knows; `None` otherwise.
pub fn appends(family: Family, batch: &str) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut table = None;
    for line in batch.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line == "COMMIT" {
            table = None;
        } else if let Some(name) = line.strip_prefix('*') {
            table = Some(name).filter(|n| TABLES.contains(n));
        } else {
            let (chain, spec) = line.strip_prefix("-A ")?.split_once(' ')?;
            interface(chain)?;
            out.push(encode(family, table?, chain, spec)?);
        }
    }
    (!out.is_empty()).then_some(out)
}

/// The tables of iptables.
const TABLES: [&str; 5] = ["filter", "nat", "raw", "mangle", "security"];

/// A line's words, as iptables-restore splits them: on spaces, a double
/// quoted part kept whole (without its quotes). A backslash or a quote
/// inside a word: `None`.
fn words(spec: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = spec.trim_start();
    while !rest.is_empty() {
        let (word, after) = match rest.strip_prefix('"') {
            Some(quoted) => {
                let end = quoted.find('"')?;
                let after = &quoted[end + 1..];
                if !(after.is_empty() || after.starts_with(' ')) {
                    return None;
                }
                (&quoted[..end], after)
            }
            None => rest.split_at(rest.find(' ').unwrap_or(rest.len())),
        };
        if word.contains(['\\', '"', '\'']) {
            return None;
        }
        out.push(word.to_string());
        rest = after.trim_start();
    }
    Some(out)
}

/// A rule, parsed: what iptables-nft encodes natively (interfaces, protocol,
/// addresses) apart from its matches, which are encoded in their order.
#[derive(Debug, Default)]
struct Rule {
    iif: Option<(bool, String)>,
    oif: Option<(bool, String)>,
    proto: Option<u8>,
    src: Option<(bool, IpNet)>,
    dst: Option<(bool, IpNet)>,
    matches: Vec<Match>,
    target: Option<Target>,
}

#[derive(Debug)]
enum Match {
    /// `-m tcp|udp --dport PORT`: encoded natively, as a payload compare.
    DestinationPort(u16),
    /// `-m conntrack [!] --ctstate STATES`: xt_conntrack, revision 3.
    State { invert: bool, mask: u16 },
    /// `-m comment --comment TEXT`: xt_comment.
    Comment(String),
}

#[derive(Debug)]
enum Target {
    Verdict(u32),
    Jump(String),
    /// `-j DNAT --to-destination ADDR:PORT`: xt_DNAT, revision 2.
    Dnat(IpAddr, u16),
}

impl Rule {
    fn parse(family: Family, words: &[String]) -> Option<Rule> {
        let mut rule = Rule::default();
        let mut at = 0;
        let next = |at: &mut usize| {
            let word = words.get(*at).map(String::as_str);
            *at += 1;
            word
        };
        while let Some(word) = next(&mut at) {
            let invert = word == "!";
            let option = match invert {
                true => next(&mut at)?,
                false => word,
            };
            match option {
                "-s" | "-d" => {
                    let net = network(family, next(&mut at)?)?;
                    let slot = if option == "-s" {
                        &mut rule.src
                    } else {
                        &mut rule.dst
                    };
                    slot.replace((invert, net)).is_none().then_some(())?;
                }
                "-i" | "-o" => {
                    let name = interface(next(&mut at)?)?;
                    let slot = if option == "-i" {
                        &mut rule.iif
                    } else {
                        &mut rule.oif
                    };
                    slot.replace((invert, name)).is_none().then_some(())?;
                }
                "-p" if !invert && rule.proto.is_none() => {
                    rule.proto = Some(match next(&mut at)? {
                        "tcp" => 6,
                        "udp" => 17,
                        _ => return None,
                    });
                }
                "-m" if !invert => {
                    let matched = match next(&mut at)? {
                        name @ ("tcp" | "udp") => {
                            let proto = if name == "tcp" { 6 } else { 17 };
                            (rule.proto == Some(proto)).then_some(())?;
                            (next(&mut at)? == "--dport").then_some(())?;
                            Match::DestinationPort(port(next(&mut at)?)?)
                        }
                        "conntrack" => {
                            let mut word = next(&mut at)?;
                            let invert = word == "!";
                            if invert {
                                word = next(&mut at)?;
                            }
                            (word == "--ctstate").then_some(())?;
                            Match::State {
                                invert,
                                mask: states(next(&mut at)?)?,
                            }
                        }
                        "comment" => {
                            (next(&mut at)? == "--comment").then_some(())?;
                            let text = next(&mut at)?;
                            // xt_comment holds 255 bytes and the NUL.
                            (text.len() < COMMENT).then_some(())?;
                            Match::Comment(text.to_string())
                        }
                        _ => return None,
                    };
                    rule.matches.push(matched);
                }
                "-j" if !invert && rule.target.is_none() => {
                    rule.target = Some(match next(&mut at)? {
                        "ACCEPT" => Target::Verdict(NF_ACCEPT),
                        "DROP" => Target::Verdict(NF_DROP),
                        "RETURN" => Target::Verdict(NFT_RETURN),
                        "DNAT" => {
                            (next(&mut at)? == "--to-destination").then_some(())?;
                            let (addr, port) = destination(family, next(&mut at)?)?;
                            Target::Dnat(addr, port)
                        }
                        chain if chain.starts_with("NSNET-") && interface(chain).is_some() => {
                            Target::Jump(chain.to_string())
                        }
                        _ => return None,
                    });
                }
                _ => return None,
            }
        }
        rule.target.is_some().then_some(rule)
    }

    /// The expressions, in iptables-nft's order: input and output
    /// interface, protocol, source and destination, the matches, a counter,
    /// the target.
    fn expressions(&self, out: &mut Vec<u8>) {
        if let Some((invert, name)) = &self.iif {
            meta(out, NFT_META_IIFNAME);
            cmp(out, *invert, &c_string(name));
        }
        if let Some((invert, name)) = &self.oif {
            meta(out, NFT_META_OIFNAME);
            cmp(out, *invert, &c_string(name));
        }
        if let Some(proto) = self.proto {
            meta(out, NFT_META_L4PROTO);
            cmp(out, false, &[proto]);
        }
        // Offsets of the source in the IPv4 and IPv6 headers; the
        // destination follows it.
        for (net, source) in [(&self.src, true), (&self.dst, false)] {
            let Some((invert, net)) = net else { continue };
            let (bytes, offset): (Vec<u8>, u32) = match net.network() {
                IpAddr::V4(a) => (a.octets().to_vec(), if source { 12 } else { 16 }),
                IpAddr::V6(a) => (a.octets().to_vec(), if source { 8 } else { 24 }),
            };
            let prefix = usize::from(net.prefix_len());
            if prefix % 8 == 0 {
                // A whole-byte prefix compares only its bytes.
                payload(
                    out,
                    NFT_PAYLOAD_NETWORK_HEADER,
                    offset,
                    &bytes[..prefix / 8],
                );
                cmp(out, *invert, &bytes[..prefix / 8]);
            } else {
                payload(out, NFT_PAYLOAD_NETWORK_HEADER, offset, &bytes);
                let mask = match net.netmask() {
                    IpAddr::V4(m) => m.octets().to_vec(),
                    IpAddr::V6(m) => m.octets().to_vec(),
                };
                bitwise(out, &mask);
                cmp(out, *invert, &bytes);
            }
        }
        for matched in &self.matches {
            match matched {
                Match::DestinationPort(port) => {
                    payload(out, NFT_PAYLOAD_TRANSPORT_HEADER, 2, &[0; 2]);
                    cmp(out, false, &port.to_be_bytes());
                }
                Match::State { invert, mask } => {
                    xt(out, "match", "conntrack", 3, &conntrack(*invert, *mask))
                }
                Match::Comment(text) => {
                    let mut info = text.as_bytes().to_vec();
                    info.resize(COMMENT, 0);
                    xt(out, "match", "comment", 0, &info);
                }
            }
        }
        expression(out, "counter", |out| {
            put(out, 1, &0u64.to_be_bytes()); // NFTA_COUNTER_BYTES
            put(out, 2, &0u64.to_be_bytes()); // NFTA_COUNTER_PACKETS
        });
        match &self.target {
            Some(Target::Verdict(code)) => verdict(out, *code, None),
            Some(Target::Jump(chain)) => verdict(out, NFT_JUMP, Some(chain)),
            Some(Target::Dnat(addr, port)) => xt(out, "target", "DNAT", 2, &dnat(*addr, *port)),
            None => {}
        }
    }
}

/// The size of xt_comment's info: the text and its NUL, zero-padded.
const COMMENT: usize = 256;

/// A network of `family` written as iptables-save prints it: `ADDR/LEN`,
/// with no host bits set.
fn network(family: Family, text: &str) -> Option<IpNet> {
    let net: IpNet = text.parse().ok()?;
    (Family::of(net.addr()) == family && net.addr() == net.network()).then_some(net)
}

/// An interface name as iptables compares it: whole (no `+` wildcard).
fn interface(name: &str) -> Option<String> {
    let fine = !name.is_empty()
        && name.len() < 16
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    fine.then(|| name.to_string())
}

fn port(text: &str) -> Option<u16> {
    text.parse().ok().filter(|p| *p != 0)
}

/// `--ctstate` names as xt_conntrack's state bits.
fn states(list: &str) -> Option<u16> {
    let mut mask = 0;
    for name in list.split(',') {
        mask |= match name {
            "INVALID" => 1 << 0,
            "ESTABLISHED" => 1 << 1,
            "RELATED" => 1 << 2,
            "NEW" => 1 << 3,
            "SNAT" => 1 << 6,
            "DNAT" => 1 << 7,
            "UNTRACKED" => 1 << 8,
            _ => return None,
        };
    }
    Some(mask)
}

/// `ADDR:PORT` (IPv4) or `[ADDR]:PORT` (IPv6), of `family`.
fn destination(family: Family, text: &str) -> Option<(IpAddr, u16)> {
    let (addr, port_text) = text.rsplit_once(':')?;
    let addr: IpAddr = match family {
        Family::V4 => addr.parse().ok().filter(IpAddr::is_ipv4)?,
        Family::V6 => addr
            .strip_prefix('[')?
            .strip_suffix(']')?
            .parse()
            .ok()
            .filter(IpAddr::is_ipv6)?,
    };
    Some((addr, port(port_text)?))
}

/// struct xt_conntrack_mtinfo3 with only `--ctstate` set: eight addresses
/// and masks (128 bytes), the expiry range, then 16-bit fields in host
/// order, padded to 168 bytes.
fn conntrack(invert: bool, mask: u16) -> Vec<u8> {
    const XT_CONNTRACK_STATE: u16 = 1;
    let mut info = vec![0u8; 168];
    info[146..148].copy_from_slice(&XT_CONNTRACK_STATE.to_ne_bytes()); // match_flags
    if invert {
        info[148..150].copy_from_slice(&XT_CONNTRACK_STATE.to_ne_bytes()); // invert_flags
    }
    info[150..152].copy_from_slice(&mask.to_ne_bytes()); // state_mask
    info
}

/// struct nf_nat_range2 for one address and one port: flags (map the
/// address, the port given), the address as both ends of the range, the
/// port (network order) as both ends, padded to 48 bytes.
fn dnat(addr: IpAddr, port: u16) -> Vec<u8> {
    const MAP_IPS: u32 = 1;
    const PROTO_SPECIFIED: u32 = 2;
    let mut info = vec![0u8; 48];
    info[..4].copy_from_slice(&(MAP_IPS | PROTO_SPECIFIED).to_ne_bytes());
    let bytes = match addr {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    info[4..4 + bytes.len()].copy_from_slice(&bytes);
    info[20..20 + bytes.len()].copy_from_slice(&bytes);
    info[36..38].copy_from_slice(&port.to_be_bytes());
    info[38..40].copy_from_slice(&port.to_be_bytes());
    info
}

fn meta(out: &mut Vec<u8>, key: u32) {
    expression(out, "meta", |out| {
        put(out, 2, &key.to_be_bytes()); // NFTA_META_KEY
        put(out, 1, &NFT_REG_1.to_be_bytes()); // NFTA_META_DREG
    });
}

fn cmp(out: &mut Vec<u8>, invert: bool, data: &[u8]) {
    let op = if invert { NFT_CMP_NEQ } else { NFT_CMP_EQ };
    expression(out, "cmp", |out| {
        put(out, 1, &NFT_REG_1.to_be_bytes()); // NFTA_CMP_SREG
        put(out, 2, &op.to_be_bytes()); // NFTA_CMP_OP
        nest(out, 3, |out| put(out, NFTA_DATA_VALUE, data)); // NFTA_CMP_DATA
    });
}

/// Loads `like.len()` bytes at `offset` of header `base`.
fn payload(out: &mut Vec<u8>, base: u32, offset: u32, like: &[u8]) {
    let len = u32::try_from(like.len()).unwrap_or(0);
    expression(out, "payload", |out| {
        put(out, 1, &NFT_REG_1.to_be_bytes()); // NFTA_PAYLOAD_DREG
        put(out, 2, &base.to_be_bytes()); // NFTA_PAYLOAD_BASE
        put(out, 3, &offset.to_be_bytes()); // NFTA_PAYLOAD_OFFSET
        put(out, 4, &len.to_be_bytes()); // NFTA_PAYLOAD_LEN
    });
}

fn bitwise(out: &mut Vec<u8>, mask: &[u8]) {
    let len = u32::try_from(mask.len()).unwrap_or(0);
    expression(out, "bitwise", |out| {
        put(out, 1, &NFT_REG_1.to_be_bytes()); // NFTA_BITWISE_SREG
        put(out, 2, &NFT_REG_1.to_be_bytes()); // NFTA_BITWISE_DREG
        put(out, 3, &len.to_be_bytes()); // NFTA_BITWISE_LEN
        nest(out, 4, |out| put(out, NFTA_DATA_VALUE, mask)); // NFTA_BITWISE_MASK
        nest(out, 5, |out| {
            put(out, NFTA_DATA_VALUE, &vec![0; mask.len()])
        }); // NFTA_BITWISE_XOR
    });
}

fn verdict(out: &mut Vec<u8>, code: u32, chain: Option<&str>) {
    expression(out, "immediate", |out| {
        put(out, 1, &NFT_REG_VERDICT.to_be_bytes()); // NFTA_IMMEDIATE_DREG
        nest(out, 2, |out| {
            // NFTA_IMMEDIATE_DATA
            nest(out, NFTA_DATA_VERDICT, |out| {
                put(out, NFTA_VERDICT_CODE, &code.to_be_bytes());
                if let Some(chain) = chain {
                    put(out, NFTA_VERDICT_CHAIN, &c_string(chain));
                }
            });
        });
    });
}

/// An x_tables match or target run by nft_compat: its name, revision and
/// info struct.
fn xt(out: &mut Vec<u8>, kind: &str, name: &str, revision: u32, info: &[u8]) {
    expression(out, kind, |out| {
        put(out, 1, &c_string(name)); // NFTA_MATCH_NAME, NFTA_TARGET_NAME
        put(out, 2, &revision.to_be_bytes()); // ..._REV
        put(out, 3, info); // ..._INFO
    });
}

fn expression(out: &mut Vec<u8>, name: &str, data: impl FnOnce(&mut Vec<u8>)) {
    nest(out, NFTA_LIST_ELEM, |out| {
        put(out, NFTA_EXPR_NAME, &c_string(name));
        nest(out, NFTA_EXPR_DATA, data);
    });
}

/// Appends attribute `kind` holding `value`, padded to four bytes.
fn put(out: &mut Vec<u8>, kind: u16, value: &[u8]) {
    let length = u16::try_from(4 + value.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&length.to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(value);
    out.resize(out.len().next_multiple_of(4), 0);
}

/// Appends nested attribute `kind`, its content written by `inner`.
fn nest(out: &mut Vec<u8>, kind: u16, inner: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; 2]);
    out.extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
    inner(out);
    let length = u16::try_from(out.len() - start).unwrap_or(u16::MAX);
    out[start..start + 2].copy_from_slice(&length.to_ne_bytes());
}

fn c_string(text: &str) -> Vec<u8> {
    let mut bytes = text.as_bytes().to_vec();
    bytes.push(0);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each rule of the fixture: family, table, chain, spec, and the bytes
    /// iptables-nft sent for it.
    fn captured() -> Vec<(Family, String, String, String, Vec<u8>)> {
        let text = include_str!("fixtures/nft-rules.txt");
        text.lines()
            .map(|line| {
                let f: Vec<&str> = line.split('\t').collect();
                assert_eq!(f.len(), 5, "fixture line: {line}");
                let family = if f[0] == "6" { Family::V6 } else { Family::V4 };
                let bytes = (0..f[4].len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&f[4][i..i + 2], 16).expect("hex"))
                    .collect();
                (family, f[1].into(), f[2].into(), f[3].into(), bytes)
            })
            .collect()
    }

    #[test]
    fn every_captured_rule_is_encoded_byte_for_byte_as_iptables_nft_sent_it() {
        let rules = captured();
        assert!(rules.len() >= 19, "the fixture holds every shape");
        for (family, table, chain, spec, sent) in rules {
            let ours = encode(family, &table, &chain, &spec)
                .unwrap_or_else(|| panic!("not encoded: {spec}"));
            assert_eq!(hex(&ours), hex(&sent), "{family:?} {table} {chain} {spec}");
        }
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn an_option_it_does_not_know_is_not_encoded() {
        let refused = [
            // Matches and targets it has no encoding for.
            "-m addrtype --dst-type LOCAL -j NSNET-DNAT",
            "-s 10.0.0.0/8 -j MASQUERADE",
            "-p tcp -m tcp --sport 80 -j ACCEPT",
            "-p tcp -m tcp --dport 80:90 -j ACCEPT",
            "-p icmp -j ACCEPT",
            "! -p tcp -j ACCEPT",
            // A wildcard interface, a host address with host bits.
            "-i veth+ -j ACCEPT",
            "-s 10.0.0.1/8 -j ACCEPT",
            // The other family's address, a port of another protocol.
            "-d fd00::1/128 -j ACCEPT",
            "-p udp -m tcp --dport 80 -j ACCEPT",
            // No target, two targets, a jump to a chain not nsnet's.
            "-s 10.0.0.0/8",
            "-j ACCEPT -j DROP",
            "-j DOCKER",
            // A quote or escape inside a comment.
            "-m comment --comment \"a\\\"b\" -j ACCEPT",
            "-m comment --comment a\"b -j ACCEPT",
            // The same option twice.
            "-s 10.0.0.0/8 -s 10.1.0.0/16 -j ACCEPT",
        ];
        for spec in refused {
            assert!(
                encode(Family::V4, "filter", "NSNET-FORWARD", spec).is_none(),
                "{spec}"
            );
        }
        let long = format!("-m comment --comment {} -j ACCEPT", "x".repeat(256));
        assert!(encode(Family::V4, "filter", "NSNET-FORWARD", &long).is_none());
    }

    #[test]
    fn a_batch_is_encoded_only_when_it_only_appends_rules_it_knows() {
        let accept =
            r#"-A NSNET-FORWARD -i nsnet0 -o nsnet0 -m comment --comment "nsnet:nsnet0" -j ACCEPT"#;
        let dnat = "-A NSNET-DNAT -p tcp -m tcp --dport 80 -m comment --comment x -j DNAT --to-destination 10.0.0.2:80";
        let two = format!("*nat\n{dnat}\nCOMMIT\n*filter\n{accept}\nCOMMIT\n");
        let rules = appends(Family::V4, &two).expect("encoded");
        assert_eq!(rules.len(), 2);
        // Each names its own table and chain.
        assert_eq!(&rules[0][4..8], b"nat\0");
        assert_eq!(&rules[1][4..11], b"filter\0");
        let refused = [
            // A deletion, an insertion, a new chain, a flush.
            format!("*filter\n{}\nCOMMIT\n", accept.replacen("-A", "-D", 1)),
            format!("*filter\n{}\nCOMMIT\n", accept.replacen("-A", "-I", 1)),
            format!("*filter\n:NSNET-X - [0:0]\n{accept}\nCOMMIT\n"),
            "*filter\n-F NSNET-FORWARD\nCOMMIT\n".to_string(),
            // A rule outside a table, in a table iptables has not.
            format!("{accept}\n"),
            format!("*broute\n{accept}\nCOMMIT\n"),
            // Nothing to add.
            "*filter\nCOMMIT\n".to_string(),
            // One rule it cannot encode spoils the batch.
            format!(
                "*filter\n{accept}\n-A NSNET-FORWARD -m addrtype --dst-type LOCAL -j ACCEPT\nCOMMIT\n"
            ),
        ];
        for batch in refused {
            assert!(appends(Family::V4, &batch).is_none(), "{batch}");
        }
    }

    #[test]
    fn words_keep_a_quoted_comment_whole() {
        assert_eq!(
            words(r#"-m comment --comment "nsnet:publish:a:80/tcp" -j ACCEPT"#),
            Some(
                [
                    "-m",
                    "comment",
                    "--comment",
                    "nsnet:publish:a:80/tcp",
                    "-j",
                    "ACCEPT"
                ]
                .map(String::from)
                .to_vec()
            )
        );
        assert_eq!(words(r#"--comment "open"#), None);
    }
}
