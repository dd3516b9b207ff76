//! Pure planning: `plan(&Desired, &Observed) → Plan`, no I/O. `stages` holds the stage
//! arithmetic for one build, `model` the plan's types, `check` the online validation that
//! turns unknown plans, branches and stages into diagnostics at the manifest's line.

mod check;
mod model;
mod stages;

use std::collections::HashMap;
use std::sync::Arc;

pub use check::check;
pub use model::{
    Action, BlockReason, FORMAT_VERSION, PassedOver, Plan, PlanItem, Status, Summary, TargetRef,
    only_windows,
};
pub use stages::assess;

use crate::lock_label::live_lock;
use crate::manifest::{BuildSelector, Desired, GateCheck, Target};
use crate::observe::{Newer, Observed, ObservedBuild, build_plan_key};

/// When a plan is made for: the time windows are read at (the server's, or `plan --at`), and
/// whether `apply --override-window` lets closed windows through.
#[derive(Debug, Clone, Copy)]
pub struct Moment {
    /// The earliest the server's time can be.
    pub now: jiff::Timestamp,
    /// The latest it can be: a window lets a call through only when open all the way from
    /// `now` to here.
    pub latest: jiff::Timestamp,
    pub override_windows: bool,
}

impl Moment {
    /// Now on the server's clock, as the client knows it (this machine's clock before any
    /// answer came).
    pub fn on_server(client: &crate::bamboo::BambooClient, override_windows: bool) -> Moment {
        let known = client.server_time();
        let now = known
            .and_then(|t| jiff::Timestamp::from_millisecond(t.now()).ok())
            .unwrap_or_else(jiff::Timestamp::now);
        let uncertainty = known.map_or(std::time::Duration::ZERO, |t| t.uncertainty());
        Moment {
            now,
            latest: now
                .checked_add(jiff::SignedDuration::try_from(uncertainty).unwrap_or_default())
                .unwrap_or(now),
            override_windows,
        }
    }

    /// The moment `plan --at` names: exactly known.
    pub fn at(at: jiff::Timestamp, override_windows: bool) -> Moment {
        Moment {
            now: at,
            latest: at,
            override_windows,
        }
    }

    /// The span the server's time is in.
    pub fn span(&self) -> (jiff::Timestamp, jiff::Timestamp) {
        (self.now, self.latest)
    }
}

/// One status per target; `after` turns a promotion into waiting while upstream is unsettled.
pub fn plan(desired: &Desired, observed: &Observed, moment: Moment) -> Plan {
    let unsettled = unsettled_marks(observed);
    let mut items: Vec<PlanItem> = desired
        .targets
        .iter()
        .map(|t| item(t, observed, moment, &unsettled))
        .collect();
    let settled: HashMap<String, bool> = items
        .iter()
        .map(|i| (i.target.id.clone(), i.status.is_settled()))
        .collect();
    for item in &mut items {
        if !matches!(item.status, Status::Queue { .. }) {
            continue;
        }
        let on: Vec<String> = item
            .target
            .after
            .iter()
            .filter(|id| !settled.get(*id).copied().unwrap_or(false))
            .cloned()
            .collect();
        if !on.is_empty() {
            item.status = Status::Waiting { on };
        }
    }
    Plan { items }
}

/// By plan (or branch plan) key, a build observed with a mark whose call may still land, and
/// the mark (`tried_label::unsettled`).
type Unsettled = HashMap<String, (String, String)>;

/// The unsettled marks on every build observed, whatever it was read for.
fn unsettled_marks(observed: &Observed) -> Unsettled {
    let mut found = Unsettled::new();
    // Marks the pages of newer builds showed on older ones.
    for ((plan, _), newer) in &observed.newer {
        if let Some(marked) = &newer.marked {
            found.entry(plan.clone()).or_insert_with(|| marked.clone());
        }
    }
    for build in observed.all_builds() {
        if let Some(mark) = crate::tried_label::unsettled(build, None) {
            found
                .entry(crate::bamboo::types::plan_of(&build.key).to_string())
                .or_insert_with(|| (build.key.clone(), mark.to_string()));
        }
    }
    found
}

/// The status of one target, ignoring `after`.
fn item(target: &Target, observed: &Observed, moment: Moment, unsettled: &Unsettled) -> PlanItem {
    let (build, passed_over) = match target.build {
        BuildSelector::NewestEligible => newest_eligible(target, observed),
        _ => (build_for(target, observed), on_their_way(target, observed)),
    };
    let mut status = status_for(target, observed, build.as_deref());
    let mut gates = build
        .as_ref()
        .map(|b| target.require.check(&b.labels))
        .unwrap_or_default();
    let window = target
        .require
        .window_at(moment.span(), moment.override_windows);
    if let Some(window) = &window {
        gates.push(GateCheck {
            gate: "window".into(),
            label: window.name.clone(),
            passed: window.lets_through(),
            overridden: window.overridden,
        });
    }
    if let (Status::Queue { action }, Some(build)) = (&status, build.as_deref())
        && let Some(reason) =
            downgrade_for(target, observed, build, action, moment.now.as_millisecond())
    {
        status = Status::Blocked { reason };
    }
    if let Status::Queue { .. } = status
        && let Some(failed) = gates.iter().find(|g| !g.passed)
    {
        let reason = match &window {
            Some(w) if failed.gate == "window" => BlockReason::WindowClosed {
                window: w.name.clone(),
                opens: w.opens.clone(),
            },
            _ => BlockReason::GateNotMet {
                gate: failed.gate.clone(),
                label: failed.label.clone(),
            },
        };
        status = Status::Blocked { reason };
    }
    if let (Status::Queue { .. }, Some(build)) = (&status, build.as_deref())
        && let Some(mark) = crate::tried_label::on(&build.labels, &target.stage)
    {
        status = Status::Blocked {
            reason: BlockReason::Tried {
                label: mark.to_string(),
            },
        };
    }
    if let Status::Queue { .. } = status
        && let Some((build, label)) =
            build_plan_key(target, observed).and_then(|key| unsettled.get(&key))
    {
        status = Status::Blocked {
            reason: BlockReason::TriedUnsettled {
                build: build.clone(),
                label: label.clone(),
            },
        };
    }
    let superseded_by = match (&status, build.as_deref()) {
        (Status::InSync | Status::Ahead { .. }, Some(build)) => superseded(target, observed, build),
        _ => None,
    };
    let now_ms = moment.now.as_millisecond();
    let locked_by = build
        .as_deref()
        .and_then(|b| live_lock(&b.labels, now_ms))
        .and_then(crate::lock_label::LockLabel::parse)
        .map(|lock| lock.describe(now_ms));
    PlanItem {
        target: target_ref(target),
        build,
        status,
        gates,
        passed_over,
        superseded_by,
        locked_by,
    }
}

/// The newest build of a pin's plan, newer than the pin, that has run the target stage: the
/// stage now runs that build, not the pinned one.
fn superseded(target: &Target, observed: &Observed, build: &ObservedBuild) -> Option<String> {
    let key = build_plan_key(target, observed)?;
    let newer = observed.newer.get(&(key, build.number))?;
    newer
        .builds
        .iter()
        .find(|b| b.passed_stage(&target.stage))
        .map(|b| b.key.clone())
}

/// `newest: eligible`: the newest build of the plan's history that has reached the target
/// stage (passed it, or is running it), or can run it (the planner would promote it, and its
/// label gates pass). A build that reached the stage stops the search, so the choice is never
/// older than one that reached it. The newer builds passed over say why.
fn newest_eligible(
    target: &Target,
    observed: &Observed,
) -> (Option<Arc<ObservedBuild>>, Vec<PassedOver>) {
    let mut passed = Vec::new();
    let key = build_plan_key(target, observed);
    let candidates = key.and_then(|key| observed.candidates.get(&key));
    for build in candidates.into_iter().flatten() {
        if build.reached_stage(&target.stage) {
            return (Some(build.clone()), passed);
        }
        let why = match assess(build, &target.stage, target.execute_all_stages) {
            Status::Queue { .. } => target
                .require
                .check(&build.labels)
                .into_iter()
                .find(|g| !g.passed)
                .map(|g| match g.gate.as_str() {
                    "label" => format!("lacks label {}", g.label),
                    _ => format!("carries label {}", g.label),
                }),
            Status::Blocked { reason } => Some(reason.to_string()),
            Status::Running { .. } => Some(running(build)),
            _ => Some("cannot be promoted now".into()),
        };
        match why {
            None => return (Some(build.clone()), passed),
            Some(reason) => passed.push(PassedOver {
                build: build.key.clone(),
                reason,
            }),
        }
    }
    (None, passed)
}

/// For a pin: the newer builds of its plan still running, short of the target stage (one that
/// reached it makes a downgrade). The pin is promoted all the same, but the plan says that a
/// newer build is on its way rather than leaving the pin looking like the newest.
fn on_their_way(target: &Target, observed: &Observed) -> Vec<PassedOver> {
    let Some(newer) = newer_than_pin(target, observed) else {
        return Vec::new();
    };
    newer
        .builds
        .iter()
        .filter(|b| b.life_cycle_state != "Finished" && !b.reached_stage(&target.stage))
        .map(|b| PassedOver {
            build: b.key.clone(),
            reason: running(b),
        })
        .collect()
}

/// What a running build is doing, for a build passed over: "running its automatic stages", or
/// the manual stage it runs.
pub fn running(build: &ObservedBuild) -> String {
    match build
        .stages
        .iter()
        .find(|s| s.manual && s.reached() && !s.passed())
    {
        Some(stage) => format!("running {}", stage.name),
        None => "running its automatic stages".into(),
    }
}

pub fn target_ref(target: &Target) -> TargetRef {
    TargetRef {
        id: target.id.clone(),
        plan: target.plan.clone(),
        branch: target.branch.clone(),
        build: target.build.clone(),
        stage: target.stage.clone(),
        after: target.after.clone(),
        execute_all_stages: target.execute_all_stages,
        require: target.require.clone(),
        set: target.set.clone(),
        record_label: target.record_label.clone(),
        allow_downgrade: target.allow_downgrade,
    }
}

/// The builds newer than the one the target pins, as observed (pins short of their stage).
fn newer_than_pin<'a>(
    target: &Target,
    observed: &'a Observed,
) -> Option<&'a Newer<Arc<ObservedBuild>>> {
    if !target.build.pins() {
        return None;
    }
    let n = build_for(target, observed)?.number;
    let key = build_plan_key(target, observed)?;
    observed.newer.get(&(key, n))
}

/// Why the target's promotion of `build` would be a downgrade, from the builds of its plan
/// newer than it as observed: those read for a pin, or the candidates `newest: eligible`
/// passed over (all of them: the candidates are read from the newest).
fn downgrade_for(
    target: &Target,
    observed: &Observed,
    build: &ObservedBuild,
    action: &Action,
    server_now_ms: i64,
) -> Option<BlockReason> {
    if target.allow_downgrade {
        return None;
    }
    if target.build == BuildSelector::NewestEligible {
        let candidates = observed
            .candidates
            .get(&build_plan_key(target, observed)?)?;
        let newer = candidates
            .iter()
            .take_while(|b| b.number > build.number)
            .map(AsRef::as_ref);
        return downgrade(newer, true, action, server_now_ms);
    }
    let newer = newer_than_pin(target, observed)?;
    downgrade(
        newer.builds.iter().map(AsRef::as_ref),
        newer.complete,
        action,
        server_now_ms,
    )
}

/// Why `action` would take the release backwards, from the builds of its build's plan newer
/// than it (newest first; `complete` when they are all there): one of them reached the first
/// stage the call runs — passed it, or runs it now — so the older build would replace it
/// there, on the way to the target or at it. One that carries a live lock label (at
/// `server_now_ms`) may have a call on its way; and not all read, one further may have
/// reached it: both may be so, and the call waits for an `allowDowngrade: true`. The same
/// rule when planning and under the lease.
pub fn downgrade<'a>(
    newer: impl IntoIterator<Item = &'a ObservedBuild>,
    complete: bool,
    action: &Action,
    server_now_ms: i64,
) -> Option<BlockReason> {
    let stage = action.runs.first().unwrap_or(&action.stage);
    let mut read = 0;
    let mut locked = None;
    for build in newer {
        if build.reached_stage(stage) {
            let (newer, stage) = (build.key.clone(), stage.clone());
            return Some(BlockReason::Downgrade { newer, stage });
        }
        if locked.is_none() && live_lock(&build.labels, server_now_ms).is_some() {
            locked = Some(build.key.clone());
        }
        read += 1;
    }
    if let Some(newer) = locked {
        return Some(BlockReason::NewerLocked { newer });
    }
    (!complete).then(|| BlockReason::DowngradeUnchecked {
        read,
        stage: stage.clone(),
    })
}

fn build_for(target: &Target, observed: &Observed) -> Option<Arc<ObservedBuild>> {
    let key = build_plan_key(target, observed)?;
    observed
        .builds
        .get(&(key, target.build.clone()))
        .cloned()
        .flatten()
}

fn status_for(target: &Target, observed: &Observed, build: Option<&ObservedBuild>) -> Status {
    let blocked = |reason| Status::Blocked { reason };
    let Some(Some(plan)) = observed.plans.get(&target.plan) else {
        return blocked(BlockReason::PlanMissing);
    };
    let mut enabled = plan.enabled;
    if let Some(name) = &target.branch {
        match observed.branches.get(&(target.plan.clone(), name.clone())) {
            Some(Some(branch)) if !branch.enabled => enabled = false,
            Some(Some(_)) => {}
            _ => return blocked(BlockReason::BranchMissing),
        }
    }
    let Some(build) = build else {
        return blocked(BlockReason::NoBuild);
    };
    match assess(build, &target.stage, target.execute_all_stages) {
        Status::Queue { .. } if !enabled => blocked(if target.branch.is_some() && plan.enabled {
            BlockReason::BranchDisabled
        } else {
            BlockReason::PlanDisabled
        }),
        status => status,
    }
}

#[cfg(test)]
mod tests;
