//! Table tests for the pure planner. Builds are made from Bamboo JSON — the recorded fixtures,
//! or compact stage lists turned into the same JSON shape — never hand-built `Observed` values.

use std::path::Path;
use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::bamboo::types::BuildResult;
use crate::manifest::{self, BuildSelector};
use crate::observe::{ObservedBranch, ObservedPlan};

/// `"Build=done Staging*=next Prod*"`: name, `*` for manual, `=` phase (default not run).
/// Phases: done, failed, running, pending, next (not run and runnable), stopped.
fn build(key: &str, life: &str, continuable: bool, spec: &str) -> ObservedBuild {
    let stages: Vec<_> = spec
        .split_whitespace()
        .map(|s| {
            let (name, phase) = s.split_once('=').unwrap_or((s, "notrun"));
            let (name, manual) = name.strip_suffix('*').map_or((name, false), |n| (n, true));
            let (lc, state) = match phase {
                "done" => ("Finished", "Successful"),
                "failed" => ("Finished", "Failed"),
                "running" => ("InProgress", "Unknown"),
                "pending" => ("Pending", "Unknown"),
                _ => ("NotBuilt", "Unknown"),
            };
            json!({
                "name": name.replace('_', " "), "lifeCycleState": lc, "state": state, "manual": manual,
                "runnable": phase == "next", "restartable": phase == "stopped" || phase == "failed",
            })
        })
        .collect();
    let (life_cycle, state) = life.split_once('/').unwrap_or((life, "Unknown"));
    let failed = state == "Failed";
    let result = json!({
        "key": key, "number": key.rsplit('-').next().unwrap().parse::<u32>().unwrap(),
        "lifeCycleState": life_cycle, "state": state, "continuable": continuable,
        "restartable": failed || life_cycle == "NotBuilt",
        "stages": { "size": stages.len(), "stage": stages },
    });
    ObservedBuild::from_result(serde_json::from_value::<BuildResult>(result).unwrap())
}

fn fixture(name: &str) -> ObservedBuild {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(path).unwrap();
    ObservedBuild::from_result(serde_json::from_str(&text).unwrap())
}

fn queue(status: &Status) -> (&str, Vec<&str>) {
    match status {
        Status::Queue { action } => (
            action.stage.as_str(),
            action.runs.iter().map(String::as_str).collect(),
        ),
        other => panic!("expected a promotion, got {other:?}"),
    }
}

const PAUSED_BEFORE_STAGING: &str = "Build=done Staging*=next Smoke Prod* Verify";

#[test]
fn every_stage_situation_gets_its_status() {
    use BlockReason::*;
    let cases: Vec<(&str, ObservedBuild, &str, Status)> = vec![
        (
            "in sync",
            build(
                "A-B-1",
                "Finished/Successful",
                true,
                "Build=done Staging*=done Smoke=done Prod*=next Verify",
            ),
            "Staging",
            Status::InSync,
        ),
        (
            "complete build, last manual stage",
            build(
                "A-B-1",
                "Finished/Successful",
                false,
                "Build=done Staging*=done Smoke=done Prod*=done Verify=done",
            ),
            "Prod",
            Status::InSync,
        ),
        (
            "ahead",
            build(
                "A-B-1",
                "Finished/Successful",
                false,
                "Build=done Staging*=done Smoke=done Prod*=done Verify=done",
            ),
            "Staging",
            Status::Ahead {
                beyond: vec!["Prod".into()],
            },
        ),
        (
            "running at target",
            build(
                "A-B-1",
                "InProgress",
                false,
                "Build=done Staging*=running Smoke=pending Prod* Verify",
            ),
            "Staging",
            Status::Running {
                stage: Some("Staging".into()),
            },
        ),
        (
            "queued, no stages listed yet",
            build("A-B-1", "Queued", false, ""),
            "Staging",
            Status::Running { stage: None },
        ),
        (
            "finished with no stages listed: no such stage",
            build("A-B-1", "Finished/Successful", false, ""),
            "Staging",
            Status::Blocked {
                reason: BlockReason::StageMissing,
            },
        ),
        (
            "target ran, automatic stages after it still running",
            build(
                "A-B-1",
                "InProgress",
                false,
                "Build=done Staging*=done Smoke=running Prod* Verify",
            ),
            "Staging",
            Status::Running {
                stage: Some("Smoke".into()),
            },
        ),
        (
            "running before target",
            build(
                "A-B-1",
                "InProgress",
                false,
                "Build=running Staging* Smoke Prod* Verify",
            ),
            "Staging",
            Status::Running {
                stage: Some("Build".into()),
            },
        ),
        (
            "failed before",
            build(
                "A-B-1",
                "Finished/Failed",
                false,
                "Build=failed Staging* Smoke Prod* Verify",
            ),
            "Staging",
            Status::Blocked {
                reason: FailedBefore {
                    stage: "Build".into(),
                },
            },
        ),
        (
            "failed at",
            build(
                "A-B-1",
                "Finished/Failed",
                false,
                "Build=done Staging*=failed Smoke Prod* Verify",
            ),
            "Staging",
            Status::Blocked {
                reason: FailedAt {
                    stage: "Staging".into(),
                },
            },
        ),
        (
            "stopped",
            build(
                "A-B-1",
                "NotBuilt",
                false,
                "Build=stopped Staging* Smoke Prod* Verify",
            ),
            "Staging",
            Status::Blocked {
                reason: Stopped {
                    stage: Some("Build".into()),
                },
            },
        ),
        (
            "target missing",
            build("A-B-1", "Finished/Successful", true, PAUSED_BEFORE_STAGING),
            "Stagin",
            Status::Blocked {
                reason: StageMissing,
            },
        ),
        (
            "not manual",
            build("A-B-1", "Finished/Successful", true, PAUSED_BEFORE_STAGING),
            "Smoke",
            Status::Blocked { reason: NotManual },
        ),
    ];
    for (name, build, stage, expected) in cases {
        assert_eq!(assess(&build, stage, false), expected, "case {name}");
    }
}

#[test]
fn a_promotion_runs_from_the_runnable_stage_through_the_automatic_ones_after_the_target() {
    let paused = build("A-B-7", "Finished/Successful", true, PAUSED_BEFORE_STAGING);
    let cases: Vec<(&str, bool, Vec<&str>)> = vec![
        ("Staging", false, vec!["Staging", "Smoke"]),
        // Manual stages cannot be skipped: reaching Prod runs Staging on the way.
        ("Prod", false, vec!["Staging", "Smoke", "Prod", "Verify"]),
        ("Staging", true, vec!["Staging", "Smoke", "Prod", "Verify"]),
    ];
    for (stage, all, runs) in cases {
        let status = assess(&paused, stage, all);
        assert_eq!(
            queue(&status),
            (stage, runs.clone()),
            "target {stage}, executeAllStages {all}"
        );
        let Status::Queue { action } = status else {
            unreachable!()
        };
        assert_eq!(action.path, "queue/A-B-7");
        assert_eq!(
            action.query[1],
            ("executeAllStages".to_string(), all.to_string())
        );
        assert_eq!(action.fingerprint, paused.fingerprint());
    }
}

#[test]
fn recorded_builds_from_real_servers() {
    let paused = fixture("bamboo6-result-paused-at-manual-stage.json");
    // Paused before a manual stage that is followed by another manual stage: one stage runs.
    assert_eq!(
        queue(&assess(&paused, "initiate-deploy-prod-canary", false)),
        (
            "initiate-deploy-prod-canary",
            vec!["initiate-deploy-prod-canary"]
        )
    );
    assert_eq!(
        queue(&assess(&paused, "prod-canary-verify", false)).1,
        vec!["initiate-deploy-prod-canary", "prod-canary-verify"]
    );
    // The trap: asking again for a manual stage that already ran must not queue anything.
    assert_eq!(assess(&paused, "milan-verify", false), Status::InSync);
    assert_eq!(
        assess(&paused, "staging-verify", false),
        Status::Ahead {
            beyond: vec!["initiate-deploy-milan".into(), "milan-verify".into()]
        }
    );
    assert_eq!(
        assess(&paused, "Default Stage", false),
        Status::Blocked {
            reason: BlockReason::NotManual
        }
    );

    let failed = fixture("bamboo12-result_detail.json");
    assert_eq!(
        assess(&failed, "Provision", false),
        Status::Blocked {
            reason: BlockReason::NotManual
        }
    );
    let stopped = fixture("bamboo12-result_stopped.json");
    assert!(matches!(
        assess(&stopped, "Provision", false),
        Status::Blocked { .. }
    ));
}

const MANIFEST: &str = "apiVersion: bamboo-promote/v1
kind: Promotion
metadata: {name: t}
spec:
  targets:
    - {id: staging, plan: A-B, stage: Staging}
    - {id: prod, plan: A-B, build: 6, stage: Prod, after: [staging]}
    - {id: branch, plan: A-B, branch: feature/x, stage: Staging}
    - {id: gone, plan: A-GONE, stage: Staging}
";

fn desired() -> manifest::Desired {
    manifest::load_text(Path::new("t.yaml"), MANIFEST.as_bytes().to_vec())
        .expect("test manifest is valid")
}

fn observed(
    latest: Option<ObservedBuild>,
    six: Option<ObservedBuild>,
    branch: Option<ObservedBranch>,
    enabled: bool,
) -> Observed {
    let mut observed = Observed::default();
    observed.plans.insert(
        "A-B".into(),
        Some(ObservedPlan {
            enabled,
            stages: vec![],
        }),
    );
    observed.plans.insert("A-GONE".into(), None);
    observed
        .branches
        .insert(("A-B".into(), "feature/x".into()), branch.clone());
    observed
        .builds
        .insert(("A-B".into(), BuildSelector::Latest), latest.map(Arc::new));
    observed
        .builds
        .insert(("A-B".into(), BuildSelector::Number(6)), six.map(Arc::new));
    if let Some(branch) = branch {
        observed
            .builds
            .insert((branch.key, BuildSelector::Latest), None);
    }
    observed
}

fn statuses(plan: &Plan) -> Vec<(&str, &Status)> {
    plan.items
        .iter()
        .map(|i| (i.target.id.as_str(), &i.status))
        .collect()
}

#[test]
fn plan_level_statuses_missing_things_and_after() {
    let paused7 = build("A-B-7", "Finished/Successful", true, PAUSED_BEFORE_STAGING);
    let paused6 = build(
        "A-B-6",
        "Finished/Successful",
        true,
        "Build=done Staging*=done Smoke=done Prod*=next Verify",
    );
    let branch = ObservedBranch {
        key: "A-B1".into(),
        enabled: true,
    };
    let plan = plan(
        &desired(),
        &observed(
            Some(paused7.clone()),
            Some(paused6.clone()),
            Some(branch),
            true,
        ),
        NOW,
    );
    let s = statuses(&plan);
    assert!(matches!(s[0].1, Status::Queue { .. }));
    assert_eq!(
        s[1].1,
        &Status::Waiting {
            on: vec!["staging".into()]
        }
    );
    assert_eq!(
        s[2].1,
        &Status::Blocked {
            reason: BlockReason::NoBuild
        }
    );
    assert_eq!(
        s[3].1,
        &Status::Blocked {
            reason: BlockReason::PlanMissing
        }
    );

    // Upstream in sync: the downstream promotion is queued.
    let synced7 = build(
        "A-B-7",
        "Finished/Successful",
        true,
        "Build=done Staging*=done Smoke=done Prod*=next Verify",
    );
    let plan2 = plan_fn(&observed(Some(synced7), Some(paused6.clone()), None, true));
    assert_eq!(plan2.items[0].status, Status::InSync);
    assert_eq!(queue(&plan2.items[1].status).1, vec!["Prod", "Verify"]);
    assert_eq!(
        plan2.items[2].status,
        Status::Blocked {
            reason: BlockReason::BranchMissing
        }
    );

    // A disabled plan blocks promotions but still reports what is in sync.
    let plan3 = plan_fn(&observed(Some(paused7), Some(paused6), None, false));
    assert_eq!(
        plan3.items[0].status,
        Status::Blocked {
            reason: BlockReason::PlanDisabled
        }
    );
    assert_eq!(plan3.summary().blocked, 4);
}

fn plan_fn(observed: &Observed) -> Plan {
    plan(&desired(), observed, NOW)
}

/// Windows are not what these tables are about: any moment does.
const NOW: Moment = Moment {
    now: jiff::Timestamp::UNIX_EPOCH,
    latest: jiff::Timestamp::UNIX_EPOCH,
    override_windows: false,
};

#[test]
fn online_check_points_at_unknown_plans_and_stages() {
    let paused = build("A-B-7", "Finished/Successful", true, PAUSED_BEFORE_STAGING);
    let mut obs = observed(Some(paused), None, None, true);
    obs.plans.insert(
        "A-B".into(),
        Some(ObservedPlan {
            enabled: true,
            stages: vec![
                "Build".into(),
                "Staging".into(),
                "Smoke".into(),
                "Prod".into(),
                "Verify".into(),
            ],
        }),
    );
    let errors = check(&desired(), &obs);
    let found: Vec<(&str, (usize, usize))> =
        errors.iter().map(|e| (e.code, e.line_column())).collect();
    assert_eq!(
        found,
        vec![
            ("bamboo::unknown_branch", (8, 39)),
            ("bamboo::unknown_plan", (9, 24))
        ]
    );
}

#[test]
fn a_fingerprint_hashes_the_builds_state_and_not_its_labels() {
    use sha2::{Digest, Sha256};
    let mut paused = build(
        "A-B-7",
        "Finished/Successful",
        true,
        "Build=done Deploy*=next",
    );
    let text = "A-B-7|Finished|Successful|true|false\
                |Build:Finished:Successful:false|Deploy:NotBuilt:Unknown:true";
    let hex: String = Sha256::digest(text)[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(paused.fingerprint(), hex);
    paused.labels.push("bamboo-promote-lock".into());
    assert_eq!(paused.fingerprint(), hex, "labels come and go");
    paused.stages[1].runnable = false;
    assert_ne!(paused.fingerprint(), hex);
}

#[test]
fn a_downgrade_is_a_newer_build_at_the_first_stage_the_call_runs() {
    // Build 1 waits before Staging; promoting it to Prod runs Staging, Smoke and Prod.
    let older = build(
        "P-A-1",
        "Finished/Successful",
        true,
        "Build=done Staging*=next Smoke Prod*",
    );
    let Status::Queue { action } = assess(&older, "Prod", false) else {
        panic!("build 1 can be promoted to Prod");
    };
    let newer = |spec: &str| build("P-A-2", "Finished/Successful", true, spec);
    let at_staging = || BlockReason::Downgrade {
        newer: "P-A-2".into(),
        stage: "Staging".into(),
    };
    let cases: [(&str, &str, bool, Option<BlockReason>); 7] = [
        (
            "ran the target",
            "Build=done Staging*=done Smoke=done Prod*=done",
            true,
            Some(at_staging()),
        ),
        (
            "ran a stage on the way",
            "Build=done Staging*=done Smoke=done Prod*=next",
            true,
            Some(at_staging()),
        ),
        (
            "runs it now",
            "Build=done Staging*=running Smoke Prod*",
            true,
            Some(at_staging()),
        ),
        (
            "queued at it",
            "Build=done Staging*=pending Smoke Prod*",
            true,
            Some(at_staging()),
        ),
        (
            "failed at it",
            "Build=done Staging*=failed Smoke Prod*",
            true,
            None,
        ),
        (
            "not there yet",
            "Build=done Staging*=next Smoke Prod*",
            true,
            None,
        ),
        (
            "not there, but not all read",
            "Build=done Staging*=next Smoke Prod*",
            false,
            Some(BlockReason::DowngradeUnchecked {
                read: 1,
                stage: "Staging".into(),
            }),
        ),
    ];
    for (case, spec, complete, expected) in cases {
        let newer = newer(spec);
        assert_eq!(
            downgrade([&newer], complete, &action, 0),
            expected,
            "{case}"
        );
    }
    assert_eq!(downgrade([], true, &action, 0), None, "no newer build");
    // A newer build short of the stage, with another apply's lock: a call may be on its way.
    // A lock expires after its lifetime plus the bound on clock skew (an hour).
    let now = 1000 + 600_000 + 3_600_000 + 1;
    let mut locked = newer("Build=done Staging*=next Smoke Prod*");
    locked.labels = vec!["bamboo-promote-lock-1000-600-dead".into()];
    assert_eq!(
        downgrade([&locked], true, &action, now),
        None,
        "an expired lock"
    );
    locked
        .labels
        .push(format!("bamboo-promote-lock-{}-600-beef", now - 1000));
    assert_eq!(
        downgrade([&locked], true, &action, now),
        Some(BlockReason::NewerLocked {
            newer: "P-A-2".into()
        }),
        "a live lock"
    );
}

/// A watcher's mark blocks its stage on its build for good (a person takes it off). While the
/// stage a mark names has not run — its call may still land — it blocks every promotion on its
/// plan's builds: a call sent first could be undone by it, or turn it into a run of the next
/// manual stage. A mark whose stage ran, or whose build failed a stage, is settled.
#[test]
fn a_watchers_mark_blocks_its_stage_and_while_unsettled_its_plan() {
    let status = |latest_labels: &[&str], six: Option<(&str, &[&str])>| {
        let mut latest = build("A-B-7", "Finished/Successful", true, PAUSED_BEFORE_STAGING);
        latest.labels = latest_labels.iter().map(|l| l.to_string()).collect();
        let six = six.map(|(stages, labels)| {
            let mut six = build("A-B-6", "Finished/Successful", true, stages);
            six.labels = labels.iter().map(|l| l.to_string()).collect();
            six
        });
        let plan = plan_fn(&observed(Some(latest), six, None, true));
        plan.items
            .into_iter()
            .find(|i| i.target.id == "staging")
            .map(|i| i.status)
            .unwrap()
    };
    let tried = |label: &str| BlockReason::Tried {
        label: label.into(),
    };
    let unsettled = |build: &str, label: &str| BlockReason::TriedUnsettled {
        build: build.into(),
        label: label.into(),
    };
    let paused_at_prod = "Build=done Staging*=done Smoke=done Prod*=next Verify";
    type Case<'a> = (
        &'a str,
        &'a [&'a str],
        Option<(&'a str, &'a [&'a str])>,
        Option<BlockReason>,
    );
    let cases: Vec<Case> = vec![
        ("no mark", &[], None, None),
        (
            "its mark",
            &["bamboo-promote-tried-staging"],
            None,
            Some(tried("bamboo-promote-tried-staging")),
        ),
        (
            "its mark, in another case",
            &["BAMBOO-PROMOTE-TRIED-STAGING"],
            None,
            Some(tried("BAMBOO-PROMOTE-TRIED-STAGING")),
        ),
        (
            "another stage's mark, its stage not run",
            &["bamboo-promote-tried-prod"],
            None,
            Some(unsettled("A-B-7", "bamboo-promote-tried-prod")),
        ),
        (
            "a mark naming no stage of the build",
            &["bamboo-promote-tried-dr"],
            None,
            Some(unsettled("A-B-7", "bamboo-promote-tried-dr")),
        ),
        (
            "an older build's mark, its stage run",
            &[],
            Some((paused_at_prod, &["bamboo-promote-tried-staging"])),
            None,
        ),
        (
            "an older build's mark, its stage not run",
            &[],
            Some((PAUSED_BEFORE_STAGING, &["bamboo-promote-tried-staging"])),
            Some(unsettled("A-B-6", "bamboo-promote-tried-staging")),
        ),
        (
            "an older build's mark, a stage before it failed",
            &[],
            Some((
                "Build=done Staging*=done Smoke=failed Prod* Verify",
                &["bamboo-promote-tried-prod"],
            )),
            None,
        ),
        (
            "an older build's mark, the build running",
            &[],
            Some((
                "Build=done Staging*=running Smoke Prod* Verify",
                &["bamboo-promote-tried-staging"],
            )),
            None,
        ),
    ];
    for (case, labels, six, blocked) in cases {
        let status = status(labels, six);
        match (&blocked, &status) {
            (None, Status::Queue { .. }) => {}
            (Some(expected), Status::Blocked { reason }) => assert_eq!(reason, expected, "{case}"),
            _ => panic!("{case}: {status:?}"),
        }
    }
}
