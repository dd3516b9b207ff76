//! `validate`: the offline check of manifests, for editors, pre-commit hooks and CI.

use crate::cli::{DiagnosticFormat, ValidateArgs};
use crate::manifest::{self, ManifestError};
use crate::{exit, stdout};

pub fn run(args: &ValidateArgs) -> u8 {
    match manifest::load(&args.paths) {
        Ok(desired) => {
            if args.format == DiagnosticFormat::Json {
                stdout::line(
                    serde_json::json!({ "valid": true, "targets": desired.targets.len(), "diagnostics": [] }),
                );
            } else {
                eprintln!(
                    "{} in {}: valid",
                    counted(desired.targets.len(), "target"),
                    counted(desired.files.len(), "file")
                );
            }
            exit::SUCCESS
        }
        Err(errors) => {
            report(&errors, args.format, "nothing was contacted");
            exit::ERROR
        }
    }
}

/// Prints manifest errors: rendered reports on stderr, or one JSON document on stdout.
/// `consequence` says what did not happen because of them.
pub fn report(errors: &[ManifestError], format: DiagnosticFormat, consequence: &str) {
    match format {
        DiagnosticFormat::Json => {
            let diagnostics: Vec<_> = errors.iter().map(ManifestError::to_json).collect();
            stdout::line(serde_json::json!({ "valid": false, "diagnostics": diagnostics }));
        }
        DiagnosticFormat::Human => {
            for error in errors {
                eprintln!("{:?}", miette::Report::new(error.clone()));
            }
            let files: std::collections::BTreeSet<_> = errors.iter().map(|e| &e.path).collect();
            eprintln!(
                "{} in {}; {consequence}",
                counted(errors.len(), "error"),
                counted(files.len(), "file")
            );
        }
    }
}

/// `1 file`, `2 files`: the summary lines count things a user reads as words.
fn counted(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
