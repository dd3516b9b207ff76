//! Showing a plan: `human` for terminals, `markdown` for pull-request comments, and the
//! versioned JSON `document` that scripts read and `apply` re-executes.

pub mod document;
pub mod human;
pub mod markdown;

pub use document::{DocumentKind, ErrorDocument, PlanDocument, ValidationDocument};

/// The JSON Schema of `T`, pretty-printed with a final newline: how every schema this tool
/// publishes (`schema --kind …`, `schemas/`) is written.
pub fn schema_text<T: schemars::JsonSchema>() -> String {
    let schema = schemars::schema_for!(T);
    let mut text = serde_json::to_string_pretty(&schema).expect("schema serializes");
    text.push('\n');
    text
}
