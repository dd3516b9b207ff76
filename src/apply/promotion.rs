//! What one promotion is, to the steps that carry it out (`promote` up to the call, `settle`
//! after it): what it was asked to do (`Request`), what it works with (`Context`), how it
//! ended (`Promotion`), and what both steps do alike — let the lease go, read the build again,
//! say the call in words.

use super::lease::{self, Lease};
use super::record::RecordContext;
use super::report::Reporter;
use super::stop::Stop;
use crate::bamboo::BambooClient;
use crate::bamboo::types::split_build_key;
use crate::manifest::BuildSelector;
use crate::observe::ObservedBuild;
use crate::reconcile::{Action, Status, TargetRef};

#[derive(Debug)]
pub enum Promotion {
    /// The call was accepted (or, after no answer, its effect was seen). Unless `confirmed`,
    /// Bamboo did not show its effect in time and the lock label stays on the build.
    Queued {
        runs: Vec<String>,
        note: Option<String>,
        confirmed: bool,
    },
    /// The re-read showed nothing to do any more.
    NotNeeded(Status),
    /// The build changed since the saved plan was made.
    Stale { planned: String, found: String },
    /// Not among the promotions approved: not made.
    NotApproved { approved: String, found: String },
    /// Bamboo refused, and the build did not move.
    Refused(String),
    /// Bamboo refused because someone else moved the build first.
    MovedByOther(String),
    /// The call may or may not take effect; the lock label `lock` stays on the build.
    Unknown { detail: String, lock: String },
    /// Another apply held the lease for too long, or reads failed; nothing was sent.
    Failed(String),
    /// A signal came before the call: nothing was sent.
    Stopped,
    /// Not tried, for the reason given: nothing was sent.
    Skipped(String),
}

impl Promotion {
    /// Whether the build must get no other call in this run: the call's outcome is unknown,
    /// or it was accepted but Bamboo never showed it.
    pub fn holds_build(&self) -> bool {
        matches!(
            self,
            Promotion::Unknown { .. }
                | Promotion::Queued {
                    confirmed: false,
                    ..
                }
        )
    }
}

pub struct Request<'a> {
    /// The target as planned: its id, its gates (checked again on the build read under the
    /// lease), its manifest set and record label (for the record left on the build).
    pub target: &'a TargetRef,
    pub action: &'a Action,
    /// For a saved plan: the build must still match what was planned.
    pub require_fingerprint: bool,
    /// For a saved plan: the targets this one is `after`, which must still be in sync.
    pub upstream: Vec<Upstream>,
    /// For a saved plan: the build as planned, to say what changed when it did.
    pub planned_build: Option<std::sync::Arc<ObservedBuild>>,
}

/// A target another is `after`, and the build it was in sync on when the plan was made.
pub struct Upstream {
    pub id: String,
    pub build_key: Option<String>,
    pub stage: String,
    /// How it names its build: `latest` (or a label) may name a newer one by now.
    pub selector: BuildSelector,
}

/// What every promotion of a run shares.
pub struct Context<'a> {
    pub client: &'a BambooClient,
    pub reporter: &'a Reporter,
    pub lease: lease::Settings,
    pub stop: &'a Stop,
    pub record: &'a RecordContext,
    pub override_windows: bool,
    /// `watch`: mark each build and stage as tried before its call (see `tried_label`).
    pub mark_tries: bool,
}

pub(super) async fn release(
    client: &BambooClient,
    lease: Lease,
    promotion: Promotion,
) -> Promotion {
    let (build_key, label) = (lease.build_key.clone(), lease.label.clone());
    if let Err(e) = lease.release(client).await {
        errln!(
            "warning: lock label {label} may be left on {build_key} ({e}): it expires by itself, or `bamboo-promote unlock {build_key} --force --reason …`"
        );
    }
    promotion
}

/// The build as Bamboo shows it now; an answer about another build is an error.
pub async fn reread(client: &BambooClient, build_key: &str) -> Result<ObservedBuild, String> {
    let (plan, number) =
        split_build_key(build_key).ok_or_else(|| format!("{build_key} is not a build key"))?;
    match client.build(plan, Some(number)).await {
        Ok(Some(result)) => Ok(ObservedBuild::from_result(result)),
        Ok(None) => Err(format!("build {build_key} no longer exists")),
        Err(e) => Err(e.to_string()),
    }
}

pub fn describe_call(action: &Action) -> String {
    let query: Vec<String> = action
        .query
        .iter()
        .map(|(k, v)| format!("{k}={}", crate::bamboo::encode_segment(v)))
        .collect();
    format!("{} {}?{}", action.method, action.path, query.join("&"))
}

/// The stages whose state changed between two reads of a build, in the build's order.
pub fn moved_stages(before: &ObservedBuild, after: &ObservedBuild) -> Vec<String> {
    after
        .stages
        .iter()
        .filter(|stage| {
            let was = before.stages.iter().find(|s| s.name == stage.name);
            was.is_none_or(|was| {
                (&was.life_cycle_state, &was.state) != (&stage.life_cycle_state, &stage.state)
            })
        })
        .map(|stage| stage.name.clone())
        .collect()
}

/// What changed on a build since a saved plan saw it, in words: "Deploy Prod has run",
/// "Deploy Staging failed", "Deploy Prod is running"; "the build changed" when its stages
/// did not (its state or flags did).
pub fn what_changed(before: &ObservedBuild, now: &ObservedBuild) -> String {
    let changes: Vec<String> = moved_stages(before, now)
        .into_iter()
        .filter_map(|name| now.stages.iter().find(|s| s.name == name))
        .map(
            |stage| match (stage.life_cycle_state.as_str(), stage.state.as_str()) {
                ("Finished", "Successful") => format!("{} has run", stage.name),
                ("Finished", "Failed") => format!("{} failed", stage.name),
                ("InProgress", _) => format!("{} is running", stage.name),
                ("Pending" | "Queued", _) => format!("{} is queued", stage.name),
                _ => format!("{} was stopped or reset", stage.name),
            },
        )
        .collect();
    if changes.is_empty() {
        "the build changed".into()
    } else {
        changes.join(", ")
    }
}
