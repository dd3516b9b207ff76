//! The promise, checked after every run from the simulator's ground truth (its stage runs, its
//! record of every continue, its labels and request log), not from what the runners reported.
//! Each check names the rule of `docs/safety.md` it stands for.

use super::network::{BuildAt, Departure};
use super::scenario::{GATE_LABEL, STAGES, Scenario};
use crate::sim::{Engine, LoggedRequest, StageStatus};

/// What one runner left behind: its exit code, its output and its audit trail.
pub struct RunnerEnd {
    pub code: u8,
    pub output: String,
    /// Its standard output or error was a closed pipe: what it said there was lost.
    pub broken: bool,
    pub audit: String,
}

/// What the network saw: the requests as the server logged them, and the writes as they
/// left their runners.
pub struct Witness<'a> {
    pub requests: &'a [LoggedRequest],
    pub departures: &'a [Departure],
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
    witness: &Witness<'_>,
    runners: &[RunnerEnd],
) -> Found {
    let requests = witness.requests;
    let mut found = Found::default();
    let violations = &mut found.violations;
    no_stage_twice(initial_runs, engine, violations);
    only_asked_stages(scenario, engine, violations);
    audited_before_sent(requests, runners, violations);
    locks_left_are_named(engine, runners, violations);
    unknown_exits_7(runners, violations);
    no_call_after_a_stop(scenario, witness.departures, violations);
    windows_kept(scenario, witness.departures, violations);
    gates_kept(scenario, witness.departures, violations);
    after_kept(
        scenario,
        initial_runs,
        engine,
        witness.departures,
        violations,
    );
    records_are_true(initial_runs, engine, violations);
    no_downgrade(scenario, engine, &mut found);
    past_the_bounds(scenario, engine, &mut found);
    found
}

/// Past the bounds `docs/safety.md` assumes, what breaks is what it lists as what cannot be
/// closed: a call held on the way for longer than the lock's lifetime, front ends whose
/// clocks are further apart than `--max-clock-skew`. A run that went past one of them has its
/// violations counted as that residual.
fn past_the_bounds(scenario: &Scenario, engine: &Engine, found: &mut Found) {
    if found.violations.is_empty() {
        return;
    }
    let held_past_lifetime = engine
        .continued
        .iter()
        .any(|call| call.arrived_ms + scenario.lock_ttl_ms < call.at);
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
/// counts as its once; a build queued during the runs begins with none).
fn no_stage_twice(initial: &[(String, Vec<u32>)], engine: &Engine, found: &mut Vec<String>) {
    for plan in engine.plans.values() {
        for build in plan.builds.values() {
            let key = format!("{}-{}", plan.key, build.number);
            let before = initial.iter().find(|(k, _)| *k == key).map(|(_, r)| r);
            for (i, run) in build.stages.iter().enumerate() {
                let started_here = run.runs.saturating_sub(before.map_or(0, |r| r[i]));
                if run.runs > 1 && started_here > 0 {
                    found.push(format!(
                        "stage {} ran {} times on {key}",
                        STAGES[i], run.runs
                    ));
                }
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
fn no_downgrade(scenario: &Scenario, engine: &Engine, found: &mut Found) {
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
        let held_past_timeout = call.arrived_ms + scenario.request_timeout_ms < call.at;
        if held_past_timeout {
            found.residuals.push(format!(
                "{what}: a late call to an older build, left by an exit 7 (docs/safety.md, what cannot be closed)"
            ));
        } else {
            found.violations.push(what);
        }
    }
}

/// Rule 7: every write that reached the server was in an audit trail first: queue calls,
/// lock labels on and off, records. Each `sending` record is written before its write leaves,
/// so there are at least as many of them, per build and method, as writes the server saw.
fn audited_before_sent(requests: &[LoggedRequest], runners: &[RunnerEnd], found: &mut Vec<String>) {
    let mut writes: std::collections::BTreeMap<(&str, &str), usize> = Default::default();
    for request in requests.iter().filter(|r| r.method != "GET") {
        let build = request
            .path
            .strip_prefix("queue/")
            .or_else(|| request.path.strip_prefix("result/"))
            .and_then(|rest| rest.split('/').next());
        if let Some(build) = build {
            *writes.entry((request.method.as_str(), build)).or_default() += 1;
        }
    }
    for ((method, build), count) in writes {
        let recorded: usize = runners
            .iter()
            .map(|r| {
                r.audit
                    .lines()
                    .filter(|l| {
                        l.contains("\"outcome\":\"sending\"")
                            && l.contains(&format!("\"build\":\"{build}\""))
                            && l.contains(&format!("\"call\":\"{method} "))
                    })
                    .count()
            })
            .sum();
        if recorded < count {
            found.push(format!(
                "{count} {method} writes to {build} reached the server, {recorded} were in an audit trail first"
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
                // Named as left, not only as written: the audit lines echoed on stderr name
                // every label put on. Where the output was a closed pipe, the audit trail is
                // what is left to say it.
                let label = label.to_ascii_lowercase();
                let named = runners.iter().any(|r| {
                    if r.broken {
                        return r.audit.to_ascii_lowercase().contains(&label);
                    }
                    r.output.lines().any(|line| {
                        !line.starts_with("audit: ") && line.to_ascii_lowercase().contains(&label)
                    })
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

/// Rule 10: a run with a call whose outcome it does not know exits 7: one its re-read left
/// unknown, one abandoned by a second signal, or one whose re-read never said what became of
/// it (the run ended first).
fn unknown_exits_7(runners: &[RunnerEnd], found: &mut Vec<String>) {
    for (i, runner) in runners.iter().enumerate() {
        let mut rereading = std::collections::BTreeSet::new();
        let mut unknown = false;
        for line in runner.audit.lines().filter(|l| l.contains("PUT queue/")) {
            let build = line
                .split("\"build\":\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or_default();
            if line.contains("re-reading the build") {
                rereading.insert(build);
            } else if line.contains("took effect (seen on re-read)") {
                rereading.remove(build);
            } else if line.contains("lock kept, not sent again")
                || line.contains("abandoned by a second signal")
            {
                unknown = true;
            }
        }
        if (unknown || !rereading.is_empty()) && runner.code != crate::exit::OUTCOME_UNKNOWN {
            found.push(format!(
                "runner {i} had a queue call of unknown outcome and exited {}",
                runner.code
            ));
        }
    }
}

/// The queue calls that left, each with the target it was for (by plan and stage).
fn queue_calls<'a>(
    scenario: &'a Scenario,
    departures: &'a [Departure],
) -> impl Iterator<Item = (&'a Departure, &'a super::scenario::TargetSpec, u32)> {
    departures.iter().filter_map(|d| {
        let (path, query) = d.path.split_once('?').unwrap_or((&d.path, ""));
        let (plan, number) = path.strip_prefix("queue/")?.rsplit_once('-')?;
        let stage = form_urlencoded::parse(query.as_bytes())
            .find_map(|(name, value)| (name == "stage").then_some(value))?;
        let target = scenario
            .targets
            .iter()
            .find(|t| t.plan == plan && STAGES[t.stage] == stage)?;
        Some((d, target, number.parse().ok()?))
    })
}

/// Rule 3: after SIGINT or SIGTERM, no queue call leaves (a call already past its checks
/// may finish).
fn no_call_after_a_stop(scenario: &Scenario, departures: &[Departure], found: &mut Vec<String>) {
    for d in departures.iter().filter(|d| d.method == "PUT") {
        let spec = &scenario.runners[d.runner];
        let Some((at_ms, _)) = spec.signal else {
            continue;
        };
        let signalled = spec.start_ms + at_ms;
        if d.at_ms > signalled {
            found.push(format!(
                "runner {} sent {} at {} ms, after its signal at {signalled} ms",
                d.runner, d.path, d.at_ms
            ));
        }
    }
}

/// Rule 4: no queue call leaves while its target's window is closed, on the server's clock
/// as the runner's front end stamps it.
fn windows_kept(scenario: &Scenario, departures: &[Departure], found: &mut Vec<String>) {
    for (d, target, _) in queue_calls(scenario, departures) {
        let Some((from, to)) = target.window else {
            continue;
        };
        let seen = d.at_ms as i64 + scenario.runners[d.runner].front_end_offset_ms;
        let closed = |at: i64| {
            let minute = at.div_euclid(60_000).rem_euclid(1440) as u32;
            if from < to {
                (from..to).contains(&minute)
            } else {
                minute >= from || minute < to
            }
        };
        // Answers whose `Date` is stale tell a time that much earlier: a runner that saw only
        // those cannot know better (as with a front end whose clock is behind).
        if closed(seen) && closed(seen - stale_dates_ms(scenario)) {
            found.push(format!(
                "runner {} sent {} at {seen} ms on its server clock, inside the deny rule {from}..{to} (minutes of the day) of {}",
                d.runner, d.path, target.id
            ));
        }
    }
}

/// How old a stale `Date` may be, in ms (0 without stale dates).
fn stale_dates_ms(scenario: &Scenario) -> i64 {
    scenario.world["faults"]["script"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["fault"] == "staleDate")
        .filter_map(|f| f["afterMs"].as_i64())
        .max()
        .unwrap_or(0)
}

/// Rule 4: no queue call leaves for a build without its target's gate label. A label taken
/// off while the build's last read was on its way back cannot be seen: only a change older
/// than the runner's longest round trip counts.
fn gates_kept(scenario: &Scenario, departures: &[Departure], found: &mut Vec<String>) {
    for (d, target, number) in queue_calls(scenario, departures) {
        if target.gate.is_none() {
            continue;
        }
        let labelled_at_start = scenario.world["projects"][0]["plans"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| format!("SHOP-{}", p["key"].as_str().unwrap_or_default()) == target.plan)
            .flat_map(|p| p["builds"].as_array().into_iter().flatten())
            .any(|b| {
                b["number"].as_u64() == Some(u64::from(number))
                    && b["labels"]
                        .as_array()
                        .is_some_and(|l| l.contains(&GATE_LABEL.into()))
            });
        let round_trip = 2 * scenario.runners[d.runner].max_delay_ms + 1;
        let mut changes = scenario
            .gate_changes
            .iter()
            .filter(|c| c.plan == target.plan && c.number == number);
        let last_seen = changes
            .clone()
            .rfind(|c| c.at_ms + round_trip < d.at_ms)
            .map_or(labelled_at_start, |c| c.on);
        let now = changes
            .rfind(|c| c.at_ms <= d.at_ms)
            .map_or(labelled_at_start, |c| c.on);
        if !last_seen && !now {
            found.push(format!(
                "runner {} sent {} at {} ms, when {}-{number} had no {GATE_LABEL} label",
                d.runner, d.path, d.at_ms, target.plan
            ));
        }
    }
}

/// Rule 3: a queue call for a target `after` another leaves only while that one is in sync:
/// the build it names has its stage done. Judged on the builds as they were when the call
/// left, but for builds queued within the runner's last round trip, which it could not see.
fn after_kept(
    scenario: &Scenario,
    initial: &[(String, Vec<u32>)],
    engine: &Engine,
    departures: &[Departure],
    found: &mut Vec<String>,
) {
    for (d, target, _) in queue_calls(scenario, departures) {
        let Some(up) = target
            .after
            .as_ref()
            .and_then(|id| scenario.targets.iter().find(|t| &t.id == id))
        else {
            continue;
        };
        let round_trip = 2 * scenario.runners[d.runner].max_delay_ms + 1;
        let seen = |b: &&BuildAt| {
            let key = format!("{}-{}", b.plan, b.number);
            initial.iter().any(|(k, _)| *k == key)
                || engine
                    .plans
                    .get(&b.plan)
                    .and_then(|p| p.builds.get(&b.number))
                    .is_some_and(|queued| queued.started_at + round_trip < d.at_ms)
        };
        let mut builds: Vec<&BuildAt> = d
            .builds
            .iter()
            .filter(|b| b.plan == up.plan)
            .filter(seen)
            .collect();
        builds.sort_by_key(|b| std::cmp::Reverse(b.number));
        let named = match up.build.as_str() {
            "latest" => builds.first().copied(),
            _ => builds.into_iter().find(|b| eligible(b, up)),
        };
        let stage = STAGES[up.stage];
        let status = named.map(|b| b.stages[up.stage]);
        if status != Some(StageStatus::Successful) {
            let named = named.map_or("no build".into(), |b| format!("{}-{}", b.plan, b.number));
            found.push(format!(
                "runner {} sent {} at {} ms while {} was out of sync: {named}'s {stage} was {status:?}",
                d.runner, d.path, d.at_ms, up.id
            ));
        }
    }
}

/// Whether `{ newest: eligible }` may name a build: it reached the target's stage, or waits
/// before it with its gate met.
fn eligible(build: &BuildAt, target: &super::scenario::TargetSpec) -> bool {
    let reached = build.stages[target.stage] != StageStatus::NotBuilt;
    let waits = build.stages[..target.stage]
        .iter()
        .all(|s| *s == StageStatus::Successful);
    let gated = target
        .gate
        .as_ref()
        .is_none_or(|gate| build.labels.iter().any(|l| l.eq_ignore_ascii_case(gate)));
    reached || (waits && gated)
}

/// Rule 8: a record says only what is true, once: "Promoted to S" on a build whose stage S
/// ran (or was queued) in these runs, and no target records the same promotion twice.
fn records_are_true(initial: &[(String, Vec<u32>)], engine: &Engine, found: &mut Vec<String>) {
    for plan in engine.plans.values() {
        for build in plan.builds.values() {
            let key = format!("{}-{}", plan.key, build.number);
            let before = initial.iter().find(|(k, _)| *k == key).map(|(_, r)| r);
            let mut seen = std::collections::BTreeSet::new();
            for (comment, _) in &build.comments {
                let Some(rest) = comment.strip_prefix("Promoted to ") else {
                    continue;
                };
                let Some(i) = STAGES
                    .iter()
                    .position(|s| rest.starts_with(&format!("{s} by")))
                else {
                    continue;
                };
                let moved = engine.continued.iter().any(|c| {
                    c.plan == plan.key && c.number == build.number && (c.from..=c.last).contains(&i)
                });
                let ran = build.stages[i].runs > before.map_or(0, |r| r[i]);
                if !moved && !ran {
                    found.push(format!(
                        "{key} is recorded as promoted to {}, which did not run",
                        STAGES[i]
                    ));
                }
                let target = comment.split(": target ").nth(1).unwrap_or_default();
                if !seen.insert((i, target.to_string())) {
                    found.push(format!(
                        "{key} carries the record of its promotion to {} twice",
                        STAGES[i]
                    ));
                }
            }
        }
    }
}
