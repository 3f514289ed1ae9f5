//! Reading the firewall: `iptables-save` output parsed into chains, rules and
//! policies per table. This is the one text format the host side parses by
//! hand (iptables has no JSON); a rule is kept exactly as saved, `-A CHAIN …`,
//! which is also how nsnet writes its own, so rules compare as text.

use crate::exec::runner::{RunError, Runner};
use crate::plan::cmd::{Cmd, Tool};
use std::collections::{BTreeMap, BTreeSet};

/// What `iptables-save` shows: chains and rules, per table.
#[derive(Clone, Debug, Default)]
pub struct Firewall {
    /// `(table, chain)` for every chain, built-in or not.
    pub chains: BTreeSet<(String, String)>,
    /// `(table, line)` for every rule that names nsnet (`names_nsnet`), as
    /// saved: `-A CHAIN …`. Only those are ever looked up, and on a busy
    /// host they are a few among thousands of other tools' rules, which
    /// `order` has. `has_rule` answers for any rule.
    pub rules: BTreeSet<(String, String)>,
    /// `(table, chain)` → policy, for built-in chains.
    pub policies: BTreeMap<(String, String), String>,
    /// Every rule, in the order the tables and chains run them (`order`):
    /// the text the lines are in, and where each is, not a copy of each.
    text: String,
    lines: Vec<Line>,
    tables: Vec<String>,
}

/// Where one rule is: its table (in `Firewall::tables`) and its line (in
/// `Firewall::text`).
#[derive(Clone, Copy, Debug)]
struct Line {
    table: usize,
    start: usize,
    end: usize,
}

impl Firewall {
    /// Parses `iptables-save` output; comments, counters and `COMMIT` lines
    /// are skipped, and so is anything it does not know.
    pub fn parse(text: &str) -> Firewall {
        Firewall::read_from(text.to_string())
    }

    /// As `parse`, keeping `text` rather than a copy of it: on a busy host
    /// the saved rules are hundreds of kilobytes.
    pub fn read_from(text: String) -> Firewall {
        let mut fw = Firewall::default();
        let mut table = None;
        let mut ours = Vec::new();
        let mut start = 0;
        for raw in text.split('\n') {
            let (at, line) = (start, raw.strip_suffix('\r').unwrap_or(raw));
            start += raw.len() + 1;
            if let Some(name) = line.strip_prefix('*') {
                table = Some(fw.table_index(name));
            } else if let Some(chain) = line.strip_prefix(':') {
                let index = *table.get_or_insert_with(|| fw.table_index(""));
                let name = fw.tables[index].clone();
                let mut words = chain.split_whitespace();
                let chain = words.next().unwrap_or_default().to_string();
                if let Some(policy) = words.next().filter(|p| *p != "-") {
                    fw.policies
                        .insert((name.clone(), chain.clone()), policy.to_string());
                }
                fw.chains.insert((name, chain));
            } else if line.starts_with("-A ") {
                let index = *table.get_or_insert_with(|| fw.table_index(""));
                fw.lines.push(Line {
                    table: index,
                    start: at,
                    end: at + line.len(),
                });
                if names_nsnet(line) {
                    ours.push((fw.tables[index].clone(), line.to_string()));
                }
            }
        }
        // Built at once from the sorted rules: faster than one by one.
        fw.rules = ours.into_iter().collect();
        fw.text = text;
        fw
    }

    /// The index of `table` in `tables`, added if new.
    fn table_index(&mut self, table: &str) -> usize {
        match self.tables.iter().position(|t| t == table) {
            Some(index) => index,
            None => {
                self.tables.push(table.to_string());
                self.tables.len() - 1
            }
        }
    }

    /// Every rule as `(table, line)`, in the order the tables and chains
    /// run them.
    pub fn order(&self) -> impl Iterator<Item = (&str, &str)> {
        self.lines
            .iter()
            .map(|l| (self.tables[l.table].as_str(), &self.text[l.start..l.end]))
    }

    /// Adds rule `line` to `table`, after every other (a firewall made up
    /// rather than read).
    pub fn push(&mut self, table: &str, line: &str) {
        let index = self.table_index(table);
        let start = self.text.len();
        self.text.push_str(line);
        self.text.push('\n');
        self.lines.push(Line {
            table: index,
            start,
            end: start + line.len(),
        });
        if names_nsnet(line) {
            self.rules.insert((table.to_string(), line.to_string()));
        }
    }

    /// Keeps only the rules `keep` takes (by table and line); those that
    /// name nsnet too.
    pub fn retain(&mut self, keep: impl Fn(&str, &str) -> bool) {
        let (text, tables) = (&self.text, &self.tables);
        self.lines
            .retain(|l| keep(&tables[l.table], &text[l.start..l.end]));
        self.rules.retain(|(table, line)| keep(table, line));
    }

    /// Whether `table` holds rule `line` (`-A CHAIN …`).
    pub fn has_rule(&self, table: &str, line: &str) -> bool {
        match names_nsnet(line) {
            true => self.rules.contains(&(table.to_string(), line.to_string())),
            false => self.order().any(|(t, l)| t == table && l == line),
        }
    }

    /// The rules of `chain` in `table`, in order, as saved (`-A CHAIN …`).
    pub fn chain(&self, table: &str, chain: &str) -> Vec<&str> {
        let prefix = format!("-A {chain} ");
        self.order()
            .filter(|(t, line)| *t == table && line.starts_with(&prefix))
            .map(|(_, line)| line)
            .collect()
    }
}

/// Whether a saved rule names nsnet: in one of its chains (`-A NSNET-…`), to
/// one (`-j NSNET-…`), or by its comment. Every rule nsnet writes does.
pub fn names_nsnet(line: &str) -> bool {
    line.contains("NSNET-") || line.contains("nsnet")
}

/// Runs `iptables-save` (or `ip6tables-save`, as `tool` says) and parses
/// what it prints.
pub fn read(runner: &mut dyn Runner, tool: Tool) -> Result<Firewall, RunError> {
    let text = runner.run(&Cmd::new(tool, [] as [&str; 0]))?;
    Ok(Firewall::read_from(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLEAN: &str = include_str!("fixtures/clean/iptables-save.txt");

    #[test]
    fn parses_saved_tables_chains_policies_and_rules() {
        let fw = Firewall::parse(CLEAN);
        assert!(fw.chains.contains(&("nat".into(), "NSNET-DNAT".into())));
        assert!(
            fw.chains
                .contains(&("filter".into(), "NSNET-FORWARD".into()))
        );
        let policy = fw.policies.get(&("filter".into(), "FORWARD".into()));
        assert_eq!(policy.map(String::as_str), Some("ACCEPT"));
        // nsnet's own chains have no policy.
        assert!(
            !fw.policies
                .contains_key(&("nat".into(), "NSNET-DNAT".into()))
        );
        let dnat = "-A NSNET-DNAT -p udp -m udp --dport 5353 -m comment --comment \"nsnet:publish:red:5353/udp\" -j DNAT --to-destination 10.200.0.2:53";
        assert!(fw.has_rule("nat", dnat));
        assert!(!fw.has_rule("filter", dnat));
        let rules = |table: &str| fw.rules.iter().filter(|(t, _)| t == table).count();
        assert_eq!((rules("filter"), rules("nat")), (10, 8));
    }

    #[test]
    fn empty_or_foreign_text_is_an_empty_firewall() {
        for text in ["", "# Generated by iptables-save\n", "garbage\n-X\n"] {
            let fw = Firewall::parse(text);
            assert!(fw.chains.is_empty() && fw.rules.is_empty(), "{text:?}");
        }
    }
}
