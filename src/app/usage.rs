//! Usage errors as one line: what clap found wrong, taken from the error's
//! context (never by re-reading its rendered text), and a hint naming the
//! real command path, found by walking the words typed down the clap tree.

use crate::cli::Cli;
use clap::CommandFactory;
use clap::error::{ContextKind, ContextValue, ErrorKind};
use std::ffi::OsString;

/// The one-line message for a clap error that is not help or version:
/// ``unexpected argument '--gateway' found (see `nsnet bridge up --help`)``.
pub fn line(err: &clap::Error, args: &[OsString]) -> String {
    format!(
        "{} (see `{} --help`)",
        message(err),
        command_path(args).join(" ")
    )
}

/// The command path the words name: `nsnet`, then each word that names a
/// subcommand of the one before; options, their values and positionals are
/// passed over, and `--` ends the search.
pub fn command_path(args: &[OsString]) -> Vec<String> {
    let root = Cli::command();
    let mut path = vec![root.get_name().to_string()];
    let mut cmd = &root;
    for word in args.iter().skip(1) {
        let Some(word) = word.to_str() else { continue };
        if word == "--" {
            break;
        }
        if let Some(sub) = cmd
            .get_subcommands()
            .find(|s| s.get_name() == word || s.get_all_aliases().any(|a| a == word))
        {
            path.push(sub.get_name().to_string());
            cmd = sub;
        }
    }
    path
}

/// What is wrong, from the error's kind and context, then clap's tips.
fn message(err: &clap::Error) -> String {
    let mut out = problem(err);
    for (kind, what) in [
        (ContextKind::SuggestedSubcommand, "subcommand"),
        (ContextKind::SuggestedArg, "argument"),
        (ContextKind::SuggestedValue, "value"),
    ] {
        if let Some(similar) = context(err, kind) {
            let quoted: Vec<String> = similar.iter().map(|w| format!("'{w}'")).collect();
            out.push_str(&format!(
                "; tip: a similar {what} exists: {}",
                quoted.join(", ")
            ));
        }
    }
    out
}

/// The problem itself, worded as clap words it.
fn problem(err: &clap::Error) -> String {
    let text = |kind| context(err, kind).map(|list| list.join(", "));
    let arg = text(ContextKind::InvalidArg).unwrap_or_default();
    // A value may hold anything, a newline included: shown escaped, on one line.
    let value = text(ContextKind::InvalidValue)
        .unwrap_or_default()
        .escape_debug()
        .to_string();
    match err.kind() {
        ErrorKind::ValueValidation => {
            let why = std::error::Error::source(err)
                .map(|e| e.to_string())
                .unwrap_or_else(|| "not accepted".into());
            format!("invalid value '{value}' for '{arg}': {why}")
        }
        ErrorKind::InvalidValue => match text(ContextKind::ValidValue) {
            Some(valid) => format!("invalid value '{value}' for '{arg}'; possible values: {valid}"),
            None => format!("invalid value '{value}' for '{arg}'"),
        },
        ErrorKind::UnknownArgument => format!("unexpected argument '{arg}' found"),
        ErrorKind::InvalidSubcommand => {
            let sub = text(ContextKind::InvalidSubcommand).unwrap_or_default();
            format!("unrecognized subcommand '{sub}'")
        }
        ErrorKind::MissingRequiredArgument => {
            format!("the following required arguments were not provided: {arg}")
        }
        ErrorKind::ArgumentConflict => match text(ContextKind::PriorArg) {
            Some(prior) => format!("the argument '{arg}' cannot be used with '{prior}'"),
            None => format!("the argument '{arg}' cannot be used here"),
        },
        ErrorKind::NoEquals => format!("equal sign is needed when assigning values to '{arg}'"),
        ErrorKind::TooManyValues => format!("unexpected value '{value}' for '{arg}' found"),
        ErrorKind::MissingSubcommand => {
            let sub = text(ContextKind::InvalidSubcommand).unwrap_or_default();
            format!("'{sub}' requires a subcommand")
        }
        kind if arg.is_empty() => kind.to_string(),
        kind => format!("{kind}: '{arg}'"),
    }
}

/// One piece of the error's context as plain words.
fn context(err: &clap::Error, kind: ContextKind) -> Option<Vec<String>> {
    match err.get(kind)? {
        ContextValue::String(s) => Some(vec![s.clone()]),
        ContextValue::Strings(list) => Some(list.clone()),
        ContextValue::StyledStr(s) => Some(vec![s.to_string()]),
        ContextValue::StyledStrs(list) => Some(list.iter().map(|s| s.to_string()).collect()),
        ContextValue::Number(n) => Some(vec![n.to_string()]),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn words(line: &str) -> Vec<OsString> {
        line.split(' ').map(OsString::from).collect()
    }

    fn usage(line: &str) -> String {
        let args = words(line);
        let err = Cli::try_parse_from(&args).unwrap_err();
        super::line(&err, &args)
    }

    #[test]
    fn the_hint_names_the_command_path_not_the_words_typed() {
        assert_eq!(
            usage("nsnet bridge up red --colour x"),
            "unexpected argument '--colour' found (see `nsnet bridge up --help`)"
        );
        assert_eq!(
            usage("nsnet --json publish add red 8080 --bridge nsnet0"),
            "invalid value '8080' for '<HOSTPORT:PORT[/PROTO]>...': `8080` is not a port \
             mapping: write HOSTPORT:PORT, optionally with /tcp or /udp (e.g. `8080:80/tcp`) (see `nsnet publish add --help`)"
        );
    }

    #[test]
    fn messages_come_from_the_errors_context() {
        assert_eq!(
            usage("nsnet netns addd red"),
            "unrecognized subcommand 'addd'; tip: a similar subcommand exists: 'add' \
             (see `nsnet netns --help`)"
        );
        assert_eq!(
            usage("nsnet veth add red"),
            "the following required arguments were not provided: <B> (see `nsnet veth add --help`)"
        );
        assert_eq!(
            usage("nsnet graph --format png"),
            "invalid value 'png' for '--format <FORMAT>'; possible values: text, dot, mermaid \
             (see `nsnet graph --help`)"
        );
        assert_eq!(
            usage("nsnet status -q -v"),
            "the argument '--quiet' cannot be used with '--verbose...' (see `nsnet status --help`)"
        );
    }

    #[test]
    fn a_value_with_a_newline_stays_on_one_line() {
        let args = vec![
            OsString::from("nsnet"),
            "netns".into(),
            "add".into(),
            "a\nb".into(),
        ];
        let err = Cli::try_parse_from(&args).unwrap_err();
        let text = line(&err, &args);
        assert!(!text.contains('\n'), "{text}");
        assert!(
            text.starts_with("invalid value 'a\\nb' for '<NAME>...'"),
            "{text}"
        );
    }

    #[test]
    fn words_after_a_double_dash_are_not_commands() {
        assert_eq!(
            command_path(&words("nsnet netns exec red -- nsnet bridge up")),
            ["nsnet", "netns", "exec"]
        );
    }
}
