//! The versioned JSON document of a plan: what `plan --format json` prints, what `plan --out`
//! saves and what `apply plan.json` reads back. Additive within a major `formatVersion`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::manifest::JsonDiagnostic;
use crate::reconcile::{FORMAT_VERSION, Plan, Summary};

/// `plan --format json`, `plan --out`, `status --format json`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanDocument {
    /// `2.0`: additive changes raise the minor version, renames and removals the major one.
    pub format_version: String,
    pub kind: DocumentKind,
    /// The server's URL, as given (never with credentials).
    pub server: String,
    /// SHA-256 of the manifests the plan was made from.
    pub manifests_digest: String,
    pub generated_at: String,
    #[serde(flatten)]
    pub plan: Plan,
    pub summary: Summary,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum DocumentKind {
    /// What apply would do: each promotion with its call.
    Plan,
    /// Where each target's build stands.
    Status,
}

/// What `plan`, `status`, `apply` and `validate` print on stdout with `--format json` when they
/// stop on an error, so that CI can annotate it: the diagnostics carry file, line and column.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorDocument {
    pub format_version: &'static str,
    /// Always `error`.
    pub kind: &'static str,
    /// What failed, in one line.
    pub message: String,
    /// Manifest problems, at their file, line and column; empty for other errors.
    pub diagnostics: Vec<JsonDiagnostic>,
}

impl ErrorDocument {
    pub fn new(message: impl Into<String>, diagnostics: Vec<JsonDiagnostic>) -> ErrorDocument {
        ErrorDocument {
            format_version: FORMAT_VERSION,
            kind: "error",
            message: message.into(),
            diagnostics,
        }
    }
}

impl PlanDocument {
    pub fn new(kind: DocumentKind, server: &str, digest: &str, plan: Plan) -> PlanDocument {
        PlanDocument {
            format_version: FORMAT_VERSION.to_string(),
            kind,
            server: server.to_string(),
            manifests_digest: digest.to_string(),
            generated_at: jiff::Timestamp::now().to_string(),
            summary: plan.summary(),
            plan,
        }
    }

    /// Whether this program can read a document of that version: same major version.
    pub fn is_compatible(version: &str) -> bool {
        version.split('.').next() == FORMAT_VERSION.split('.').next()
    }
}

/// What `validate --format json` prints: whether the manifests are valid, and every problem at
/// its file, line and column.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValidationDocument {
    pub format_version: &'static str,
    /// Always `validation`.
    pub kind: &'static str,
    pub valid: bool,
    /// How many targets the manifests hold (0 when they are not valid).
    pub targets: usize,
    pub diagnostics: Vec<JsonDiagnostic>,
}

impl ValidationDocument {
    pub fn new(targets: usize, diagnostics: Vec<JsonDiagnostic>) -> ValidationDocument {
        ValidationDocument {
            format_version: FORMAT_VERSION,
            kind: "validation",
            valid: diagnostics.is_empty(),
            targets,
            diagnostics,
        }
    }
}

/// What `plan`, `status` and `validate` print with `--format json`: a plan document, an error
/// document or a validation document, told apart by `kind`. Only for the schema.
#[derive(Serialize, JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum PlanOutput {
    Plan(PlanDocument),
    Error(ErrorDocument),
    Validation(ValidationDocument),
}

/// The JSON Schema of `plan`/`status`/`validate --format json` and of saved plans, as
/// `bamboo-promote schema --kind plan` prints it.
pub fn schema() -> String {
    crate::render::schema_text::<PlanOutput>()
}
