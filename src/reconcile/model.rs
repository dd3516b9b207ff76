//! The plan: one item per target, each with the status the planner gave it and, for a
//! promotion, the exact call and every stage it will run. Serialized as the versioned JSON
//! that `plan --out` saves and `apply plan.json` executes.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::manifest::{BuildSelector, GateCheck, Gates};
use crate::observe::ObservedBuild;

/// The JSON contract's version (plan documents and apply's events): additive changes raise
/// the minor version, a rename or a removal the major one. 2.0 renamed the status `queue` to
/// `promote` (one name for one thing in JSON, Markdown and the terminal) and gave the events
/// typed fields where 1.x had English sentences and debug text. 2.1 added `allowDowngrade` to
/// a target, for the downgrade check under the lease; 2.2 `supersededBy` and `lockedBy` to
/// an item; 2.3 apply's `notApproved` event and outcome; 2.4 the `tried` block reason and
/// `watch`'s events (`marked`, `cycle`).
pub const FORMAT_VERSION: &str = "2.5";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub items: Vec<PlanItem>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanItem {
    pub target: TargetRef,
    /// The build the target resolved to, as observed (shared with `Observed`).
    pub build: Option<Arc<ObservedBuild>>,
    pub status: Status,
    /// The target's gates, checked on the build (those that pass too).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<GateCheck>,
    /// The newer builds passed over, and why: for `newest: eligible`, those it did not
    /// choose; for a pin, those still running short of its stage.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub passed_over: Vec<PassedOver>,
    /// For a pin in sync or ahead: the newer build of its plan that has run the target stage
    /// since, so that the stage now runs that build, not the pinned one. Bamboo cannot run a
    /// stage again on a build, so going back needs a new build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded_by: Option<String>,
    /// Another apply's live lock label on the build, described on the server's clock: `apply`
    /// waits for it (an apply at work), or it is what an exit 7 left (a call that may still
    /// land), to be checked in Bamboo and then removed with `unlock --force`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked_by: Option<String>,
}

/// A newer build the target did not choose, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PassedOver {
    pub build: String,
    pub reason: String,
}

/// What an item is about, as the manifest said it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetRef {
    pub id: String,
    pub plan: String,
    pub branch: Option<String>,
    pub build: BuildSelector,
    pub stage: String,
    pub after: Vec<String>,
    pub execute_all_stages: bool,
    /// Gates the build must pass; checked again under the lease before the call.
    #[serde(default, skip_serializing_if = "Gates::is_empty")]
    pub require: Gates,
    /// `metadata.name` of the target's document.
    #[serde(default)]
    pub set: String,
    /// A label to put on the build once promoted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_label: Option<String>,
    /// `allowDowngrade: true`: no check for a newer build that already ran the stage.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_downgrade: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "status", rename_all = "camelCase")]
pub enum Status {
    /// The target stage ran and passed; no manual stage after it has run.
    InSync,
    /// The build went further: these manual stages after the target ran too.
    Ahead { beyond: Vec<String> },
    /// One call will bring the build to its target.
    #[serde(rename = "promote")]
    Queue { action: Action },
    /// The build is queued or running; nothing to do until it stops.
    Running { stage: Option<String> },
    /// Targets named in `after` are not in sync yet.
    Waiting { on: Vec<String> },
    /// Nothing can be done without a person.
    Blocked { reason: BlockReason },
}

impl PlanItem {
    /// Whether a promotion's call is the one its target asks for: a saved plan is a file a
    /// person can edit, and `apply` sends the call it holds.
    pub fn call_matches_target(&self) -> bool {
        let Status::Queue { action } = &self.status else {
            return true;
        };
        let all = if action.execute_all_stages {
            "true"
        } else {
            "false"
        };
        let query = [
            ("stage".to_string(), action.stage.clone()),
            ("executeAllStages".to_string(), all.to_string()),
        ];
        // The build must be of the target's plan (a branch plan's key is the plan's and a
        // number), and the one a pinned number names.
        let (plan, number) = action.build_key.rsplit_once('-').unwrap_or_default();
        let of_plan = plan
            .strip_prefix(self.target.plan.as_str())
            .is_some_and(|rest| match self.target.branch {
                Some(_) => !rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit()),
                None => rest.is_empty(),
            });
        let pinned = match self.target.build {
            BuildSelector::Number(n) => number == n.to_string(),
            _ => true,
        };
        of_plan
            && pinned
            && action.stage == self.target.stage
            && action.execute_all_stages == self.target.execute_all_stages
            && action.method == "PUT"
            && action.path == format!("queue/{}", crate::bamboo::encode_segment(&action.build_key))
            && action.query == query
            && self
                .build
                .as_ref()
                .is_none_or(|build| build.key == action.build_key)
    }
}

impl Status {
    pub fn is_settled(&self) -> bool {
        matches!(self, Status::InSync | Status::Ahead { .. })
    }
}

/// The exact call a promotion makes, and what it will run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Action {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub build_key: String,
    pub stage: String,
    pub execute_all_stages: bool,
    /// Every stage the call will run, in order: from the build's runnable stage to the target,
    /// then the automatic stages Bamboo runs after it (or all, with `executeAllStages`).
    pub runs: Vec<String>,
    /// The build as observed when planned; `apply` refuses the call if it changed.
    pub fingerprint: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum BlockReason {
    PlanMissing,
    PlanDisabled,
    BranchMissing,
    BranchDisabled,
    /// No build matches the selector.
    NoBuild,
    /// The build has no stage of that name.
    StageMissing,
    /// The stage is automatic: it runs by itself or not at all.
    NotManual,
    /// A stage before the target failed.
    FailedBefore {
        stage: String,
    },
    /// The target stage itself failed.
    FailedAt {
        stage: String,
    },
    /// Someone stopped the build.
    Stopped {
        stage: Option<String>,
    },
    /// A state the planner does not know how to move on from.
    Unexpected {
        detail: String,
    },
    /// A gate is not met: the build lacks a label it must carry, or carries one it must not.
    GateNotMet {
        gate: String,
        label: String,
    },
    /// The target pins a build older than one that already reached the stage (passed it, or
    /// runs it): promoting it would take the release backwards (`allowDowngrade: true` to
    /// mean it).
    Downgrade {
        newer: String,
        stage: String,
    },
    /// The downgrade check read this many newer builds (its bound) without reaching the one
    /// to promote: a build beyond them may have reached the stage, so it is not promoted
    /// (`allowDowngrade: true` to mean it).
    DowngradeUnchecked {
        read: usize,
        stage: String,
    },
    /// A newer build carries another apply's live lock: a call to it may still land (an
    /// unknown outcome leaves the lock on), so promoting this one may be a downgrade.
    NewerLocked {
        newer: String,
    },
    /// A watcher tried this promotion on this build before (its mark `label` is on the build):
    /// it is not tried again until a person takes the label off (format 2.4).
    Tried {
        label: String,
    },
    /// A build of the target's plan (`build`, maybe its own) carries a watcher's mark whose
    /// stage has not run: that call may still land, and a call sent before it could be undone
    /// by it, or turn it into a run of the next manual stage. Nothing goes to the plan's
    /// builds until the stage runs or a person takes the label off (format 2.5).
    TriedUnsettled {
        build: String,
        label: String,
    },
    /// The target's promotion window is closed; `opens` says when it next opens.
    WindowClosed {
        window: String,
        opens: Option<String>,
    },
}

impl std::fmt::Display for BlockReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BlockReason::PlanMissing => f.write_str("plan not found"),
            BlockReason::PlanDisabled => f.write_str("plan is disabled"),
            BlockReason::BranchMissing => f.write_str("branch not found"),
            BlockReason::BranchDisabled => f.write_str("branch is disabled"),
            BlockReason::NoBuild => f.write_str("no build matches the selector"),
            BlockReason::StageMissing => f.write_str("the build has no such stage"),
            BlockReason::NotManual => f.write_str("the stage is not manual"),
            BlockReason::FailedBefore { stage } => {
                write!(f, "stage {stage} failed before the target")
            }
            BlockReason::FailedAt { stage } => write!(f, "stage {stage} failed"),
            BlockReason::Stopped { stage: Some(stage) } => {
                write!(f, "build was stopped at {stage}")
            }
            BlockReason::Stopped { stage: None } => f.write_str("build was stopped"),
            BlockReason::Unexpected { detail } => write!(f, "unexpected state: {detail}"),
            BlockReason::GateNotMet { gate, label } if gate == "label" => {
                write!(f, "the build lacks label {label} (require.labels)")
            }
            BlockReason::GateNotMet { label, .. } => {
                write!(f, "the build carries label {label} (require.withoutLabels)")
            }
            BlockReason::Downgrade { newer, stage } => write!(
                f,
                "downgrade: newer build {newer} already reached {stage} (allowDowngrade: true to promote this one anyway)"
            ),
            BlockReason::NewerLocked { newer } => write!(
                f,
                "maybe a downgrade: newer build {newer} carries another apply's live lock, and a call to it may still land; promote once it is settled (allowDowngrade: true to promote this one anyway)"
            ),
            BlockReason::DowngradeUnchecked { read, stage } => write!(
                f,
                "maybe a downgrade: the {read} newest builds were read without reaching this one, and one further may have reached {stage} (allowDowngrade: true to promote this one anyway)"
            ),
            BlockReason::Tried { label } => write!(
                f,
                "a watcher tried this promotion on this build before (label {label}); a person checks the build and takes the label off to let it try again"
            ),
            BlockReason::TriedUnsettled { build, label } => write!(
                f,
                "a watcher's call to {build} may still land (its mark {label} is on it, and the stage it names has not run); nothing goes to this plan's builds until that stage runs or a person takes the label off"
            ),
            BlockReason::WindowClosed {
                window,
                opens: Some(opens),
            } => write!(f, "window {window} is closed; it opens {opens}"),
            BlockReason::WindowClosed {
                window,
                opens: None,
            } => {
                write!(
                    f,
                    "window {window} is closed and does not open within a year"
                )
            }
        }
    }
}

/// Counts for the summary line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub to_promote: usize,
    pub in_sync: usize,
    pub ahead: usize,
    pub running: usize,
    pub waiting: usize,
    pub blocked: usize,
}

impl Plan {
    /// Whether every blocked target waits only for a window to open: nothing needs a person.
    pub fn blocked_only_by_windows(&self) -> bool {
        only_windows(self.items.iter().filter_map(|i| match &i.status {
            Status::Blocked { reason } => Some(reason),
            _ => None,
        }))
    }

    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for item in &self.items {
            match item.status {
                Status::InSync => s.in_sync += 1,
                Status::Ahead { .. } => s.ahead += 1,
                Status::Queue { .. } => s.to_promote += 1,
                Status::Running { .. } => s.running += 1,
                Status::Waiting { .. } => s.waiting += 1,
                Status::Blocked { .. } => s.blocked += 1,
            }
        }
        s
    }
}

/// Whether there are block reasons and every one is a closed window, which opens by itself:
/// the rule behind exit 8, for a plan and for what an apply left.
pub fn only_windows<'a>(reasons: impl IntoIterator<Item = &'a BlockReason>) -> bool {
    let mut reasons = reasons.into_iter().peekable();
    reasons.peek().is_some()
        && reasons.all(|reason| matches!(reason, BlockReason::WindowClosed { .. }))
}
