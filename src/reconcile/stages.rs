//! Stage arithmetic on one observed build: where it stands relative to the target stage, and
//! what a continue with `stage=<target>` will run. The rules are Bamboo's, from
//! `docs/bamboo-api.md`: `stage` is an upper bound from the build's runnable stage, and
//! execution goes on through automatic stages until the next manual stage or the end.

use super::model::{Action, BlockReason, Status};
use crate::bamboo::encode_segment;
use crate::observe::{ObservedBuild, ObservedStage};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Done,
    Failed,
    Active,
    NotRun,
}

fn phase(stage: &ObservedStage) -> Phase {
    match (stage.life_cycle_state.as_str(), stage.state.as_str()) {
        ("Finished", "Successful") => Phase::Done,
        ("Finished", "Failed") => Phase::Failed,
        _ if stage.is_active() => Phase::Active,
        _ => Phase::NotRun,
    }
}

/// Where `build` stands for a target on `stage`, and the call that would move it there.
pub fn assess(build: &ObservedBuild, stage: &str, execute_all_stages: bool) -> Status {
    let stages = &build.stages;
    let Some(target) = stages.iter().position(|s| s.name == stage) else {
        // A build waiting for an agent may list no stages yet: it is on its way, not wrong.
        if stages.is_empty() && build.is_active() {
            return Status::Running { stage: None };
        }
        return Status::Blocked {
            reason: BlockReason::StageMissing,
        };
    };
    if !stages[target].manual {
        return Status::Blocked {
            reason: BlockReason::NotManual,
        };
    }
    match phase(&stages[target]) {
        // The target ran, but the automatic stages after it are still going: not settled
        // until they finish (a target `after` this one waits for them).
        Phase::Done if build.is_active() => Status::Running {
            stage: stages
                .iter()
                .find(|s| phase(s) == Phase::Active)
                .map(|s| s.name.clone()),
        },
        Phase::Done => {
            let beyond: Vec<String> = stages[target + 1..]
                .iter()
                .filter(|s| s.manual && phase(s) != Phase::NotRun)
                .map(|s| s.name.clone())
                .collect();
            if beyond.is_empty() {
                Status::InSync
            } else {
                Status::Ahead { beyond }
            }
        }
        Phase::Active => Status::Running {
            stage: Some(stages[target].name.clone()),
        },
        Phase::Failed => Status::Blocked {
            reason: BlockReason::FailedAt {
                stage: stage.to_string(),
            },
        },
        Phase::NotRun => not_run_yet(build, target, execute_all_stages),
    }
}

fn not_run_yet(build: &ObservedBuild, target: usize, execute_all_stages: bool) -> Status {
    let stages = &build.stages;
    if build.is_active() {
        let active = stages
            .iter()
            .find(|s| phase(s) == Phase::Active)
            .map(|s| s.name.clone());
        return Status::Running { stage: active };
    }
    if let Some(failed) = stages[..target].iter().find(|s| phase(s) == Phase::Failed) {
        return Status::Blocked {
            reason: BlockReason::FailedBefore {
                stage: failed.name.clone(),
            },
        };
    }
    if build.life_cycle_state == "NotBuilt" || (build.restartable && !build.continuable) {
        let stopped = stages
            .iter()
            .find(|s| s.restartable)
            .map(|s| s.name.clone());
        return Status::Blocked {
            reason: BlockReason::Stopped { stage: stopped },
        };
    }
    if !build.continuable {
        return Status::Blocked {
            reason: BlockReason::Unexpected {
                detail: format!(
                    "{} is {}/{} and not continuable",
                    build.key, build.life_cycle_state, build.state
                ),
            },
        };
    }
    // Bamboo marks only the next stage runnable; older servers may not say, so fall back to
    // the first stage that has not run.
    let from = stages
        .iter()
        .position(|s| s.runnable)
        .or_else(|| stages.iter().position(|s| phase(s) == Phase::NotRun))
        .unwrap_or(target);
    if from > target {
        return Status::Blocked {
            reason: BlockReason::Unexpected {
                detail: format!("runnable stage {} is past the target", stages[from].name),
            },
        };
    }
    let last = if execute_all_stages {
        stages.len() - 1
    } else {
        last_of_execution(stages, target)
    };
    let runs = stages[from..=last].iter().map(|s| s.name.clone()).collect();
    let stage_name = stages[target].name.clone();
    let execute_all = if execute_all_stages { "true" } else { "false" };
    Status::Queue {
        action: Action {
            method: "PUT".into(),
            path: format!("queue/{}", encode_segment(&build.key)),
            query: vec![
                ("stage".into(), stage_name.clone()),
                ("executeAllStages".into(), execute_all.into()),
            ],
            build_key: build.key.clone(),
            stage: stage_name,
            execute_all_stages,
            runs,
            fingerprint: build.fingerprint(),
        },
    }
}

/// After the target, automatic stages run until the next manual stage or the end.
fn last_of_execution(stages: &[ObservedStage], target: usize) -> usize {
    let mut last = target;
    while last + 1 < stages.len() && !stages[last + 1].manual {
        last += 1;
    }
    last
}
