//! The JSON of Bamboo's REST API, as far as bamboo-promote reads it. Every field that a real
//! server may leave out has a default, and unknown fields are ignored: servers differ by version.

use serde::Deserialize;

/// A wrapped collection: `{"size", "start-index", "max-result", "<item>": [...]}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(bound = "T: Deserialize<'de>")]
pub struct Collection<T> {
    #[serde(default)]
    pub size: usize,
    #[serde(default, rename = "start-index")]
    pub start_index: usize,
    #[serde(default, rename = "max-result")]
    pub max_result: usize,
    #[serde(
        default = "Vec::new",
        alias = "result",
        alias = "stage",
        alias = "branch",
        alias = "label",
        alias = "comment"
    )]
    pub items: Vec<T>,
}

impl<T> Default for Collection<T> {
    fn default() -> Self {
        Collection {
            size: 0,
            start_index: 0,
            max_result: 0,
            items: Vec::new(),
        }
    }
}

/// A build key's plan (or branch plan) key and number: `SHOP-APP-42` is build 42 of
/// `SHOP-APP`, `SHOP-APP0-7` build 7 of branch plan `SHOP-APP0`.
pub fn split_build_key(key: &str) -> Option<(&str, u32)> {
    let (plan, number) = key.rsplit_once('-')?;
    Some((plan, number.parse().ok()?))
}

/// The plan (or branch plan) a build key belongs to; a key that does not read as a build's
/// stands for itself.
pub fn plan_of(build_key: &str) -> &str {
    split_build_key(build_key).map_or(build_key, |(plan, _)| plan)
}

/// `GET result/{key}`: one build.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildResult {
    pub key: String,
    /// `number`: every recorded result has it; `buildNumber` is missing on older servers.
    pub number: u32,
    pub life_cycle_state: String,
    pub state: String,
    #[serde(default)]
    pub continuable: bool,
    #[serde(default)]
    pub restartable: bool,
    #[serde(default)]
    pub vcs_revision_key: Option<String>,
    /// When the build last completed (Bamboo's format, RFC 3339 with an offset).
    #[serde(default)]
    pub build_completed_time: Option<String>,
    /// Listed only when the read expands them (the environments view's history page).
    #[serde(default)]
    pub comments: Collection<Comment>,
    #[serde(default)]
    pub stages: Collection<StageResult>,
    #[serde(default)]
    pub labels: Collection<Label>,
    /// The plan (or branch plan) the build belongs to; real servers always send it.
    #[serde(default)]
    pub plan: Option<PlanRef>,
    /// Set by the client when the labels took more than one request (`result/{key}/label`
    /// pages after the build's own 25): they are then not one snapshot with the stages.
    #[serde(skip)]
    pub labels_paged: bool,
}

/// The plan summary inside a result: enough to know the plan exists and whether it is enabled,
/// without reading the plan itself.
#[derive(Debug, Clone, Deserialize)]
pub struct PlanRef {
    pub key: String,
    #[serde(default = "enabled")]
    pub enabled: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageResult {
    pub name: String,
    pub life_cycle_state: String,
    pub state: String,
    #[serde(default)]
    pub manual: bool,
    #[serde(default)]
    pub runnable: bool,
    #[serde(default)]
    pub restartable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Label {
    pub name: String,
}

/// A comment on a build, as a listing with `expand=…comments` shows it.
#[derive(Debug, Clone, Deserialize)]
pub struct Comment {
    #[serde(default)]
    pub content: String,
}

/// `GET result/{plan}`: history, newest first; `GET result/{project}`: the latest build of
/// each of the project's plans.
#[derive(Debug, Clone, Deserialize)]
pub struct ResultList {
    #[serde(default)]
    pub results: Collection<BuildResult>,
}

/// `GET result/{build}/label`: one page of a build's labels.
#[derive(Debug, Clone, Deserialize)]
pub struct LabelList {
    #[serde(default)]
    pub labels: Collection<Label>,
}

/// `GET plan/{plan}?expand=stages.stage`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanInfo {
    pub key: String,
    #[serde(default = "enabled")]
    pub enabled: bool,
    #[serde(default)]
    pub stages: Collection<PlanStage>,
}

fn enabled() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
pub struct PlanStage {
    pub name: String,
}

/// `GET plan/{plan}/branch/{name}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BranchInfo {
    pub key: String,
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// The branch's name in Bamboo, which may have turned a VCS branch's `/` into `-`.
    #[serde(default, rename = "shortName")]
    pub short_name: Option<String>,
    /// The VCS branch it builds, where the server says (`"vcsBranch": "release/2.4"`, or an
    /// object with its `name`).
    #[serde(default, rename = "vcsBranch")]
    pub vcs_branch: Option<serde_json::Value>,
}

impl BranchInfo {
    /// The VCS branch's name, in either shape a server gives it.
    pub fn vcs_branch_name(&self) -> Option<&str> {
        match self.vcs_branch.as_ref()? {
            serde_json::Value::String(name) => Some(name),
            other => other.get("name")?.as_str(),
        }
    }
}

/// `GET plan/{plan}/branch`: a page of the plan's branches.
#[derive(Debug, Clone, Deserialize)]
pub struct BranchList {
    #[serde(default)]
    pub branches: Collection<BranchInfo>,
}

/// Bamboo's error body: `{"message", "status-code", "sub-code"}`, or, from some resources,
/// `{"errors": ["…"], "fieldErrors": {…}}`.
#[derive(Debug, Clone, Deserialize)]
pub struct ErrorBody {
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub errors: Vec<serde_json::Value>,
}

impl ErrorBody {
    /// The error's words: its `message`, or its `errors` joined; `None` when it has neither.
    pub fn text(&self) -> Option<String> {
        if let Some(message) = self.message.as_ref().filter(|m| !m.is_empty()) {
            return Some(message.clone());
        }
        let errors: Vec<String> = self
            .errors
            .iter()
            .map(|e| match e {
                serde_json::Value::String(text) => text.clone(),
                other => other
                    .get("message")
                    .and_then(|m| m.as_str())
                    .map_or_else(|| other.to_string(), str::to_string),
            })
            .collect();
        (!errors.is_empty()).then(|| errors.join("; "))
    }
}

#[cfg(test)]
mod tests {
    //! Every recorded fixture must parse into these types.
    use super::*;

    fn fixture(name: &str) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn results_from_real_servers_parse() {
        let paused: BuildResult =
            serde_json::from_str(&fixture("bamboo6-result-paused-at-manual-stage.json")).unwrap();
        assert!(paused.continuable);
        assert_eq!(paused.stages.items.len(), 10);
        let runnable: Vec<_> = paused
            .stages
            .items
            .iter()
            .filter(|s| s.runnable)
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(runnable, ["initiate-deploy-prod-canary"]);

        let failed: BuildResult =
            serde_json::from_str(&fixture("bamboo12-result_detail.json")).unwrap();
        assert_eq!(
            (failed.life_cycle_state.as_str(), failed.state.as_str()),
            ("Finished", "Failed")
        );
        assert_eq!(failed.stages.items[1].state, "Failed");

        let stopped: BuildResult =
            serde_json::from_str(&fixture("bamboo12-result_stopped.json")).unwrap();
        assert_eq!(stopped.life_cycle_state, "NotBuilt");
        assert!(stopped.restartable);

        let old: BuildResult =
            serde_json::from_str(&fixture("bamboo5-result_with_changes.json")).unwrap();
        assert!(old.number > 0);
    }

    #[test]
    fn plans_queue_answers_and_errors_parse() {
        let plan: PlanInfo = serde_json::from_str(&fixture("bamboo12-plan.json")).unwrap();
        assert_eq!(plan.key, "LAB-PROV");
        let old_plan: PlanInfo = serde_json::from_str(&fixture("bamboo5-plan.json")).unwrap();
        assert!(old_plan.enabled);
        let error: ErrorBody = serde_json::from_str(&fixture("bamboo12-404-body.json")).unwrap();
        assert_eq!(error.text().as_deref(), Some("HTTP 404 Not Found"));
        let errors: ErrorBody =
            serde_json::from_str(r#"{"errors": ["Plan is disabled", {"message": "no agent"}]}"#)
                .unwrap();
        assert_eq!(errors.text().as_deref(), Some("Plan is disabled; no agent"));
        let branches: serde_json::Value =
            serde_json::from_str(&fixture("bamboo12-branches.json")).unwrap();
        let list: Collection<BranchInfo> =
            serde_json::from_value(branches["branches"].clone()).unwrap();
        assert_eq!(list.size, 0);
    }
}
