//! The configuration file: what is the same on every run — the server, parallelism, timeouts,
//! the lock's lifetime, the audit log — written once instead of on every command line.
//!
//! `bamboo-promote.toml` is looked for in the current folder and each folder above it, up to
//! the repository's root (the folder holding `.git`), and only inside a repository; the
//! user's own file is
//! `$XDG_CONFIG_HOME/bamboo-promote/config.toml` (else `~/.config/…`). The repository's file
//! wins over the user's, key by key. Its values become the flags' defaults, so a flag wins over
//! the environment (`BAMBOO_URL`, `BAMBOO_TOKEN_FILE`), which wins over the files; each value is
//! checked by its flag's own parser. Secrets are refused: a token belongs in the environment or
//! a token file, never in a file kept in a repository.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use clap::Command;

/// The file's name in a repository.
pub const FILE_NAME: &str = "bamboo-promote.toml";

/// The keys a file may hold: the long flags they stand for. Paths among them (and a
/// `sim:WORLD` server's world) are read relative to the file's folder.
const KEYS: &[(&str, Kind)] = &[
    ("server", Kind::Text),
    ("token-file", Kind::Path),
    ("parallelism", Kind::Text),
    ("request-timeout", Kind::Text),
    ("lock-ttl", Kind::Text),
    ("lock-timeout", Kind::Text),
    ("max-clock-skew", Kind::Text),
    ("audit-log", Kind::Path),
];

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Text,
    Path,
}

/// Defaults read from the files: (flag, value, where it was written).
#[derive(Debug, Default)]
pub struct Defaults {
    values: Vec<(&'static str, String, String)>,
}

/// A file that cannot be used, said at its line and column.
#[derive(Debug, thiserror::Error)]
#[error("{place}: {message}")]
pub struct ConfigFileError {
    place: String,
    message: String,
}

/// The defaults from the user's file and the repository's, found from `dir`.
pub fn find(dir: &Path) -> Result<Defaults, ConfigFileError> {
    let mut defaults = Defaults::default();
    for file in user_file().into_iter().chain(repository_file(dir)) {
        defaults.read(&file)?;
    }
    Ok(defaults)
}

/// The nearest `bamboo-promote.toml` from `dir` up to the repository's root; none outside a
/// repository. Folders above a repository, or above a folder that is in none (`/tmp`, a home),
/// are anyone's: a file planted there must not choose the server the token is sent to.
fn repository_file(dir: &Path) -> Option<PathBuf> {
    let root = dir
        .ancestors()
        .find(|folder| folder.join(".git").exists())?;
    dir.ancestors()
        .take_while(|folder| folder.starts_with(root))
        .map(|folder| folder.join(FILE_NAME))
        .find(|file| file.is_file())
}

fn user_file() -> Option<PathBuf> {
    let home = |var: &str| {
        std::env::var_os(var)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let config = home("XDG_CONFIG_HOME").or_else(|| home("HOME").map(|h| h.join(".config")))?;
    Some(config.join("bamboo-promote/config.toml")).filter(|file| file.is_file())
}

impl Defaults {
    /// Reads one file; its keys replace those of files read before.
    fn read(&mut self, file: &Path) -> Result<(), ConfigFileError> {
        let shown = file.display().to_string();
        let text = std::fs::read_to_string(file).map_err(|e| ConfigFileError {
            place: shown.clone(),
            message: format!("cannot read: {e}"),
        })?;
        let at = |span: std::ops::Range<usize>| {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("{shown}:{line}:{column}")
        };
        let table: std::collections::BTreeMap<String, toml::Spanned<toml::Value>> =
            toml::from_str(&text).map_err(|e: toml::de::Error| ConfigFileError {
                place: e.span().map_or_else(|| shown.clone(), &at),
                message: e.message().trim().to_string(),
            })?;
        let folder = file.parent().unwrap_or(Path::new("."));
        for (key, value) in table {
            let place = at(value.span());
            let error = |message: String| ConfigFileError {
                place: place.clone(),
                message,
            };
            let Some(&(flag, kind)) = KEYS.iter().find(|(k, _)| *k == key) else {
                return Err(error(unknown_key(&key)));
            };
            let text = match value.into_inner() {
                toml::Value::String(s) => s,
                toml::Value::Integer(n) => n.to_string(),
                other => {
                    return Err(error(format!(
                        "{key}: a {} is not a value here; write it as on the command line, such as {key} = \"…\"",
                        other.type_str()
                    )));
                }
            };
            let text = match (kind, text.strip_prefix("sim:")) {
                (Kind::Path, _) => folder.join(text).display().to_string(),
                // The simulator's world, too, is a path beside the file.
                (Kind::Text, Some(world)) => format!("sim:{}", folder.join(world).display()),
                (Kind::Text, None) => text,
            };
            self.values.retain(|(f, _, _)| *f != flag);
            self.values.push((flag, text, place));
        }
        Ok(())
    }

    /// `command` with the files' values as its flags' defaults, each checked by its flag's
    /// parser first.
    pub fn apply(&self, mut command: Command) -> Result<Command, ConfigFileError> {
        for (flag, value, place) in &self.values {
            let id = flag.replace('-', "_");
            check(&command, &id, value).map_err(|message| ConfigFileError {
                place: place.clone(),
                message: format!("{flag}: {message}"),
            })?;
            let names: Vec<String> = command
                .get_subcommands()
                .filter(|sub| has(sub, &id))
                .map(|sub| sub.get_name().to_string())
                .collect();
            for name in names {
                command = command.mut_subcommand(name, |sub| {
                    sub.mut_arg(&id, |arg| arg.default_value(value.clone()))
                });
            }
        }
        Ok(command)
    }
}

fn has(command: &Command, id: &str) -> bool {
    command.get_arguments().any(|arg| arg.get_id() == id)
}

/// Parses `value` as the first command that has the flag would, and says why not.
fn check(command: &Command, id: &str, value: &str) -> Result<(), String> {
    let Some(sub) = command.get_subcommands().find(|sub| has(sub, id)) else {
        return Ok(());
    };
    let parser = sub
        .get_arguments()
        .find(|arg| arg.get_id() == id)
        .expect("the flag is there")
        .get_value_parser()
        .clone();
    // The flag alone, with its parser: none of the relations the subcommand gives it.
    let trial = Command::new("check")
        .no_binary_name(true)
        .arg(clap::Arg::new("value").long("value").value_parser(parser));
    trial
        .try_get_matches_from([OsStr::new("--value"), OsStr::new(value)])
        .map(drop)
        .map_err(|e| {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            // clap says which flag; the file's key already did.
            let why = first.rsplit_once("': ").map_or(first, |(_, why)| why);
            why.trim_start_matches("error: ").to_string()
        })
}

fn unknown_key(key: &str) -> String {
    let lowered = key.to_lowercase();
    if ["token", "password", "username", "secret"]
        .iter()
        .any(|secret| lowered.contains(secret))
    {
        return format!(
            "`{key}`: secrets are never read from a configuration file; set BAMBOO_TOKEN, or name a file holding it with token-file (or BAMBOO_TOKEN_FILE)"
        );
    }
    let known: Vec<&str> = KEYS.iter().map(|(k, _)| *k).collect();
    format!(
        "unknown key `{key}` ({})",
        crate::suggest::help(key, "key", &known)
    )
}
