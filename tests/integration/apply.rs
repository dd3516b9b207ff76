//! `apply` against the simulator, asserting its request log and how often each stage ran:
//! no write that is not needed, no stage twice, no stage beyond a target — under races, lost
//! answers, faults, stale plans and every [assumed]-behaviour switch.

use crate::support::{Sim, scratch, signal, wait_until, write};
use crate::worlds::{MANIFEST, SHOP, manifests, path_str};

fn apply(sim: &Sim, dir: &std::path::Path, extra: &[&str]) -> crate::support::Ran {
    let mut args = vec!["apply", "--auto-approve"];
    args.extend_from_slice(extra);
    args.push(path_str(dir));
    sim.cmd(&args).run()
}

fn queue_paths(sim: &Sim) -> Vec<String> {
    sim.queue_writes()
        .iter()
        .map(|r| {
            format!(
                "{} {}?{}",
                r["method"].as_str().unwrap(),
                r["path"].as_str().unwrap(),
                r["query"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn apply_queues_what_is_needed_and_a_second_apply_sends_no_write() {
    let sim = Sim::start(SHOP);
    let dir = manifests(MANIFEST);
    let first = apply(&sim, &dir, &[]);
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    let mut writes = queue_paths(&sim);
    writes.sort();
    assert_eq!(
        writes,
        [
            "PUT queue/SHOP-APP-42?stage=Deploy+Staging&executeAllStages=false",
            "PUT queue/SHOP-APP1-1?stage=Deploy+Staging&executeAllStages=false",
        ]
    );
    // Right away (the promoted builds are running) and once they have finished.
    for advance in [0, 60_000] {
        sim.advance(advance);
        sim.clear_requests();
        let again = apply(&sim, &dir, &[]);
        assert_eq!(again.code, 0, "{}", again.stderr);
        assert!(
            queue_paths(&sim).is_empty(),
            "second apply wrote: {:?}",
            sim.queue_writes()
        );
        assert!(
            sim.requests().iter().all(|r| r["method"] == "GET"),
            "no lease either: nothing to promote"
        );
    }
    assert_eq!(sim.ran("SHOP-APP-42"), ["Build", "Deploy Staging", "Smoke"]);
}

#[test]
fn the_trap_a_stage_that_already_ran_is_never_asked_for_again() {
    let sim = Sim::start(SHOP);
    let dir = manifests(&MANIFEST.replace("    - id: app-staging\n      build: { label: rc }\n      stage: Deploy Staging\n    - id: branch-staging\n      branch: release/1.0\n      stage: Deploy Staging\n", ""));
    let ran = apply(&sim, &dir, &[]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(sim.requests().iter().all(|r| r["method"] == "GET"));
    sim.advance(60_000);
    assert_eq!(
        sim.runs("SHOP-API-7"),
        [
            ("Build".into(), 1),
            ("Deploy Staging".into(), 1),
            ("Deploy Prod".into(), 0)
        ]
    );
}

#[test]
fn an_invalid_manifest_anywhere_means_no_request_at_all() {
    let sim = Sim::start(SHOP);
    let dir = manifests(MANIFEST);
    write(
        &dir,
        "zz-broken.yaml",
        "apiVersion: bamboo-promote/v1\nkind: Promotion\nmetadata: { name: x }\nspec:\n  targets:\n    - id: x\n      plan: SHOP-APP\n      stage: Deploy Prod\n      colour: red\n",
    );
    let ran = apply(&sim, &dir, &[]);
    assert_eq!(ran.code, 1);
    assert!(
        ran.stderr.contains("unknown field `colour`"),
        "{}",
        ran.stderr
    );
    assert!(sim.requests().is_empty(), "{:?}", sim.requests());
}

#[test]
fn without_a_terminal_apply_needs_auto_approve() {
    let sim = Sim::start(SHOP);
    let dir = manifests(MANIFEST);
    let ran = sim.cmd(&["apply", path_str(&dir)]).run();
    assert_eq!(ran.code, 1);
    assert!(ran.stderr.contains("--auto-approve"), "{}", ran.stderr);
    assert!(sim.queue_writes().is_empty());
}

#[test]
fn on_a_terminal_apply_asks_and_only_yes_goes_on() {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python/answer_on_a_terminal.py");
    let dir = manifests(MANIFEST);
    for (answer, code, writes) in [("no", 1, 0), ("y", 1, 0), ("yes", 0, 2)] {
        let sim = Sim::start(SHOP);
        let out = std::process::Command::new("python3")
            .arg(&script)
            .arg(answer)
            .args([crate::support::BIN, "apply", path_str(&dir)])
            .env("BAMBOO_URL", &sim.url)
            .env("NO_COLOR", "1")
            .env_remove("BAMBOO_TOKEN")
            .env_remove("BAMBOO_USERNAME")
            .env_remove("BAMBOO_PASSWORD")
            .output()
            .expect("python3 runs");
        let printed = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{answer:?}: {printed}{stderr}"
        );
        assert!(
            printed.contains("Do you want to perform these 2 promotions?"),
            "{printed}"
        );
        assert_eq!(sim.queue_writes().len(), writes, "{answer:?}: {printed}");
        if writes == 0 {
            assert!(printed.contains("nothing was queued"), "{printed}");
        }
    }
}

/// Instant stages: one process's promotion completes before the other can write.
const RACE_WORLD: &str = "
settings: { clock: manual SWITCH }
projects:
  - key: SHOP
    plans:
      - key: APP
        stages:
          - { name: Build, durationMs: 0 }
          - { name: Deploy Staging, manual: true, durationMs: 0 }
          - { name: Smoke, durationMs: 0 }
          - { name: Deploy Prod, manual: true, durationMs: 0 }
          - { name: Verify, durationMs: 0 }
        builds:
          - { number: 42, state: { pausedBefore: Deploy Staging } }
";

const RACE_MANIFEST: &str = "apiVersion: bamboo-promote/v1
kind: Promotion
metadata: { name: race }
spec:
  targets:
    - { id: app-staging, plan: SHOP-APP, build: 42, stage: Deploy Staging }
";

const SWITCHES: [&str; 9] = [
    "",
    ", behaviour: { continueRanStage: reject }",
    ", behaviour: { continueStageBound: nextOnly }",
    ", behaviour: { continueBusy: ignore }",
    ", behaviour: { continueComplete: ignore }",
    ", behaviour: { continueFailed: reject }",
    ", behaviour: { stageNames: caseInsensitive }",
    ", behaviour: { unknownStage: ignore }",
    ", behaviour: { disabledPlan: ignore }",
];

#[test]
fn two_applies_at_once_never_run_a_stage_twice_under_every_switch() {
    let dir = manifests(RACE_MANIFEST);
    for switch in SWITCHES {
        let sim = Sim::start(&RACE_WORLD.replace(" SWITCH", switch));
        for round in 0..20 {
            sim.reset();
            let children: Vec<_> = (0..2)
                .map(|_| {
                    sim.cmd(&["apply", "--auto-approve", path_str(&dir)])
                        .spawn()
                })
                .collect();
            let outputs: Vec<_> = children
                .into_iter()
                .map(|c| c.wait_with_output().unwrap())
                .collect();
            for output in &outputs {
                assert!(
                    output.status.success(),
                    "switch {switch:?} round {round}: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
            let runs = sim.runs("SHOP-APP-42");
            assert_eq!(
                runs,
                [
                    ("Build".into(), 1),
                    ("Deploy Staging".into(), 1),
                    ("Smoke".into(), 1),
                    ("Deploy Prod".into(), 0),
                    ("Verify".into(), 0)
                ],
                "switch {switch:?} round {round}"
            );
            assert_eq!(
                sim.queue_writes().len(),
                1,
                "switch {switch:?} round {round}: exactly one queue call"
            );
        }
    }
}

#[test]
fn a_write_whose_answer_is_lost_runs_the_stage_once_and_reports_success() {
    let sim = Sim::start(SHOP);
    sim.set_faults(r#"{ "script": [ { "method": "PUT", "path": "queue/SHOP-APP-42", "fault": "loseResponse" } ] }"#);
    let dir = manifests(MANIFEST);
    let audit_dir = scratch("audit");
    let audit = audit_dir.join("audit.jsonl");
    let ran = apply(
        &sim,
        &dir,
        &[
            "--request-timeout",
            "1s",
            "--audit-log",
            audit.to_str().unwrap(),
        ],
    );
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    assert!(
        ran.stderr.contains("confirmed by re-reading"),
        "{}",
        ran.stderr
    );
    let puts: Vec<_> = queue_paths(&sim)
        .into_iter()
        .filter(|p| p.contains("SHOP-APP-42"))
        .collect();
    assert_eq!(puts.len(), 1, "never retried blindly: {puts:?}");
    sim.advance(60_000);
    assert_eq!(
        sim.runs("SHOP-APP-42")
            .iter()
            .find(|(s, _)| s == "Deploy Staging")
            .unwrap()
            .1,
        1
    );
    let audit = crate::contracts::audit_log(&audit);
    assert!(
        audit.lines().any(|l| l.contains("outcome unknown")),
        "{audit}"
    );
    assert!(
        audit
            .lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
    );
}

#[test]
fn flaky_reads_dropped_connections_and_rate_limits_still_converge() {
    let sim = Sim::start(SHOP);
    sim.set_faults(
        r#"{ "errorRate": 0.25, "dropRate": 0.1, "seed": 7, "retryAfterSecs": 1,
        "script": [ { "method": "GET", "fault": "rateLimit" } ] }"#,
    );
    let dir = manifests(MANIFEST);
    let ran = apply(&sim, &dir, &[]);
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    let log = sim.requests();
    assert!(
        log.iter().any(|r| r["status"] == 429) && log.iter().any(|r| r["status"] == 503),
        "faults were injected"
    );
    sim.advance(60_000);
    assert_eq!(sim.ran("SHOP-APP-42"), ["Build", "Deploy Staging", "Smoke"]);
    assert_eq!(sim.ran("SHOP-APP1-1"), ["Build", "Deploy Staging", "Smoke"]);
}

#[test]
fn a_saved_plan_runs_as_planned_once_and_is_refused_when_stale() {
    let sim = Sim::start(SHOP);
    let dir = manifests(MANIFEST);
    let plan_dir = scratch("plan");
    let plan = plan_dir.join("plan.json");
    let planned = sim
        .cmd(&["plan", "--out", plan.to_str().unwrap(), path_str(&dir)])
        .run();
    assert_eq!(planned.code, 0, "{}", planned.stderr);
    sim.clear_requests();
    // The plan names its server: none need be given.
    let first = sim
        .cmd(&["apply", "--auto-approve", plan.to_str().unwrap()])
        .env_remove("BAMBOO_URL")
        .run();
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    assert_eq!(sim.queue_writes().len(), 2);
    sim.clear_requests();
    let second = sim
        .cmd(&["apply", "--auto-approve", plan.to_str().unwrap()])
        .run();
    assert_eq!(
        second.code, 5,
        "stale: {}\n{}",
        second.stdout, second.stderr
    );
    assert!(second.stdout.contains("plan is stale"), "{}", second.stdout);
    // It says what changed, not only that a fingerprint did.
    assert!(
        second
            .stdout
            .contains("Deploy Staging is running, Smoke is queued since this plan was made"),
        "{}",
        second.stdout
    );
    assert!(sim.queue_writes().is_empty());
    // The same server written with a trailing slash is the same server.
    let slashed = format!("{}/", sim.url);
    let third = sim
        .cmd(&["apply", "--auto-approve", plan.to_str().unwrap()])
        .server(&slashed)
        .run();
    assert_eq!(third.code, 5, "{}\n{}", third.stdout, third.stderr);
}

#[test]
fn with_wait_after_holds_upstream_finishes_before_downstream_is_queued() {
    let world = SHOP.replace("- { number: 7, state: { pausedBefore: Deploy Prod } }", "- { number: 7, state: { pausedBefore: Deploy Prod } }\n          - { number: 8, state: { pausedBefore: Deploy Staging } }");
    let sim = Sim::start(&world);
    let dir = manifests(
        "apiVersion: bamboo-promote/v1
kind: Promotion
metadata: { name: ordered }
spec:
  targets:
    - { id: app-staging, plan: SHOP-APP, build: 42, stage: Deploy Staging }
    - { id: api-prod, plan: SHOP-API, build: 8, stage: Deploy Prod, after: [app-staging] }
",
    );
    let child = sim
        .cmd(&[
            "apply",
            "--auto-approve",
            "--wait",
            "--poll-interval",
            "100ms",
            "--timeout",
            "60s",
            path_str(&dir),
        ])
        .spawn();
    let ran = sim.wait_advancing(child, 250);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let writes = sim.queue_writes();
    let at = |key: &str| {
        writes
            .iter()
            .find(|r| r["path"] == format!("queue/{key}"))
            .map(|r| r["atMs"].as_u64().unwrap())
            .unwrap()
    };
    let (upstream, downstream) = (at("SHOP-APP-42"), at("SHOP-API-8"));
    // Deploy Staging and Smoke take 1 s each on the sim clock.
    assert!(
        downstream >= upstream + 2000,
        "downstream queued at {downstream} ms, upstream at {upstream} ms"
    );
    assert_eq!(
        sim.ran("SHOP-API-8"),
        ["Build", "Deploy Staging", "Deploy Prod"]
    );
    assert!(ran.stdout.contains("2 promoted"), "{}", ran.stdout);
}

#[test]
fn a_stage_that_fails_after_promotion_fails_the_run() {
    let world = SHOP.replace("- { name: Smoke }", "- { name: Smoke, failures: 1 }");
    let sim = Sim::start(&world);
    let dir = manifests(&MANIFEST.replace(
        "    - id: branch-staging\n      branch: release/1.0\n      stage: Deploy Staging\n",
        "",
    ));
    let child = sim
        .cmd(&[
            "apply",
            "--auto-approve",
            "--wait",
            "--poll-interval",
            "100ms",
            "--format",
            "json",
            path_str(&dir),
        ])
        .spawn();
    let ran = sim.wait_advancing(child, 500);
    assert_eq!(ran.code, 6, "{}", ran.stderr);
    let events = crate::contracts::events(&ran.stdout);
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"planned")
            && kinds.contains(&"promoted")
            && kinds.contains(&"stageFailed")
            && kinds.last() == Some(&"summary"),
        "{kinds:?}"
    );
    assert!(events.iter().all(|e| e["formatVersion"] == "2.5"));
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "stageFailed" && e["stage"] == "Smoke")
    );
}

#[test]
fn ctrl_c_stops_waiting_and_says_what_was_queued() {
    let sim = Sim::start(SHOP);
    let dir = manifests(MANIFEST);
    let child = sim
        .cmd(&[
            "apply",
            "--auto-approve",
            "--wait",
            "--poll-interval",
            "100ms",
            path_str(&dir),
        ])
        .spawn();
    // The sim clock never moves, so apply waits until interrupted, once both calls are sent.
    wait_until("apply did not queue", || sim.queue_writes().len() >= 2);
    signal(&child, "INT");
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(130), "{stdout}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("SIGINT: no new write"));
    assert!(
        stdout.contains("2 promoted") && stdout.contains("stopped by SIGINT"),
        "{stdout}"
    );
    assert_eq!(sim.queue_writes().len(), 2, "no call after the interrupt");
}

/// Every audit record says who ran the apply and from which CI run, as the record on the build
/// says the run: a compliance job reads the log alone.
#[test]
fn audit_records_name_the_actor_and_the_ci_run() {
    let sim = Sim::start(SHOP);
    let dir = manifests(MANIFEST);
    let audit_dir = scratch("audit");
    let audit = audit_dir.join("audit.jsonl");
    let ran = sim
        .cmd(&[
            "apply",
            "--auto-approve",
            "--audit-log",
            audit.to_str().unwrap(),
            path_str(&dir),
        ])
        .env("GITHUB_ACTOR", "alice")
        .env("GITHUB_SERVER_URL", "https://github.example")
        .env("GITHUB_REPOSITORY", "shop/promotions")
        .env("GITHUB_RUN_ID", "9")
        .run();
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    let audit = crate::contracts::audit_log(&audit);
    let records: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert!(!records.is_empty());
    for record in &records {
        assert_eq!(record["actor"], "alice", "{record}");
        assert_eq!(
            record["ciRun"], "https://github.example/shop/promotions/actions/runs/9",
            "{record}"
        );
    }
}
