//! Showing a plan: `human` for terminals, `markdown` for pull-request comments, and the
//! versioned JSON `document` that scripts read and `apply` re-executes.

mod document;
pub mod human;
pub mod markdown;

pub use document::PlanDocument;
