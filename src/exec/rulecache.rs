//! What `iptables-save` and `ip6tables-save` would print, kept between
//! commands so that a command does not read the whole ruleset again when
//! nothing changed it: on a host with thousands of rules of other tools
//! (Docker's, kube-proxy's) reading them all is most of what a command costs.
//!
//! The kernel numbers every change to its nf_tables ruleset (the generation,
//! one more per committed transaction, whoever makes it). The cache holds the
//! saved text of each family with the generation it was read at, and is good
//! only while the kernel's generation is still that one: any change by
//! anyone else, or by hand, makes the next read a real one. nsnet's own
//! `iptables-restore --noflush` batches are applied to the cached text as the
//! kernel applies them, when the generation shows that the batch was the
//! only change (exactly one more). Anything the model does not know (a line
//! it cannot apply, a rule to delete it does not hold) drops the cache.
//!
//! A change by someone else does not throw the cache away whole: the
//! cache keeps a print of each chain (see `nfdump`), the runner reads the
//! kernel's prints of every chain (far cheaper than the tool's text) and
//! only the chains whose print moved are read again, with `iptables -S
//! CHAIN`, when they are few; the chains' list and policies must be as
//! cached, or the whole ruleset is read again. The prints follow nsnet's own
//! changes as the text does: rule by rule where nsnet made the batch itself
//! (the kernel echoes each rule it adds, and the cache knows each rule it
//! deletes), by listing the chains a batch of the tool named.
//!
//! Only for iptables over nf_tables: the legacy backend has no generation.
//! `NSNET_READ=ip` turns the cache off.

use crate::exec::nfdump::{Print, Ruleset, Seen};
use crate::plan::cmd::{Cmd, Tool};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The file in nsnet's state directory.
pub const FILE: &str = "rules.cache";

/// The section of the file that holds `RuleCache::handles`, one rule a
/// line: save tool, table, handle, print and saved line, tab-separated.
const HANDLES: &str = "handles";

/// The section that holds `RuleCache::prints`, one chain a line: save
/// tool, table, chain, rules and sum, tab-separated.
const PRINTS: &str = "prints";

/// The first line of the file, naming its format.
const FILE_HEADER: &str = "nsnet-rule-cache-2";

/// The most chains someone else changed that are read again one by one
/// (one `iptables -S` each, about 4 ms); past it the whole ruleset is.
pub const REREAD_AT_MOST: usize = 8;

/// One table of a saved ruleset: its chains in order (name, policy) and the
/// rules of each, as saved (`-A CHAIN …`). The text read is borrowed, not
/// copied line by line: on a host with thousands of other tools' rules a
/// batch changes a few of them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Table<'a> {
    name: &'a str,
    chains: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    rules: BTreeMap<Cow<'a, str>, Rules<'a>>,
}

/// The rules of one chain. As read, one block of the text read (whole
/// lines, each ending in a newline), never split into lines unless a batch
/// changes the chain: the chains of other tools are most of a busy host's
/// ruleset, and nsnet's batches touch only its own and the built-in ones.
#[derive(Clone, Debug)]
enum Rules<'a> {
    Block(&'a str),
    Lines(Vec<Cow<'a, str>>),
}

impl Default for Rules<'_> {
    fn default() -> Self {
        Rules::Lines(Vec::new())
    }
}

/// Equal when they hold the same rules, however they hold them.
impl PartialEq for Rules<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Rules<'_> {}

impl<'a> Rules<'a> {
    /// Each rule, as saved, without its newline.
    fn iter(&self) -> impl Iterator<Item = &str> {
        let (block, lines) = match self {
            Rules::Block(block) => (Some(block.lines()), None),
            Rules::Lines(lines) => (None, Some(lines.iter().map(|l| l.as_ref()))),
        };
        block
            .into_iter()
            .flatten()
            .chain(lines.into_iter().flatten())
    }

    fn is_empty(&self) -> bool {
        match self {
            Rules::Block(block) => block.is_empty(),
            Rules::Lines(lines) => lines.is_empty(),
        }
    }

    /// The rules one by one, to change: a block is split into its lines.
    fn lines(&mut self) -> &mut Vec<Cow<'a, str>> {
        if let Rules::Block(block) = *self {
            *self = Rules::Lines(block.lines().map(Cow::Borrowed).collect());
        }
        match self {
            Rules::Lines(lines) => lines,
            Rules::Block(_) => unreachable!("split above"),
        }
    }

    /// How many bytes they take saved, newlines included.
    fn size(&self) -> usize {
        match self {
            Rules::Block(block) => block.len(),
            Rules::Lines(lines) => lines.iter().map(|l| l.len() + 1).sum(),
        }
    }

    fn render(&self, out: &mut String) {
        match self {
            Rules::Block(block) => out.push_str(block),
            Rules::Lines(lines) => {
                for line in lines {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
    }

    /// Adds the rules of `more` after these.
    fn extend(&mut self, more: Rules<'a>) {
        if more.is_empty() {
            return;
        }
        if self.is_empty() {
            *self = more;
            return;
        }
        match more {
            Rules::Block(block) => self.lines().extend(block.lines().map(Cow::Borrowed)),
            Rules::Lines(lines) => self.lines().extend(lines),
        }
    }
}

/// A saved ruleset of one family.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Saved<'a> {
    tables: Vec<Table<'a>>,
}

/// One rule a batch deletes: where it is saved (see `Saved::deletions`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deletion {
    pub table: String,
    pub chain: String,
    /// Its place in the chain, from 0, before any of the batch's deletions.
    pub index: usize,
    /// How many rules the chain holds, before any of them.
    pub length: usize,
    /// Its handle in the kernel, when the cache knows it (see
    /// `RuleCache::handles`): then the chain need not be listed.
    pub handle: Option<u64>,
    /// Its print (see `nfdump`), when the cache knows its handle.
    pub print: Option<u64>,
}

impl<'a> Saved<'a> {
    /// Reads `iptables-save` output (comments and counters left out). The
    /// rules of a chain, saved one after the other, are kept as one block
    /// of `text` (see `Rules`): each line is only looked at for its chain.
    pub fn parse(text: &'a str) -> Saved<'a> {
        let mut saved = Saved::default();
        // The rules read but not yet given to their chain: its name, and
        // where they start and end in `text`.
        let mut block: Option<(&'a str, usize, usize)> = None;
        let give = |saved: &mut Saved<'a>, block: Option<(&'a str, usize, usize)>| {
            if let (Some((chain, start, end)), Some(table)) = (block, saved.tables.last_mut()) {
                let rules = Rules::Block(&text[start..end]);
                match table.rules.get_mut(chain) {
                    Some(held) => held.extend(rules),
                    None => {
                        table.rules.insert(Cow::Borrowed(chain), rules);
                    }
                }
            }
        };
        let mut at = 0;
        for raw in text.split_inclusive('\n') {
            let start = at;
            at += raw.len();
            let line = raw.strip_suffix('\n').unwrap_or(raw);
            // A block holds whole lines, each ending in a bare newline.
            let whole = raw.ends_with('\n') && !line.ends_with('\r');
            if let Some(rule) = line.strip_prefix("-A ").filter(|_| whole) {
                let chain = rule.split(' ').next().unwrap_or_default();
                match block {
                    Some((held, from, end)) if held == chain && end == start => {
                        block = Some((held, from, at));
                    }
                    _ => {
                        give(&mut saved, block.take());
                        block = Some((chain, start, at));
                    }
                }
                continue;
            }
            give(&mut saved, block.take());
            if let Some(name) = line.strip_prefix('*') {
                saved.tables.push(Table {
                    name,
                    ..Table::default()
                });
            } else if let (Some(chain), Some(table)) =
                (line.strip_prefix(':'), saved.tables.last_mut())
            {
                let mut words = chain.split_whitespace();
                let name = words.next().unwrap_or_default();
                let policy = words.next().unwrap_or("-");
                table.rules.entry(Cow::Borrowed(name)).or_default();
                table
                    .chains
                    .push((Cow::Borrowed(name), Cow::Borrowed(policy)));
            } else if let (Some(rule), Some(table)) =
                (line.strip_prefix("-A "), saved.tables.last_mut())
            {
                // A last line without its newline, or one with a carriage
                // return: not a whole line of a block.
                let line = line.strip_suffix('\r').unwrap_or(line);
                let chain = rule.split_whitespace().next().unwrap_or_default();
                let rules = match table.rules.get_mut(chain) {
                    Some(rules) => rules,
                    None => table.rules.entry(Cow::Borrowed(chain)).or_default(),
                };
                rules.lines().push(Cow::Borrowed(line));
            }
        }
        give(&mut saved, block);
        saved
    }

    /// As `iptables-save` prints it, without comments and counters.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let size: usize = self
            .tables
            .iter()
            .flat_map(|t| t.rules.values())
            .map(Rules::size)
            .sum();
        out.reserve(size + 1024);
        for table in &self.tables {
            out.push_str(&format!("*{}\n", table.name));
            for (chain, policy) in &table.chains {
                out.push_str(&format!(":{chain} {policy} [0:0]\n"));
            }
            for (chain, _) in &table.chains {
                if let Some(rules) = table.rules.get(chain) {
                    rules.render(&mut out);
                }
            }
            out.push_str("COMMIT\n");
        }
        out
    }

    /// The rules an `iptables-restore --noflush` batch of nothing but `-D`
    /// lines deletes, each as its table, chain, place in the chain as saved
    /// (from 0) and the chain's length; `None` for a batch with any other
    /// line, or a line that deletes no rule saved here. A line deletes the
    /// first rule saved with its spec that an earlier line has not taken,
    /// as iptables deletes the first that matches.
    pub fn deletions(&self, batch: &str) -> Option<Vec<Deletion>> {
        let mut out: Vec<Deletion> = Vec::new();
        let mut table: Option<&Table> = None;
        for line in batch.lines().map(str::trim) {
            if let Some(name) = line.strip_prefix('*') {
                table = Some(self.tables.iter().find(|t| t.name == name)?);
                continue;
            }
            if framing(line) {
                continue;
            }
            let rest = line.strip_prefix("-D ")?;
            let (chain, spec) = rest.split_once(' ')?;
            let table = table?;
            let rules: Vec<&str> = table.rules.get(chain)?.iter().collect();
            let saved = format!("-A {chain} {spec}");
            let taken = |i: usize| {
                out.iter()
                    .any(|d| d.table == table.name && d.chain == chain && d.index == i)
            };
            let index = (0..rules.len()).find(|&i| rules[i] == saved && !taken(i))?;
            out.push(Deletion {
                table: table.name.to_string(),
                chain: chain.to_string(),
                index,
                length: rules.len(),
                handle: None,
                print: None,
            });
        }
        (!out.is_empty()).then_some(out)
    }

    /// Every chain, (table, chain) → policy (`-` for one of its own).
    fn chain_list(&self) -> BTreeMap<(String, String), String> {
        let mut out = BTreeMap::new();
        for table in &self.tables {
            for (chain, policy) in &table.chains {
                out.insert(
                    (table.name.to_string(), chain.to_string()),
                    policy.to_string(),
                );
            }
        }
        out
    }

    /// How many rules `chain` of `table` holds.
    fn length(&self, table: &str, chain: &str) -> usize {
        self.tables
            .iter()
            .find(|t| t.name == table)
            .and_then(|t| t.rules.get(chain))
            .map_or(0, |rules| rules.iter().count())
    }

    /// Puts `lines` (each `-A CHAIN …`) in place of the rules of `chain`.
    fn replace(&mut self, table: &str, chain: &str, lines: Vec<String>) {
        if let Some(table) = self.tables.iter_mut().find(|t| t.name == table) {
            let lines = lines.into_iter().map(Cow::Owned).collect();
            table
                .rules
                .insert(Cow::Owned(chain.to_string()), Rules::Lines(lines));
        }
    }

    /// The saved line of `rule`, one `deletions` gave.
    pub fn line(&self, rule: &Deletion) -> &str {
        self.chain(rule).nth(rule.index).unwrap_or("")
    }

    /// Whether `rule`'s line is the only one so in its chain.
    pub fn unique(&self, rule: &Deletion) -> bool {
        let line = self.line(rule);
        self.chain(rule).filter(|l| *l == line).count() == 1
    }

    fn chain(&self, rule: &Deletion) -> impl Iterator<Item = &str> {
        self.tables
            .iter()
            .find(|t| t.name == rule.table)
            .and_then(|t| t.rules.get(rule.chain.as_str()))
            .into_iter()
            .flat_map(Rules::iter)
    }

    /// Applies an `iptables-restore --noflush` batch as the kernel does,
    /// and counts the tables it changed (each table of a batch is a
    /// transaction of its own, and one that changes nothing is none);
    /// `Err` with what it could not apply, and then nothing is applied.
    /// Only the tables the batch names are copied while it applies, not the
    /// whole ruleset, which holds every other tool's rules too.
    pub fn restore(&mut self, batch: &str) -> Result<u32, String> {
        let mut copies: Vec<Table<'a>> = Vec::new();
        let mut at: Option<usize> = None;
        let mut changed = 0;
        let mut dirty = false;
        for line in batch.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if line.starts_with('#') {
                continue;
            }
            if line == "COMMIT" {
                changed += u32::from(std::mem::take(&mut dirty));
                at = None;
                continue;
            }
            if let Some(name) = line.strip_prefix('*') {
                changed += u32::from(std::mem::take(&mut dirty));
                let slot = match copies.iter().position(|t| t.name == name) {
                    Some(slot) => slot,
                    None => {
                        let table = match self.tables.iter().find(|t| t.name == name) {
                            Some(table) => table.clone(),
                            // The kernel makes a table on first use; saved,
                            // it shows every built-in chain of its kind.
                            None => Table::built_in(name)
                                .ok_or_else(|| format!("table {name} is not one iptables has"))?,
                        };
                        copies.push(table);
                        copies.len() - 1
                    }
                };
                at = Some(slot);
                continue;
            }
            let table = at
                .and_then(|slot| copies.get_mut(slot))
                .ok_or_else(|| format!("`{line}` outside a table"))?;
            dirty |= table.apply(line)?;
        }
        changed += u32::from(dirty);
        for table in copies {
            match self.tables.iter().position(|t| t.name == table.name) {
                Some(index) => self.tables[index] = table,
                // Saved in the order iptables knows its tables by.
                None => {
                    let rank = |name: &str| BUILT_IN.iter().position(|(n, _)| *n == name);
                    let after = |t: &Table| rank(t.name) > rank(table.name);
                    let index = self.tables.iter().position(after);
                    self.tables
                        .insert(index.unwrap_or(self.tables.len()), table);
                }
            }
        }
        Ok(changed)
    }
}

/// The tables of iptables (and ip6tables) as `iptables-save` prints them
/// over nf_tables, in its order, each with its built-in chains in theirs.
const BUILT_IN: [(&str, &[&str]); 5] = [
    (
        "mangle",
        &["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"],
    ),
    ("security", &["INPUT", "FORWARD", "OUTPUT"]),
    ("raw", &["PREROUTING", "OUTPUT"]),
    ("filter", &["INPUT", "FORWARD", "OUTPUT"]),
    ("nat", &["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"]),
];

impl Table<'_> {
    /// Table `name` as the kernel makes it on first use: its built-in
    /// chains, empty, with policy ACCEPT (`None`: not a table of iptables).
    fn built_in(name: &str) -> Option<Table<'static>> {
        let (name, chains) = BUILT_IN.iter().find(|(n, _)| *n == name)?;
        let chains: Vec<_> = chains
            .iter()
            .map(|c| (Cow::Borrowed(*c), Cow::Borrowed("ACCEPT")))
            .collect();
        let rules = chains
            .iter()
            .map(|(c, _)| (c.clone(), Rules::default()))
            .collect();
        Some(Table {
            name,
            chains,
            rules,
        })
    }

    /// Applies one line of a batch; whether it changed the table.
    fn apply(&mut self, line: &str) -> Result<bool, String> {
        let unknown = || format!("cannot apply `{line}`");
        if let Some(decl) = line.strip_prefix(':') {
            let mut words = decl.split_whitespace();
            let chain = words.next().ok_or_else(unknown)?.to_string();
            let policy = words.next().unwrap_or("-").to_string();
            // --noflush: declaring an existing chain of its own empties it.
            match self.chains.iter_mut().find(|(c, _)| *c == chain) {
                // A built-in chain (it has a policy) only takes the policy
                // given: it is not flushed.
                Some((_, p)) if *p != "-" => {
                    let changed = policy != "-" && *p != policy;
                    if changed {
                        *p = Cow::Owned(policy);
                    }
                    return Ok(changed);
                }
                Some(_) => {}
                // Saved after the built-in chains, in the order of their
                // names, as `iptables-save` prints them.
                None => {
                    let after = |(c, p): &(Cow<str>, Cow<str>)| *p == "-" && **c > *chain;
                    let index = self.chains.iter().position(after);
                    let new = (Cow::Owned(chain.clone()), Cow::Owned(policy));
                    self.chains.insert(index.unwrap_or(self.chains.len()), new);
                }
            }
            let old = self.rules.insert(Cow::Owned(chain), Rules::default());
            // A new chain, or one that held rules.
            return Ok(old.is_none_or(|rules| !rules.is_empty()));
        }
        let (op, rest) = line.split_once(' ').ok_or_else(unknown)?;
        let (chain, spec) = rest.split_once(' ').unwrap_or((rest, ""));
        let exists = self.chains.iter().any(|(c, _)| c == chain);
        if !exists {
            return Err(format!("no chain {chain} for `{line}`"));
        }
        let held = self.rules.entry(Cow::Owned(chain.to_string())).or_default();
        if matches!(op, "-F" | "-X") && spec.is_empty() {
            let had = !held.is_empty();
            if op == "-F" {
                *held = Rules::default();
                return Ok(had);
            }
            if had {
                return Err(format!("`{line}`: the chain is not empty"));
            }
            self.rules.remove(chain);
            self.chains.retain(|(c, _)| c != chain);
            return Ok(true);
        }
        let rules = held.lines();
        match op {
            "-A" => rules.push(Cow::Owned(format!("-A {chain} {spec}"))),
            "-D" => {
                let saved = format!("-A {chain} {spec}");
                let i = rules
                    .iter()
                    .position(|r| *r == saved)
                    .ok_or_else(|| format!("no rule for `{line}`"))?;
                rules.remove(i);
            }
            "-I" => {
                let (n, spec) = match spec.split_once(' ') {
                    Some((n, s)) if n.parse::<usize>().is_ok() => (n.parse().unwrap_or(1), s),
                    _ => (1, spec),
                };
                if n == 0 || n > rules.len() + 1 {
                    return Err(format!("position out of range in `{line}`"));
                }
                rules.insert(n - 1, Cow::Owned(format!("-A {chain} {spec}")));
            }
            _ => return Err(unknown()),
        }
        Ok(true)
    }
}

/// The cached rulesets, by the tool that saves them, at one generation.
#[derive(Debug, Default)]
pub struct RuleCache {
    /// The boot and the network namespace it was read in: generations are
    /// counted from the start in each, so one from elsewhere means nothing.
    host: String,
    generation: u32,
    saved: BTreeMap<String, String>,
    /// The kernel's handle of rules nsnet added itself (`nfbatch::append`
    /// hears it back), by save tool, table and saved line, good while the
    /// saved text of that tool is: a rule's handle is fixed for its life
    /// and never given to another in its table, so only a change the cache
    /// cannot follow rule by rule (a restore by the tool, a read afresh)
    /// drops them. A `publish del` then need not list its chains. With
    /// each, its print (see `nfdump`).
    handles: BTreeMap<(String, String, String), (u64, u64)>,
    /// The print of each chain of the saved text, by save tool, table and
    /// chain, as the kernel held it at `generation`; a chain without one
    /// (a batch of the tool changed it, and it was not listed since) is
    /// read again after a change by someone else.
    prints: BTreeMap<(String, String, String), Print>,
    /// Where it is kept; `None`: not kept (a read-only command).
    file: Option<PathBuf>,
    /// Whether it changed since it was loaded.
    dirty: bool,
}

/// How a batch was committed: as `iptables-restore` does, one transaction
/// per table that it changes, or all of it in one.
#[derive(Clone, Copy, Debug)]
enum Commits {
    PerTable,
    Once,
}

/// The save tool of a restore tool.
fn save_of(tool: Tool) -> Option<Tool> {
    match tool {
        Tool::IptablesRestore => Some(Tool::IptablesSave),
        Tool::Ip6tablesRestore => Some(Tool::Ip6tablesSave),
        _ => None,
    }
}

impl RuleCache {
    /// Loads the cache of state directory `dir`, to read.
    pub fn load(dir: &Path) -> RuleCache {
        let host = here().unwrap_or_default();
        let cache = std::fs::read_to_string(dir.join(FILE))
            .ok()
            .and_then(RuleCache::parse);
        match cache {
            Some(cache) if !host.is_empty() && cache.host == host => cache,
            _ => RuleCache {
                host,
                ..RuleCache::default()
            },
        }
    }

    /// The file: a `FILE_HEADER` line, `host` and `generation` lines, then
    /// each family's saved text after a `== TOOL` line. Plain text, not
    /// JSON: the rules are most of the file, and escaping and unescaping
    /// every quote of their comments cost more than the rest of the cache.
    /// `None` for anything else (an older nsnet's file: read afresh).
    /// The largest family's text is cut out of `text` in place, not copied:
    /// on a busy host it is most of the file, hundreds of kilobytes.
    fn parse(text: String) -> Option<RuleCache> {
        let mut rest = text.as_str();
        let mut field = |name: &str| {
            let (line, after) = rest.split_once('\n')?;
            rest = after;
            line.strip_prefix(name)?.strip_prefix(' ').map(String::from)
        };
        field(FILE_HEADER)?;
        let host = field("host")?;
        let generation = field("generation")?.parse().ok()?;
        // Each family's text is taken whole, from its `== TOOL` line to the
        // next line that starts so: thousands of lines on a busy host, not
        // looked at one by one. A saved ruleset has no such line.
        // Where each family's text is in `text`.
        let mut parts: Vec<(String, std::ops::Range<usize>)> = Vec::new();
        let mut handles = BTreeMap::new();
        let mut prints = BTreeMap::new();
        while !rest.is_empty() {
            let (tool, body) = rest.strip_prefix("== ")?.split_once('\n')?;
            let end = match body.starts_with("== ") {
                true => 0,
                false => body.find("\n== ").map_or(body.len(), |i| i + 1),
            };
            if tool == HANDLES {
                for line in body[..end].lines() {
                    let mut f = line.splitn(5, '\t');
                    let (tool, table, handle, print) = (f.next()?, f.next()?, f.next()?, f.next()?);
                    let key = (tool.to_string(), table.to_string(), f.next()?.to_string());
                    handles.insert(key, (handle.parse().ok()?, print.parse().ok()?));
                }
            } else if tool == PRINTS {
                for line in body[..end].lines() {
                    let mut f = line.split('\t');
                    let (tool, table, chain) = (f.next()?, f.next()?, f.next()?);
                    let print = Print {
                        rules: f.next()?.parse().ok()?,
                        sum: f.next()?.parse().ok()?,
                    };
                    prints.insert(
                        (tool.to_string(), table.to_string(), chain.to_string()),
                        print,
                    );
                }
            } else {
                let start = text.len() - body.len();
                parts.push((tool.to_string(), start..start + end));
            }
            rest = &body[end..];
        }
        let largest = (0..parts.len()).max_by_key(|&i| parts[i].1.len());
        let mut saved = BTreeMap::new();
        for (i, (tool, range)) in parts.iter().enumerate() {
            if Some(i) != largest {
                saved.insert(tool.clone(), text[range.clone()].to_string());
            }
        }
        if let Some((tool, range)) = largest.map(|i| parts.swap_remove(i)) {
            let mut text = text;
            text.truncate(range.end);
            text.drain(..range.start);
            saved.insert(tool, text);
        }
        handles.retain(|(tool, _, _), _| saved.contains_key(tool));
        prints.retain(|(tool, _, _), _| saved.contains_key(tool));
        Some(RuleCache {
            host,
            generation,
            saved,
            handles,
            prints,
            ..RuleCache::default()
        })
    }

    /// The file's text (see `parse`).
    fn render(&self) -> String {
        let size: usize = self.saved.values().map(|t| t.len() + 32).sum();
        let mut out = String::with_capacity(size + 200);
        out.push_str(&format!(
            "{FILE_HEADER} -\nhost {}\ngeneration {}\n",
            self.host, self.generation
        ));
        for (tool, text) in &self.saved {
            out.push_str(&format!("== {tool}\n"));
            out.push_str(text);
        }
        if !self.handles.is_empty() {
            out.push_str(&format!("== {HANDLES}\n"));
            for ((tool, table, rule), (handle, print)) in &self.handles {
                out.push_str(&format!("{tool}\t{table}\t{handle}\t{print}\t{rule}\n"));
            }
        }
        if !self.prints.is_empty() {
            out.push_str(&format!("== {PRINTS}\n"));
            for ((tool, table, chain), print) in &self.prints {
                let (rules, sum) = (print.rules, print.sum);
                out.push_str(&format!("{tool}\t{table}\t{chain}\t{rules}\t{sum}\n"));
            }
        }
        out
    }

    /// From now on the cache may be written back to state directory `dir`
    /// (the caller holds nsnet's lock).
    pub fn keep_in(&mut self, dir: &Path) {
        self.file = Some(dir.join(FILE));
    }

    /// Writes the cache back if it changed; a cache that cannot be written
    /// is removed (a stale one must never be read).
    pub fn store(&mut self) {
        let Some(path) = &self.file else {
            return;
        };
        if !self.dirty {
            return;
        }
        // Root's only, as the rules it holds (other tools' too) are.
        let write = |text: String| {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let tmp = path.with_extension("tmp");
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            file.write_all(text.as_bytes())?;
            std::fs::rename(&tmp, path)
        };
        let written = write(self.render());
        if written.is_err() {
            let _ = std::fs::remove_file(path);
        }
        self.dirty = false;
        // Written once, under the lock of the command that kept it.
        self.file = None;
    }

    /// What `cmd` (a whole-ruleset save) prints, if the cache holds it at
    /// the kernel's `generation`.
    pub fn answer(&self, cmd: &Cmd, generation: u32) -> Option<String> {
        if self.generation != generation {
            return None;
        }
        let text = self.saved.get(cmd.tool.program())?;
        match cmd.args.as_slice() {
            [] => Some(text.clone()),
            // One table (`-t TABLE`) is its part of the whole, when the
            // whole has it; a table it lacks is asked of the tool.
            [flag, table] if flag == "-t" => table_of(text, table).map(str::to_string),
            _ => None,
        }
    }

    /// `cmd`, a whole-ruleset save, printed `text` while the generation
    /// was `generation` before and after.
    pub fn learn(&mut self, cmd: &Cmd, generation: u32, text: &str) {
        if !cmd.args.is_empty() {
            return;
        }
        if self.generation != generation {
            self.drop_all();
            self.generation = generation;
        }
        let saved = Saved::parse(text).render();
        let tool = cmd.tool.program().to_string();
        self.handles.retain(|(t, _, _), _| *t != tool);
        self.prints.retain(|(t, _, _), _| *t != tool);
        self.saved.insert(tool, saved);
        self.dirty = true;
    }

    /// Restore `cmd` succeeded, taking the generation from `before` to
    /// `after`: the cached text of its family follows, if the batch was
    /// the only change.
    pub fn restored(&mut self, cmd: &Cmd, before: u32, after: u32) {
        self.follow(cmd, before, after, Commits::PerTable);
    }

    /// Restore `cmd`'s batch was made by nsnet itself, as one transaction
    /// (see `nfbatch`), taking the generation from `before` to `after`.
    pub fn restored_at_once(&mut self, cmd: &Cmd, before: u32, after: u32) {
        self.follow(cmd, before, after, Commits::Once);
    }

    /// The rules restore `cmd` deletes, if it only deletes rules and the
    /// cache holds its family at the kernel's `generation` (see
    /// `Saved::deletions`).
    pub fn deletions(&self, cmd: &Cmd, generation: u32) -> Option<Vec<Deletion>> {
        let save = save_of(cmd.tool)?;
        if self.generation != generation || cmd.args.iter().all(|a| a != "--noflush") {
            return None;
        }
        let batch = cmd.stdin.as_deref()?;
        if !only_deletions(batch) {
            return None;
        }
        let text = self.saved.get(save.program())?;
        let saved = Saved::parse(text);
        let mut rules = saved.deletions(batch)?;
        for rule in &mut rules {
            let line = saved.line(rule);
            let key = (
                save.program().to_string(),
                rule.table.clone(),
                line.to_string(),
            );
            if saved.unique(rule)
                && let Some((handle, print)) = self.handles.get(&key)
            {
                rule.handle = Some(*handle);
                rule.print = Some(*print);
            }
        }
        Some(rules)
    }

    /// Restore `cmd`, an append made by nsnet itself, was followed (see
    /// `restored_at_once`) and the kernel echoed `echoed`, one for each rule
    /// of the batch in order: the cache learns their handles, and the
    /// prints of their chains take them.
    pub fn added(&mut self, cmd: &Cmd, echoed: &[Seen]) {
        let Some(save) = save_of(cmd.tool) else {
            return;
        };
        let tool = save.program().to_string();
        if !self.saved.contains_key(&tool) {
            return;
        }
        self.dirty = true;
        let lines = rules_in(cmd, "-A ");
        let same = |(table, rule): &(&str, &str), seen: &Seen| {
            *table == seen.table && rule.split(' ').next() == Some(seen.chain.as_str())
        };
        if lines.len() != echoed.len() || !lines.iter().zip(echoed).all(|(l, s)| same(l, s)) {
            self.unprint(&tool, cmd);
            return;
        }
        for ((table, rule), seen) in lines.into_iter().zip(echoed) {
            let key = (tool.clone(), table.to_string(), format!("-A {rule}"));
            self.handles.insert(key, (seen.handle, seen.print));
            let chain = (tool.clone(), seen.table.clone(), seen.chain.clone());
            if let Some(print) = self.prints.get_mut(&chain) {
                print.add(seen.print);
            }
        }
    }

    /// Restore `cmd`, a deletion made by nsnet itself, was followed (see
    /// `restored_at_once`): the prints of its chains lose the rules' prints
    /// (`prints`, one for each rule of the batch in order, where known).
    pub fn removed(&mut self, cmd: &Cmd, prints: &[Option<u64>]) {
        let Some(save) = save_of(cmd.tool) else {
            return;
        };
        let tool = save.program().to_string();
        let lines = rules_in(cmd, "-D ");
        if lines.len() != prints.len() {
            self.unprint(&tool, cmd);
            return;
        }
        for ((table, rule), print) in lines.into_iter().zip(prints) {
            let chain = rule.split(' ').next().unwrap_or_default();
            let key = (tool.clone(), table.to_string(), chain.to_string());
            match print {
                Some(print) => {
                    if let Some(held) = self.prints.get_mut(&key) {
                        held.remove(*print);
                    }
                }
                None => {
                    self.prints.remove(&key);
                }
            }
        }
        self.dirty = true;
    }

    /// The chains batch `cmd` names lose their prints.
    fn unprint(&mut self, tool: &str, cmd: &Cmd) {
        for (table, chain) in chains_in(cmd) {
            self.prints.retain(|(t, tb, c), _| {
                !(t == tool && tb == table && chain.is_none_or(|chain| c == chain))
            });
        }
        self.dirty = true;
    }

    /// Whether the cache holds rules read at a generation other than
    /// `generation`: then `revalidate` may save reading them all again.
    pub fn stale(&self, generation: u32) -> bool {
        !self.saved.is_empty() && self.generation != generation
    }

    /// Whether the cache holds `tool`'s text.
    pub fn holds(&self, tool: Tool) -> bool {
        self.saved.contains_key(tool.program())
    }

    /// The chains of `tool`'s text that someone else changed, as `kernel`
    /// (the kernel's chains and prints now) shows: those whose print is not
    /// the one kept, or that have none. `None` when the chains themselves
    /// changed (one made, one gone, a policy) or the cache cannot say: then
    /// the whole ruleset must be read again.
    pub fn changed(&self, tool: Tool, kernel: &Ruleset) -> Option<Vec<(String, String)>> {
        let saved = Saved::parse(self.saved.get(tool.program())?);
        let chains = saved.chain_list();
        if !same_chains(&chains, &kernel.chains) {
            tracing::debug!("rule cache: chains were made, removed or given another policy");
            return None;
        }
        let mut out = Vec::new();
        for (table, chain) in chains.keys() {
            let now = kernel.print(table, chain);
            let key = (tool.program().to_string(), table.clone(), chain.clone());
            let held = self.prints.get(&key);
            let length = usize::try_from(now.rules).ok()?;
            if held != Some(&now) || saved.length(table, chain) != length {
                out.push((table.clone(), chain.clone()));
            }
        }
        Some(out)
    }

    /// `tool`'s text, its chains `reread` read again (each with its rules,
    /// `-A CHAIN …`), is what the kernel holds, whose prints are `kernel`'s:
    /// see `changed`. Handles of rules in those chains are dropped.
    pub fn reread(
        &mut self,
        tool: Tool,
        kernel: &Ruleset,
        reread: Vec<((String, String), Vec<String>)>,
    ) {
        let key = tool.program().to_string();
        let Some(text) = self.saved.get(&key) else {
            return;
        };
        let mut saved = Saved::parse(text);
        for ((table, chain), lines) in &reread {
            saved.replace(table, chain, lines.clone());
        }
        // The chains are the kernel's (`changed` said so): their prints are
        // taken from the saved text just changed, not parsed again.
        let chains = saved.chain_list();
        let text = saved.render();
        self.saved.insert(key.clone(), text);
        self.handles.retain(|(t, table, line), _| {
            *t != key
                || !reread.iter().any(|((rt, rc), _)| {
                    rt == table
                        && line.strip_prefix("-A ").and_then(|l| l.split(' ').next()) == Some(rc)
                })
        });
        self.set_prints(&key, chains, kernel);
    }

    /// The cache was read again (see `changed` and `reread`) at
    /// `generation`, which holds from now on for the texts of `kept`; the
    /// others are dropped.
    pub fn revalidated(&mut self, generation: u32, kept: &[Tool]) {
        let kept: Vec<&str> = kept.iter().map(|t| t.program()).collect();
        self.saved.retain(|t, _| kept.contains(&t.as_str()));
        self.handles
            .retain(|(t, _, _), _| kept.contains(&t.as_str()));
        self.prints
            .retain(|(t, _, _), _| kept.contains(&t.as_str()));
        self.generation = generation;
        self.dirty = true;
    }

    /// Every chain of `tool`'s text takes its print from `kernel`, read at
    /// the cache's generation.
    pub fn printed_all(&mut self, tool: Tool, kernel: &Ruleset) {
        let key = tool.program().to_string();
        let Some(text) = self.saved.get(&key) else {
            return;
        };
        let chains = Saved::parse(text).chain_list();
        self.set_prints(&key, chains, kernel);
    }

    /// The prints of save tool `key`'s chains: each of `chains` with its
    /// print in `kernel`, and no other.
    fn set_prints(
        &mut self,
        key: &str,
        chains: BTreeMap<(String, String), String>,
        kernel: &Ruleset,
    ) {
        self.prints.retain(|(t, _, _), _| t != key);
        for (table, chain) in chains.into_keys() {
            let print = kernel.print(&table, &chain);
            self.prints.insert((key.to_string(), table, chain), print);
        }
        self.dirty = true;
    }

    /// The chains of `tool`'s text that have no print.
    pub fn unprinted(&self, tool: Tool) -> Vec<(String, String)> {
        let key = tool.program().to_string();
        let Some(text) = self.saved.get(&key) else {
            return Vec::new();
        };
        let chains = Saved::parse(text).chain_list();
        chains
            .into_keys()
            .filter(|(table, chain)| {
                !self
                    .prints
                    .contains_key(&(key.clone(), table.clone(), chain.clone()))
            })
            .collect()
    }

    /// `chain` of `table` in `tool`'s text holds what `print` says, at the
    /// cache's generation.
    pub fn printed(&mut self, tool: Tool, table: &str, chain: &str, print: Print) {
        let key = (
            tool.program().to_string(),
            table.to_string(),
            chain.to_string(),
        );
        self.prints.insert(key, print);
        self.dirty = true;
    }

    /// Nothing cached any more, rules or handles.
    fn drop_all(&mut self) {
        self.saved.clear();
        self.handles.clear();
        self.prints.clear();
    }

    fn follow(&mut self, cmd: &Cmd, before: u32, after: u32, commits: Commits) {
        let Some(save) = save_of(cmd.tool) else {
            return;
        };
        self.dirty = true;
        let noflush = cmd.args.iter().any(|a| a == "--noflush");
        let known = self.generation == before;
        self.generation = after;
        if !noflush || !known || after == before {
            self.drop_all();
            return;
        }
        let key = save.program().to_string();
        // Without this family's text the batch cannot be shown to be the
        // change the generation counted: nothing is kept.
        let Some(text) = self.saved.get(&key) else {
            self.drop_all();
            return;
        };
        let mut saved = Saved::parse(text);
        // The generation must have moved by exactly the tables that changed
        // something, or someone else changed the ruleset too.
        let changed = match saved.restore(cmd.stdin.as_deref().unwrap_or("")) {
            Ok(changed) => changed,
            Err(why) => {
                tracing::debug!("rule cache dropped: {why}");
                self.drop_all();
                return;
            }
        };
        let transactions = match commits {
            Commits::PerTable => changed,
            Commits::Once => u32::from(changed > 0),
        };
        if after == before.wrapping_add(transactions) {
            self.saved.insert(key.clone(), saved.render());
            match commits {
                // nsnet's own: its deletions take their handles along; the
                // handles of its additions come after (`added`).
                Commits::Once => {
                    for (table, rule) in rules_in(cmd, "-D ") {
                        let gone = (key.clone(), table.to_string(), format!("-A {rule}"));
                        self.handles.remove(&gone);
                    }
                }
                // The tool's: which rule it took or made is not known, nor
                // the prints of the chains it named (the runner lists them).
                Commits::PerTable => {
                    self.handles.retain(|(t, _, _), _| *t != key);
                    self.unprint(&key, cmd);
                }
            }
        } else {
            self.drop_all();
        }
    }

    /// The generation could not be read around a command that may have
    /// changed the ruleset: nothing cached can be trusted.
    pub fn forget(&mut self) {
        self.drop_all();
        self.dirty = true;
    }

    /// Whether `cmd` is one the cache answers or follows.
    pub fn concerns(cmd: &Cmd) -> bool {
        matches!(
            cmd.tool,
            Tool::IptablesSave
                | Tool::Ip6tablesSave
                | Tool::IptablesRestore
                | Tool::Ip6tablesRestore
        )
    }
}

/// Whether `batch` holds nothing but rules to delete, and the lines that
/// frame them: tested before the saved rules are read (see
/// `Saved::deletions`, which says which rules they are).
fn only_deletions(batch: &str) -> bool {
    let mut lines = batch.lines().map(str::trim);
    lines.all(|l| framing(l) || l.starts_with("-D "))
}

/// Whether a trimmed line of a batch frames its rules rather than being one:
/// blank, a comment, a table (`*nat`) or `COMMIT`.
fn framing(line: &str) -> bool {
    line.is_empty() || line.starts_with('#') || line.starts_with('*') || line == "COMMIT"
}

/// The lines of restore `cmd` that start with `op` (`-A ` or `-D `), each
/// as its table and the rule after `op`, in order.
fn rules_in<'c>(cmd: &'c Cmd, op: &str) -> Vec<(&'c str, &'c str)> {
    let mut table = "";
    let mut rules = Vec::new();
    for line in cmd.stdin.as_deref().unwrap_or("").lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('*') {
            table = name;
        } else if let Some(rule) = line.strip_prefix(op) {
            rules.push((table, rule));
        }
    }
    rules
}

/// Whether the chains of a saved text (`saved`, (table, chain) → policy)
/// are the kernel's (`kernel`). iptables over nf_tables makes a built-in
/// chain in the kernel only when a rule or a policy needs it, and saves
/// those it has not made as empty, with policy ACCEPT: such a chain is
/// the same as none. Every table saved must have a chain in the kernel,
/// or it may be gone.
fn same_chains(
    saved: &BTreeMap<(String, String), String>,
    kernel: &BTreeMap<(String, String), String>,
) -> bool {
    let built_in = |table: &str, chain: &str| {
        BUILT_IN
            .iter()
            .any(|(t, chains)| *t == table && chains.contains(&chain))
    };
    let tables_there = saved
        .keys()
        .all(|(table, _)| kernel.keys().any(|(t, _)| t == table));
    let saved_there = saved.iter().all(|(key, policy)| match kernel.get(key) {
        Some(p) => p == policy,
        None => built_in(&key.0, &key.1) && policy == "ACCEPT",
    });
    let kernel_saved = kernel.keys().all(|key| saved.contains_key(key));
    tables_there && saved_there && kernel_saved
}

/// The chains restore `cmd` names, each as its table and chain; `None`
/// for every chain of the table (`-F` alone).
fn chains_in(cmd: &Cmd) -> Vec<(&str, Option<&str>)> {
    let mut table = "";
    let mut out = Vec::new();
    for line in cmd.stdin.as_deref().unwrap_or("").lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('*') {
            table = name;
        } else if let Some(decl) = line.strip_prefix(':') {
            out.push((table, decl.split_whitespace().next()));
        } else if line.starts_with('-') {
            let mut words = line.split_whitespace().skip(1);
            let chain = words.next();
            out.push((table, chain));
            // `-E OLD NEW`: the new name too.
            if line.starts_with("-E ") {
                out.push((table, words.next()));
            }
        }
    }
    out
}

/// Table `name` of a saved ruleset, from its `*name` line to its `COMMIT`.
fn table_of<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let head = format!("*{name}\n");
    let start = match text.starts_with(&head) {
        true => 0,
        false => text.find(&format!("\n{head}"))? + 1,
    };
    let end = start + text[start..].find("\nCOMMIT\n")? + "\nCOMMIT\n".len();
    Some(&text[start..end])
}

/// This boot and network namespace: `BOOT_ID DEV:INODE` (of
/// /proc/self/ns/net), or `None` where either cannot be read.
fn here() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let ns = std::fs::metadata("/proc/self/ns/net").ok()?;
    Some(format!("{} {}:{}", boot.trim(), ns.dev(), ns.ino()))
}

/// The kernel's nf_tables generation in nsnet's network namespace, or
/// `None` where it cannot be read (no nf_tables).
pub fn generation() -> Option<u32> {
    use crate::exec::nfbatch::{self, NFNL_SUBSYS_NFTABLES, NLM_F_REQUEST};
    const NFT_MSG_GETGEN: u16 = 16;
    const NFT_MSG_NEWGEN: u16 = 15;
    const NFTA_GEN_ID: u16 = 1;
    let socket = nfbatch::open().ok()?;
    // No attributes: AF_UNSPEC, resource id 0.
    let mut request = Vec::with_capacity(20);
    let kind = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETGEN;
    nfbatch::message(&mut request, kind, NLM_F_REQUEST, 1, 0, 0, &[]);
    socket.send(&request, 0).ok()?;
    let mut answer = Vec::with_capacity(4096);
    nfbatch::receive(&socket, &mut answer).ok()?;
    let messages = nfbatch::messages(&answer).ok()?;
    let (kind, body) = messages.first()?;
    if *kind != (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWGEN {
        return None;
    }
    // After struct nfgenmsg, the attributes.
    for nla in netlink_packet_core::NlasIterator::new(body.get(4..)?) {
        let nla = nla.ok()?;
        if nla.kind() == NFTA_GEN_ID {
            // Attributes of nf_tables are in network byte order.
            return Some(u32::from_be_bytes(nla.value().get(..4)?.try_into().ok()?));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAVED: &str = "# Generated by iptables-save v1.8.9 (nf_tables)
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [12:34]
:NSNET-FORWARD - [0:0]
-A FORWARD -j NSNET-FORWARD
-A FORWARD -i docker0 -j ACCEPT
-A NSNET-FORWARD -i br0 -j ACCEPT
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
COMMIT
";

    #[test]
    fn parses_and_renders_without_counters_or_comments() {
        let text = Saved::parse(SAVED).render();
        assert!(text.starts_with("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n"));
        assert!(text.contains("-A FORWARD -j NSNET-FORWARD\n-A FORWARD -i docker0 -j ACCEPT\n"));
        assert!(text.ends_with("*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n"));
        assert_eq!(Saved::parse(&text), Saved::parse(SAVED));
    }

    #[test]
    fn applies_a_noflush_batch_as_the_kernel_does() {
        let mut saved = Saved::parse(SAVED);
        let batch = "*nat\n:NSNET-DNAT - [0:0]\n-A NSNET-DNAT -p tcp -j DNAT --to-destination 10.0.0.2:80\n-I PREROUTING 1 -j NSNET-DNAT\nCOMMIT\n*filter\n-D NSNET-FORWARD -i br0 -j ACCEPT\n-I FORWARD 2 -o br0 -j ACCEPT\nCOMMIT\n";
        saved.restore(batch).unwrap();
        let text = saved.render();
        assert!(text.contains(":NSNET-DNAT - [0:0]\n"));
        assert!(text.contains("-A PREROUTING -j NSNET-DNAT\n-A NSNET-DNAT -p tcp"));
        assert!(text.contains(
            "-A FORWARD -j NSNET-FORWARD\n-A FORWARD -o br0 -j ACCEPT\n-A FORWARD -i docker0 -j ACCEPT\n"
        ));
        assert!(!text.contains("-A NSNET-FORWARD -i br0"));
        // Declaring an existing chain empties it; -X removes an empty one.
        saved
            .restore(
                "*nat\n:NSNET-DNAT - [0:0]\n-X NSNET-DNAT\n-D PREROUTING -j NSNET-DNAT\nCOMMIT\n",
            )
            .unwrap();
        assert!(!saved.render().contains("NSNET-DNAT"));
        // A built-in chain declared again keeps its rules, takes the policy.
        saved
            .restore("*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n")
            .unwrap();
        let text = saved.render();
        assert!(text.contains(":FORWARD ACCEPT [0:0]\n"));
        assert!(text.contains("-A FORWARD -i docker0 -j ACCEPT\n"));
    }

    #[test]
    fn a_batch_counts_the_tables_it_changes() {
        let mut saved = Saved::parse(SAVED);
        let count = |saved: &mut Saved, batch: &str| saved.restore(batch).unwrap();
        // A new chain in nat, nothing in filter: one transaction.
        let batch = "*filter\nCOMMIT\n*nat\n:NSNET-DNAT - [0:0]\nCOMMIT\n";
        assert_eq!(count(&mut saved, batch), 1);
        // The chain again, still empty; a policy as it was; an empty
        // chain flushed: none.
        let batch = "*nat\n:NSNET-DNAT - [0:0]\n-F NSNET-DNAT\nCOMMIT\n*filter\n:FORWARD DROP [0:0]\nCOMMIT\n";
        assert_eq!(count(&mut saved, batch), 0);
        // A rule in each table, the same table named twice: three.
        let batch = "*nat\n-A NSNET-DNAT -j RETURN\nCOMMIT\n*filter\n-A NSNET-FORWARD -o br1 -j ACCEPT\nCOMMIT\n*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n";
        assert_eq!(count(&mut saved, batch), 3);
        let text = saved.render();
        assert!(text.contains(":FORWARD ACCEPT [0:0]\n"), "{text}");
        assert!(text.contains("-A NSNET-DNAT -j RETURN\n"), "{text}");
        // Declaring a chain that holds rules empties it: a change.
        assert_eq!(count(&mut saved, "*nat\n:NSNET-DNAT - [0:0]\nCOMMIT\n"), 1);
        assert!(!saved.render().contains("-A NSNET-DNAT"));
    }

    #[test]
    fn the_file_holds_each_family_as_saved_and_anything_else_is_no_cache() {
        let mut cache = RuleCache {
            host: "boot-id 4:4026531840".into(),
            ..RuleCache::default()
        };
        cache.learn(&Cmd::new(Tool::IptablesSave, [] as [&str; 0]), 7, SAVED);
        let six =
            "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m comment --comment \"x\" -j ACCEPT\nCOMMIT\n";
        cache.learn(&Cmd::new(Tool::Ip6tablesSave, [] as [&str; 0]), 7, six);
        let back = RuleCache::parse(cache.render()).expect("read back");
        assert_eq!(
            (&back.host, back.generation, &back.saved),
            (&cache.host, 7, &cache.saved)
        );
        assert_eq!(
            back.saved.get("ip6tables-save").map(String::as_str),
            Some(six)
        );
        // A family with no table at all saves nothing: read back as such,
        // and the family after it too.
        cache.learn(&Cmd::new(Tool::Ip6tablesSave, [] as [&str; 0]), 7, "");
        let back = RuleCache::parse(cache.render()).expect("read back");
        assert_eq!(back.saved, cache.saved);
        assert_eq!(
            back.saved.get("ip6tables-save").map(String::as_str),
            Some("")
        );
        for other in [
            "",
            r#"{"host":"boot-id 4:4026531840","generation":7,"saved":{}}"#,
            "nsnet-rule-cache-2 -\nhost x\n",
            "nsnet-rule-cache-2 -\nhost x\ngeneration seven\n",
            "nsnet-rule-cache-2 -\nhost x\ngeneration 7\n*filter\n",
        ] {
            assert!(RuleCache::parse(other.to_string()).is_none(), "{other:?}");
        }
    }

    #[test]
    fn a_chain_read_as_one_block_splits_only_where_a_batch_changes_it() {
        // OTHER's rules in two runs, and a last line without its newline.
        let text = "*filter\n:FORWARD ACCEPT [0:0]\n:OTHER - [0:0]\n-A OTHER -s 10.1.0.0/16 -j ACCEPT\n-A OTHER -s 10.2.0.0/16 -j ACCEPT\n-A FORWARD -j OTHER\n-A OTHER -s 10.3.0.0/16 -j DROP\n-A FORWARD -j DROP";
        let mut saved = Saved::parse(text);
        let other = |saved: &Saved| -> Vec<String> {
            let rules = &saved.tables[0].rules["OTHER"];
            rules.iter().map(String::from).collect()
        };
        assert_eq!(other(&saved).len(), 3);
        assert!(other(&saved)[2].ends_with("10.3.0.0/16 -j DROP"));
        let rendered = saved.render();
        assert!(rendered.contains("-A FORWARD -j OTHER\n-A FORWARD -j DROP\n-A OTHER -s 10.1.0.0/16 -j ACCEPT\n-A OTHER -s 10.2.0.0/16 -j ACCEPT\n-A OTHER -s 10.3.0.0/16 -j DROP\nCOMMIT\n"));
        // Read again, every chain is one block, and holds the same rules.
        let again = Saved::parse(&rendered);
        assert!(matches!(again.tables[0].rules["OTHER"], Rules::Block(_)));
        assert_eq!(again, saved);
        // A chain no batch names stays a block; one it changes is split.
        let mut again = again;
        again
            .restore("*filter\n-D OTHER -s 10.2.0.0/16 -j ACCEPT\nCOMMIT\n")
            .unwrap();
        assert!(matches!(again.tables[0].rules["FORWARD"], Rules::Block(_)));
        assert_eq!(other(&again).len(), 2);
        saved
            .restore("*filter\n-D OTHER -s 10.2.0.0/16 -j ACCEPT\nCOMMIT\n")
            .unwrap();
        assert_eq!(again.render(), saved.render());
    }

    #[test]
    fn a_batch_it_cannot_follow_changes_nothing_and_says_why() {
        let mut saved = Saved::parse(SAVED);
        for batch in [
            "*filter\n-D FORWARD -i nothing -j ACCEPT\nCOMMIT\n",
            "*filter\n-A NOCHAIN -j ACCEPT\nCOMMIT\n",
            "*filter\n-X NSNET-FORWARD\nCOMMIT\n",
            "*filter\n-P FORWARD ACCEPT\nCOMMIT\n",
            "*filter\n-I FORWARD 9 -j ACCEPT\nCOMMIT\n",
            "-A FORWARD -j ACCEPT\n",
            "*bogus\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n",
            // A new table made, then a line it cannot apply: no table.
            "*raw\n:NSNET-RAW - [0:0]\nCOMMIT\n*filter\n-A NOCHAIN -j ACCEPT\nCOMMIT\n",
        ] {
            let before = saved.clone();
            assert!(saved.restore(batch).is_err(), "{batch}");
            assert_eq!(saved, before);
        }
    }

    /// As iptables 1.8.9 over nf_tables saves them (seen in a throwaway
    /// host): a table made on first use has every built-in chain of its
    /// kind, the tables come in iptables' order, and the chains of a table
    /// after its built-in ones in the order of their names.
    #[test]
    fn a_table_made_on_first_use_is_saved_as_iptables_shows_it() {
        let mut saved = Saved::parse(SAVED);
        let batch = "*raw\n:NSNET-RAW - [0:0]\n-A PREROUTING -j NSNET-RAW\nCOMMIT\n*mangle\n:NSNET-M - [0:0]\nCOMMIT\n*nat\n:NSNET-X - [0:0]\n:NSNET-A - [0:0]\n:AAA - [0:0]\nCOMMIT\n";
        assert_eq!(saved.restore(batch), Ok(3));
        let text = saved.render();
        let raw = "*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:NSNET-RAW - [0:0]\n-A PREROUTING -j NSNET-RAW\nCOMMIT\n";
        let mangle = "*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:NSNET-M - [0:0]\nCOMMIT\n";
        let nat = "*nat\n:PREROUTING ACCEPT [0:0]\n:AAA - [0:0]\n:NSNET-A - [0:0]\n:NSNET-X - [0:0]\nCOMMIT\n";
        assert!(
            text.starts_with(&format!("{mangle}{raw}*filter\n")),
            "{text}"
        );
        assert!(text.ends_with(nat), "{text}");
    }

    #[test]
    fn the_cache_answers_only_at_its_generation_and_follows_restores() {
        let save = Cmd::new(Tool::IptablesSave, [] as [&str; 0]);
        let mut cache = RuleCache::default();
        cache.learn(&save, 7, SAVED);
        assert!(cache.answer(&save, 7).is_some());
        assert_eq!(cache.answer(&save, 8), None);
        let restore = Cmd::restore(
            Tool::IptablesRestore,
            "*filter\n-A NSNET-FORWARD -o br0 -j ACCEPT\nCOMMIT\n".into(),
        );
        cache.restored(&restore, 7, 8);
        let text = cache.answer(&save, 8).unwrap();
        assert!(text.contains("-A NSNET-FORWARD -o br0 -j ACCEPT"));
        // One table is its part of the whole; one it lacks, or any other
        // option, is the tool's to answer.
        let table = |t: &str| Cmd::new(Tool::IptablesSave, ["-t", t]);
        let filter = cache.answer(&table("filter"), 8).unwrap();
        assert!(filter.starts_with("*filter\n") && filter.ends_with("\nCOMMIT\n"));
        assert!(filter.contains("-A NSNET-FORWARD -o br0") && !filter.contains("*nat"));
        let nat = cache.answer(&table("nat"), 8).unwrap();
        assert_eq!(nat, "*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n");
        assert_eq!(cache.answer(&table("raw"), 8), None);
        assert_eq!(cache.answer(&table("filter"), 9), None);
        let version = Cmd::new(Tool::IptablesSave, ["--version"]);
        assert_eq!(cache.answer(&version, 8), None);
        // Someone else changed the ruleset too: nothing is answered.
        cache.restored(&restore, 8, 10);
        assert_eq!(cache.answer(&save, 10), None);
        // A batch that changes nothing moves no generation: the one that
        // moved was someone else's.
        cache.learn(&save, 20, SAVED);
        let noop = Cmd::restore(Tool::IptablesRestore, "*filter\nCOMMIT\n".into());
        cache.restored(&noop, 20, 21);
        assert_eq!(cache.answer(&save, 21), None);
        // A restore that flushes what it does not name is not followed.
        cache.learn(&save, 30, SAVED);
        let flush = Cmd {
            args: Vec::new(),
            ..restore.clone()
        };
        cache.restored(&flush, 30, 31);
        assert_eq!(cache.answer(&save, 31), None);
        // Several tables in one restore: a transaction each, those that
        // change something counted.
        let two = Cmd::restore(
            Tool::IptablesRestore,
            "*nat\n:NSNET-POSTROUTING - [0:0]\n-A NSNET-POSTROUTING -s 10.0.0.0/24 -j MASQUERADE\nCOMMIT\n*filter\nCOMMIT\n*filter\n-A NSNET-FORWARD -o br1 -j ACCEPT\nCOMMIT\n".into(),
        );
        cache.learn(&save, 40, SAVED);
        cache.restored(&two, 40, 42);
        let text = cache.answer(&save, 42).unwrap();
        assert!(text.contains("-A NSNET-FORWARD -o br1 -j ACCEPT"));
        assert!(text.contains("-A NSNET-POSTROUTING -s 10.0.0.0/24 -j MASQUERADE"));
        for moved_to in [41, 43] {
            cache.learn(&save, 40, SAVED);
            cache.restored(&two, 40, moved_to);
            assert_eq!(cache.answer(&save, moved_to), None, "{moved_to}");
        }
    }

    const TWICE: &str = "*filter
:FORWARD ACCEPT [0:0]
:NSNET-FORWARD - [0:0]
-A NSNET-FORWARD -o br0 -j ACCEPT
-A NSNET-FORWARD -i br0 -j ACCEPT
-A NSNET-FORWARD -o br0 -j ACCEPT
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:NSNET-DNAT - [0:0]
-A NSNET-DNAT -p tcp -j DNAT --to-destination 10.0.0.2:80
COMMIT
";

    #[test]
    fn a_deleting_batch_names_each_rule_by_its_place_as_saved() {
        let saved = Saved::parse(TWICE);
        let at = |table: &str, chain: &str, index, length| Deletion {
            table: table.into(),
            chain: chain.into(),
            index,
            length,
            handle: None,
            print: None,
        };
        // The first rule saved with the spec; the same spec again takes the
        // next, as the kernel's list is once the first is gone.
        assert_eq!(
            saved.deletions(
                "*filter\n-D NSNET-FORWARD -o br0 -j ACCEPT\n-D NSNET-FORWARD -o br0 -j ACCEPT\nCOMMIT\n*nat\n-D NSNET-DNAT -p tcp -j DNAT --to-destination 10.0.0.2:80\nCOMMIT\n"
            ),
            Some(vec![
                at("filter", "NSNET-FORWARD", 0, 3),
                at("filter", "NSNET-FORWARD", 2, 3),
                at("nat", "NSNET-DNAT", 0, 1),
            ])
        );
        // Anything but deletions of rules it holds is the tool's.
        for batch in [
            "*filter\n-D NSNET-FORWARD -o br1 -j ACCEPT\nCOMMIT\n",
            "*filter\n-D NSNET-FORWARD -i br0 -j ACCEPT\n-D NSNET-FORWARD -i br0 -j ACCEPT\nCOMMIT\n",
            "*filter\n-D NSNET-FORWARD -o br0 -j ACCEPT\n-A NSNET-FORWARD -o br1 -j ACCEPT\nCOMMIT\n",
            "*filter\n-D NSNET-OTHER -o br0 -j ACCEPT\nCOMMIT\n",
            "*raw\n-D PREROUTING -j ACCEPT\nCOMMIT\n",
            "*filter\n-F NSNET-FORWARD\nCOMMIT\n",
            "*filter\n:NSNET-FORWARD - [0:0]\nCOMMIT\n",
            "-D NSNET-FORWARD -o br0 -j ACCEPT\n",
            "*filter\nCOMMIT\n",
        ] {
            assert_eq!(saved.deletions(batch), None, "{batch}");
        }
    }

    /// A rule as the kernel echoes it, of print a hundred times its handle.
    fn echo(table: &str, chain: &str, handle: u64) -> Seen {
        Seen {
            table: table.into(),
            chain: chain.into(),
            handle,
            print: handle * 100,
        }
    }

    #[test]
    fn handles_heard_back_name_the_rules_until_a_change_it_cannot_follow_rule_by_rule() {
        let save = Cmd::new(Tool::IptablesSave, [] as [&str; 0]);
        let dnat = "-A NSNET-DNAT -p tcp -j DNAT --to-destination 10.0.0.3:80";
        let accept = "-A NSNET-FORWARD -d 10.0.0.3/32 -j ACCEPT";
        let add = Cmd::restore(
            Tool::IptablesRestore,
            format!("*nat\n{dnat}\nCOMMIT\n*filter\n{accept}\nCOMMIT\n"),
        );
        let del = |lines: &[&str]| {
            let mut batch = String::new();
            for line in lines {
                let table = if line.contains("DNAT -p") {
                    "nat"
                } else {
                    "filter"
                };
                batch.push_str(&format!(
                    "*{table}\n{}\nCOMMIT\n",
                    line.replacen("-A", "-D", 1)
                ));
            }
            Cmd::restore(Tool::IptablesRestore, batch)
        };
        let handles = |cache: &RuleCache, cmd: &Cmd, generation| -> Vec<Option<u64>> {
            let rules = cache.deletions(cmd, generation).expect("deletions");
            rules.iter().map(|r| r.handle).collect()
        };
        let fresh = || {
            let mut cache = RuleCache::default();
            cache.learn(&save, 5, TWICE);
            cache.restored_at_once(&add, 5, 6);
            cache.added(
                &add,
                &[
                    echo("nat", "NSNET-DNAT", 41),
                    echo("filter", "NSNET-FORWARD", 42),
                ],
            );
            cache
        };
        let cache = fresh();
        assert_eq!(
            handles(&cache, &del(&[accept, dnat]), 6),
            [Some(42), Some(41)]
        );
        // A rule read from the kernel has none; nor has one saved twice
        // (`-o br0 -j ACCEPT` is).
        let theirs = del(&["-A NSNET-FORWARD -i br0 -j ACCEPT"]);
        assert_eq!(handles(&cache, &theirs, 6), [None]);
        let twice = del(&["-A NSNET-FORWARD -o br0 -j ACCEPT"]);
        assert_eq!(handles(&cache, &twice, 6), [None]);
        // Kept in the file with the text.
        let mut file = RuleCache::parse(cache.render()).expect("parses");
        assert_eq!(handles(&file, &del(&[dnat]), 6), [Some(41)]);
        // Its own deletion takes the handle along; the other stays.
        file.restored_at_once(&del(&[dnat]), 6, 7);
        assert!(
            file.handles.values().eq([&(42, 4200)]),
            "{:?}",
            file.handles
        );
        assert_eq!(handles(&file, &del(&[accept]), 7), [Some(42)]);
        // A restore by the tool, a read afresh, a change by someone else:
        // none is left.
        let mut tool = fresh();
        tool.restored(&del(&[dnat]), 6, 7);
        assert_eq!(handles(&tool, &del(&[accept]), 7), [None]);
        let mut reread = fresh();
        reread.learn(&save, 9, &reread.answer(&save, 6).expect("held"));
        assert_eq!(handles(&reread, &del(&[accept]), 9), [None]);
        let mut other = fresh();
        other.restored_at_once(&del(&[dnat]), 6, 8);
        assert!(other.handles.is_empty() && other.saved.is_empty());
        // Handles that do not match the batch's rules one for one are not
        // taken.
        let mut short = RuleCache::default();
        short.learn(&save, 5, TWICE);
        short.restored_at_once(&add, 5, 6);
        short.added(&add, &[echo("nat", "NSNET-DNAT", 41)]);
        assert!(short.handles.is_empty());
    }

    #[test]
    fn a_batch_made_at_once_is_one_transaction() {
        let save = Cmd::new(Tool::IptablesSave, [] as [&str; 0]);
        let delete = Cmd::restore(
            Tool::IptablesRestore,
            "*filter\n-D NSNET-FORWARD -i br0 -j ACCEPT\nCOMMIT\n*nat\n-D NSNET-DNAT -p tcp -j DNAT --to-destination 10.0.0.2:80\nCOMMIT\n".into(),
        );
        let mut cache = RuleCache::default();
        cache.learn(&save, 5, TWICE);
        // Only at the generation the cache holds, and only for --noflush.
        assert_eq!(cache.deletions(&delete, 6), None);
        let flushing = Cmd {
            args: Vec::new(),
            ..delete.clone()
        };
        assert_eq!(cache.deletions(&flushing, 5), None);
        let v6 = Cmd {
            tool: Tool::Ip6tablesRestore,
            ..delete.clone()
        };
        assert_eq!(cache.deletions(&v6, 5), None);
        let rules = cache.deletions(&delete, 5).expect("two deletions");
        assert_eq!(rules.len(), 2);
        // Two tables, one transaction: one generation more.
        cache.restored_at_once(&delete, 5, 6);
        let text = cache.answer(&save, 6).expect("followed");
        assert!(!text.contains("-i br0") && !text.contains("DNAT --to"));
        assert!(text.contains("-A NSNET-FORWARD -o br0 -j ACCEPT"));
        // Two more (as iptables-restore would count it) was someone else.
        cache.learn(&save, 5, TWICE);
        cache.restored_at_once(&delete, 5, 7);
        assert_eq!(cache.answer(&save, 7), None);
    }

    /// A print of made-up rule hashes.
    fn print_of(rules: &[u64]) -> Print {
        let mut print = Print::default();
        rules.iter().for_each(|r| print.add(*r));
        print
    }

    fn key(table: &str, chain: &str) -> (String, String) {
        (table.to_string(), chain.to_string())
    }

    /// The kernel's side of `SAVED`, as `nfdump::ruleset` reads it: each
    /// chain's policy, and a print for each chain with rules.
    fn kernel_of_saved() -> Ruleset {
        let mut kernel = Ruleset::default();
        for (table, chain, policy) in [
            ("filter", "INPUT", "ACCEPT"),
            ("filter", "FORWARD", "DROP"),
            ("filter", "NSNET-FORWARD", "-"),
            ("nat", "PREROUTING", "ACCEPT"),
        ] {
            kernel.chains.insert(key(table, chain), policy.to_string());
        }
        kernel
            .prints
            .insert(key("filter", "FORWARD"), print_of(&[11, 12]));
        kernel
            .prints
            .insert(key("filter", "NSNET-FORWARD"), print_of(&[13]));
        kernel
    }

    /// A whole-ruleset save, the cache holding `SAVED` as read at
    /// generation 7 with the prints of `kernel_of_saved`, and those.
    fn printed_saved() -> (Cmd, RuleCache, Ruleset) {
        let save = Cmd::new(Tool::IptablesSave, [] as [&str; 0]);
        let mut cache = RuleCache::default();
        cache.learn(&save, 7, SAVED);
        let kernel = kernel_of_saved();
        cache.printed_all(Tool::IptablesSave, &kernel);
        (save, cache, kernel)
    }

    #[test]
    fn only_the_chains_whose_print_moved_are_read_again() {
        let (save, mut cache, kernel) = printed_saved();
        assert!(cache.stale(8) && !cache.stale(7));
        assert_eq!(cache.changed(Tool::IptablesSave, &kernel), Some(vec![]));
        // Someone replaced a rule of FORWARD (as many rules, another print)
        // and added one to nat's PREROUTING.
        let mut now = kernel.clone();
        now.prints
            .insert(key("filter", "FORWARD"), print_of(&[11, 99]));
        now.prints.insert(key("nat", "PREROUTING"), print_of(&[21]));
        let changed = cache.changed(Tool::IptablesSave, &now).unwrap();
        assert_eq!(
            changed,
            vec![key("filter", "FORWARD"), key("nat", "PREROUTING")]
        );
        // A rule count the text does not have is a change even under the
        // same print.
        let mut cut = Saved::parse(SAVED);
        cut.replace("filter", "NSNET-FORWARD", Vec::new());
        let mut short = RuleCache::default();
        short.learn(&save, 7, &cut.render());
        short.printed_all(Tool::IptablesSave, &kernel);
        assert_eq!(
            short.changed(Tool::IptablesSave, &kernel),
            Some(vec![key("filter", "NSNET-FORWARD")])
        );
        let dnat =
            "-A PREROUTING -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80";
        cache.reread(
            Tool::IptablesSave,
            &now,
            vec![
                (
                    key("filter", "FORWARD"),
                    vec![
                        "-A FORWARD -j NSNET-FORWARD".to_string(),
                        "-A FORWARD -i docker1 -j ACCEPT".to_string(),
                    ],
                ),
                (key("nat", "PREROUTING"), vec![dnat.to_string()]),
            ],
        );
        cache.revalidated(9, &[Tool::IptablesSave]);
        assert_eq!(cache.answer(&save, 7), None);
        let text = cache.answer(&save, 9).unwrap();
        assert!(text.contains("-A FORWARD -j NSNET-FORWARD\n-A FORWARD -i docker1 -j ACCEPT\n"));
        assert!(!text.contains("docker0"), "{text}");
        assert!(text.contains(&format!("{dnat}\nCOMMIT\n")), "{text}");
        // The chain nobody changed is as it was.
        assert!(text.contains("-A NSNET-FORWARD -i br0 -j ACCEPT\n"));
        // Read again, the chains hold the kernel's prints: nothing more.
        assert_eq!(cache.changed(Tool::IptablesSave, &now), Some(vec![]));
    }

    #[test]
    fn chains_made_gone_or_given_another_policy_mean_reading_all_again() {
        let (save, cache, kernel) = printed_saved();
        let changed = |edit: &dyn Fn(&mut Ruleset)| {
            let mut now = kernel.clone();
            edit(&mut now);
            cache.changed(Tool::IptablesSave, &now)
        };
        // iptables over nf_tables makes a built-in chain when it first
        // needs one, and saves one it has not made as empty with ACCEPT:
        // the same as none.
        let lazy = changed(&|k| {
            k.chains.remove(&key("filter", "INPUT"));
        });
        assert_eq!(lazy, Some(vec![]));
        let made = changed(&|k| {
            k.chains.insert(key("filter", "DOCKER"), "-".to_string());
        });
        assert_eq!(made, None);
        let gone = changed(&|k| {
            k.chains.remove(&key("filter", "NSNET-FORWARD"));
            k.prints.remove(&key("filter", "NSNET-FORWARD"));
        });
        assert_eq!(gone, None);
        let policy = changed(&|k| {
            k.chains
                .insert(key("filter", "FORWARD"), "ACCEPT".to_string());
        });
        assert_eq!(policy, None);
        // A table with no chain left in the kernel may be gone: its
        // built-in chains are no longer taken as made lazily.
        let table = changed(&|k| {
            k.chains.remove(&key("nat", "PREROUTING"));
        });
        assert_eq!(table, None);
        // A built-in chain with rules saved that the kernel lacks is one
        // whose rules went: it is read again, not taken as the same.
        let mut with_input = Saved::parse(SAVED);
        with_input.replace(
            "filter",
            "INPUT",
            vec!["-A INPUT -i lo -j ACCEPT".to_string()],
        );
        let mut other = RuleCache::default();
        other.learn(&save, 7, &with_input.render());
        let mut printed = kernel.clone();
        printed
            .prints
            .insert(key("filter", "INPUT"), print_of(&[31]));
        other.printed_all(Tool::IptablesSave, &printed);
        let mut now = printed.clone();
        now.chains.remove(&key("filter", "INPUT"));
        now.prints.remove(&key("filter", "INPUT"));
        assert_eq!(
            other.changed(Tool::IptablesSave, &now),
            Some(vec![key("filter", "INPUT")])
        );
    }
}
