//! One point of the fault space, drawn from a seed: a world (plans, builds, stage durations), the
//! targets every runner applies, how many runners and with which options, and which fault
//! dimensions are on (swarm testing: each run turns on a random subset, so that rare
//! combinations get tried, and the faults that are on are not drowned by the others).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

/// The stages of every plan: one automatic, two manual.
pub const STAGES: [&str; 3] = ["Build", "Deploy Staging", "Deploy Prod"];

/// A fault dimension a seed may turn on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Dimension {
    /// Reads answered 503 or 429 (with `Retry-After`), or their connection dropped.
    FlakyReads,
    /// A queue call's answer lost, or answered 500 or garbage after it took effect.
    LostWriteAnswers,
    /// A queue call held by a proxy and applied after the client gave up.
    LateWrites,
    /// A label write answered 500 after it took effect, or its answer lost.
    LabelWriteFaults,
    /// Each runner's front end stamps `Date` with a clock of its own.
    FrontEndClocks,
    /// Answers delayed on the way, so requests of different runners overtake each other.
    Delays,
    /// A runner's answer held for minutes: a process paused at an await point.
    PausedRunner,
    /// SIGINT or SIGTERM at a random moment.
    Signal,
    /// Listings without stages, without running builds, or with a page-sized `size`.
    ShortListings,
    /// The server stores labels lower-case.
    FoldedLabels,
    /// A continue runs only the next manual stage.
    OneStagePerCall,
    /// Builds still running their automatic stages when the runners start.
    RunningBuilds,
    /// `--wait`: runners continue builds Bamboo left short and wait for `after`.
    Wait,
    /// A cached answer's `Date`, older than the server's clock.
    StaleDates,
    /// Targets in a promotion window that opens or closes during the runs, some across
    /// midnight.
    Windows,
    /// Targets gated on a label that is added to and taken off builds during the runs.
    Gates,
    /// A second signal after the first: the run exits at once.
    SecondSignal,
    /// A runner's standard output or standard error is a closed pipe.
    BrokenStreams,
    /// A runner's audit log cannot be written (a full disk).
    AuditFails,
    /// Label writes (on and off) answered 5xx for longer than the client retries them.
    LabelOutage,
    /// Runners that `plan --out` first and `apply` the saved plan minutes later.
    SavedPlans,
    /// New builds queued by a person (or a commit) during the runs: `latest` moves on, and a
    /// target `after` it goes out of sync.
    NewBuilds,
    /// Short lock lifetimes and request timeouts, fractional, near the least the lease allows.
    ShortLifetimes,
    /// Queue calls lost on the way: they never reach the server, and the runner's connection
    /// is reset.
    LostCalls,
    /// Queue calls a gateway forwards and then answers 429 with `Retry-After`: refused, to
    /// the client, though the stage runs.
    ThrottledWrites,
}

impl Dimension {
    pub const ALL: [Dimension; 14] = [
        Dimension::FlakyReads,
        Dimension::LostWriteAnswers,
        Dimension::LateWrites,
        Dimension::LabelWriteFaults,
        Dimension::FrontEndClocks,
        Dimension::Delays,
        Dimension::PausedRunner,
        Dimension::Signal,
        Dimension::ShortListings,
        Dimension::FoldedLabels,
        Dimension::OneStagePerCall,
        Dimension::RunningBuilds,
        Dimension::Wait,
        Dimension::StaleDates,
    ];

    /// The dimensions added after `ALL`'s seeds were published: drawn from a stream of their
    /// own (`later_stream`), so that a seed still draws what it drew before they came. The
    /// first five are drawn together; each one added since draws after every other draw of
    /// that stream (at the end of `later_faults`), for the same reason.
    pub const LATER: [Dimension; 11] = [
        Dimension::Windows,
        Dimension::Gates,
        Dimension::SecondSignal,
        Dimension::BrokenStreams,
        Dimension::AuditFails,
        Dimension::LabelOutage,
        Dimension::SavedPlans,
        Dimension::NewBuilds,
        Dimension::ShortLifetimes,
        Dimension::LostCalls,
        Dimension::ThrottledWrites,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Dimension::FlakyReads => "flaky-reads",
            Dimension::LostWriteAnswers => "lost-write-answers",
            Dimension::LateWrites => "late-writes",
            Dimension::LabelWriteFaults => "label-write-faults",
            Dimension::FrontEndClocks => "front-end-clocks",
            Dimension::Delays => "delays",
            Dimension::PausedRunner => "paused-runner",
            Dimension::Signal => "signal",
            Dimension::ShortListings => "short-listings",
            Dimension::FoldedLabels => "folded-labels",
            Dimension::OneStagePerCall => "one-stage-per-call",
            Dimension::RunningBuilds => "running-builds",
            Dimension::Wait => "wait",
            Dimension::StaleDates => "stale-dates",
            Dimension::Windows => "windows",
            Dimension::Gates => "gates",
            Dimension::SecondSignal => "second-signal",
            Dimension::BrokenStreams => "broken-streams",
            Dimension::AuditFails => "audit-fails",
            Dimension::LabelOutage => "label-outage",
            Dimension::SavedPlans => "saved-plans",
            Dimension::NewBuilds => "new-builds",
            Dimension::ShortLifetimes => "short-lifetimes",
            Dimension::LostCalls => "lost-calls",
            Dimension::ThrottledWrites => "throttled-writes",
        }
    }
}

/// How far the faults go: within the assumptions `docs/safety.md` states, or past them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bounds {
    /// Front ends within `--max-clock-skew`, writes held for less than the lock's lifetime.
    Within,
    /// Front ends and held writes past those bounds: may find only what `docs/safety.md`
    /// lists as what cannot be closed.
    Beyond,
}

/// A target of the manifests, as the explorer generates it.
#[derive(Debug, Clone)]
pub struct TargetSpec {
    pub id: String,
    pub plan: String,
    /// `latest`, a build number, or `{ newest: eligible }`.
    pub build: String,
    pub stage: usize,
    pub after: Option<String>,
    pub allow_downgrade: bool,
    /// The deny rule of its promotion window, `(from, to)` in minutes of the UTC day.
    pub window: Option<(u32, u32)>,
    /// The label its build must carry.
    pub gate: Option<String>,
}

#[derive(Debug, Clone)]
pub struct RunnerSpec {
    /// Extra command-line arguments of its `apply`.
    pub args: Vec<String>,
    /// Its front end's clock, this far ahead of the server's (ms; behind when negative).
    pub front_end_offset_ms: i64,
    /// The most an answer to it is delayed on the way (ms).
    pub max_delay_ms: u64,
    /// The n-th answer to it is held this long (ms): the runner paused at that await.
    pub pause: Option<(usize, u64)>,
    /// A signal at this virtual time (ms): SIGTERM when true, SIGINT otherwise.
    pub signal: Option<(u64, bool)>,
    /// A second signal, this long after the first (ms).
    pub second_signal_after_ms: Option<u64>,
    /// Its standard output, its standard error, is a closed pipe.
    pub out_broken: bool,
    pub err_broken: bool,
    /// Its audit log cannot be written.
    pub audit_fails: bool,
    /// When it starts, after the first (ms).
    pub start_ms: u64,
    /// It runs `plan --out` first, and `apply` of the saved plan this long after (ms).
    pub saved_plan_after_ms: Option<u64>,
    /// Its n-th queue call is lost on the way.
    pub lost_call: Option<usize>,
}

pub struct Scenario {
    pub seed: u64,
    pub bounds: Bounds,
    pub on: Vec<Dimension>,
    pub world: Value,
    pub plans: Vec<String>,
    pub targets: Vec<TargetSpec>,
    pub runners: Vec<RunnerSpec>,
    /// The gate label put on (`true`) or taken off a build during the runs: (ms, plan,
    /// build number, on).
    pub gate_changes: Vec<GateChange>,
    /// Builds queued during the runs.
    pub new_builds: Vec<NewBuild>,
    /// `--lock-ttl` and `--request-timeout` of every runner (ms).
    pub lock_ttl_ms: u64,
    pub request_timeout_ms: u64,
}

/// A new build of `plan` queued at `at_ms`.
#[derive(Debug, Clone)]
pub struct NewBuild {
    pub at_ms: u64,
    pub plan: String,
}

#[derive(Debug, Clone)]
pub struct GateChange {
    pub at_ms: u64,
    pub plan: String,
    pub number: u32,
    pub on: bool,
}

/// The label every gated target requires.
pub const GATE_LABEL: &str = "qa-approved";

/// A lock's lifetime, but with `short-lifetimes`: the explorer's runs last minutes of
/// virtual time.
const LOCK_TTL_MS: u64 = 600_000;
/// `--max-clock-skew` in every run.
pub const MAX_SKEW_MS: u64 = 3_600_000;
/// `--request-timeout`, but with `short-lifetimes`.
const REQUEST_TIMEOUT_MS: u64 = 30_000;

impl Scenario {
    pub fn generate(seed: u64, bounds: Bounds) -> Scenario {
        let mut rng = StdRng::seed_from_u64(seed);
        let on: Vec<Dimension> = Dimension::ALL
            .into_iter()
            .filter(|_| rng.random_bool(0.4))
            .collect();
        let is_on = |d: Dimension| on.contains(&d);
        let plan_count = rng.random_range(1..=2);
        let plans: Vec<String> = ["APP", "WEB"][..plan_count]
            .iter()
            .map(|p| format!("SHOP-{p}"))
            .collect();
        let mut world_plans = Vec::new();
        let mut targets = Vec::new();
        for (i, plan) in plans.iter().enumerate() {
            let short = &plan["SHOP-".len()..];
            let count = rng.random_range(2..=4);
            let mut builds = Vec::new();
            for k in 0..count {
                let number = 40 + k;
                let state = random_state(&mut rng, is_on(Dimension::RunningBuilds));
                builds.push(json!({ "number": number, "state": state }));
            }
            let stages: Vec<Value> = STAGES
                .iter()
                .enumerate()
                .map(|(s, name)| {
                    // From seconds to ten minutes: a late call lands before or after the
                    // stages a second one started have finished.
                    let duration = 10f64.powf(rng.random_range(3.5..5.8));
                    json!({ "name": name, "manual": s > 0, "durationMs": duration as u64 })
                })
                .collect();
            world_plans.push(json!({ "key": short, "stages": stages, "builds": builds }));
            let newest = 40 + count - 1;
            // Two targets on one build may not want different stages: the second target's
            // selector is another kind than the first's.
            let build = match rng.random_range(0..3) {
                0 | 1 => "latest".to_string(),
                _ => "{ newest: eligible }".to_string(),
            };
            let other = rng.random_range(40..newest).to_string();
            targets.push(TargetSpec {
                id: format!("t{i}-staging"),
                plan: plan.clone(),
                build,
                stage: 1,
                after: None,
                allow_downgrade: rng.random_bool(0.1),
                window: None,
                gate: None,
            });
            if rng.random_bool(0.5) {
                targets.push(TargetSpec {
                    id: format!("t{i}-prod"),
                    plan: plan.clone(),
                    build: other,
                    stage: 2,
                    after: rng.random_bool(0.6).then(|| format!("t{i}-staging")),
                    allow_downgrade: rng.random_bool(0.1),
                    window: None,
                    gate: None,
                });
            }
        }
        let runner_count = rng.random_range(1..=4);
        let mut runners: Vec<RunnerSpec> = (0..runner_count)
            .map(|r| runner(&mut rng, r, &on, bounds))
            .collect();
        let mut later = later_stream(seed);
        let mut later_on: Vec<Dimension> = Dimension::LATER[..5]
            .iter()
            .copied()
            .filter(|_| later.random_bool(0.4))
            .collect();
        let later = later_faults(
            &mut later,
            &mut later_on,
            &mut targets,
            &mut runners,
            &mut world_plans,
        );
        let mut faults = faults(&mut rng, &on, bounds, later.lock_ttl_ms);
        if let Some(script) = faults["script"].as_array_mut() {
            script.extend(later.script);
        }
        let world = json!({
            "settings": {
                "clock": "real",
                "queueDelayMs": rng.random_range(0..=5_000u64),
                "behaviour": {
                    "labels": if is_on(Dimension::FoldedLabels) { "fold" } else { "keep" },
                    "continueStageBound":
                        if is_on(Dimension::OneStagePerCall) { "nextOnly" } else { "upperBound" },
                },
            },
            "faults": faults,
            "projects": [{ "key": "SHOP", "plans": world_plans }],
        });
        let mut on = on;
        on.extend(later_on);
        Scenario {
            seed,
            bounds,
            on,
            world,
            plans,
            targets,
            runners,
            gate_changes: later.gate_changes,
            new_builds: later.new_builds,
            lock_ttl_ms: later.lock_ttl_ms,
            request_timeout_ms: later.request_timeout_ms,
        }
    }

    /// The manifests every runner applies.
    pub fn manifest(&self) -> String {
        let mut text =
            "apiVersion: bamboo-promote/v1\nkind: Promotion\nmetadata: { name: explored }\nspec:\n  targets:\n"
                .to_string();
        for t in &self.targets {
            text.push_str(&format!(
                "    - {{ id: {}, plan: {}, build: {}, stage: {}",
                t.id, t.plan, t.build, STAGES[t.stage]
            ));
            if let Some(after) = &t.after {
                text.push_str(&format!(", after: [{after}]"));
            }
            if t.allow_downgrade {
                text.push_str(", allowDowngrade: true");
            }
            let mut require = Vec::new();
            if t.window.is_some() {
                require.push(format!("window: w-{}", t.id));
            }
            if let Some(gate) = &t.gate {
                require.push(format!("labels: [{gate}]"));
            }
            if !require.is_empty() {
                text.push_str(&format!(", require: {{ {} }}", require.join(", ")));
            }
            text.push_str(" }\n");
        }
        let windows: Vec<String> = self
            .targets
            .iter()
            .filter_map(|t| {
                let (from, to) = t.window?;
                Some(format!(
                    "    w-{}: {{ timeZone: UTC, deny: [{{ from: '{}', to: '{}' }}] }}\n",
                    t.id,
                    clock_time(from),
                    clock_time(to)
                ))
            })
            .collect();
        if !windows.is_empty() {
            text.push_str("  windows:\n");
            text.push_str(&windows.concat());
        }
        text
    }

    pub fn is_on(&self, dimension: Dimension) -> bool {
        self.on.contains(&dimension)
    }
}

/// `HH:MM` of a minute of the day.
fn clock_time(minute: u32) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

/// The randomness of the `LATER` dimensions: a stream of its own, so that they leave every
/// draw of the first ones as it was.
fn later_stream(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15)
}

/// What the `LATER` dimensions add besides what they change in the targets, runners and
/// world.
struct Later {
    gate_changes: Vec<GateChange>,
    new_builds: Vec<NewBuild>,
    /// The simulator's faults.
    script: Vec<Value>,
    lock_ttl_ms: u64,
    request_timeout_ms: u64,
}

/// What the `LATER` dimensions that are on change: windows and gates on targets, the gate
/// label on builds at the start and its changes during the runs, each runner's second
/// signal, broken streams, failing audit log, saved plan and lost call, the simulator's faults
/// they add, new builds, lock lifetimes, throttled calls. The dimensions added since the first
/// five are drawn here, last, into `on`, each after every draw before it.
fn later_faults(
    rng: &mut StdRng,
    on: &mut Vec<Dimension>,
    targets: &mut [TargetSpec],
    runners: &mut [RunnerSpec],
    world_plans: &mut [Value],
) -> Later {
    let first: Vec<Dimension> = on.clone();
    let is_on = |d: Dimension| first.contains(&d);
    for target in targets.iter_mut() {
        if is_on(Dimension::Windows) && rng.random_bool(0.6) {
            // The runs start at midnight UTC: a deny rule across midnight that opens a few
            // minutes in, or one that closes and opens again during the runs.
            target.window = Some(if rng.random_bool(0.5) {
                (rng.random_range(1430..1440), rng.random_range(1..=8))
            } else {
                let from = rng.random_range(0..=15);
                (from, from + rng.random_range(1..=6))
            });
        }
        if is_on(Dimension::Gates) && rng.random_bool(0.6) {
            target.gate = Some(GATE_LABEL.to_string());
        }
    }
    let mut changes = Vec::new();
    if is_on(Dimension::Gates) {
        for plan in world_plans.iter_mut() {
            let key = format!("SHOP-{}", plan["key"].as_str().unwrap_or_default());
            let Some(builds) = plan["builds"].as_array_mut() else {
                continue;
            };
            let numbers: Vec<u32> = builds
                .iter()
                .filter_map(|b| b["number"].as_u64().map(|n| n as u32))
                .collect();
            for build in builds.iter_mut() {
                if rng.random_bool(0.6) {
                    build["labels"] = json!([GATE_LABEL]);
                }
            }
            for _ in 0..rng.random_range(1..=4) {
                changes.push(GateChange {
                    at_ms: rng.random_range(0..=180_000),
                    plan: key.clone(),
                    number: numbers[rng.random_range(0..numbers.len())],
                    on: rng.random_bool(0.5),
                });
            }
        }
        changes.sort_by_key(|c| c.at_ms);
    }
    for runner in runners.iter_mut() {
        if is_on(Dimension::SecondSignal) && rng.random_bool(0.5) {
            if runner.signal.is_none() {
                runner.signal = Some((rng.random_range(0..=120_000), rng.random_bool(0.5)));
            }
            runner.second_signal_after_ms = Some(rng.random_range(0..=60_000));
        }
        if is_on(Dimension::BrokenStreams) {
            runner.out_broken = rng.random_bool(0.5);
            runner.err_broken = rng.random_bool(0.5);
        }
    }
    if is_on(Dimension::AuditFails) {
        let unlucky = rng.random_range(0..runners.len());
        runners[unlucky].audit_fails = true;
    }
    let mut script = Vec::new();
    if rng.random_bool(0.4) {
        on.push(Dimension::LabelOutage);
        for method in ["POST", "DELETE"] {
            let fault = ["appliedServerError", "serverError"][rng.random_range(0..2)];
            script.push(json!({ "method": method, "path": "/label", "fault": fault,
                                "times": rng.random_range(4..=12), "skip": rng.random_range(0..=6) }));
        }
    }
    if rng.random_bool(0.4) {
        on.push(Dimension::SavedPlans);
        for runner in runners.iter_mut() {
            if rng.random_bool(0.6) {
                runner.saved_plan_after_ms = Some(rng.random_range(0..=180_000));
            }
        }
    }
    let mut new_builds = Vec::new();
    if rng.random_bool(0.4) {
        on.push(Dimension::NewBuilds);
        for plan in world_plans.iter() {
            let key = format!("SHOP-{}", plan["key"].as_str().unwrap_or_default());
            for _ in 0..rng.random_range(1..=3) {
                new_builds.push(NewBuild {
                    at_ms: rng.random_range(0..=240_000),
                    plan: key.clone(),
                });
            }
        }
        new_builds.sort_by_key(|b| b.at_ms);
    }
    let (mut lock_ttl_ms, mut request_timeout_ms) = (LOCK_TTL_MS, REQUEST_TIMEOUT_MS);
    if rng.random_bool(0.4) {
        on.push(Dimension::ShortLifetimes);
        // Just past what the lease accepts (a request timeout and `TTL_MARGIN`), to the
        // millisecond: a lifetime rounded anywhere shows as a lock taken too early.
        request_timeout_ms = rng.random_range(2_000..=10_000);
        let margin = crate::apply::TTL_MARGIN.as_millis() as u64;
        lock_ttl_ms = request_timeout_ms + margin + rng.random_range(1..=20_000);
    }
    if rng.random_bool(0.4) {
        on.push(Dimension::LostCalls);
        for runner in runners.iter_mut() {
            runner.lost_call = rng.random_bool(0.6).then(|| rng.random_range(0..3));
        }
    }
    if rng.random_bool(0.4) {
        on.push(Dimension::ThrottledWrites);
        script.push(
            json!({ "method": "PUT", "path": "queue/", "fault": "appliedRateLimit",
                            "times": rng.random_range(1..=2), "skip": rng.random_range(0..=2) }),
        );
    }
    Later {
        gate_changes: changes,
        new_builds,
        script,
        lock_ttl_ms,
        request_timeout_ms,
    }
}

fn random_state(rng: &mut StdRng, running: bool) -> Value {
    match rng.random_range(0..if running { 7 } else { 5 }) {
        0 => json!("complete"),
        1 | 2 => json!({ "pausedBefore": "Deploy Staging" }),
        3 => json!({ "pausedBefore": "Deploy Prod" }),
        4 => json!({ "failedAt": "Deploy Staging" }),
        5 => json!({ "runningAt": "Build" }),
        _ => json!("queued"),
    }
}

fn runner(rng: &mut StdRng, r: usize, on: &[Dimension], bounds: Bounds) -> RunnerSpec {
    let is_on = |d: Dimension| on.contains(&d);
    let mut args = Vec::new();
    if is_on(Dimension::Wait) {
        args.extend(
            ["--wait", "--poll-interval", "5s", "--timeout", "40m"]
                .iter()
                .map(|s| s.to_string()),
        );
    }
    if rng.random_bool(0.5) {
        args.extend(["--lock-timeout".to_string(), "15m".to_string()]);
    }
    let skew = match bounds {
        Bounds::Within => MAX_SKEW_MS as i64 / 2,
        Bounds::Beyond => MAX_SKEW_MS as i64 * 3,
    };
    RunnerSpec {
        args,
        front_end_offset_ms: if is_on(Dimension::FrontEndClocks) {
            rng.random_range(-skew..=skew)
        } else {
            0
        },
        max_delay_ms: if is_on(Dimension::Delays) {
            rng.random_range(10..=3_000)
        } else {
            5
        },
        pause: is_on(Dimension::PausedRunner).then(|| {
            (
                rng.random_range(0..40),
                rng.random_range(60_000..=1_200_000),
            )
        }),
        signal: is_on(Dimension::Signal)
            .then(|| (rng.random_range(0..=120_000), rng.random_bool(0.5))),
        second_signal_after_ms: None,
        out_broken: false,
        err_broken: false,
        audit_fails: false,
        saved_plan_after_ms: None,
        lost_call: None,
        // Half start together, racing for the same builds; half later, into what the first
        // ones left (locks, calls on their way).
        start_ms: match (r, rng.random_bool(0.5)) {
            (0, _) => 0,
            (_, true) => rng.random_range(0..=2_000),
            (_, false) => rng.random_range(0..=120_000),
        },
    }
}

/// The simulator's faults for the dimensions that are on.
fn faults(rng: &mut StdRng, on: &[Dimension], bounds: Bounds, lock_ttl_ms: u64) -> Value {
    let is_on = |d: Dimension| on.contains(&d);
    let mut script = Vec::new();
    if is_on(Dimension::LostWriteAnswers) {
        let fault = [
            "loseResponse",
            "appliedServerError",
            "appliedGarbage",
            "drop",
        ][rng.random_range(0..4)];
        script.push(json!({ "method": "PUT", "path": "queue/", "fault": fault,
                            "times": rng.random_range(1..=2), "skip": rng.random_range(0..=2) }));
    }
    if is_on(Dimension::LateWrites) {
        let most = match bounds {
            Bounds::Within => lock_ttl_ms / 4,
            Bounds::Beyond => lock_ttl_ms * 2,
        };
        script.push(
            json!({ "method": "PUT", "path": "queue/", "fault": "applyLate",
                            "afterMs": rng.random_range(1_000..=most),
                            "times": 1, "skip": rng.random_range(0..=2) }),
        );
    }
    if is_on(Dimension::LabelWriteFaults) {
        let fault = ["appliedServerError", "loseResponse"][rng.random_range(0..2)];
        script.push(json!({ "method": "POST", "path": "/label", "fault": fault,
                            "times": rng.random_range(1..=3), "skip": rng.random_range(0..=3) }));
    }
    if is_on(Dimension::StaleDates) {
        script.push(json!({ "method": "GET", "fault": "staleDate",
                            "afterMs": rng.random_range(1_000..=120_000u64),
                            "times": rng.random_range(1..=5), "skip": rng.random_range(0..=10) }));
    }
    let flaky = is_on(Dimension::FlakyReads);
    let short = is_on(Dimension::ShortListings);
    json!({
        "seed": rng.random::<u64>(),
        "errorRate": if flaky { 0.1 } else { 0.0 },
        "rateLimitRate": if flaky { 0.05 } else { 0.0 },
        "retryAfterSecs": rng.random_range(1..=20u64),
        "dropRate": if flaky { 0.03 } else { 0.0 },
        "listingsWithoutStages": short && rng.random_bool(0.5),
        "listingsHideRunning": short && rng.random_bool(0.5),
        "sizeIsPageLength": short && rng.random_bool(0.5),
        "script": script,
    })
}
