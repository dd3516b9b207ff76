//! What runs where: for each plan the manifests name, and each of its manual stages, the build
//! that last ran that stage successfully, what is on its way to it (a newer build running it,
//! or paused before it), and the targets that want it. A release manager asks "what is in prod
//! now, and what comes next?" before "has build 41 reached Deploy Prod?"; this answers it from
//! one page of each plan's history, read beside what `plan` reads.
//!
//! Bamboo keeps no time per stage in its REST answers: "when" is the build's last completion,
//! which is when its latest stage ended.

mod render;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;

use crate::bamboo::types::BuildResult;
use crate::observe::ObservedBuild;
use crate::reconcile::PlanItem;

pub use render::{human, markdown};

/// `1.0`: additive changes raise the minor version, renames and removals the major one.
const FORMAT_VERSION: &str = "1.0";

/// How many builds of a plan's history are read: its newest page.
pub const HISTORY_PAGE: usize = 25;

/// The environments view, as `environments --format json` prints it.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Environments {
    /// `1.0`.
    pub format_version: &'static str,
    /// The server, as shown to people.
    pub server: String,
    /// The server's time the view was made at (RFC 3339), from its answers.
    pub server_time: String,
    /// Plans and plan branches, in the order the manifests name them.
    pub plans: Vec<PlanRow>,
}

/// One plan (or plan branch): its manual stages, in the plan's order.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanRow {
    /// The plan's key, or the branch plan's.
    pub plan: String,
    pub stages: Vec<StageCell>,
}

/// One manual stage of a plan.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StageCell {
    pub stage: String,
    /// The newest build that ran the stage successfully; absent when none in the page did, or
    /// when that cannot be told.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<Deployed>,
    /// Why the page cannot tell which build ran the stage: a build newer than any that did is
    /// listed without its stages, or none in the page did and older builds are beyond it.
    /// Missing data is "cannot tell", never "never ran".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cannot_tell: Option<String>,
    /// Newer builds running the stage, queued for it, or paused before it, newest first.
    pub on_its_way: Vec<OnItsWay>,
    /// The targets that name this stage of this plan.
    pub wanted_by: Vec<Wanted>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Deployed {
    pub build: String,
    pub number: u32,
    /// When the build last completed (RFC 3339), when Bamboo says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    /// The apply that promoted it there, as its record comment on the build says: `target
    /// app-prod of manifest set promotions`, and the CI run when it named one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promoted_by: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OnItsWay {
    pub build: String,
    pub number: u32,
    pub state: Approach,
}

/// How a newer build stands toward the stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Approach {
    /// Running it now.
    Running,
    /// Queued for it.
    Queued,
    /// Every stage before it passed; it waits for someone to run it.
    PausedBefore,
}

impl Approach {
    pub fn words(self) -> &'static str {
        match self {
            Approach::Running => "running",
            Approach::Queued => "queued",
            Approach::PausedBefore => "paused before",
        }
    }
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Wanted {
    pub target: String,
    /// The build the target's selector names now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build: Option<String>,
    /// Its status in the plan's words: `in sync`, `promote to Deploy Prod`, `blocked: …`.
    pub status: String,
}

/// One plan's history page, newest first, and whether it reached the plan's first build.
pub struct History {
    pub builds: Vec<BuildResult>,
    pub whole: bool,
}

/// The view of `histories` (by plan key, in the order to show) and the plan's items.
pub fn view(
    server: String,
    server_time: String,
    histories: Vec<(String, History)>,
    items: &[PlanItem],
) -> Environments {
    let plans = histories
        .into_iter()
        .map(|(plan, history)| row(plan, history, items))
        .collect();
    Environments {
        format_version: FORMAT_VERSION,
        server,
        server_time,
        plans,
    }
}

fn row(plan: String, history: History, items: &[PlanItem]) -> PlanRow {
    let completed: BTreeMap<u32, Option<String>> = history
        .builds
        .iter()
        .map(|b| (b.number, b.build_completed_time.clone()))
        .collect();
    let comments: BTreeMap<u32, Vec<String>> = history
        .builds
        .iter()
        .map(|b| {
            let texts = b.comments.items.iter().map(|c| c.content.clone());
            (b.number, texts.collect())
        })
        .collect();
    let builds: Vec<ObservedBuild> = history
        .builds
        .into_iter()
        .map(ObservedBuild::from_result)
        .collect();
    let manual: Vec<String> = builds
        .iter()
        .find(|b| !b.stages.is_empty())
        .map(|b| {
            b.stages
                .iter()
                .filter(|s| s.manual)
                .map(|s| s.name.clone())
                .collect()
        })
        .unwrap_or_default();
    let stages = manual
        .into_iter()
        .map(|stage| {
            let current = builds.iter().find(|b| b.passed_stage(&stage));
            // A build newer than `current` listed without stages may have run it since; a
            // queued one has run nothing, and servers list it without stages.
            let blind = builds
                .iter()
                .take_while(|b| current.is_none_or(|c| b.number > c.number))
                .find(|b| {
                    b.stages.is_empty()
                        && !matches!(b.life_cycle_state.as_str(), "Queued" | "Pending")
                });
            let cannot_tell = match blind {
                Some(b) => Some(format!("{} is listed without its stages", b.key)),
                None if current.is_none() && !history.whole => {
                    Some(format!("not in the newest {HISTORY_PAGE} builds"))
                }
                None => None,
            };
            let current = current.filter(|_| blind.is_none());
            let on_its_way = builds
                .iter()
                .take_while(|b| current.is_none_or(|c| b.number > c.number))
                .filter_map(|b| {
                    approach(b, &stage).map(|state| OnItsWay {
                        build: b.key.clone(),
                        number: b.number,
                        state,
                    })
                })
                .collect();
            let wanted_by = items
                .iter()
                .filter(|i| i.target.stage == stage && item_plan(i) == Some(plan.as_str()))
                .map(|i| Wanted {
                    target: i.target.id.clone(),
                    build: i.build.as_ref().map(|b| b.key.clone()),
                    status: crate::render::human::status_words(&i.status),
                })
                .collect();
            StageCell {
                cannot_tell,
                current: current.map(|b| Deployed {
                    build: b.key.clone(),
                    number: b.number,
                    completed_at: completed.get(&b.number).cloned().flatten(),
                    promoted_by: comments
                        .get(&b.number)
                        .and_then(|texts| promoted_by(texts, &stage)),
                }),
                stage,
                on_its_way,
                wanted_by,
            }
        })
        .collect();
    PlanRow { plan, stages }
}

/// The plan (or branch plan) a plan item's build belongs to; the target's plan when it has no
/// build.
pub fn item_plan(item: &PlanItem) -> Option<&str> {
    match &item.build {
        Some(build) => crate::bamboo::types::split_build_key(&build.key).map(|(plan, _)| plan),
        None => item
            .target
            .branch
            .is_none()
            .then_some(item.target.plan.as_str()),
    }
}

/// Who promoted a build to `stage`, from the newest of its record comments that says so
/// (`apply::record`: "Promoted to S by bamboo-promote (…): target T of manifest set M
/// (digest …).", then "CI run: URL" when it ran in CI).
fn promoted_by(comments: &[String], stage: &str) -> Option<String> {
    let record = comments
        .iter()
        .rev()
        .find(|c| c.starts_with(&format!("Promoted to {stage} by bamboo-promote")))?;
    let first = record.lines().next()?;
    let who = first.split_once(": target ")?.1;
    let who = who.split(" (digest").next()?.trim_end_matches('.');
    let run = record.lines().find_map(|l| l.strip_prefix("CI run: "));
    Some(match run {
        Some(run) => format!("target {who}, CI run {run}"),
        None => format!("target {who}"),
    })
}

/// How `build` stands toward `stage`, if it is on its way to it.
fn approach(build: &ObservedBuild, stage: &str) -> Option<Approach> {
    let at = build.stages.iter().position(|s| s.name == stage)?;
    let this = &build.stages[at];
    match this.life_cycle_state.as_str() {
        "InProgress" => return Some(Approach::Running),
        "Pending" | "Queued" => return Some(Approach::Queued),
        _ => {}
    }
    let before_passed = build.stages[..at].iter().all(|s| s.passed());
    let not_run = !this.reached() && this.state != "Failed";
    (before_passed && not_run && build.continuable).then_some(Approach::PausedBefore)
}

/// The JSON Schema of the view, as `bamboo-promote schema --kind environments` prints it.
pub fn schema() -> String {
    crate::render::schema_text::<Environments>()
}

#[cfg(test)]
mod tests {
    use super::{History, promoted_by, view};
    use crate::bamboo::types::BuildResult;

    /// A build as a history page lists it: `stages` as (name, manual, state), or none.
    fn build(number: u32, life_cycle: &str, stages: &[(&str, bool, &str)]) -> BuildResult {
        let stages: Vec<_> = stages
            .iter()
            .map(|(name, manual, state)| {
                let life = if *state == "Unknown" { "NotBuilt" } else { "Finished" };
                serde_json::json!({ "name": name, "manual": manual, "lifeCycleState": life, "state": state })
            })
            .collect();
        serde_json::from_value(serde_json::json!({
            "key": format!("SHOP-APP-{number}"), "number": number, "lifeCycleState": life_cycle,
            "state": "Unknown", "stages": { "size": stages.len(), "stage": stages },
        }))
        .expect("a build")
    }

    /// Missing data is "cannot tell": a finished build newer than the one that ran Deploy
    /// Prod, listed without its stages, may have run it since; a queued one has run nothing.
    #[test]
    fn a_newer_build_listed_without_stages_makes_the_stage_cannot_tell() {
        let ran = [
            ("Build", false, "Successful"),
            ("Deploy Prod", true, "Successful"),
        ];
        let cell = |newest: BuildResult| {
            let history = History {
                builds: vec![newest, build(41, "Finished", &ran)],
                whole: true,
            };
            let view = view(
                "s".into(),
                "t".into(),
                vec![("SHOP-APP".into(), history)],
                &[],
            );
            let row = view.plans.into_iter().next().expect("one plan");
            row.stages.into_iter().next().expect("Deploy Prod")
        };
        let blind = cell(build(42, "Finished", &[]));
        assert!(blind.current.is_none());
        assert_eq!(
            blind.cannot_tell.as_deref(),
            Some("SHOP-APP-42 is listed without its stages")
        );
        let queued = cell(build(42, "Queued", &[]));
        assert_eq!(
            queued.current.map(|c| c.build).as_deref(),
            Some("SHOP-APP-41")
        );
        assert!(queued.cannot_tell.is_none());
    }

    #[test]
    fn the_record_comment_names_the_apply_that_promoted_a_build() {
        let record = "Promoted to Deploy Prod by bamboo-promote (queued Deploy Prod): target app-prod of manifest set promotions (digest 0123456789ab).\nReason: release 42\nCI run: https://ci.example.com/runs/7".to_string();
        let staging = "Promoted to Deploy Staging by bamboo-promote (queued Deploy Staging): target app-staging of manifest set promotions (digest 0123456789ab).".to_string();
        let short = "Continued toward Deploy Prod by bamboo-promote; Bamboo queued Deploy Staging only, and Deploy Prod has not run: target app-prod of manifest set promotions (digest 0123456789ab).".to_string();
        let comments = [staging, short, record, "LGTM".to_string()];
        assert_eq!(
            promoted_by(&comments, "Deploy Prod").as_deref(),
            Some(
                "target app-prod of manifest set promotions, CI run https://ci.example.com/runs/7"
            )
        );
        assert_eq!(
            promoted_by(&comments, "Deploy Staging").as_deref(),
            Some("target app-staging of manifest set promotions")
        );
        assert_eq!(
            promoted_by(&comments[3..], "Deploy Prod"),
            None,
            "a person's comment says nothing"
        );
    }
}
