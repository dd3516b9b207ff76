//! Showing a plan: `human` for terminals, `markdown` for pull-request comments, and the
//! versioned JSON `document` that scripts read and `apply` re-executes.

pub mod document;
pub mod human;
pub mod markdown;

pub use document::{DocumentKind, ErrorDocument, PlanDocument, ValidationDocument};
