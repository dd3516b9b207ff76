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

/// Every `*.yaml` / `*.yml` named or found below the given paths, sorted, each once.
pub fn manifest_files(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<ManifestError>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        if path.is_dir() {
            walk(path, &mut files, &mut errors);
        } else if path.exists() {
            files.push(path.clone());
        } else {
            errors.push(ManifestError::file(
                "manifest::not_found",
                path,
                "no such file or folder",
            ));
        }
    }
    files.sort();
    files.dedup();
    (files, errors)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>, errors: &mut Vec<ManifestError>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            return errors.push(ManifestError::file(
                "manifest::unreadable",
                dir,
                format!("cannot read folder: {e}"),
            ));
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if path.is_dir() {
            walk(&path, files, errors);
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            files.push(path);
        }
    }
}

/// Reads and parses one file; a file with an error yields no documents.
pub fn load_file(path: &Path) -> Result<LoadedFile, ManifestError> {
    let bytes = std::fs::read(path).map_err(|e| {
        ManifestError::file(
            "manifest::unreadable",
            path,
            format!("cannot read file: {e}"),
        )
    })?;
    load_bytes(path, bytes)
}

/// Parses one file's bytes, named `path` in diagnostics.
pub fn load_bytes(path: &Path, bytes: Vec<u8>) -> Result<LoadedFile, ManifestError> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(ManifestError::file(
            "manifest::too_large",
            path,
            format!(
                "file is {} bytes; manifests are limited to {MAX_FILE_BYTES} bytes",
                bytes.len()
            ),
        )
        .with_help("split the targets over several files"));
    }
    if bytes.contains(&0) {
        return Err(ManifestError::file(
            "manifest::binary",
            path,
            "file is binary, not YAML text",
        ));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        ManifestError::file(
            "manifest::encoding",
            path,
            format!(
                "file is not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        )
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
        return Err(ManifestError::at(
            "manifest::empty",
            place,
            "nothing here",
            "file holds no manifest",
        )
        .with_help(
            "a manifest starts with `apiVersion: bamboo-promote/v1` and `kind: Promotion`",
        ));
    }
    Ok(LoadedFile { file, documents })
}

fn parse(file: &Arc<SourceFile>) -> Result<Vec<Document>, ManifestError> {
    let mut options = Options::default();
    options.with_snippet = false;
    options.strict_booleans = true;
    serde_saphyr::from_multiple_with_options::<Document>(&file.text, options)
        .map_err(|err| syntax_error(file, &err))
}

fn syntax_error(file: &Arc<SourceFile>, err: &serde_saphyr::Error) -> ManifestError {
    let message = clean_message(&err.without_snippet().to_string());
    let help = help_for(&message);
    let place = place(file, &err.location().unwrap_or(Location::UNKNOWN));
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
    trimmed.trim_end_matches(['.', ',']).to_string()
}

fn help_for(message: &str) -> Option<&'static str> {
    if message.contains("unknown field") {
        Some("see schemas/promotion.v1.schema.json for the fields of each section")
    } else if message.starts_with("duplicate") {
        Some("each key may appear once in a mapping")
    } else if message.contains("tabs") {
        Some("YAML indents with spaces, never tabs")
    } else {
        None
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
