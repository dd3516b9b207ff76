//! Bamboo's build and stage semantics, as the simulator plays them.
//!
//! This is an independent model of `docs/bamboo-api.md` and deliberately shares no code
//! with `reconcile`: if the planner mispredicts what a queue call runs, the disagreement shows
//! up as a failing test. Time is the sim clock in ms; state is advanced lazily to "now" before
//! every read or write, so a build moves `Queued → InProgress → Finished` as its stages take
//! their time.

use std::collections::{BTreeMap, BTreeSet};

use super::world::{
    Behaviour, BuildSpec, BuildState, ContinueFailed, ContinueRanStage, ContinueStageBound,
    Refusal, StageDef, StageNames, World,
};

/// What a stage of one build has done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageStatus {
    NotBuilt,
    /// Part of the current execution, not started yet.
    Pending,
    InProgress,
    Successful,
    Failed,
    /// Stopped by a person while it ran.
    Stopped,
}

#[derive(Debug, Clone)]
pub struct StageRun {
    pub status: StageStatus,
    /// How many times the stage has started in this build: the safety tests' witness.
    pub runs: u32,
}

/// An execution in flight: stages `next..=last` will run, one after another.
#[derive(Debug, Clone)]
pub struct Execution {
    pub queued_at: u64,
    pub next: usize,
    pub last: usize,
    /// When `next` started, if it has.
    pub started_at: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct Build {
    pub number: u32,
    pub revision: String,
    pub labels: Vec<String>,
    /// Comments on the build: (content, sim time written).
    pub comments: Vec<(String, u64)>,
    pub stages: Vec<StageRun>,
    pub execution: Option<Execution>,
    pub trigger_reason: String,
    pub started_at: u64,
    pub completed_at: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct PlanState {
    pub key: String,
    pub project_key: String,
    pub project_name: String,
    pub name: String,
    pub short_name: String,
    pub enabled: bool,
    pub stages: Vec<StageDef>,
    /// For a branch plan: the master plan's key and the branch name.
    pub branch_of: Option<(String, String)>,
    /// For a branch plan: the VCS branch it builds, when the world names one.
    pub vcs_branch: Option<String>,
    /// For a master plan: (branch name, branch plan key).
    pub branches: Vec<(String, String)>,
    pub builds: BTreeMap<u32, Build>,
    /// Runs of each stage so far in any build, for `StageDef::failures`.
    pub stage_runs: Vec<u32>,
}

/// A continue that started stages `from..=last` of a build at sim time `at`; `overtaken_by`
/// is a newer build of the plan that had already reached stage `from` then (a downgrade).
#[derive(Debug, Clone)]
pub struct Continued {
    pub plan: String,
    pub number: u32,
    pub from: usize,
    pub last: usize,
    pub at: u64,
    /// When the call reached the server: earlier than `at` for a write a proxy held.
    pub arrived_ms: u64,
    pub overtaken_by: Option<u32>,
}

/// Why a request was refused, as Bamboo would say it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub status: u16,
    pub message: String,
}

fn refused(status: u16, message: impl Into<String>) -> Refused {
    Refused {
        status,
        message: message.into(),
    }
}

/// What a queue call asks for.
#[derive(Debug, Clone, Default)]
pub struct QueueRequest {
    pub stage: Option<String>,
    pub execute_all_stages: bool,
    pub custom_revision: Option<String>,
    /// When the request reached the server (sim ms).
    pub arrived_ms: u64,
}

/// All plans and builds, advanced to `now` on demand.
#[derive(Debug, Clone)]
pub struct Engine {
    pub plans: BTreeMap<String, PlanState>,
    pub behaviour: Behaviour,
    pub queue_delay_ms: u64,
    pub max_concurrent_builds: Option<usize>,
    /// Every continue that started stages, in order: the explorer's witness.
    pub continued: Vec<Continued>,
    /// (plan key, build number) of the builds with an execution in flight. Every request
    /// moves the clock, and a world may hold ten thousand builds: only these are played.
    active: BTreeSet<(String, u32)>,
}

impl Engine {
    pub fn new(world: &World, now: u64) -> Result<Engine, String> {
        let mut plans = BTreeMap::new();
        for project in &world.projects {
            let project_name = project.name.clone().unwrap_or_else(|| project.key.clone());
            for plan in &project.plans {
                let key = format!("{}-{}", project.key, plan.key);
                let short_name = plan.name.clone().unwrap_or_else(|| plan.key.clone());
                let base = PlanState {
                    key: key.clone(),
                    project_key: project.key.clone(),
                    project_name: project_name.clone(),
                    name: format!("{project_name} - {short_name}"),
                    short_name,
                    enabled: plan.enabled,
                    stages: plan.stages.clone(),
                    branch_of: None,
                    vcs_branch: None,
                    branches: Vec::new(),
                    builds: BTreeMap::new(),
                    stage_runs: vec![0; plan.stages.len()],
                };
                let mut master = base.clone();
                master.builds = make_builds(&key, &plan.stages, &plan.builds, now)?;
                for branch in &plan.branches {
                    let branch_key = format!("{}-{}", project.key, branch.key);
                    master
                        .branches
                        .push((branch.name.clone(), branch_key.clone()));
                    let mut state = base.clone();
                    state.key = branch_key.clone();
                    state.name = format!("{} - {}", master.name, branch.name);
                    state.short_name = branch.name.clone();
                    state.enabled = branch.enabled;
                    state.branch_of = Some((key.clone(), branch.name.clone()));
                    state.vcs_branch = branch.vcs_branch.clone();
                    state.builds = make_builds(&branch_key, &plan.stages, &branch.builds, now)?;
                    if plans.insert(branch_key.clone(), state).is_some() {
                        return Err(format!("plan key {branch_key} is defined twice"));
                    }
                }
                if plans.insert(key.clone(), master).is_some() {
                    return Err(format!("plan key {key} is defined twice"));
                }
            }
        }
        let active = plans
            .values()
            .flat_map(|p| p.builds.values().map(move |b| (p, b)))
            .filter(|(_, b)| b.execution.is_some())
            .map(|(p, b)| (p.key.clone(), b.number))
            .collect();
        Ok(Engine {
            plans,
            behaviour: world.settings.behaviour.clone(),
            queue_delay_ms: world.settings.queue_delay_ms,
            max_concurrent_builds: world.settings.max_concurrent_builds,
            continued: Vec::new(),
            active,
        })
    }

    /// Whether no build is queued or running: then the clock changes nothing.
    pub fn is_idle(&self) -> bool {
        self.active.is_empty()
    }

    /// Plays every execution forward to `now`.
    pub fn advance(&mut self, now: u64) {
        let queue_delay = self.queue_delay_ms;
        let plans = &mut self.plans;
        self.active.retain(|(key, number)| {
            let Some(plan) = plans.get_mut(key) else {
                return false;
            };
            let Some(build) = plan.builds.get_mut(number) else {
                return false;
            };
            advance_build(build, &plan.stages, &mut plan.stage_runs, queue_delay, now);
            build.execution.is_some()
        });
    }

    fn running_builds(&self) -> usize {
        let builds = self.plans.values().flat_map(|p| p.builds.values());
        builds.filter(|b| b.execution.is_some()).count()
    }

    /// `POST queue/{plan}`: a new build.
    pub fn queue_new(
        &mut self,
        plan_key: &str,
        req: &QueueRequest,
        now: u64,
    ) -> Result<u32, Refused> {
        self.check_capacity()?;
        let behaviour = self.behaviour.clone();
        let disabled = self.behaviour.disabled_plan;
        let plan = self.plan_mut(plan_key)?;
        if !plan.enabled && disabled == Refusal::Reject {
            return Err(refused(400, format!("Plan {plan_key} is disabled")));
        }
        let upper = match &req.stage {
            Some(stage) => stage_index(&plan.stages, stage, &behaviour)?.unwrap_or(0),
            None => 0,
        };
        let last = extend_bound(&plan.stages, upper, req.execute_all_stages);
        let number = plan.builds.keys().next_back().map_or(1, |n| n + 1);
        let revision = req
            .custom_revision
            .clone()
            .unwrap_or_else(|| fake_revision(&plan.key, number));
        let mut build = Build {
            number,
            revision,
            labels: Vec::new(),
            comments: Vec::new(),
            stages: vec![
                StageRun {
                    status: StageStatus::NotBuilt,
                    runs: 0
                };
                plan.stages.len()
            ],
            execution: None,
            trigger_reason: "Manual build".into(),
            started_at: now,
            completed_at: None,
        };
        start_execution(&mut build, 0, last, now);
        plan.builds.insert(number, build);
        self.active.insert((plan_key.to_string(), number));
        Ok(number)
    }

    /// `PUT queue/{plan}-{n}`: continue a paused build, or re-run a failed or stopped one.
    /// Returns `false` when the behaviour switches say to accept the call and do nothing.
    pub fn continue_build(
        &mut self,
        plan_key: &str,
        number: u32,
        req: &QueueRequest,
        now: u64,
    ) -> Result<bool, Refused> {
        let behaviour = self.behaviour.clone();
        let plan = self.plan_mut(plan_key)?;
        let build = plan
            .builds
            .get(&number)
            .ok_or_else(|| not_found_build(plan_key, number))?;
        if build.execution.is_some() {
            return refuse_or_ignore(behaviour.continue_busy, || {
                format!("Build {plan_key}-{number} is currently executing and cannot be continued")
            });
        }
        let Some(from) = build
            .stages
            .iter()
            .position(|s| s.status != StageStatus::Successful)
        else {
            return refuse_or_ignore(behaviour.continue_complete, || {
                format!("Build {plan_key}-{number} is in a state that does not allow execution")
            });
        };
        let restarting = matches!(
            build.stages[from].status,
            StageStatus::Failed | StageStatus::Stopped
        );
        if restarting && req.stage.is_none() && behaviour.continue_failed == ContinueFailed::Reject
        {
            return Err(refused(
                400,
                format!("Build {plan_key}-{number} is in a state that does not allow execution"),
            ));
        }
        let mut upper = from;
        let named = match &req.stage {
            Some(stage) => stage_index(&plan.stages, stage, &behaviour)?.map(|i| (stage, i)),
            None => None,
        };
        if let Some((stage, named)) = named {
            if named < from && behaviour.continue_ran_stage == ContinueRanStage::Reject {
                return Err(refused(
                    400,
                    format!("Stage {stage} of {plan_key}-{number} has already been executed"),
                ));
            }
            if behaviour.continue_stage_bound == ContinueStageBound::UpperBound {
                // A stage that already ran does not lower the bound: the build's next runnable
                // stage runs anyway. This is the trap.
                upper = named.max(from);
            }
        }
        let last = extend_bound(&plan.stages, upper, req.execute_all_stages);
        self.check_capacity()?;
        let plan = self.plan_mut(plan_key)?;
        let overtaken_by = plan
            .builds
            .range(number + 1..)
            .find(|(_, newer)| {
                matches!(
                    newer.stages[from].status,
                    StageStatus::Successful | StageStatus::InProgress | StageStatus::Pending
                )
            })
            .map(|(n, _)| *n);
        let build = plan.builds.get_mut(&number).expect("checked above");
        build.completed_at = None;
        start_execution(build, from, last, now);
        self.continued.push(Continued {
            plan: plan_key.to_string(),
            number,
            from,
            last,
            at: now,
            arrived_ms: req.arrived_ms,
            overtaken_by,
        });
        self.active.insert((plan_key.to_string(), number));
        Ok(true)
    }

    /// `DELETE queue/{plan}-{n}`: stop a build that is queued or running.
    pub fn stop(&mut self, plan_key: &str, number: u32, now: u64) -> Result<(), Refused> {
        let plan = self.plan_mut(plan_key)?;
        let build = plan
            .builds
            .get_mut(&number)
            .ok_or_else(|| not_found_build(plan_key, number))?;
        if build.execution.take().is_none() {
            return Err(refused(
                404,
                format!("Build {plan_key}-{number} is not queued or running"),
            ));
        }
        for stage in &mut build.stages {
            stage.status = match stage.status {
                StageStatus::InProgress => StageStatus::Stopped,
                StageStatus::Pending => StageStatus::NotBuilt,
                other => other,
            };
        }
        if !build
            .stages
            .iter()
            .any(|s| s.status == StageStatus::Stopped)
        {
            // Stopped while still queued: the first stage it would have run counts as stopped.
            if let Some(first) = build
                .stages
                .iter_mut()
                .find(|s| s.status == StageStatus::NotBuilt)
            {
                first.status = StageStatus::Stopped;
            }
        }
        build.completed_at = Some(now);
        Ok(())
    }

    pub fn plan(&self, key: &str) -> Result<&PlanState, Refused> {
        self.plans.get(key).ok_or_else(|| not_found_plan(key))
    }

    fn plan_mut(&mut self, key: &str) -> Result<&mut PlanState, Refused> {
        self.plans.get_mut(key).ok_or_else(|| not_found_plan(key))
    }

    fn check_capacity(&self) -> Result<(), Refused> {
        match self.max_concurrent_builds {
            Some(max) if self.running_builds() >= max => Err(refused(
                400,
                format!(
                    "Unable to queue: the maximum number of concurrent builds ({max}) has been reached"
                ),
            )),
            _ => Ok(()),
        }
    }
}

fn refuse_or_ignore(switch: Refusal, message: impl FnOnce() -> String) -> Result<bool, Refused> {
    match switch {
        Refusal::Reject => Err(refused(400, message())),
        Refusal::Ignore => Ok(false),
    }
}

fn not_found_plan(key: &str) -> Refused {
    refused(404, format!("Plan {key} not found"))
}

pub fn not_found_build(plan_key: &str, number: u32) -> Refused {
    refused(404, format!("Result {plan_key}-{number} not found"))
}

/// The stage a `stage` parameter names; `None` when it names none and the switch says to
/// go on as if no stage had been given.
fn stage_index(
    stages: &[StageDef],
    name: &str,
    behaviour: &Behaviour,
) -> Result<Option<usize>, Refused> {
    let matches = |s: &StageDef| match behaviour.stage_names {
        StageNames::Exact => s.name == name,
        StageNames::CaseInsensitive => s.name.eq_ignore_ascii_case(name),
    };
    match (stages.iter().position(matches), behaviour.unknown_stage) {
        (Some(index), _) => Ok(Some(index)),
        (None, Refusal::Ignore) => Ok(None),
        (None, Refusal::Reject) => Err(refused(400, format!("Stage {name} does not exist"))),
    }
}

/// From the upper bound, execution goes on through automatic stages until the next manual
/// stage or the end; `executeAllStages=true` goes to the end regardless.
fn extend_bound(stages: &[StageDef], upper: usize, execute_all: bool) -> usize {
    if execute_all {
        return stages.len() - 1;
    }
    let mut last = upper;
    while last + 1 < stages.len() && !stages[last + 1].manual {
        last += 1;
    }
    last
}

fn start_execution(build: &mut Build, from: usize, last: usize, now: u64) {
    for stage in &mut build.stages[from..=last] {
        stage.status = StageStatus::Pending;
    }
    build.execution = Some(Execution {
        queued_at: now,
        next: from,
        last,
        started_at: None,
    });
}

fn advance_build(
    build: &mut Build,
    defs: &[StageDef],
    stage_runs: &mut [u32],
    queue_delay: u64,
    now: u64,
) {
    while let Some(exec) = &mut build.execution {
        let started = match exec.started_at {
            Some(at) => at,
            None if now >= exec.queued_at + queue_delay => {
                let at = exec.queued_at + queue_delay;
                begin_stage(build, stage_runs, at);
                continue;
            }
            None => return,
        };
        let index = exec.next;
        let ends = started + defs[index].duration_ms;
        if now < ends {
            return;
        }
        let fails = defs[index].failures > 0 && stage_runs[index] <= defs[index].failures;
        build.stages[index].status = if fails {
            StageStatus::Failed
        } else {
            StageStatus::Successful
        };
        if fails || index == exec.last {
            for stage in &mut build.stages[index + 1..] {
                if stage.status == StageStatus::Pending {
                    stage.status = StageStatus::NotBuilt;
                }
            }
            build.execution = None;
            build.completed_at = Some(ends);
            return;
        }
        exec.next += 1;
        begin_stage(build, stage_runs, ends);
    }
}

fn begin_stage(build: &mut Build, stage_runs: &mut [u32], at: u64) {
    let exec = build.execution.as_mut().expect("an execution is in flight");
    exec.started_at = Some(at);
    let stage = &mut build.stages[exec.next];
    stage.status = StageStatus::InProgress;
    stage.runs += 1;
    stage_runs[exec.next] += 1;
}

fn make_builds(
    plan_key: &str,
    defs: &[StageDef],
    specs: &[BuildSpec],
    now: u64,
) -> Result<BTreeMap<u32, Build>, String> {
    let mut builds = BTreeMap::new();
    for spec in specs {
        let build = make_build(plan_key, defs, spec, now)?;
        if builds.insert(spec.number, build).is_some() {
            return Err(format!("build {plan_key}-{} is defined twice", spec.number));
        }
    }
    Ok(builds)
}

/// Lays out a build of the world file as if it had got where it stands by running.
fn make_build(
    plan_key: &str,
    defs: &[StageDef],
    spec: &BuildSpec,
    now: u64,
) -> Result<Build, String> {
    let index_of = |name: &str| {
        defs.iter().position(|d| d.name == name).ok_or_else(|| {
            format!(
                "build {plan_key}-{}: no stage {name:?} in the plan",
                spec.number
            )
        })
    };
    let ran = |upto: usize, then: StageStatus| {
        let mut stages: Vec<StageRun> = (0..defs.len())
            .map(|i| match i.cmp(&upto) {
                std::cmp::Ordering::Less => StageRun {
                    status: StageStatus::Successful,
                    runs: 1,
                },
                std::cmp::Ordering::Equal => StageRun {
                    status: then,
                    runs: u32::from(then != StageStatus::NotBuilt),
                },
                std::cmp::Ordering::Greater => StageRun {
                    status: StageStatus::NotBuilt,
                    runs: 0,
                },
            })
            .collect();
        stages.truncate(defs.len());
        stages
    };
    let mut execution = None;
    let stages = match &spec.state {
        BuildState::Complete => ran(defs.len(), StageStatus::NotBuilt),
        BuildState::PausedBefore(name) => {
            let at = index_of(name)?;
            if !defs[at].manual {
                return Err(format!(
                    "build {plan_key}-{}: a build pauses only before a manual stage, and {name:?} is automatic",
                    spec.number
                ));
            }
            ran(at, StageStatus::NotBuilt)
        }
        BuildState::FailedAt(name) => ran(index_of(name)?, StageStatus::Failed),
        BuildState::StoppedAt(name) => ran(index_of(name)?, StageStatus::Stopped),
        BuildState::RunningAt(name) => {
            let at = index_of(name)?;
            let mut stages = ran(at, StageStatus::InProgress);
            let last = extend_bound(defs, at, false);
            for stage in &mut stages[at + 1..=last] {
                stage.status = StageStatus::Pending;
            }
            execution = Some(Execution {
                queued_at: now,
                next: at,
                last,
                started_at: Some(now),
            });
            stages
        }
        BuildState::Queued => {
            let last = extend_bound(defs, 0, false);
            let mut stages = ran(0, StageStatus::Pending);
            stages[0].runs = 0;
            for stage in &mut stages[1..=last] {
                stage.status = StageStatus::Pending;
            }
            execution = Some(Execution {
                queued_at: now,
                next: 0,
                last,
                started_at: None,
            });
            stages
        }
    };
    let finished = execution.is_none();
    Ok(Build {
        number: spec.number,
        revision: spec
            .revision
            .clone()
            .unwrap_or_else(|| fake_revision(plan_key, spec.number)),
        labels: spec.labels.clone(),
        comments: Vec::new(),
        stages,
        execution,
        trigger_reason: "Manual build".into(),
        started_at: now,
        completed_at: finished.then_some(now),
    })
}

/// A stable 40-hex-digit revision for builds whose world entry names none.
fn fake_revision(plan_key: &str, number: u32) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{plan_key}-{number}").as_bytes());
    digest.iter().take(20).map(|b| format!("{b:02x}")).collect()
}
