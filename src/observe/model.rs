//! What observing found, in the shapes the planner reads: plans, branches and builds, with the
//! fingerprint a saved plan keeps of each build. Built only from Bamboo's answers.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::history::Newer;
use crate::bamboo::types::{BranchInfo, BuildResult};
use crate::manifest::{BuildSelector, Target};

/// What Bamboo holds that the targets care about.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// By plan key; `None` when the plan does not exist.
    pub plans: HashMap<String, Option<ObservedPlan>>,
    /// By (plan key, branch name); `None` when the branch does not exist.
    pub branches: HashMap<(String, String), Option<ObservedBranch>>,
    /// By (plan or branch-plan key, selector); `None` when no build matches. Shared: every
    /// target on the build, and the plan's items, hold the same one.
    pub builds: HashMap<(String, BuildSelector), Option<Arc<ObservedBuild>>>,
    /// By (plan or branch-plan key, build number): the builds of that plan newer than a pinned
    /// build that could be promoted, to tell a promotion from a downgrade.
    pub newer: HashMap<(String, u32), Newer<Arc<ObservedBuild>>>,
    /// By plan key: the builds `newest: eligible` chooses from, newest first.
    pub candidates: HashMap<String, Vec<Arc<ObservedBuild>>>,
}

impl Observed {
    /// Every build read, whatever it was read for: the targets' builds, the newer builds of
    /// pins, the candidates of `newest: eligible`.
    pub fn all_builds(&self) -> impl Iterator<Item = &Arc<ObservedBuild>> {
        self.builds
            .values()
            .flatten()
            .chain(self.newer.values().flat_map(|n| &n.builds))
            .chain(self.candidates.values().flatten())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedPlan {
    pub enabled: bool,
    pub stages: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedBranch {
    pub key: String,
    pub enabled: bool,
}

impl From<BranchInfo> for ObservedBranch {
    fn from(branch: BranchInfo) -> ObservedBranch {
        ObservedBranch {
            key: branch.key,
            enabled: branch.enabled,
        }
    }
}

/// One build as Bamboo reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObservedBuild {
    pub key: String,
    pub number: u32,
    pub life_cycle_state: String,
    pub state: String,
    pub continuable: bool,
    pub restartable: bool,
    pub revision: Option<String>,
    pub labels: Vec<String>,
    pub stages: Vec<ObservedStage>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObservedStage {
    pub name: String,
    pub life_cycle_state: String,
    pub state: String,
    pub manual: bool,
    pub runnable: bool,
    pub restartable: bool,
}

impl ObservedStage {
    /// Whether the stage ran to its end and passed.
    pub fn passed(&self) -> bool {
        self.life_cycle_state == "Finished" && self.state == "Successful"
    }

    /// Whether the build got to this stage: it passed, or it is queued or running now.
    pub fn reached(&self) -> bool {
        self.passed() || self.is_active()
    }

    /// Whether the stage waits for an agent, is queued, or runs.
    pub fn is_active(&self) -> bool {
        is_active(&self.life_cycle_state)
    }
}

/// Whether a life cycle state (of a build or a stage) is one on its way: waiting for an
/// agent, queued, or running. Bamboo's other states are `Finished`, `NotBuilt` and the like.
fn is_active(life_cycle_state: &str) -> bool {
    matches!(life_cycle_state, "Pending" | "Queued" | "InProgress")
}

impl ObservedBuild {
    /// Whether the build waits for an agent, is queued, or runs.
    pub fn is_active(&self) -> bool {
        is_active(&self.life_cycle_state)
    }

    /// Whether the stage of that name ran and passed in this build.
    pub fn passed_stage(&self, name: &str) -> bool {
        self.stages.iter().any(|s| s.name == name && s.passed())
    }

    /// Whether this build got to the stage of that name: passed it, or is running it. An
    /// older build promoted to it would finish after, and undo, this one.
    pub fn reached_stage(&self, name: &str) -> bool {
        self.stages.iter().any(|s| s.name == name && s.reached())
    }

    pub fn from_result(result: BuildResult) -> ObservedBuild {
        ObservedBuild {
            key: result.key,
            number: result.number,
            life_cycle_state: result.life_cycle_state,
            state: result.state,
            continuable: result.continuable,
            restartable: result.restartable,
            revision: result.vcs_revision_key,
            labels: result.labels.items.into_iter().map(|l| l.name).collect(),
            stages: result
                .stages
                .items
                .into_iter()
                .map(|s| ObservedStage {
                    name: s.name,
                    life_cycle_state: s.life_cycle_state,
                    state: s.state,
                    manual: s.manual,
                    runnable: s.runnable,
                    restartable: s.restartable,
                })
                .collect(),
        }
    }

    /// The build's state in 16 hex digits: a saved plan holds it, and `apply` refuses a call
    /// whose build no longer matches. Labels are left out: our own lock labels come and go.
    pub fn fingerprint(&self) -> String {
        // The hashed text is `key|lifeCycleState|state|continuable|restartable`, then
        // `|name:lifeCycleState:state:runnable` per stage; fed piece by piece, without
        // formatting a string per build and stage.
        let mut hasher = Sha256::new();
        let flag = |b: bool| if b { "true" } else { "false" };
        for piece in [
            self.key.as_str(),
            "|",
            &self.life_cycle_state,
            "|",
            &self.state,
            "|",
            flag(self.continuable),
            "|",
            flag(self.restartable),
        ] {
            hasher.update(piece);
        }
        for stage in &self.stages {
            for piece in [
                "|",
                stage.name.as_str(),
                ":",
                &stage.life_cycle_state,
                ":",
                &stage.state,
                ":",
                flag(stage.runnable),
            ] {
                hasher.update(piece);
            }
        }
        let mut hex = String::with_capacity(16);
        for byte in &hasher.finalize()[..8] {
            let _ = write!(hex, "{byte:02x}");
        }
        hex
    }
}

/// The plan key whose builds a target means: the branch plan's key, once it is known.
pub fn build_plan_key(target: &Target, observed: &Observed) -> Option<String> {
    match &target.branch {
        None => Some(target.plan.clone()),
        Some(name) => observed
            .branches
            .get(&(target.plan.clone(), name.clone()))
            .and_then(|b| b.as_ref())
            .map(|b| b.key.clone()),
    }
}
