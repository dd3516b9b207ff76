//! Executing a plan safely (the rules are in `shared/ARCHITECTURE.md`, "Writes").
//!
//! Work goes in rounds. Each round promotes every target whose status is a promotion — each
//! through `promote`, which takes the build's lease, re-reads it and sends at most one call —
//! and, with `--wait`, polls until those stages finish, re-plans (so targets `after` them move
//! from waiting to queued) and goes on until nothing can move, the timeout, or Ctrl-C. Ctrl-C
//! is only looked at between rounds, so it never cuts a call in half.

mod lease;
mod progress;
mod promote;
mod report;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::json;

pub use report::Reporter;

use crate::bamboo::BambooClient;
use crate::manifest::Desired;
use crate::observe::{self, ObservedBuild};
use crate::reconcile::{self, Action, Plan, Status};
use progress::Progress;
use promote::{Promotion, Request, promote, reread};

pub struct Options {
    pub wait: bool,
    pub timeout: Duration,
    pub poll: Duration,
}

/// Where the next round's plan comes from.
pub enum Source<'a> {
    /// Re-observe and re-plan the manifests every round.
    Manifests(&'a Desired),
    /// A saved plan: executed as it is, each call only if its build still matches.
    Saved,
}

/// How each target ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Queued by this run; `finished` once every stage it ran has passed (with `--wait`).
    Promoted {
        runs: Vec<String>,
        finished: bool,
    },
    /// Queued by this run, and a stage it ran failed.
    StageFailed {
        stage: String,
    },
    /// Nothing to do: the final status says why.
    Unchanged(Status),
    Stale {
        planned: String,
        found: String,
    },
    Refused(String),
    MovedByOther(String),
    Error(String),
}

pub struct Applied {
    pub outcomes: Vec<(String, Option<String>, Outcome)>,
    pub timed_out: bool,
    pub interrupted: bool,
}

pub async fn run(
    client: &BambooClient,
    source: Source<'_>,
    mut plan: Plan,
    options: &Options,
    reporter: &Reporter,
    interrupted: Arc<AtomicBool>,
) -> Applied {
    let deadline = Instant::now() + options.timeout;
    let require_fingerprint = matches!(source, Source::Saved);
    let mut done: BTreeMap<String, Outcome> = BTreeMap::new();
    let mut builds: BTreeMap<String, ObservedBuild> = BTreeMap::new();
    let mut progress = Progress::new(reporter.is_json());
    let mut timed_out = false;
    loop {
        let todo: Vec<(String, Action)> = plan
            .items
            .iter()
            .filter(|i| !done.contains_key(&i.target.id))
            .filter_map(|i| match &i.status {
                Status::Queue { action } => Some((i.target.id.clone(), action.clone())),
                _ => None,
            })
            .collect();
        let promotions = join_all(todo.iter().map(|(id, action)| async move {
            let request = Request {
                target: id,
                action,
                require_fingerprint,
            };
            (
                id.clone(),
                action.clone(),
                promote(client, reporter, &request).await,
            )
        }))
        .await;
        for (id, action, promotion) in promotions {
            report_promotion(reporter, &id, &action, &promotion);
            if let Some(outcome) = outcome_of(promotion) {
                done.insert(id, outcome);
            }
        }
        let waiting_on_ours = done.values().any(|o| {
            matches!(
                o,
                Outcome::Promoted {
                    finished: false,
                    ..
                }
            )
        });
        if !options.wait || interrupted.load(Ordering::SeqCst) {
            break;
        }
        let can_move = waiting_on_ours
            || plan.items.iter().any(|i| {
                matches!(i.status, Status::Running { .. }) && matches!(source, Source::Manifests(_))
            });
        if !can_move {
            break;
        }
        if Instant::now() >= deadline {
            timed_out = true;
            break;
        }
        sleep_unless_interrupted(options.poll, &interrupted).await;
        if let Source::Manifests(desired) = source {
            match observe::observe(client, desired).await {
                Ok(observed) => plan = reconcile::plan(desired, &observed),
                Err(e) => eprintln!("warning: cannot re-read Bamboo, will try again: {e}"),
            }
            for item in &plan.items {
                if let Some(build) = &item.build {
                    builds.insert(item.target.id.clone(), ObservedBuild::clone(build));
                }
            }
        } else {
            refresh_saved(client, &plan, &done, &mut builds).await;
        }
        update_promoted(reporter, &mut progress, &plan, &builds, &mut done);
    }
    progress.finish();
    let outcomes = plan
        .items
        .iter()
        .map(|item| {
            let build = builds
                .get(&item.target.id)
                .or(item.build.as_deref())
                .map(|b| b.key.clone());
            let outcome = done
                .remove(&item.target.id)
                .unwrap_or_else(|| Outcome::Unchanged(item.status.clone()));
            (item.target.id.clone(), build, outcome)
        })
        .collect();
    Applied {
        outcomes,
        timed_out,
        interrupted: interrupted.load(Ordering::SeqCst),
    }
}

fn outcome_of(promotion: Promotion) -> Option<Outcome> {
    Some(match promotion {
        Promotion::Queued { runs, .. } => Outcome::Promoted {
            runs,
            finished: false,
        },
        Promotion::NotNeeded(_) => return None,
        Promotion::Stale { planned, found } => Outcome::Stale { planned, found },
        Promotion::Refused(message) => Outcome::Refused(message),
        Promotion::MovedByOther(message) => Outcome::MovedByOther(message),
        Promotion::Failed(message) => Outcome::Error(message),
    })
}

fn report_promotion(reporter: &Reporter, id: &str, action: &Action, promotion: &Promotion) {
    let build = action.build_key.as_str();
    match promotion {
        Promotion::Queued { runs, note } => reporter.event(
            "queued",
            || format!("{id}: queued {build} → {} (runs {}){}", action.stage, runs.join(", "), note.as_ref().map_or(String::new(), |n| format!("; {n}"))),
            json!({ "target": id, "build": build, "stage": action.stage, "runs": runs, "note": note }),
        ),
        Promotion::NotNeeded(status) => reporter.event(
            "skipped",
            || format!("{id}: nothing to do on re-read ({status:?})"),
            json!({ "target": id, "build": build, "reason": "not needed on re-read", "status": status }),
        ),
        Promotion::Stale { planned, found } => reporter.event(
            "stale",
            || format!("{id}: saved plan is stale for {build} (planned {planned}, now {found}); not queued"),
            json!({ "target": id, "build": build, "planned": planned, "found": found }),
        ),
        Promotion::Refused(message) | Promotion::MovedByOther(message) | Promotion::Failed(message) => reporter.event(
            "failed",
            || format!("{id}: {build} not promoted: {message}"),
            json!({ "target": id, "build": build, "message": message }),
        ),
    }
}

/// Follows the builds this run promoted: progress, and whether their stages finished or failed.
fn update_promoted(
    reporter: &Reporter,
    progress: &mut Progress,
    plan: &Plan,
    builds: &BTreeMap<String, ObservedBuild>,
    done: &mut BTreeMap<String, Outcome>,
) {
    for item in &plan.items {
        let id = &item.target.id;
        let (
            Some(Outcome::Promoted {
                runs,
                finished: false,
            }),
            Some(build),
        ) = (done.get(id), builds.get(id))
        else {
            continue;
        };
        progress.update(id, build, &item.target.stage);
        let stage_of = |name: &String| build.stages.iter().find(|s| &s.name == name);
        if let Some(failed) = runs
            .iter()
            .filter_map(stage_of)
            .find(|s| s.life_cycle_state == "Finished" && s.state == "Failed")
        {
            let stage = failed.name.clone();
            reporter.event(
                "failed",
                || format!("{id}: stage {stage} of {} failed", build.key),
                json!({ "target": id, "build": build.key, "stage": stage }),
            );
            done.insert(id.clone(), Outcome::StageFailed { stage });
            continue;
        }
        let all_ran = runs
            .iter()
            .filter_map(stage_of)
            .all(|s| s.life_cycle_state == "Finished" && s.state == "Successful");
        if all_ran {
            let runs = runs.clone();
            reporter.event(
                "finished",
                || format!("{id}: {} finished {}", build.key, runs.join(", ")),
                json!({ "target": id, "build": build.key, "runs": runs }),
            );
            done.insert(
                id.clone(),
                Outcome::Promoted {
                    runs,
                    finished: true,
                },
            );
        }
    }
}

/// For a saved plan there is no re-planning: re-read the builds this run promoted.
async fn refresh_saved(
    client: &BambooClient,
    plan: &Plan,
    done: &BTreeMap<String, Outcome>,
    builds: &mut BTreeMap<String, ObservedBuild>,
) {
    for item in &plan.items {
        let (
            Some(Outcome::Promoted {
                finished: false, ..
            }),
            Status::Queue { action },
        ) = (done.get(&item.target.id), &item.status)
        else {
            continue;
        };
        match reread(client, &action.build_key).await {
            Ok(build) => {
                builds.insert(item.target.id.clone(), build);
            }
            Err(e) => eprintln!(
                "warning: cannot re-read {}, will try again: {e}",
                action.build_key
            ),
        }
    }
}

async fn sleep_unless_interrupted(pause: Duration, interrupted: &AtomicBool) {
    let step = Duration::from_millis(50).min(pause);
    let until = Instant::now() + pause;
    while Instant::now() < until && !interrupted.load(Ordering::SeqCst) {
        tokio::time::sleep(step).await;
    }
}
