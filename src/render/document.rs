//! The versioned JSON document of a plan: what `plan --format json` prints, what `plan --out`
//! saves and what `apply plan.json` reads back. Additive within a major `formatVersion`.

use serde::{Deserialize, Serialize};

use crate::reconcile::{FORMAT_VERSION, Plan, Summary};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanDocument {
    pub format_version: String,
    /// `plan` or `status`.
    pub kind: String,
    /// The server's URL, as given (never with credentials).
    pub server: String,
    /// SHA-256 of the manifests the plan was made from.
    pub manifests_digest: String,
    pub generated_at: String,
    #[serde(flatten)]
    pub plan: Plan,
    pub summary: Summary,
}

impl PlanDocument {
    pub fn new(kind: &str, server: &str, digest: &str, plan: Plan) -> PlanDocument {
        PlanDocument {
            format_version: FORMAT_VERSION.to_string(),
            kind: kind.to_string(),
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
