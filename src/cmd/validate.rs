//! `validate`: the offline check of manifests, for editors, pre-commit hooks and CI.

use crate::cli::{DiagnosticFormat, ValidateArgs};
use crate::exit;
use crate::manifest::{self, ManifestError};
use crate::render::ValidationDocument;
use crate::render::human::counted;

pub fn run(args: &ValidateArgs) -> u8 {
    let exclude = match manifest::Exclude::new(&args.walk.exclude) {
        Ok(exclude) => exclude,
        Err(e) => {
            errln!("error: {e}");
            return exit::USAGE;
        }
    };
    match manifest::load_excluding(&args.paths, &exclude) {
        Ok(desired) => {
            if args.format == DiagnosticFormat::Json {
                let document = ValidationDocument::new(desired.targets.len(), Vec::new());
                crate::output::out_line(
                    serde_json::to_string(&document).expect("a document serializes"),
                );
            } else {
                let skipped = match desired.skipped.len() {
                    0 => String::new(),
                    n => format!(
                        " ({} skipped: not bamboo-promote manifests; -v names them)",
                        counted(n, "other YAML file")
                    ),
                };
                errln!(
                    "{} in {}: valid{skipped}",
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
            let diagnostics = errors.iter().map(ManifestError::to_json).collect();
            let document = ValidationDocument::new(0, diagnostics);
            crate::output::out_line(
                serde_json::to_string(&document).expect("a document serializes"),
            );
        }
        DiagnosticFormat::Human => {
            print_reports(errors);
            errln!("{}", summary_line(errors, consequence));
        }
        DiagnosticFormat::Github => {
            print_reports(errors);
            annotate(errors, &summary_line(errors, consequence));
        }
    }
}

/// GitHub Actions workflow commands on stdout: one `::error` per diagnostic, at its file, line
/// and column, so the problem is marked on the pull request's diff; `summary` when there are
/// none to place.
pub fn annotate(errors: &[ManifestError], summary: &str) {
    if errors.is_empty() {
        crate::output::out_line(format_args!(
            "::error title=bamboo-promote::{}",
            escape_data(summary)
        ));
    }
    for error in errors {
        let (line, column) = error.line_column();
        let mut properties = format!(
            "file={}",
            escape_property(&error.path.display().to_string())
        );
        if line > 0 {
            properties.push_str(&format!(",line={line},col={column}"));
        }
        properties.push_str(&format!(",title={}", escape_property(error.code)));
        let mut message = error.message.clone();
        if let Some(help) = &error.help {
            message.push_str("\nhelp: ");
            message.push_str(help);
        }
        crate::output::out_line(format_args!(
            "::error {properties}::{}",
            escape_data(&message)
        ));
    }
}

/// `plan --format github`: an annotation on the line of each target that is not on its way —
/// an error where a person must act (a failed stage, a gate, no build), a notice where it only
/// waits (for a window to open, for the targets it is `after`).
pub fn annotate_plan(plan: &crate::reconcile::Plan, desired: &crate::manifest::Desired) {
    use crate::reconcile::{BlockReason, Status};
    for item in &plan.items {
        let id = &item.target.id;
        let (level, message) = match &item.status {
            Status::Blocked {
                reason: reason @ BlockReason::WindowClosed { .. },
            } => ("notice", format!("{id} waits: {reason}")),
            Status::Blocked { reason } => ("error", format!("{id} is blocked: {reason}")),
            Status::Waiting { on } => ("notice", format!("{id} waits on {}", on.join(", "))),
            _ => continue,
        };
        let place = desired
            .targets
            .iter()
            .find(|t| &t.id == id)
            .map(|t| &t.places.id);
        let mut properties = String::new();
        if let Some(place) = place {
            let (line, column) = place.line_column();
            properties = format!(
                "file={},line={line},col={column},",
                escape_property(&place.file.path.display().to_string())
            );
        }
        properties.push_str("title=bamboo-promote");
        crate::output::out_line(format_args!(
            "::{level} {properties}::{}",
            escape_data(&message)
        ));
    }
}

/// A workflow command's message, as GitHub's toolkit escapes it.
fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A workflow command's property value: also `:` and `,`.
fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// Each error as miette renders it, on stderr.
pub fn print_reports(errors: &[ManifestError]) {
    for error in errors {
        errln!("{:?}", miette::Report::new(error.clone()));
    }
}

/// `2 errors in 1 file; nothing was contacted`.
pub fn summary_line(errors: &[ManifestError], consequence: &str) -> String {
    let files: std::collections::BTreeSet<_> = errors.iter().map(|e| &e.path).collect();
    format!(
        "{} in {}; {consequence}",
        counted(errors.len(), "error"),
        counted(files.len(), "file")
    )
}
