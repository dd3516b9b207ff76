//! The JSON the simulator answers with, in the field names and shapes of the responses recorded
//! on real servers (`tests/fixtures/`). Each shape is a `Serialize` struct that reads
//! like the fixture it copies. A listing page of a hundred builds is written straight from
//! them: building a `serde_json::Value` tree first cost most of a page's time.

use std::borrow::Cow;

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use super::engine::{Build, PlanState, StageStatus};

/// Where the sim clock's zero lies on the calendar, so timestamps look like Bamboo's. The
/// `Date` header of every answer reads the same clock, so the server's time is weeks ahead of
/// the machine running the tests: a client that took lease times from its own clock would
/// show it.
const EPOCH_MS: i64 = 1_798_761_600_000; // 2027-01-01T00:00:00Z

/// `2027-01-01T00:00:00.000Z`: RFC 3339 in UTC with milliseconds, as Bamboo writes them.
pub fn timestamp(ms: u64) -> String {
    format!("{:.3}", instant(ms as i64))
}

/// The sim clock's `ms` on the calendar (before its zero when negative).
fn instant(ms: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_millisecond(EPOCH_MS + ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

/// `Fri, 01 Jan 2027 00:00:00 GMT`: the `Date` header (RFC 9110) at the sim clock's `ms`.
pub fn http_date(ms: i64) -> String {
    jiff::fmt::rfc2822::DateTimePrinter::new()
        .timestamp_to_rfc9110_string(&instant(ms))
        .expect("the sim clock stays within the years HTTP dates can show")
}

#[derive(Serialize)]
pub struct Link {
    href: String,
    rel: &'static str,
}

pub fn link(base: &str, path: &str) -> Link {
    Link {
        href: format!("{base}/rest/api/latest/{path}"),
        rel: "self",
    }
}

/// A wrapped collection: `{"size", "start-index", "max-result", "expand", "<item>": [...]}`.
/// The item's key differs per collection, so this one is serialized by hand.
pub struct Collection<T> {
    item: &'static str,
    /// `None` when the collection is not expanded: only its counts are shown.
    pub items: Option<Vec<T>>,
    size: usize,
    start: usize,
    max: usize,
}

pub fn collection<T>(
    item: &'static str,
    items: Vec<T>,
    size: usize,
    start: usize,
    max: usize,
) -> Collection<T> {
    Collection {
        item,
        items: Some(items),
        size,
        start,
        max,
    }
}

impl<T: Serialize> Serialize for Collection<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("size", &self.size)?;
        map.serialize_entry("start-index", &self.start)?;
        map.serialize_entry("max-result", &self.max)?;
        map.serialize_entry("expand", self.item)?;
        if let Some(items) = &self.items {
            map.serialize_entry(self.item, items)?;
        }
        map.end()
    }
}

/// A collection shown by its counts only. `Counts::default()` is one the simulator keeps
/// nothing in (artifacts, changes, comments, ...).
#[derive(Serialize, Default)]
pub struct Counts {
    size: usize,
    #[serde(rename = "start-index")]
    start_index: usize,
    #[serde(rename = "max-result")]
    max_result: usize,
}

impl Counts {
    fn of(count: usize) -> Counts {
        Counts {
            size: count,
            start_index: 0,
            max_result: count,
        }
    }
}

/// A collection that is listed when expanded and counted otherwise.
#[derive(Serialize)]
#[serde(untagged)]
enum Shown<T> {
    Listed(Collection<T>),
    Counted(Counts),
}

#[derive(Serialize)]
pub struct Named<'a> {
    name: &'a str,
}

/// A comment on a build, as `expand=comments` lists it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CommentJson<'a> {
    author: &'static str,
    content: &'a str,
    creation_date: String,
}

pub fn labels(build: &Build) -> Collection<Named<'_>> {
    let count = build.labels.len();
    labels_page(build, 0, count)
}

/// Up to `max` of a build's labels from the `start`-th, as `result/{key}/label` pages them.
pub fn labels_page(build: &Build, start: usize, max: usize) -> Collection<Named<'_>> {
    let items: Vec<Named> = build
        .labels
        .iter()
        .skip(start)
        .take(max)
        .map(|l| Named { name: l })
        .collect();
    collection("label", items, build.labels.len(), start, max)
}

/// `{"key": ...}`: borrowed from the world, or made for a job.
#[derive(Serialize)]
struct KeyOnly<'a> {
    key: Cow<'a, str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResultKey<'a> {
    key: String,
    entity_key: KeyOnly<'a>,
    result_number: u32,
}

/// What the lifecycle of a build looks like from outside.
struct Outline {
    life_cycle: &'static str,
    state: &'static str,
    continuable: bool,
    restartable: bool,
    runnable_stage: Option<usize>,
}

fn outline(build: &Build) -> Outline {
    let has = |status| build.stages.iter().any(|s| s.status == status);
    if let Some(exec) = &build.execution {
        let life_cycle = if exec.started_at.is_some() {
            "InProgress"
        } else {
            "Queued"
        };
        return Outline {
            life_cycle,
            state: "Unknown",
            continuable: false,
            restartable: false,
            runnable_stage: None,
        };
    }
    if has(StageStatus::Failed) {
        return Outline {
            life_cycle: "Finished",
            state: "Failed",
            continuable: false,
            restartable: true,
            runnable_stage: None,
        };
    }
    if has(StageStatus::Stopped) {
        return Outline {
            life_cycle: "NotBuilt",
            state: "Unknown",
            continuable: false,
            restartable: true,
            runnable_stage: None,
        };
    }
    let waiting = build
        .stages
        .iter()
        .position(|s| s.status == StageStatus::NotBuilt);
    Outline {
        life_cycle: "Finished",
        state: "Successful",
        continuable: waiting.is_some(),
        restartable: false,
        runnable_stage: waiting,
    }
}

pub fn life_cycle_state(build: &Build) -> &'static str {
    outline(build).life_cycle
}

pub fn build_state(build: &Build) -> &'static str {
    outline(build).state
}

pub fn is_continuable(build: &Build) -> bool {
    outline(build).continuable
}

pub struct ResultView<'a> {
    pub base: &'a str,
    pub plan: &'a PlanState,
    pub build: &'a Build,
    pub stages: bool,
    pub jobs: bool,
    /// Real servers list labels, VCS revisions and changes only when `expand` asks for them,
    /// and count them otherwise: a client that stopped asking must not still find them.
    pub labels: bool,
    /// Labels listed at most (`size` counts them all).
    pub label_page: Option<usize>,
    pub vcs_revisions: bool,
    pub changes: bool,
    /// Comments are listed only when `expand` asks for them, as labels are.
    pub comments: bool,
}

/// A build result (`bamboo12-result_detail.json`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultJson<'a> {
    expand: &'static str,
    link: Link,
    plan: PlanSummary<'a>,
    plan_name: &'a str,
    project_name: &'a str,
    build_result_key: String,
    life_cycle_state: &'static str,
    id: u64,
    build_started_time: String,
    pretty_build_started_time: String,
    #[serde(flatten)]
    completed: Option<Completed>,
    build_relative_time: &'static str,
    vcs_revision_key: &'a str,
    vcs_revisions: Collection<VcsRevision<'a>>,
    build_test_summary: &'static str,
    successful_test_count: u32,
    failed_test_count: u32,
    quarantined_test_count: u32,
    skipped_test_count: u32,
    continuable: bool,
    once_off: bool,
    restartable: bool,
    not_run_yet: bool,
    finished: bool,
    successful: bool,
    build_reason: &'a str,
    reason_summary: &'a str,
    labels: Collection<Named<'a>>,
    artifacts: Counts,
    changes: Collection<()>,
    comments: Collection<CommentJson<'a>>,
    jira_issues: Counts,
    metadata: Counts,
    variables: Counts,
    specs_result: bool,
    key: String,
    plan_result_key: ResultKey<'a>,
    state: &'static str,
    build_state: &'static str,
    number: u32,
    build_number: u32,
    stages: Collection<StageJson<'a>>,
}

/// The fields only a finished build (or job) has.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Completed {
    build_completed_time: String,
    build_completed_date: String,
    pretty_build_completed_time: String,
    build_duration: u64,
    build_duration_in_seconds: u64,
    build_duration_description: String,
}

impl Completed {
    fn new(at: String, duration_ms: u64) -> Completed {
        Completed {
            build_completed_date: at.clone(),
            pretty_build_completed_time: at.clone(),
            build_completed_time: at,
            build_duration: duration_ms,
            build_duration_in_seconds: duration_ms / 1000,
            build_duration_description: format!("{} seconds", duration_ms / 1000),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VcsRevision<'a> {
    vcs_revision_key: &'a str,
    repository_name: &'a str,
    repository_id: u64,
}

pub fn result<'a>(view: &ResultView<'a>) -> ResultJson<'a> {
    let ResultView {
        base, plan, build, ..
    } = *view;
    let o = outline(build);
    let key = format!("{}-{}", plan.key, build.number);
    let started = timestamp(build.started_at);
    let completed = build
        .completed_at
        .map(|done| Completed::new(timestamp(done), done.saturating_sub(build.started_at)));
    let revision = VcsRevision {
        vcs_revision_key: &build.revision,
        repository_name: &plan.project_name,
        repository_id: 5_000_000,
    };
    let stage_count = plan.stages.len();
    let mut stages = collection(
        "stage",
        stage_list(view, &key, &started, &o),
        stage_count,
        0,
        stage_count,
    );
    if !view.stages {
        stages.items = None;
    }
    let mut labels = labels(build);
    if !view.labels {
        labels.items = None;
    }
    if let (Some(items), Some(page)) = (labels.items.as_mut(), view.label_page) {
        items.truncate(page);
    }
    let mut vcs_revisions = collection("vcsRevision", vec![revision], 1, 0, 1);
    if !view.vcs_revisions {
        vcs_revisions.items = None;
    }
    let mut changes = collection("change", Vec::new(), 0, 0, 0);
    if !view.changes {
        changes.items = None;
    }
    let count = build.comments.len();
    let mut comments = collection(
        "comment",
        build
            .comments
            .iter()
            .map(|(content, at)| CommentJson {
                author: "bamboo-promote",
                content,
                creation_date: timestamp(*at),
            })
            .collect(),
        count,
        0,
        count,
    );
    if !view.comments {
        comments.items = None;
    }
    ResultJson {
        expand: "changes,metadata,plan,vcsRevisions,artifacts,comments,labels,jiraIssues,variables,stages",
        link: link(base, &format!("result/{key}")),
        plan: plan_summary(base, plan),
        plan_name: &plan.short_name,
        project_name: &plan.project_name,
        build_result_key: key.clone(),
        life_cycle_state: o.life_cycle,
        id: 1_000_000 + u64::from(build.number),
        build_started_time: started.clone(),
        pretty_build_started_time: started.to_string(),
        completed,
        build_relative_time: "",
        vcs_revision_key: &build.revision,
        vcs_revisions,
        build_test_summary: "No tests found",
        successful_test_count: 0,
        failed_test_count: 0,
        quarantined_test_count: 0,
        skipped_test_count: 0,
        continuable: o.continuable,
        once_off: false,
        restartable: o.restartable,
        not_run_yet: false,
        finished: build.execution.is_none() && o.life_cycle == "Finished",
        successful: o.state == "Successful",
        build_reason: &build.trigger_reason,
        reason_summary: &build.trigger_reason,
        labels,
        artifacts: Counts::default(),
        changes,
        comments,
        jira_issues: Counts::default(),
        metadata: Counts::default(),
        variables: Counts::default(),
        specs_result: false,
        plan_result_key: ResultKey {
            key: key.clone(),
            entity_key: KeyOnly {
                key: Cow::Borrowed(&plan.key),
            },
            result_number: build.number,
        },
        state: o.state,
        build_state: o.state,
        number: build.number,
        build_number: build.number,
        stages,
        key,
    }
}

/// One stage of a build result.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StageJson<'a> {
    name: &'a str,
    description: &'static str,
    id: usize,
    life_cycle_state: &'static str,
    state: &'static str,
    display_class: &'static str,
    display_message: &'static str,
    collapsed_by_default: bool,
    manual: bool,
    restartable: bool,
    runnable: bool,
    expand: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    results: Option<Collection<JobJson<'a>>>,
}

fn stage_list<'a>(
    view: &ResultView<'a>,
    key: &str,
    started: &str,
    o: &Outline,
) -> Vec<StageJson<'a>> {
    if !view.stages {
        return Vec::new();
    }
    let ResultView { plan, build, .. } = *view;
    let busy = build.execution.is_some();
    plan.stages
        .iter()
        .zip(&build.stages)
        .enumerate()
        .map(|(i, (def, run))| {
            let (life_cycle, state) = match run.status {
                StageStatus::NotBuilt | StageStatus::Stopped => ("NotBuilt", "Unknown"),
                StageStatus::Pending => ("Pending", "Unknown"),
                StageStatus::InProgress => ("InProgress", "Unknown"),
                StageStatus::Successful => ("Finished", "Successful"),
                StageStatus::Failed => ("Finished", "Failed"),
            };
            let display_message = match run.status {
                StageStatus::Successful => "1 job passed",
                StageStatus::Failed => "1 of 1 job failed",
                StageStatus::InProgress => "1 job in progress",
                _ => "1 of 1 job not executed",
            };
            StageJson {
                name: &def.name,
                description: "",
                id: 2_000_000 + i,
                life_cycle_state: life_cycle,
                state,
                display_class: if state == "Unknown" {
                    life_cycle
                } else {
                    state
                },
                display_message,
                collapsed_by_default: true,
                manual: def.manual,
                restartable: !busy
                    && matches!(run.status, StageStatus::Failed | StageStatus::Stopped),
                runnable: o.runnable_stage == Some(i),
                expand: "results",
                results: view.jobs.then(|| {
                    let job = job_result(view, key, started, i, life_cycle, state);
                    collection("result", vec![job], 1, 0, 1)
                }),
            }
        })
        .collect()
}

/// One job per stage, keyed `PROJ-PLAN-JOBn-N` like Bamboo's, with the fields of a recorded
/// job result (`bamboo12-result_detail.json`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobJson<'a> {
    key: String,
    id: u64,
    expand: &'static str,
    link: Link,
    parent: Link,
    plan: JobPlan<'a>,
    plan_name: &'a str,
    project_name: &'a str,
    plan_result_key: ResultKey<'a>,
    build_result_key: String,
    build_number: u32,
    number: u32,
    stage: &'a str,
    life_cycle_state: &'a str,
    state: &'a str,
    build_state: &'a str,
    once_off: bool,
    specs_result: bool,
    build_reason: &'a str,
    reason_summary: &'a str,
    build_started_time: String,
    pretty_build_started_time: String,
    #[serde(flatten)]
    completed: Completed,
    build_relative_time: &'static str,
    queue_started_time: String,
    pretty_queue_started_time: String,
    queue_duration: u64,
    pretty_queue_duration: &'static str,
    queue_time_in_seconds: u64,
    vcs_update_started_time: String,
    pretty_vcs_update_started_time: String,
    vcs_update_duration: u64,
    pretty_vcs_update_duration: &'static str,
    vcs_update_in_seconds: u64,
    vcs_revision_key: &'a str,
    vcs_revisions: Counts,
    build_test_summary: &'static str,
    successful_test_count: u32,
    failed_test_count: u32,
    quarantined_test_count: u32,
    skipped_test_count: u32,
    test_results: TestResults,
    log_files: [String; 1],
    artifacts: Counts,
    changes: Counts,
    comments: Counts,
    jira_issues: Counts,
    labels: Counts,
    metadata: Counts,
    variables: Counts,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JobPlan<'a> {
    key: String,
    id: usize,
    #[serde(rename = "type")]
    kind: &'static str,
    enabled: bool,
    name: String,
    short_name: &'a str,
    short_key: String,
    plan_key: KeyOnly<'a>,
    link: Link,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct TestResults {
    all: u32,
    successful: u32,
    failed: u32,
    new_failed: u32,
    existing_failed: u32,
    fixed: u32,
    quarantined: u32,
    skipped: u32,
}

fn job_result<'a>(
    view: &ResultView<'a>,
    parent_key: &str,
    started: &str,
    index: usize,
    life_cycle: &'static str,
    state: &'static str,
) -> JobJson<'a> {
    let ResultView {
        base, plan, build, ..
    } = *view;
    let stage = &plan.stages[index];
    let job_plan = format!("{}-JOB{index}", plan.key);
    let key = format!("{job_plan}-{}", build.number);
    let finished = build
        .completed_at
        .map_or_else(|| started.to_string(), timestamp);
    let short_key = job_plan.split_once('-').map_or("", |(_, k)| k).to_string();
    let log_file = format!("{base}/download/{job_plan}/build_logs/{key}.log");
    JobJson {
        id: 3_000_000 + u64::from(build.number),
        expand: "changes,testResults,metadata,plan,vcsRevisions,artifacts,comments,labels,jiraIssues,variables,logFiles",
        link: link(base, &format!("result/{key}")),
        parent: Link {
            href: format!("{base}/rest/api/latest/result/{parent_key}"),
            rel: "parent",
        },
        plan: JobPlan {
            id: 4_000_000 + index,
            kind: "job",
            enabled: true,
            name: format!("{} - {}", plan.name, stage.name),
            short_name: &stage.name,
            short_key,
            plan_key: KeyOnly {
                key: Cow::Owned(job_plan.clone()),
            },
            link: link(base, &format!("plan/{job_plan}")),
            key: job_plan.clone(),
        },
        plan_name: &stage.name,
        project_name: &plan.project_name,
        plan_result_key: ResultKey {
            key: key.clone(),
            entity_key: KeyOnly {
                key: Cow::Owned(job_plan.clone()),
            },
            result_number: build.number,
        },
        build_result_key: key.clone(),
        build_number: build.number,
        number: build.number,
        stage: &stage.name,
        life_cycle_state: life_cycle,
        state,
        build_state: state,
        once_off: false,
        specs_result: false,
        build_reason: &build.trigger_reason,
        reason_summary: &build.trigger_reason,
        build_started_time: started.to_string(),
        pretty_build_started_time: started.to_string(),
        completed: Completed::new(finished, stage.duration_ms),
        build_relative_time: "",
        queue_started_time: started.to_string(),
        pretty_queue_started_time: started.to_string(),
        queue_duration: 0,
        pretty_queue_duration: "< 1 sec",
        queue_time_in_seconds: 0,
        vcs_update_started_time: started.to_string(),
        pretty_vcs_update_started_time: started.to_string(),
        vcs_update_duration: 0,
        pretty_vcs_update_duration: "< 1 sec",
        vcs_update_in_seconds: 0,
        vcs_revision_key: &build.revision,
        vcs_revisions: Counts::default(),
        build_test_summary: "No tests found",
        successful_test_count: 0,
        failed_test_count: 0,
        quarantined_test_count: 0,
        skipped_test_count: 0,
        test_results: TestResults::default(),
        log_files: [log_file],
        artifacts: Counts::default(),
        changes: Counts::default(),
        comments: Counts::default(),
        jira_issues: Counts::default(),
        labels: Counts::default(),
        metadata: Counts::default(),
        variables: Counts::default(),
        key,
    }
}

/// A stable numeric id for a plan key.
fn plan_id(key: &str) -> u64 {
    key.bytes().fold(700_000u64, |id, b| {
        id.wrapping_mul(31).wrapping_add(u64::from(b))
    }) % 1_000_000
}

/// How a plan appears inside other answers (a result's `plan`, a branch list's entries).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanSummary<'a> {
    short_name: &'a str,
    short_key: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    enabled: bool,
    link: Link,
    id: u64,
    key: &'a str,
    name: &'a str,
    plan_key: KeyOnly<'a>,
}

pub fn plan_summary<'a>(base: &str, plan: &'a PlanState) -> PlanSummary<'a> {
    PlanSummary {
        short_name: &plan.short_name,
        short_key: plan
            .key
            .split_once('-')
            .map_or(plan.key.as_str(), |(_, s)| s),
        kind: "chain",
        enabled: plan.enabled,
        link: link(base, &format!("plan/{}", plan.key)),
        id: plan_id(&plan.key),
        key: &plan.key,
        name: &plan.name,
        plan_key: KeyOnly {
            key: Cow::Borrowed(&plan.key),
        },
    }
}

/// `GET plan/KEY` (`bamboo12-plan.json`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanJson<'a> {
    #[serde(flatten)]
    summary: PlanSummary<'a>,
    expand: &'static str,
    description: &'static str,
    build_name: &'a str,
    project_key: &'a str,
    project_name: &'a str,
    project: Project<'a>,
    is_active: bool,
    is_building: bool,
    is_favourite: bool,
    /// A float on real servers (`16.0`), though the recorded 12.1 answer shows `16`.
    average_build_time_in_seconds: f64,
    actions: Counts,
    branches: Counts,
    variable_context: VariableContext,
    stages: Shown<PlanStage<'a>>,
}

#[derive(Serialize)]
struct Project<'a> {
    id: u64,
    key: &'a str,
    name: &'a str,
    description: &'static str,
    link: Link,
}

#[derive(Serialize, Default)]
struct VariableContext {
    size: u8,
    #[serde(rename = "max-results")]
    max_results: u8,
}

#[derive(Serialize)]
struct PlanStage<'a> {
    name: &'a str,
    description: &'static str,
    manual: bool,
}

pub fn plan<'a>(base: &str, plan: &'a PlanState, expand_stages: bool) -> PlanJson<'a> {
    let busy = plan.builds.values().any(|b| b.execution.is_some());
    let stages: Vec<PlanStage> = plan
        .stages
        .iter()
        .map(|s| PlanStage {
            name: &s.name,
            description: "",
            manual: s.manual,
        })
        .collect();
    let count = stages.len();
    let stages = if expand_stages {
        Shown::Listed(collection("stage", stages, count, 0, count))
    } else {
        Shown::Counted(Counts::of(count))
    };
    PlanJson {
        summary: plan_summary(base, plan),
        expand: "actions,stages,branches,variableContext",
        description: "",
        build_name: &plan.short_name,
        project_key: &plan.project_key,
        project_name: &plan.project_name,
        project: Project {
            id: plan_id(&plan.project_key),
            key: &plan.project_key,
            name: &plan.project_name,
            description: "",
            link: link(base, &format!("project/{}", plan.project_key)),
        },
        is_active: busy,
        is_building: busy,
        is_favourite: false,
        average_build_time_in_seconds: plan.stages.iter().map(|s| s.duration_ms).sum::<u64>()
            as f64
            / 1000.0,
        actions: Counts::default(),
        branches: Counts::of(plan.branches.len()),
        variable_context: VariableContext::default(),
        stages,
    }
}

/// One plan branch (`bamboo12-plan_branch.json`).
#[derive(Serialize)]
pub struct BranchJson<'a> {
    #[serde(flatten)]
    summary: PlanSummary<'a>,
    description: &'static str,
    #[serde(rename = "vcsBranch", skip_serializing_if = "Option::is_none")]
    vcs_branch: Option<KeyName<'a>>,
}

#[derive(Serialize)]
struct KeyName<'a> {
    name: &'a str,
}

pub fn branch<'a>(base: &str, branch_plan: &'a PlanState) -> BranchJson<'a> {
    BranchJson {
        summary: plan_summary(base, branch_plan),
        description: "",
        vcs_branch: branch_plan
            .vcs_branch
            .as_deref()
            .map(|name| KeyName { name }),
    }
}

/// The body of an accepted queue call (`bamboo12-queue.json`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Queued<'a> {
    plan_key: &'a str,
    build_number: u32,
    build_result_key: String,
    trigger_reason: &'a str,
    link: Link,
}

pub fn queued<'a>(base: &str, plan_key: &'a str, number: u32, reason: &'a str) -> Queued<'a> {
    let key = format!("{plan_key}-{number}");
    Queued {
        plan_key,
        build_number: number,
        link: link(base, &format!("result/{key}")),
        build_result_key: key,
        trigger_reason: reason,
    }
}

/// Bamboo's error body.
#[derive(Serialize)]
pub struct ErrorJson<'a> {
    message: &'a str,
    #[serde(rename = "status-code")]
    status_code: u16,
    #[serde(rename = "sub-code", skip_serializing_if = "Option::is_none")]
    sub_code: Option<i32>,
}

pub fn error(status: u16, message: &str) -> ErrorJson<'_> {
    ErrorJson {
        message,
        status_code: status,
        sub_code: Some(-1),
    }
}

/// Bamboo 5's error body: no `sub-code`.
pub fn error_without_sub_code(status: u16, message: &str) -> ErrorJson<'_> {
    ErrorJson {
        sub_code: None,
        ..error(status, message)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_have_milliseconds_and_a_z() {
        assert_eq!(super::timestamp(0), "2027-01-01T00:00:00.000Z");
        assert_eq!(super::timestamp(61_500), "2027-01-01T00:01:01.500Z");
    }
}
