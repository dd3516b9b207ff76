//! The JSON the simulator answers with, in the field names and shapes of the responses recorded
//! on real servers (`shared/bamboo/fixtures/`). Built with `serde_json::json!` so that each shape
//! reads like the fixture it copies.

use serde_json::{Value, json};

use super::engine::{Build, PlanState, StageStatus};

/// Where the sim clock's zero lies on the calendar, so timestamps look like Bamboo's.
const EPOCH_MS: i64 = 1_798_761_600_000; // 2027-01-01T00:00:00Z

pub fn timestamp(ms: u64) -> String {
    let at = jiff::Timestamp::from_millisecond(EPOCH_MS + ms as i64)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    at.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

pub fn link(base: &str, path: &str) -> Value {
    json!({ "href": format!("{base}/rest/api/latest/{path}"), "rel": "self" })
}

/// A wrapped collection: `{"size", "start-index", "max-result", "<item>": [...]}`.
pub fn collection(item: &str, items: Vec<Value>, size: usize, start: usize, max: usize) -> Value {
    let mut wrapped =
        json!({ "size": size, "start-index": start, "max-result": max, "expand": item });
    // Moved in, not passed to `json!`, which would copy every item through `to_value`.
    wrapped[item] = Value::Array(items);
    wrapped
}

/// A collection the simulator keeps nothing in (artifacts, changes, comments, ...).
fn empty_collection() -> Value {
    json!({ "size": 0, "start-index": 0, "max-result": 0 })
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
}

pub fn result(view: &ResultView<'_>) -> Value {
    let ResultView {
        base, plan, build, ..
    } = view;
    let o = outline(build);
    let key = format!("{}-{}", plan.key, build.number);
    let finished = build.execution.is_none() && o.life_cycle == "Finished";
    let labels: Vec<Value> = build.labels.iter().map(|l| json!({ "name": l })).collect();
    let mut body = json!({
        "expand": "changes,metadata,plan,vcsRevisions,artifacts,comments,labels,jiraIssues,variables,stages",
        "link": link(base, &format!("result/{key}")),
        "plan": plan_summary(base, plan),
        "planName": plan.short_name,
        "projectName": plan.project_name,
        "buildResultKey": key,
        "lifeCycleState": o.life_cycle,
        "id": 1_000_000 + u64::from(build.number),
        "buildStartedTime": timestamp(build.started_at),
        "prettyBuildStartedTime": timestamp(build.started_at),
        "buildRelativeTime": "",
        "vcsRevisionKey": build.revision,
        "vcsRevisions": collection("vcsRevision", vec![json!({ "vcsRevisionKey": build.revision, "repositoryName": plan.project_name, "repositoryId": 5_000_000 })], 1, 0, 1),
        "buildTestSummary": "No tests found",
        "successfulTestCount": 0,
        "failedTestCount": 0,
        "quarantinedTestCount": 0,
        "skippedTestCount": 0,
        "continuable": o.continuable,
        "onceOff": false,
        "restartable": o.restartable,
        "notRunYet": false,
        "finished": finished,
        "successful": o.state == "Successful",
        "buildReason": build.trigger_reason,
        "reasonSummary": build.trigger_reason,
        "labels": collection("label", labels, build.labels.len(), 0, build.labels.len()),
        "artifacts": empty_collection(),
        "changes": collection("change", Vec::new(), 0, 0, 0),
        "comments": empty_collection(),
        "jiraIssues": empty_collection(),
        "metadata": empty_collection(),
        "variables": empty_collection(),
        "specsResult": false,
        "key": key,
        "planResultKey": { "key": key, "entityKey": { "key": plan.key }, "resultNumber": build.number },
        "state": o.state,
        "buildState": o.state,
        "number": build.number,
        "buildNumber": build.number,
    });
    if let Some(done) = build.completed_at {
        let duration = done.saturating_sub(build.started_at);
        body["buildCompletedTime"] = json!(timestamp(done));
        body["buildCompletedDate"] = json!(timestamp(done));
        body["prettyBuildCompletedTime"] = json!(timestamp(done));
        body["buildDuration"] = json!(duration);
        body["buildDurationInSeconds"] = json!(duration / 1000);
        body["buildDurationDescription"] = json!(format!("{} seconds", duration / 1000));
    }
    let stages: Vec<Value> = if view.stages {
        stage_list(view, &o)
    } else {
        Vec::new()
    };
    body["stages"] = collection("stage", stages, plan.stages.len(), 0, plan.stages.len());
    if !view.stages {
        body["stages"]
            .as_object_mut()
            .expect("object")
            .remove("stage");
    }
    body
}

fn stage_list(view: &ResultView<'_>, o: &Outline) -> Vec<Value> {
    let ResultView { plan, build, .. } = view;
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
            let restartable =
                !busy && matches!(run.status, StageStatus::Failed | StageStatus::Stopped);
            let message = match run.status {
                StageStatus::Successful => "1 job passed".to_string(),
                StageStatus::Failed => "1 of 1 job failed".to_string(),
                StageStatus::InProgress => "1 job in progress".to_string(),
                _ => "1 of 1 job not executed".to_string(),
            };
            let mut stage = json!({
                "name": def.name,
                "description": "",
                "id": 2_000_000 + i,
                "lifeCycleState": life_cycle,
                "state": state,
                "displayClass": if state == "Unknown" { life_cycle } else { state },
                "displayMessage": message,
                "collapsedByDefault": true,
                "manual": def.manual,
                "restartable": restartable,
                "runnable": o.runnable_stage == Some(i),
                "expand": "results",
            });
            if view.jobs {
                let job = job_result(view, i, life_cycle, state);
                stage["results"] = collection("result", vec![job], 1, 0, 1);
            }
            stage
        })
        .collect()
}

/// One job per stage, keyed `PROJ-PLAN-JOBn-N` like Bamboo's, with the fields of a recorded
/// job result (`bamboo12-result_detail.json`).
fn job_result(view: &ResultView<'_>, index: usize, life_cycle: &str, state: &str) -> Value {
    let ResultView {
        base, plan, build, ..
    } = view;
    let stage = &plan.stages[index].name;
    let job_plan = format!("{}-JOB{index}", plan.key);
    let key = format!("{job_plan}-{}", build.number);
    let started = timestamp(build.started_at);
    let finished = build.completed_at.map_or(started.clone(), timestamp);
    json!({
        "key": key,
        "id": 3_000_000 + u64::from(build.number),
        "expand": "changes,testResults,metadata,plan,vcsRevisions,artifacts,comments,labels,jiraIssues,variables,logFiles",
        "link": link(base, &format!("result/{key}")),
        "parent": { "href": format!("{base}/rest/api/latest/result/{}-{}", plan.key, build.number), "rel": "parent" },
        "plan": {
            "key": job_plan, "id": 4_000_000 + index, "type": "job", "enabled": true, "name": format!("{} - {stage}", plan.name),
            "shortName": stage, "shortKey": job_plan.split_once('-').map_or("", |(_, k)| k), "planKey": { "key": job_plan },
            "link": link(base, &format!("plan/{job_plan}")),
        },
        "planName": stage,
        "projectName": plan.project_name,
        "planResultKey": { "key": key, "entityKey": { "key": job_plan }, "resultNumber": build.number },
        "buildResultKey": key,
        "buildNumber": build.number,
        "number": build.number,
        "stage": stage,
        "lifeCycleState": life_cycle,
        "state": state,
        "buildState": state,
        "onceOff": false,
        "specsResult": false,
        "buildReason": build.trigger_reason,
        "reasonSummary": build.trigger_reason,
        "buildStartedTime": started,
        "prettyBuildStartedTime": started,
        "buildCompletedTime": finished,
        "buildCompletedDate": finished,
        "prettyBuildCompletedTime": finished,
        "buildDuration": plan.stages[index].duration_ms,
        "buildDurationInSeconds": plan.stages[index].duration_ms / 1000,
        "buildDurationDescription": format!("{} seconds", plan.stages[index].duration_ms / 1000),
        "buildRelativeTime": "",
        "queueStartedTime": started,
        "prettyQueueStartedTime": started,
        "queueDuration": 0,
        "prettyQueueDuration": "< 1 sec",
        "queueTimeInSeconds": 0,
        "vcsUpdateStartedTime": started,
        "prettyVcsUpdateStartedTime": started,
        "vcsUpdateDuration": 0,
        "prettyVcsUpdateDuration": "< 1 sec",
        "vcsUpdateInSeconds": 0,
        "vcsRevisionKey": build.revision,
        "vcsRevisions": empty_collection(),
        "buildTestSummary": "No tests found",
        "successfulTestCount": 0,
        "failedTestCount": 0,
        "quarantinedTestCount": 0,
        "skippedTestCount": 0,
        "testResults": { "all": 0, "successful": 0, "failed": 0, "newFailed": 0, "existingFailed": 0, "fixed": 0, "quarantined": 0, "skipped": 0 },
        "logFiles": [format!("{base}/download/{job_plan}/build_logs/{key}.log")],
        "artifacts": empty_collection(),
        "changes": empty_collection(),
        "comments": empty_collection(),
        "jiraIssues": empty_collection(),
        "labels": empty_collection(),
        "metadata": empty_collection(),
        "variables": empty_collection(),
    })
}

/// A stable numeric id for a plan key.
fn plan_id(key: &str) -> u64 {
    key.bytes().fold(700_000u64, |id, b| {
        id.wrapping_mul(31).wrapping_add(u64::from(b))
    }) % 1_000_000
}

pub fn plan_summary(base: &str, plan: &PlanState) -> Value {
    let short_key = plan
        .key
        .split_once('-')
        .map_or(plan.key.as_str(), |(_, s)| s);
    json!({
        "shortName": plan.short_name,
        "shortKey": short_key,
        "type": "chain",
        "enabled": plan.enabled,
        "link": link(base, &format!("plan/{}", plan.key)),
        "id": plan_id(&plan.key),
        "key": plan.key,
        "name": plan.name,
        "planKey": { "key": plan.key },
    })
}

pub fn plan(base: &str, plan: &PlanState, expand_stages: bool) -> Value {
    let mut body = plan_summary(base, plan);
    let stages: Vec<Value> = plan
        .stages
        .iter()
        .map(|s| json!({ "name": s.name, "description": "", "manual": s.manual }))
        .collect();
    let extra = json!({
        "expand": "actions,stages,branches,variableContext",
        "description": "",
        "buildName": plan.short_name,
        "projectKey": plan.project_key,
        "projectName": plan.project_name,
        "project": { "id": plan_id(&plan.project_key), "key": plan.project_key, "name": plan.project_name, "description": "", "link": link(base, &format!("project/{}", plan.project_key)) },
        "isActive": plan.builds.values().any(|b| b.execution.is_some()),
        "isBuilding": plan.builds.values().any(|b| b.execution.is_some()),
        "isFavourite": false,
        "averageBuildTimeInSeconds": plan.stages.iter().map(|s| s.duration_ms).sum::<u64>() / 1000,
        "actions": { "size": 0, "start-index": 0, "max-result": 0 },
        "branches": { "size": plan.branches.len(), "start-index": 0, "max-result": plan.branches.len() },
        "variableContext": { "size": 0, "max-results": 0 },
    });
    for (k, v) in extra.as_object().expect("object") {
        body[k] = v.clone();
    }
    let count = stages.len();
    body["stages"] = if expand_stages {
        collection("stage", stages, count, 0, count)
    } else {
        json!({ "size": count, "start-index": 0, "max-result": count })
    };
    body
}

pub fn branch(base: &str, branch_plan: &PlanState) -> Value {
    let mut body = plan_summary(base, branch_plan);
    body["description"] = json!("");
    body["shortName"] = json!(branch_plan.short_name);
    body
}

/// The body of an accepted queue call (`bamboo12-queue.json`).
pub fn queued(base: &str, plan_key: &str, number: u32, reason: &str) -> Value {
    let key = format!("{plan_key}-{number}");
    json!({
        "planKey": plan_key,
        "buildNumber": number,
        "buildResultKey": key,
        "triggerReason": reason,
        "link": link(base, &format!("result/{key}")),
    })
}

pub fn error(status: u16, message: &str) -> Value {
    json!({ "message": message, "status-code": status, "sub-code": -1 })
}
