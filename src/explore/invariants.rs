//! The promise, checked after every run from the simulator's ground truth (its stage runs, its
//! record of every continue, its labels and request log), not from what the runners reported.
//! Each check names the rule of `docs/safety.md` it stands for.

use super::scenario::{STAGES, Scenario};
use crate::sim::Engine;
use crate::sim::LoggedRequest;

/// What one runner left behind: its exit code, its output and its audit trail.
pub struct RunnerEnd {
    pub code: u8,
    pub output: String,
    pub audit: String,
}

/// What the checks found: violations of the promise, and runs into what `docs/safety.md`
/// lists as what cannot be closed (each with the entry's name).
#[derive(Default)]
pub struct Found {
    pub violations: Vec<String>,
    pub residuals: Vec<String>,
}

/// Every violation of the promise this run shows, in words.
pub fn check(
    scenario: &Scenario,
    initial_runs: &[(String, Vec<u32>)],
    engine: &Engine,
    requests: &[LoggedRequest],
    runners: &[RunnerEnd],
) -> Found {
    let mut found = Found::default();
    let violations = &mut found.violations;
    no_stage_twice(initial_runs, engine, violations);
    only_asked_stages(scenario, engine, violations);
    audited_before_sent(requests, runners, violations);
    locks_left_are_named(engine, runners, violations);
    unknown_exits_7(runners, violations);
    no_downgrade(scenario, engine, requests, &mut found);
    past_the_bounds(scenario, engine, requests, &mut found);
    found
}

/// Past the bounds `docs/safety.md` assumes, what breaks is what it lists as what cannot be
/// closed: a call held on the way for longer than the lock's lifetime, front ends whose
/// clocks are further apart than `--max-clock-skew`. A run that went past one of them has its
/// violations counted as that residual.
fn past_the_bounds(
    scenario: &Scenario,
    engine: &Engine,
    requests: &[LoggedRequest],
    found: &mut Found,
) {
    if found.violations.is_empty() {
        return;
    }
    let held_past_lifetime = engine.continued.iter().any(|call| {
        let path = format!("queue/{}-{}", call.plan, call.number);
        requests.iter().any(|r| {
            r.method == "PUT" && r.path == path && r.at_ms + super::scenario::LOCK_TTL_MS < call.at
        })
    });
    let offsets = scenario.runners.iter().map(|r| r.front_end_offset_ms);
    let spread = offsets.clone().max().unwrap_or(0) - offsets.min().unwrap_or(0);
    let why = if held_past_lifetime {
        "a call held on the way for longer than the lock's lifetime"
    } else if spread > super::scenario::MAX_SKEW_MS as i64 {
        "front ends whose clocks are further apart than --max-clock-skew"
    } else {
        return;
    };
    for violation in std::mem::take(&mut found.violations) {
        found.residuals.push(format!(
            "{violation}: {why} (docs/safety.md, what cannot be closed)"
        ));
    }
}

/// Rule 1: a stage runs at most once on a build (a build the world began with having run it
/// counts as its once).
fn no_stage_twice(initial: &[(String, Vec<u32>)], engine: &Engine, found: &mut Vec<String>) {
    for (key, before) in initial {
        let Some((plan, number)) = key.rsplit_once('-') else {
            continue;
        };
        let Some(build) = engine
            .plans
            .get(plan)
            .and_then(|p| p.builds.get(&number.parse().unwrap_or(0)))
        else {
            continue;
        };
        for (i, run) in build.stages.iter().enumerate() {
            let started_here = run.runs.saturating_sub(before[i]);
            if run.runs > 1 && started_here > 0 {
                found.push(format!(
                    "stage {} ran {} times on {key}",
                    STAGES[i], run.runs
                ));
            }
        }
    }
}

/// Rule 2: a call runs no stage past what a target on its plan asked for (the target stage,
/// and the automatic stages Bamboo runs after it, which are none here past a manual stage).
fn only_asked_stages(scenario: &Scenario, engine: &Engine, found: &mut Vec<String>) {
    for call in &engine.continued {
        let asked = scenario
            .targets
            .iter()
            .filter(|t| t.plan == call.plan)
            .map(|t| t.stage)
            .max();
        if asked.is_none_or(|stage| call.last > stage) {
            found.push(format!(
                "{}-{} ran {} to {}, past every target on its plan",
                call.plan, call.number, STAGES[call.from], STAGES[call.last]
            ));
        }
    }
}

/// Rule 5: no build is continued into a stage a newer build of its plan had already reached,
/// unless a target on the plan allows a downgrade. A call that reached the server long before
/// it took effect (a proxy held it past the client's timeout: its run ended 7) and was
/// overtaken meanwhile is the residual "a late call to an older build, left by an exit 7".
fn no_downgrade(
    scenario: &Scenario,
    engine: &Engine,
    requests: &[LoggedRequest],
    found: &mut Found,
) {
    for call in &engine.continued {
        let Some(newer) = call.overtaken_by else {
            continue;
        };
        let allowed = scenario
            .targets
            .iter()
            .filter(|t| t.plan == call.plan)
            .any(|t| t.allow_downgrade);
        if allowed {
            continue;
        }
        let what = format!(
            "{}-{} was continued into {} at {} ms, which newer build {newer} had already reached",
            call.plan, call.number, STAGES[call.from], call.at
        );
        let path = format!("queue/{}-{}", call.plan, call.number);
        let held_past_timeout = requests.iter().any(|r| {
            r.method == "PUT"
                && r.path == path
                && r.at_ms + super::scenario::REQUEST_TIMEOUT_MS < call.at
        });
        if held_past_timeout {
            found.residuals.push(format!(
                "{what}: a late call to an older build, left by an exit 7 (docs/safety.md, what cannot be closed)"
            ));
        } else {
            found.violations.push(what);
        }
    }
}

/// Rule 7: every queue call that reached the server was in an audit trail first. Each
/// `sending` record is written before its call leaves, so there are at least as many of them,
/// per build, as queue calls the server saw.
fn audited_before_sent(requests: &[LoggedRequest], runners: &[RunnerEnd], found: &mut Vec<String>) {
    let mut calls: std::collections::BTreeMap<&str, usize> = Default::default();
    for request in requests.iter().filter(|r| r.method == "PUT") {
        if let Some(build) = request.path.strip_prefix("queue/") {
            *calls.entry(build).or_default() += 1;
        }
    }
    for (build, count) in calls {
        let recorded: usize = runners
            .iter()
            .map(|r| {
                r.audit
                    .lines()
                    .filter(|l| {
                        l.contains("\"outcome\":\"sending\"")
                            && l.contains(&format!("\"build\":\"{build}\""))
                            && l.contains("PUT queue/")
                    })
                    .count()
            })
            .sum();
        if recorded < count {
            found.push(format!(
                "{count} queue calls to {build} reached the server, {recorded} were in an audit trail first"
            ));
        }
    }
}

/// Rule 9: a lock label left on a build is named in the output of the run that left it, so
/// that a person knows to look.
fn locks_left_are_named(engine: &Engine, runners: &[RunnerEnd], found: &mut Vec<String>) {
    for plan in engine.plans.values() {
        for build in plan.builds.values() {
            for label in build
                .labels
                .iter()
                .filter(|l| l.contains("bamboo-promote-lock"))
            {
                let named = runners.iter().any(|r| {
                    r.output
                        .to_ascii_lowercase()
                        .contains(&label.to_ascii_lowercase())
                });
                if !named {
                    found.push(format!(
                        "lock label {label} left on {}-{} is named in no run's output",
                        plan.key, build.number
                    ));
                }
            }
        }
    }
}

/// Rule 10: a run with a call whose outcome it does not know exits 7.
fn unknown_exits_7(runners: &[RunnerEnd], found: &mut Vec<String>) {
    for (i, runner) in runners.iter().enumerate() {
        let unknown = runner
            .audit
            .lines()
            .any(|l| l.contains("PUT queue/") && l.contains("lock kept, not sent again"));
        if unknown && runner.code != crate::exit::OUTCOME_UNKNOWN {
            found.push(format!(
                "runner {i} had a queue call of unknown outcome and exited {}",
                runner.code
            ));
        }
    }
}
