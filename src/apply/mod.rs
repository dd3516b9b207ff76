//! Executing a plan safely (the rules are in `docs/safety.md`).
//!
//! Work goes in rounds. Each round promotes every target whose status is a promotion — each
//! through `promote`, which takes the build's lease, re-reads it and sends at most one call —
//! and, with `--wait`, polls until those stages finish, re-plans (so targets `after` them move
//! from waiting to queued) and goes on until nothing can move, the timeout, or a signal. After
//! SIGINT or SIGTERM no new write starts; a call already sent is seen through. A build whose
//! write has an unknown outcome gets no other write in the run.

mod approval;
pub mod audit;
pub mod events;
mod lease;
mod ledger;
mod progress;
mod promote;
mod promotion;
mod record;
mod report;
mod settle;
pub mod stop;
pub mod unlock;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::time::Instant;

use futures_util::future::join_all;

pub use events::{Counts, CycleOutcome, Event, TargetOutcome};
pub use lease::{MAX_TTL, Settings as LeaseSettings, TTL_MARGIN};
pub use record::{RecordContext, ci_run, env};
pub use report::Reporter;
pub use stop::{Signal, Stop};

use crate::bamboo::BambooClient;
use crate::bamboo::types::{plan_of, split_build_key};
use crate::lock_label::looks_like_a_lock;
use crate::manifest::{BuildSelector, Desired};
use crate::observe::{self, ObservedBuild};
use crate::reconcile::{self, Action, Plan, Status, TargetRef};
use crate::render::human::status_words;
pub use approval::Approval;
use ledger::Ledger;
use progress::Progress;
use promote::promote;
use promotion::{Context, Promotion, Request, Upstream, reread};

pub struct Options {
    pub wait: bool,
    pub timeout: Duration,
    pub poll: Duration,
    pub lease: LeaseSettings,
    /// What the record left on each promoted build says.
    pub record: RecordContext,
    /// `--override-window`: closed windows do not block.
    pub override_windows: bool,
    /// What the run may do, and nothing else (`approval`).
    pub approval: Approval,
    /// `watch`: each build and stage is tried once, marked before its call (`tried_label`).
    pub mark_tries: bool,
}

/// Where the next round's plan comes from.
pub enum Source<'a> {
    /// Re-observe and re-plan the manifests every round.
    Manifests(&'a Desired),
    /// A saved plan: executed as it is, each call only if its build still matches.
    Saved,
}

/// How each target ended; in the event stream's summary as `{"outcome": "promoted", ...}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(
    tag = "outcome",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Outcome {
    /// Promoted by this run; `finished` once every stage it ran has passed (with `--wait`),
    /// when `runs` lists the stages that ran rather than those the call was to run.
    Promoted { runs: Vec<String>, finished: bool },
    /// Promoted by this run, and a stage it ran failed.
    StageFailed { stage: String },
    /// Promoted by this run, but Bamboo ran less than asked and paused `before` this stage.
    PausedShort { ran: Vec<String>, before: String },
    /// Nothing was done: the target's status says why.
    Unchanged { status: Status },
    /// The saved plan was stale for the build: nothing was sent.
    Stale { planned: String, found: String },
    /// The promotion the run came to was not among those approved (`found`), so it was not
    /// made: another build chosen by `latest` while waiting, another stage.
    NotApproved { approved: String, found: String },
    /// Bamboo refused the call, and the build did not move.
    Refused { message: String },
    /// Bamboo refused the call because someone else moved the build first.
    MovedByOther { message: String },
    /// The call may or may not take effect; its lock label stays on the build.
    Unknown { message: String, lock: String },
    /// The promotion failed before a call was sent (a lock held too long, reads failing).
    Error { message: String },
}

pub struct Applied {
    pub outcomes: Vec<(String, Option<String>, Outcome)>,
    pub timed_out: bool,
    pub stopped_by: Option<Signal>,
    /// Builds whose call is not settled (an unknown outcome, or accepted and never shown),
    /// with the stage it was for: `watch` holds their plans in the cycles after.
    pub held: BTreeMap<String, String>,
}

pub async fn run(
    client: &BambooClient,
    source: Source<'_>,
    mut plan: Plan,
    options: &Options,
    reporter: &Reporter,
    stop: &Stop,
) -> Applied {
    let deadline = Instant::now() + options.timeout;
    let require_fingerprint = matches!(source, Source::Saved);
    let ctx = Context {
        client,
        reporter,
        lease: options.lease,
        stop,
        record: &options.record,
        override_windows: options.override_windows,
        mark_tries: options.mark_tries,
    };
    let mut ledger = Ledger::default();
    let mut builds: BTreeMap<String, ObservedBuild> = BTreeMap::new();
    let mut progress = Progress::new(reporter);
    let mut timed_out = false;
    clear_orphaned_locks(client, &plan, options.lease.max_skew).await;
    // Whether `plan` is from this round's reads: nothing is promoted from an older one.
    let mut fresh = true;
    loop {
        if stop.requested() {
            break;
        }
        let todo: Vec<(TargetRef, Action)> = plan
            .items
            .iter()
            .filter(|_| fresh)
            .filter(|i| !ledger.done.contains_key(&i.target.id))
            .filter_map(|i| match &i.status {
                Status::Queue { action }
                    if unsettled_on_plan(ledger.held.keys(), action).is_none() =>
                {
                    Some((i.target.clone(), action.clone()))
                }
                _ => None,
            })
            .collect();
        let (ctx, planned, approval) = (&ctx, &plan, &options.approval);
        // Plans are promoted side by side, but the targets of one plan one after another,
        // newest build first: the downgrade check of an older build's call then sees what
        // this run's call to a newer one did. And once a call to a build of the plan has an
        // unknown outcome, no other call to the plan may follow it: the one on its way, still
        // invisible to any read, could land after it.
        let promotions = join_all(by_plan(todo).into_iter().map(|group| async move {
            let mut promoted = Vec::new();
            let mut held: BTreeSet<String> = BTreeSet::new();
            for (target, action) in group {
                let promotion = if !approval.allows(&target.id, &action) {
                    Promotion::NotApproved {
                        approved: approval.for_target(&target.id),
                        found: format!(
                            "{} → {} (runs {})",
                            action.build_key,
                            action.stage,
                            action.runs.join(", ")
                        ),
                    }
                } else if let Some(unsettled) = unsettled_on_plan(&held, &action) {
                    Promotion::Skipped(format!(
                        "a call to {unsettled} earlier in this run is not settled (its outcome is unknown, or Bamboo has not shown it), and it may still land after this one"
                    ))
                } else {
                    let request = Request {
                        target: &target,
                        action: &action,
                        require_fingerprint,
                        upstream: upstream_of(planned, &target),
                        planned_build: planned
                            .items
                            .iter()
                            .find(|i| i.target.id == target.id)
                            .and_then(|i| i.build.clone()),
                    };
                    report::TARGET
                        .scope(target.id.clone(), promote(ctx, &request))
                        .await
                };
                if promotion.holds_build() {
                    held.insert(action.build_key.clone());
                }
                promoted.push((target.id, action, promotion));
            }
            promoted
        }))
        .await
        .into_iter()
        .flatten();
        for (id, action, promotion) in promotions {
            report_promotion(reporter, &id, &action, &promotion);
            if let Some(outcome) = ledger.record(&action, promotion) {
                ledger.done.insert(id, outcome);
            }
        }
        let waiting_on_ours = ledger.done.values().any(|o| {
            matches!(
                o,
                Outcome::Promoted {
                    finished: false,
                    ..
                }
            )
        });
        if !options.wait || stop.requested() {
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
        // The last pause ends with the timeout, not a poll interval after it.
        let pause = options
            .poll
            .min(deadline.saturating_duration_since(Instant::now()));
        if !stop.sleep(pause).await {
            break;
        }
        if let Source::Manifests(desired) = source {
            fresh = false;
            match observe::observe(client, desired).await {
                Ok(observed) => {
                    fresh = true;
                    let moment = reconcile::Moment::on_server(client, options.override_windows);
                    plan = reconcile::plan(desired, &observed, moment);
                    for item in &plan.items {
                        if let Some(build) = &item.build {
                            builds.insert(item.target.id.clone(), ObservedBuild::clone(build));
                        }
                    }
                }
                // Nothing is decided on the previous round's reads: they predate our calls.
                Err(e) => {
                    reporter.say(&format!(
                        "warning: cannot re-read Bamboo, will try again: {e}"
                    ));
                    continue;
                }
            }
        } else {
            refresh_saved(client, &plan, &ledger.done, &mut builds).await;
        }
        let may_continue = matches!(source, Source::Manifests(_)) && !stop.requested();
        ledger.follow(reporter, &mut progress, &plan, &builds, may_continue);
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
            let outcome = ledger.outcome(item, builds.get(&item.target.id));
            (item.target.id.clone(), build, outcome)
        })
        .collect();
    Applied {
        outcomes,
        timed_out,
        stopped_by: stop.signal(),
        held: ledger.held,
    }
}

/// Lock labels that a crashed or killed apply left on builds that need nothing now: nothing
/// else would ever take them off. Expired ones only; builds about to be promoted are cleaned
/// when their lease is taken.
async fn clear_orphaned_locks(client: &BambooClient, plan: &Plan, max_skew: Duration) {
    let mut seen = BTreeSet::new();
    for item in &plan.items {
        let Some(build) = &item.build else { continue };
        let locked = build.labels.iter().any(|l| looks_like_a_lock(l));
        if !locked || matches!(item.status, Status::Queue { .. }) || !seen.insert(&build.key) {
            continue;
        }
        match lease::clear_expired(client, &build.key, &build.labels, max_skew).await {
            Ok(0) => {}
            Ok(n) => errln!(
                "removed {n} expired lock label{} from {}",
                if n == 1 { "" } else { "s" },
                build.key
            ),
            Err(e) => errln!(
                "warning: cannot remove expired lock labels from {}: {e}",
                build.key
            ),
        }
    }
}

/// A build of `action`'s plan (its own build included) whose call in this run is not
/// settled.
fn unsettled_on_plan<'a>(
    held: impl IntoIterator<Item = &'a String>,
    action: &Action,
) -> Option<&'a String> {
    let ours = plan_of(&action.build_key);
    held.into_iter().find(|key| plan_of(key) == ours)
}

/// The round's promotions by plan (or branch plan), newest build first, in plan order within
/// each build.
fn by_plan(todo: Vec<(TargetRef, Action)>) -> Vec<Vec<(TargetRef, Action)>> {
    let mut groups: BTreeMap<String, Vec<(TargetRef, Action)>> = BTreeMap::new();
    for (target, action) in todo {
        groups
            .entry(plan_of(&action.build_key).to_string())
            .or_default()
            .push((target, action));
    }
    let number = |action: &Action| split_build_key(&action.build_key).map(|(_, n)| n);
    let mut groups: Vec<_> = groups.into_values().collect();
    for group in &mut groups {
        group.sort_by_key(|(_, action)| std::cmp::Reverse(number(action)));
    }
    groups
}

/// The targets a target is `after`, each with the build it was in sync on when planned:
/// checked again under the lease, before the call. Nothing re-plans a saved plan, and a round's
/// plan may be minutes old once another run's lock has been waited out.
fn upstream_of(plan: &Plan, target: &TargetRef) -> Vec<Upstream> {
    target
        .after
        .iter()
        .map(|id| {
            let item = plan.items.iter().find(|i| &i.target.id == id);
            Upstream {
                id: id.clone(),
                build_key: item.and_then(|i| i.build.as_ref()).map(|b| b.key.clone()),
                stage: item.map(|i| i.target.stage.clone()).unwrap_or_default(),
                selector: item.map_or(BuildSelector::Latest, |i| i.target.build.clone()),
            }
        })
        .collect()
}

fn report_promotion(reporter: &Reporter, id: &str, action: &Action, promotion: &Promotion) {
    let (target, build) = (id.to_string(), action.build_key.clone());
    let key = action.build_key.as_str();
    match promotion {
        Promotion::Queued { runs, note, .. } => reporter.emit(
            Event::Promoted { target, build, stage: action.stage.clone(), runs: runs.clone(), note: note.clone() },
            || format!("{id}: promoted {key} → {} (queued; runs {}){}", action.stage, runs.join(", "), note.as_ref().map_or(String::new(), |n| format!("; {n}"))),
        ),
        Promotion::NotNeeded(status) => {
            let now = status_words(status);
            reporter.emit(
                Event::Skipped { target, build, reason: format!("not needed on re-read: {now}") },
                || format!("{id}: nothing to do on re-read ({now})"),
            );
        }
        Promotion::NotApproved { approved, found } => reporter.emit(
            Event::NotApproved { target, build, approved: approved.clone(), found: found.clone() },
            || format!("{id}: {found} is not in the approved plan ({approved}); not promoted: run apply again"),
        ),
        Promotion::Stale { planned, found } => reporter.emit(
            Event::Stale { target, build, planned: planned.clone(), found: found.clone() },
            || format!("{id}: plan is stale for {key} (planned {planned}, now {found}); not promoted"),
        ),
        Promotion::Refused(message) | Promotion::MovedByOther(message) | Promotion::Failed(message) => reporter.emit(
            Event::Error { target: Some(target), build: Some(build), message: message.clone(), diagnostics: Vec::new() },
            || format!("{id}: {key} not promoted: {message}"),
        ),
        Promotion::Unknown { detail, lock } => reporter.emit(
            Event::Unknown { target, build, message: detail.clone(), lock: lock.clone() },
            || format!("{id}: the call to {key} has an unknown outcome ({detail}). It is not sent again: a re-read cannot see a call still on its way. Check {key} in Bamboo; lock label {lock} keeps every run off it until it expires, or remove it with `bamboo-promote unlock {key} --force --reason …` once checked"),
        ),
        Promotion::Skipped(reason) => reporter.emit(
            Event::Skipped { target, build, reason: reason.clone() },
            || format!("{id}: {key} not promoted: {reason}"),
        ),
        Promotion::Stopped => reporter.emit(
            Event::Skipped { target, build, reason: "stopped by a signal before the call".into() },
            || format!("{id}: {key} not promoted: stopped by a signal before the call"),
        ),
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
            Err(e) => errln!(
                "warning: cannot re-read {}, will try again: {e}",
                action.build_key
            ),
        }
    }
}
