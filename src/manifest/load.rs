//! Reading manifest files and folders: which files, in what order, and the YAML syntax and type
//! errors serde-saphyr finds in them, turned into located diagnostics.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::SourceSpan;
use serde_saphyr::{Location, Options};

use super::diagnostic::{ManifestError, Place, SourceFile};
use super::types::Document;

/// Larger manifests are refused before parsing: no promotion set needs them, and a runaway
/// generated file should not take the machine's memory.
pub const MAX_FILE_BYTES: usize = 4 * 1024 * 1024;

/// The documents of one file.
pub struct LoadedFile {
    pub file: Arc<SourceFile>,
    pub documents: Vec<Document>,
}

/// Paths left out of folder walks (`--exclude`): a pattern without `/` is matched against
/// each name (as in `.gitignore`), one with `/` against the path below the folder walked.
#[derive(Default)]
pub struct Exclude {
    names: globset::GlobSet,
    paths: globset::GlobSet,
}

impl Exclude {
    pub fn new(patterns: &[String]) -> Result<Exclude, String> {
        let mut names = globset::GlobSetBuilder::new();
        let mut paths = globset::GlobSetBuilder::new();
        for pattern in patterns {
            let glob = globset::GlobBuilder::new(pattern.trim_start_matches("./"))
                .literal_separator(true)
                .build()
                .map_err(|e| format!("--exclude {pattern}: {e}"))?;
            if pattern.contains('/') {
                paths.add(glob);
            } else {
                names.add(glob);
            }
        }
        let built = |set: globset::GlobSetBuilder| set.build().map_err(|e| e.to_string());
        Ok(Exclude {
            names: built(names)?,
            paths: built(paths)?,
        })
    }

    fn excludes(&self, below: &Path) -> bool {
        below
            .file_name()
            .is_some_and(|name| self.names.is_match(name))
            || self.paths.is_match(below)
    }
}

/// A file to read, and how it came to be read.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Candidate {
    pub path: PathBuf,
    /// Found in a folder walk, not named on the command line: read only if it says it is a
    /// bamboo-promote manifest (see [`claims_to_be_a_manifest`]).
    pub found: bool,
}

/// Every `*.yaml` / `*.yml` (in any case) named or found below the given paths, sorted, each
/// once. Folders are walked with symbolic links followed, but a link back to a folder above
/// it is an error, not an endless walk; hidden files and folders, and what `exclude` names,
/// are skipped. A file named on the command line is read whatever its name.
pub fn manifest_files(
    paths: &[PathBuf],
    exclude: &Exclude,
) -> (Vec<Candidate>, Vec<ManifestError>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        if path.is_dir() {
            walk(path, exclude, &mut files, &mut errors);
        } else if path.exists() {
            files.push(Candidate {
                path: path.clone(),
                found: false,
            });
        } else {
            errors.push(ManifestError::file(
                "manifest::not_found",
                path,
                "no such file or folder",
            ));
        }
    }
    // A file both named and found is read as named.
    files.sort();
    files.dedup_by(|later, earlier| later.path == earlier.path);
    (files, errors)
}

fn walk(
    dir: &Path,
    exclude: &Exclude,
    files: &mut Vec<Candidate>,
    errors: &mut Vec<ManifestError>,
) {
    let wanted = |entry: &walkdir::DirEntry| {
        entry.depth() == 0
            || !(entry.file_name().to_string_lossy().starts_with('.')
                || entry
                    .path()
                    .strip_prefix(dir)
                    .is_ok_and(|below| exclude.excludes(below)))
    };
    let entries = walkdir::WalkDir::new(dir)
        .follow_links(true)
        .into_iter()
        .filter_entry(wanted);
    for entry in entries {
        match entry {
            Ok(entry) if entry.file_type().is_dir() => {}
            Ok(entry) if is_manifest_name(entry.path()) => files.push(Candidate {
                path: entry.into_path(),
                found: true,
            }),
            Ok(_) => {}
            Err(e) => errors.push(walk_error(dir, &e)),
        }
    }
}

fn is_manifest_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"))
}

fn walk_error(dir: &Path, error: &walkdir::Error) -> ManifestError {
    let path = error.path().unwrap_or(dir);
    match error.loop_ancestor() {
        Some(ancestor) => ManifestError::file(
            "manifest::symlink_loop",
            path,
            format!(
                "symbolic link back to {}, which is already being read",
                ancestor.display()
            ),
        )
        .with_help("remove the link, or name the folders to read on the command line"),
        None => ManifestError::file(
            "manifest::unreadable",
            path,
            format!(
                "cannot read: {}",
                error
                    .io_error()
                    .map_or_else(|| error.to_string(), ToString::to_string)
            ),
        ),
    }
}

/// A file read: its manifests, or a YAML file found in a folder that is not one (a CI recipe,
/// a Kubernetes manifest), left alone.
pub enum Loaded {
    Manifests(LoadedFile),
    Foreign(PathBuf),
}

/// Whether a file's text says it holds bamboo-promote manifests: it names the `apiVersion`
/// (`bamboo-promote/…`, in any style or case), has a `kind: Promotion` line, or a top-level
/// `spec:` with `targets:` in it. A manifest with a misspelt `apiVersion` still has its `kind`
/// or its targets, and is read, and its error reported: only a file that claims none is left
/// out.
pub fn claims_to_be_a_manifest(text: &str) -> bool {
    let value = |line: &str, key: &str| {
        line.trim_start().strip_prefix(key).map(|v| {
            v.split('#')
                .next()
                .unwrap_or("")
                .trim()
                .trim_matches(['"', '\''])
                .to_string()
        })
    };
    text.to_ascii_lowercase().contains("bamboo-promote/")
        || text.lines().any(|line| {
            value(line, "kind:").is_some_and(|kind| kind.eq_ignore_ascii_case("Promotion"))
        })
        || (text.lines().any(|line| line.starts_with("spec:"))
            && text
                .lines()
                .any(|line| line.trim_start().starts_with("targets:")))
}

/// Reads one candidate: a found file that does not claim to be a manifest is `Foreign`, unparsed.
pub fn load_candidate(candidate: &Candidate) -> Result<Loaded, Vec<ManifestError>> {
    let path = &candidate.path;
    let bytes = read_file(path).map_err(|e| vec![e])?;
    if candidate.found && !claims_to_be_a_manifest(&String::from_utf8_lossy(&bytes)) {
        return Ok(Loaded::Foreign(path.clone()));
    }
    load_bytes(path, bytes).map(Loaded::Manifests)
}

/// One file's bytes. Only regular files are read (a FIFO would block for ever, a device never
/// end), and never past the size limit.
fn read_file(path: &Path) -> Result<Vec<u8>, ManifestError> {
    let unreadable = |e: std::io::Error| {
        ManifestError::file(
            "manifest::unreadable",
            path,
            format!("cannot read file: {e}"),
        )
    };
    let metadata = std::fs::metadata(path).map_err(unreadable)?;
    if !metadata.is_file() {
        return Err(ManifestError::file(
            "manifest::not_a_file",
            path,
            "not a regular file (a FIFO, a device or a socket): manifests are read only from files",
        ));
    }
    if metadata.len() > MAX_FILE_BYTES as u64 {
        return Err(too_large(path, metadata.len()));
    }
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    let file = std::fs::File::open(path).map_err(unreadable)?;
    // A file that grows while it is read still stops one byte past the limit.
    std::io::Read::read_to_end(
        &mut std::io::Read::take(file, MAX_FILE_BYTES as u64 + 1),
        &mut bytes,
    )
    .map_err(unreadable)?;
    Ok(bytes)
}

fn too_large(path: &Path, size: u64) -> ManifestError {
    ManifestError::file(
        "manifest::too_large",
        path,
        format!("file is {size} bytes; manifests are limited to {MAX_FILE_BYTES} bytes"),
    )
    .with_help("split the targets over several files")
}

/// Parses one file's bytes, named `path` in diagnostics.
/// A file with errors gives them all.
pub fn load_bytes(path: &Path, bytes: Vec<u8>) -> Result<LoadedFile, Vec<ManifestError>> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(vec![too_large(path, bytes.len() as u64)]);
    }
    if bytes.contains(&0) {
        return Err(vec![ManifestError::file(
            "manifest::binary",
            path,
            "file is binary, not YAML text",
        )]);
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        vec![ManifestError::file(
            "manifest::encoding",
            path,
            format!(
                "file is not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        )]
    })?;
    let file = Arc::new(SourceFile {
        path: path.to_path_buf(),
        text: Arc::new(text),
    });
    let documents = parse(&file)?;
    if documents.is_empty() {
        let place = Place {
            file: file.clone(),
            span: SourceSpan::from((0, 0)),
        };
        return Err(vec![
            ManifestError::at(
                "manifest::empty",
                place,
                "nothing here",
                "file holds no manifest",
            )
            .with_help(
                "a manifest starts with `apiVersion: bamboo-promote/v1` and `kind: Promotion`",
            ),
        ]);
    }
    Ok(LoadedFile { file, documents })
}

fn parse(file: &Arc<SourceFile>) -> Result<Vec<Document>, Vec<ManifestError>> {
    let options = || {
        let mut options = Options::default();
        options.with_snippet = false;
        options.strict_booleans = true;
        options
    };
    serde_saphyr::from_multiple_with_options::<Document>(&file.text, options()).map_err(|err| {
        // The types finish reading a mapping before the parser reaches a line that breaks the
        // YAML after it: a mis-indented `stage:` shows as "missing field `stage`" on the line
        // before. Read as plain YAML, the file shows its own error, at the line that is wrong.
        let structure = serde_saphyr::from_multiple_with_options::<serde::de::IgnoredAny>(
            &file.text,
            options(),
        );
        if let Err(yaml) = structure {
            return vec![syntax_error(file, &yaml)];
        }
        // Every key the format does not know or misses, not only serde's first.
        let keys = super::shape::key_errors(file, options());
        if keys.is_empty() {
            vec![syntax_error(file, &err)]
        } else {
            keys
        }
    })
}

fn syntax_error(file: &Arc<SourceFile>, err: &serde_saphyr::Error) -> ManifestError {
    let message = budget_in_words(&clean_message(&err.without_snippet().to_string()));
    let help = help_for(&message);
    let mut place = place(file, &err.location().unwrap_or(Location::UNKNOWN));
    if message.contains("tab") {
        // The scanner reports where the token it was reading began, which is often the line
        // before; the user needs the tab itself.
        if let Some(tab) = file.text[place.span.offset()..].find('\t') {
            place.span = SourceSpan::from((place.span.offset() + tab, 1));
        }
    }
    let error = ManifestError::at("manifest::syntax", place, "here", message);
    match help {
        Some(help) => error.with_help(help),
        None => error,
    }
}

/// serde-saphyr ends its messages with the location, which the diagnostic already shows, and
/// some with advice for the programmer (`set DuplicateKeyPolicy ...`), which a user cannot take.
fn clean_message(message: &str) -> String {
    let first = message.lines().next().unwrap_or(message).trim();
    let cut = [" at line ", ", set DuplicateKeyPolicy"]
        .iter()
        .filter_map(|marker| first.find(marker))
        .min();
    let trimmed = cut.map_or(first, |at| &first[..at]);
    let trimmed = trimmed.trim_end_matches(['.', ',']);
    // `cannot deserialize null into string; use Option<String>`: the advice is for the
    // programmer; the user left a value empty.
    if let Some(rest) = trimmed.strip_prefix("cannot deserialize null into ")
        && let Some((expected, _)) = rest.split_once("; use Option<")
    {
        return format!("a value is missing here: expected {expected}, found nothing (null)");
    }
    // The parser's words for what it wanted, in the user's.
    trimmed
        .replace(
            "expected mapping start",
            "expected a mapping (`key: value` lines)",
        )
        .replace(
            "expected sequence start",
            "expected a list (`- item` lines or `[a, b]`)",
        )
}

/// serde-saphyr's `budget breached: Documents { documents: 1025 }` in words. The budget guards
/// against runaway and hostile files (alias bombs); its limits are serde-saphyr's defaults.
fn budget_in_words(message: &str) -> String {
    let Some(breach) = message.strip_prefix("budget breached: ") else {
        return message.to_string();
    };
    let kind = breach.split_whitespace().next().unwrap_or(breach);
    let count: String = breach.chars().filter(char::is_ascii_digit).collect();
    let what = match kind {
        "Documents" => "documents",
        "Nodes" => "YAML nodes",
        "Events" => "YAML events",
        "Aliases" => "aliases",
        "Anchors" => "anchors",
        "Depth" => "levels of nesting",
        "MergeKeys" => "merge keys",
        _ => "YAML elements",
    };
    format!("too many {what} in one file ({count})")
}

fn help_for(message: &str) -> Option<String> {
    let help = if message.contains("unknown field") {
        return Some(unknown_field_help(message));
    } else if message.starts_with("duplicate") {
        "each key may appear once in a mapping"
    } else if message.contains("tab") {
        "YAML indents with spaces, never tabs: replace the tab with spaces"
    } else if message.contains("not allowed in this context")
        || message.contains("did not find expected")
        || message.contains("indentation")
    {
        "this line's indentation does not match the keys around it: a key of a mapping starts in the same column as the keys before it"
    } else if message.starts_with("too many") {
        "a manifest file holds at most 1 024 documents, 250 000 YAML nodes, 50 000 aliases and 64 levels of nesting; split it into several files"
    } else {
        return None;
    };
    Some(help.to_string())
}

/// For serde's `unknown field `exectueAllStages`, expected one of id, plan, …`: the field
/// meant, when one is close (`did you mean `executeAllStages`?`), else where the fields are.
fn unknown_field_help(message: &str) -> String {
    let wrong = message.split('`').nth(1).unwrap_or_default();
    let expected = message
        .split_once("expected ")
        .map_or("", |(_, rest)| rest.trim_start_matches("one of "));
    let known: Vec<&str> = expected
        .split([',', ' '])
        .map(|field| field.trim_matches('`'))
        .filter(|field| !field.is_empty() && *field != "or")
        .collect();
    match crate::suggest::closest(wrong, known) {
        Some(meant) => format!("did you mean `{meant}`?"),
        None => "see schemas/promotion.v1.schema.json for the fields of each section".into(),
    }
}

/// The place a serde-saphyr location names, in bytes.
pub fn place(file: &Arc<SourceFile>, location: &Location) -> Place {
    let span = location.span();
    let offset = match span.byte_offset() {
        Some(offset) => offset as usize,
        None if location.line() > 0 => {
            file.offset_of(location.line() as usize, location.column() as usize)
        }
        None => 0,
    };
    let len = span.byte_len().unwrap_or(0) as usize;
    Place {
        file: file.clone(),
        span: SourceSpan::from((offset.min(file.text.len()), len)),
    }
}

#[cfg(test)]
mod tests {
    use super::unknown_field_help;

    #[test]
    fn an_unknown_field_close_to_a_known_one_is_named() {
        let help = |message: &str| unknown_field_help(message);
        assert_eq!(
            help("unknown field `exectueAllStages`, expected one of id, plan, executeAllStages"),
            "did you mean `executeAllStages`?"
        );
        assert_eq!(
            help("unknown field `nmae`, expected `name`"),
            "did you mean `name`?"
        );
        assert_eq!(
            help("unknown field `tz`, expected `timeZone` or `deny`"),
            "see schemas/promotion.v1.schema.json for the fields of each section"
        );
    }
}
