//! The faults real servers and runners have, each tried over many trials: a write that lands
//! after the client gave up, a 2xx or 5xx that does not say what happened, runners whose
//! clocks disagree, a holder paused at the worst moment, signals during `--wait` and during a
//! call, a server that answers another question, and a server that runs less than asked.
//! Every trial asserts the simulator's witness (`/_sim/runs`: no stage twice, none that was
//! not asked for) and its request log (no second write to a build after an unknown outcome).
//! `docs/safety.md` names these tests beside the claims they check.

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Ran, Sim, scratch, signal, stderr_until, wait_until};
use crate::worlds::{manifests, path_str};

/// One plan, two manual stages, builds 41 (labelled `rc`) and 42 paused before the first.
/// `STAGE_MS` is how long each stage runs on the sim clock; `SETTINGS` adds to `settings`.
pub(crate) const WORLD: &str = "
settings: { clock: manual SETTINGS }
projects:
  - key: SHOP
    plans:
      - key: APP
        stages:
          - { name: Build, durationMs: STAGE_MS }
          - { name: Deploy Staging, manual: true, durationMs: STAGE_MS }
          - { name: Smoke, durationMs: STAGE_MS }
          - { name: Deploy Prod, manual: true, durationMs: STAGE_MS }
          - { name: Verify, durationMs: STAGE_MS }
        builds:
          - { number: 41, labels: [rc], state: { pausedBefore: Deploy Staging } }
          - { number: 42, labels: [LABELS], state: { pausedBefore: Deploy Staging } }
      - key: API
        stages:
          - { name: Build, durationMs: STAGE_MS }
          - { name: Deploy Staging, manual: true, durationMs: STAGE_MS }
        builds:
          - { number: 7, state: { pausedBefore: Deploy Staging } }
";

pub(crate) fn world(stage_ms: u64, settings: &str, labels: &str) -> String {
    WORLD
        .replace("STAGE_MS", &stage_ms.to_string())
        .replace(" SETTINGS", settings)
        .replace("LABELS", labels)
}

/// `app-staging`: build 42 to Deploy Staging, the stage whose second run would be the trap.
pub(crate) const STAGING: &str = "apiVersion: bamboo-promote/v1
kind: Promotion
metadata: { name: safety }
spec:
  targets:
    - { id: app-staging, plan: SHOP-APP, build: 42, stage: Deploy Staging }
";

/// The sim clock's zero on the server's calendar (2027-01-01T00:00:00Z), in ms: lock labels
/// made by hand for a test carry times on this clock.
pub(crate) const SERVER_EPOCH_MS: u64 = 1_798_761_600_000;

/// The stage runs of SHOP-APP-42 once everything it was sent has run: the trap would show as
/// a second Deploy Staging or any Deploy Prod.
pub(crate) fn assert_staging_ran_once(sim: &Sim, trial: &str) {
    sim.advance(600_000);
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
        "{trial}: 0 repeated and 0 unrequested stage runs"
    );
}

pub(crate) fn writes_to(sim: &Sim, build: &str) -> usize {
    sim.queue_writes()
        .iter()
        .filter(|r| r["path"] == format!("queue/{build}"))
        .count()
}

/// Every label of a build, page after page (a world may list them 25 at a time).
pub(crate) fn labels_of(sim: &Sim, build: &str) -> Vec<String> {
    let mut names = Vec::new();
    loop {
        let page = sim.get_json(&format!(
            "result/{build}/label?start-index={}&max-result=100",
            names.len()
        ));
        let labels = &page["labels"];
        let items = labels["label"].as_array().unwrap();
        names.extend(
            items
                .iter()
                .map(|l| l["name"].as_str().unwrap().to_string()),
        );
        if items.is_empty() || names.len() as u64 >= labels["size"].as_u64().unwrap() {
            return names;
        }
    }
}

pub(crate) fn lock_labels(sim: &Sim, build: &str) -> Vec<String> {
    labels_of(sim, build)
        .into_iter()
        .filter(|l| l.starts_with("bamboo-promote-lock-"))
        .collect()
}

pub(crate) fn apply(sim: &Sim, dir: &Path, extra: &[&str]) -> Ran {
    let mut args = vec!["apply", "--auto-approve"];
    args.extend_from_slice(extra);
    args.push(path_str(dir));
    sim.cmd(&args).run()
}

/// Waits (up to 30 s of real time) until the simulator has logged a request that `wanted`
/// picks; the event, not a guess at how long it takes.
pub(crate) fn wait_for_request(sim: &Sim, wanted: impl Fn(&Value) -> bool) {
    wait_until("the request never came", || {
        sim.requests().iter().any(&wanted)
    });
}

#[test]
fn a_write_that_lands_after_the_client_gave_up_is_never_sent_twice() {
    let dir = manifests(STAGING);
    let mut trials = 0;
    for stage_ms in [0, 200] {
        let sim = Sim::start(&world(stage_ms, "", ""));
        for trial in 0..10 {
            let trial = format!("stages of {stage_ms} ms, trial {trial}");
            sim.reset();
            // A proxy holds the call; it reaches Bamboo once the sim clock moves 1 s, long
            // after the client's 1 s timeout.
            sim.set_faults(
                r#"{ "script": [ { "method": "PUT", "path": "queue/SHOP-APP-42",
                     "fault": "applyLate", "afterMs": 1000 } ] }"#,
            );
            let ran = apply(&sim, &dir, &["--request-timeout", "1s"]);
            assert_eq!(ran.code, 7, "{trial}: {}\n{}", ran.stdout, ran.stderr);
            assert!(
                ran.stdout.contains("outcome unknown") && ran.stderr.contains("not sent again"),
                "{trial}: {}\n{}",
                ran.stdout,
                ran.stderr
            );
            assert_eq!(
                lock_labels(&sim, "SHOP-APP-42").len(),
                1,
                "{trial}: the lock stays"
            );
            // Another run while the call is still held, and the build still looks as it was:
            // the lock keeps it off, and it gives up without a write.
            let blocked = apply(&sim, &dir, &["--lock-timeout", "0s"]);
            assert_eq!(blocked.code, 1, "{trial}: {}", blocked.stderr);
            assert!(
                blocked.stderr.contains("expires in")
                    && blocked
                        .stderr
                        .contains("bamboo-promote unlock SHOP-APP-42 --force"),
                "{trial}: {}",
                blocked.stderr
            );
            // The held call lands now.
            sim.advance(1000);
            wait_for_run(&sim, "SHOP-APP-42", "Deploy Staging");
            // Once the lock expires on the server's clock (its 600 s, and the hour two front
            // ends' clocks may be apart), a fresh read decides: in sync.
            sim.advance(601_000 + 3_600_000);
            let later = apply(&sim, &dir, &[]);
            assert_eq!(later.code, 0, "{trial}: {}", later.stderr);
            assert!(
                later.stdout.contains("in sync"),
                "{trial}: {}",
                later.stdout
            );
            assert_eq!(
                writes_to(&sim, "SHOP-APP-42"),
                1,
                "{trial}: one call in all"
            );
            assert!(lock_labels(&sim, "SHOP-APP-42").is_empty(), "{trial}");
            assert_staging_ran_once(&sim, &trial);
            trials += 1;
        }
    }
    assert_eq!(trials, 20);
}

/// Waits for a stage to have started once: a held write is applied by the simulator's own
/// task once the clock passes its time.
pub(crate) fn wait_for_run(sim: &Sim, build: &str, stage: &str) {
    wait_until(&format!("{stage} never ran"), || {
        sim.ran(build).iter().any(|s| s == stage)
    });
}

#[test]
fn a_2xx_that_is_not_json_is_accepted_and_a_5xx_after_the_fact_is_not_retried() {
    let dir = manifests(STAGING);
    let sim = Sim::start(&world(0, "", ""));
    for (fault, trials) in [("appliedGarbage", 10), ("appliedServerError", 10)] {
        for trial in 0..trials {
            let trial = format!("{fault}, trial {trial}");
            sim.reset();
            sim.set_faults(&format!(
                r#"{{ "script": [ {{ "method": "PUT", "path": "queue/", "fault": "{fault}" }} ] }}"#
            ));
            let ran = apply(&sim, &dir, &[]);
            // The HTML 200 is accepted as it is; the 500 leaves the outcome open until the
            // re-read shows the build moved.
            assert_eq!(ran.code, 0, "{trial}: {}\n{}", ran.stdout, ran.stderr);
            assert!(ran.stdout.contains("1 promoted"), "{trial}: {}", ran.stdout);
            assert_eq!(writes_to(&sim, "SHOP-APP-42"), 1, "{trial}");
            assert!(lock_labels(&sim, "SHOP-APP-42").is_empty(), "{trial}");
            assert_staging_ran_once(&sim, &trial);
        }
    }
}

#[test]
fn a_5xx_to_a_write_that_did_not_take_effect_leaves_the_outcome_unknown() {
    let dir = manifests(STAGING);
    let sim = Sim::start(&world(0, "", ""));
    sim.set_faults(r#"{ "script": [ { "method": "PUT", "fault": "serverError" } ] }"#);
    let ran = apply(&sim, &dir, &[]);
    assert_eq!(ran.code, 7, "{}\n{}", ran.stdout, ran.stderr);
    assert_eq!(writes_to(&sim, "SHOP-APP-42"), 1, "not sent again");
    assert_eq!(lock_labels(&sim, "SHOP-APP-42").len(), 1, "the lock stays");
    assert!(sim.ran("SHOP-APP-42") == ["Build"], "nothing ran");
}

/// A gateway that forwards a queue call and answers 429: to the client a refusal, but the
/// stage runs. The call is not sent again, neither after the pause nor by the next apply,
/// which sees the stage ran.
#[test]
fn a_call_answered_429_after_it_took_effect_is_not_sent_again() {
    let dir = manifests(STAGING);
    let sim = Sim::start(&world(0, "", ""));
    sim.set_faults(
        r#"{ "retryAfterSecs": 1, "script": [ { "method": "PUT", "path": "queue/", "fault": "appliedRateLimit" } ] }"#,
    );
    let first = apply(&sim, &dir, &[]);
    assert_eq!(writes_to(&sim, "SHOP-APP-42"), 1, "{}", first.stderr);
    assert!(
        first
            .stderr
            .contains("429: Too Many Requests; a gateway may have passed this call on first"),
        "{}",
        first.stderr
    );
    let again = apply(&sim, &dir, &[]);
    assert_eq!(again.code, 0, "{}\n{}", again.stdout, again.stderr);
    assert_eq!(writes_to(&sim, "SHOP-APP-42"), 1, "not sent again");
    assert_staging_ran_once(&sim, "429 after the fact");
}

/// libfaketime, which makes a process read another wall-clock time (Debian's `libfaketime`;
/// `.ci/run` installs it).
pub(crate) const FAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

#[test]
fn runners_whose_clocks_are_fifteen_minutes_apart_never_both_promote() {
    assert!(
        Path::new(FAKETIME).exists(),
        "this test needs libfaketime at {FAKETIME}: apt-get install libfaketime"
    );
    let dir = manifests(STAGING);
    let audit_dir = scratch("audit");
    let sim = Sim::start(&world(0, "", ""));
    for trial in 0..12 {
        let trial = format!("trial {trial}");
        sim.reset();
        let audits: Vec<_> = (0..2)
            .map(|i| audit_dir.join(format!("audit-{trial}-{i}.jsonl")))
            .collect();
        let children: Vec<Child> = [("+15m", &audits[0]), ("-15m", &audits[1])]
            .into_iter()
            .map(|(offset, audit)| {
                sim.cmd(&[
                    "apply",
                    "--auto-approve",
                    "--audit-log",
                    audit.to_str().unwrap(),
                    path_str(&dir),
                ])
                .env("LD_PRELOAD", FAKETIME)
                .env("FAKETIME", offset)
                .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
                .spawn()
            })
            .collect();
        for child in children {
            let ran = Ran::finish(child);
            assert_eq!(ran.code, 0, "{trial}: {}\n{}", ran.stdout, ran.stderr);
        }
        assert_eq!(
            writes_to(&sim, "SHOP-APP-42"),
            1,
            "{trial}: exactly one call"
        );
        // The shim worked: the runner that wrote recorded its own skewed time.
        let written: Vec<String> = audits
            .iter()
            .filter_map(|a| std::fs::read_to_string(a).ok())
            .collect();
        let record: Value = serde_json::from_str(written.concat().lines().next().unwrap()).unwrap();
        let time: jiff::Timestamp = record["time"].as_str().unwrap().parse().unwrap();
        let skew = (time.as_second() - jiff::Timestamp::now().as_second()).abs() / 60;
        assert!(
            (14..=15).contains(&skew),
            "{trial}: the writer's clock is 15 min off, not {skew}"
        );
        assert_staging_ran_once(&sim, &trial);
    }
}

#[test]
fn a_holder_paused_past_its_lease_does_not_write_from_its_stale_read() {
    let dir = manifests(
        "apiVersion: bamboo-promote/v1
kind: Promotion
metadata: { name: paused }
spec:
  targets:
    - { id: app-staging, plan: SHOP-APP, build: { label: rc2 }, stage: Deploy Staging }
",
    );
    let sim = Sim::start(&world(0, "", "rc2"));
    for trial in 0..5 {
        let trial = format!("trial {trial}");
        sim.reset();
        // The holder's read of the build under its lease is answered as the build stands, but
        // the answer reaches it only once the sim clock moves: the holder is stopped then.
        sim.set_faults(
            r#"{ "script": [ { "method": "GET", "path": "result/SHOP-APP-42",
                 "fault": "hold", "afterMs": 1 } ] }"#,
        );
        // A lease of 25 s with a 20 s request timeout leaves a write window of about 2 s.
        let holder = sim
            .cmd(&[
                "apply",
                "--auto-approve",
                "--request-timeout",
                "20s",
                "--lock-ttl",
                "25s",
                path_str(&dir),
            ])
            .spawn();
        wait_for_request(&sim, |r| {
            r["method"] == "GET" && r["path"] == "result/SHOP-APP-42"
        });
        let paused_at = Instant::now();
        signal(&holder, "STOP");
        // Its lease expires on the server's clock, and the held answer is delivered.
        sim.advance(30_000);
        // Front ends that agree within 4 s: the 25 s lock is 30 s old, so it has expired.
        let other = apply(&sim, &dir, &["--max-clock-skew", "4s"]);
        assert_eq!(other.code, 0, "{trial}: {}\n{}", other.stdout, other.stderr);
        assert_eq!(
            writes_to(&sim, "SHOP-APP-42"),
            1,
            "{trial}: the other run promoted"
        );
        // Paused well past its write window on its own monotonic clock.
        std::thread::sleep(Duration::from_secs(3).saturating_sub(paused_at.elapsed()));
        signal(&holder, "CONT");
        let resumed = Ran::finish(holder);
        assert_eq!(
            resumed.code, 0,
            "{trial}: {}\n{}",
            resumed.stdout, resumed.stderr
        );
        assert_eq!(
            writes_to(&sim, "SHOP-APP-42"),
            1,
            "{trial}: the paused holder sent nothing: {}",
            resumed.stderr
        );
        assert!(lock_labels(&sim, "SHOP-APP-42").is_empty(), "{trial}");
        assert_staging_ran_once(&sim, &trial);
    }
}

/// `app-staging`, then `api-staging` once it is in sync.
pub(crate) const ORDERED: &str = "apiVersion: bamboo-promote/v1
kind: Promotion
metadata: { name: ordered }
spec:
  targets:
    - { id: app-staging, plan: SHOP-APP, build: 42, stage: Deploy Staging }
    - { id: api-staging, plan: SHOP-API, build: 7, stage: Deploy Staging, after: [app-staging] }
";

#[test]
fn after_sigint_during_wait_nothing_more_is_queued() {
    let dir = manifests(ORDERED);
    let sim = Sim::start(&world(1000, "", ""));
    for trial in 0..10 {
        let trial = format!("trial {trial}");
        sim.reset();
        let child = sim
            .cmd(&[
                "apply",
                "--auto-approve",
                "--wait",
                "--poll-interval",
                "10s",
                path_str(&dir),
            ])
            .spawn();
        wait_for_request(&sim, |r| r["path"] == "queue/SHOP-APP-42");
        // The upstream finishes while apply sleeps between rounds: the downstream is ready.
        sim.advance(60_000);
        signal(&child, "INT");
        let ran = Ran::finish(child);
        assert_eq!(ran.code, 130, "{trial}: {}\n{}", ran.stdout, ran.stderr);
        assert!(ran.stderr.contains("SIGINT: no new write"), "{trial}");
        assert!(ran.stdout.contains("stopped by SIGINT"), "{trial}");
        assert_eq!(
            sim.queue_writes().len(),
            1,
            "{trial}: no call after the signal"
        );
        assert_eq!(sim.ran("SHOP-API-7"), ["Build"], "{trial}");
        assert!(lock_labels(&sim, "SHOP-APP-42").is_empty(), "{trial}");
    }
}

#[test]
fn sigterm_during_a_call_sees_it_through_records_it_and_releases_the_lock() {
    let dir = manifests(ORDERED);
    let audit_dir = scratch("audit");
    let sim = Sim::start(&world(0, "", ""));
    for trial in 0..5 {
        let trial = format!("trial {trial}");
        sim.reset();
        let audit = audit_dir.join(format!("audit-{trial}.jsonl"));
        // The call's answer is held until the sim clock moves: the signal comes mid-call.
        sim.set_faults(
            r#"{ "script": [ { "method": "PUT", "path": "queue/SHOP-APP-42",
                 "fault": "hold", "afterMs": 1 } ] }"#,
        );
        let child = sim
            .cmd(&[
                "apply",
                "--auto-approve",
                "--wait",
                "--audit-log",
                audit.to_str().unwrap(),
                path_str(&dir),
            ])
            .spawn();
        wait_for_request(&sim, |r| r["path"] == "queue/SHOP-APP-42");
        signal(&child, "TERM");
        // The held answer arrives; whenever the signal is taken, no write may follow it.
        sim.advance(1);
        let ran = Ran::finish(child);
        assert_eq!(ran.code, 143, "{trial}: {}\n{}", ran.stdout, ran.stderr);
        assert!(ran.stdout.contains("1 promoted"), "{trial}: {}", ran.stdout);
        let audit = crate::contracts::audit_log(&audit);
        assert!(
            audit.contains("SHOP-APP-42") && audit.contains("\"accepted\""),
            "{trial}: the write is in the audit log: {audit}"
        );
        assert_eq!(
            sim.queue_writes().len(),
            1,
            "{trial}: nothing after the signal"
        );
        assert!(
            lock_labels(&sim, "SHOP-APP-42").is_empty(),
            "{trial}: lock released"
        );
        assert_staging_ran_once(&sim, &trial);
    }
}

#[test]
fn a_server_that_ignores_the_label_filter_gets_nothing_promoted() {
    let dir = manifests(
        "apiVersion: bamboo-promote/v1
kind: Promotion
metadata: { name: labelled }
spec:
  targets:
    - { id: app-staging, plan: SHOP-APP, build: { label: rc }, stage: Deploy Staging }
",
    );
    let sim = Sim::start(&world(0, "", ""));
    sim.set_faults(r#"{ "script": [ { "method": "GET", "fault": "ignoreFilter" } ] }"#);
    let ran = apply(&sim, &dir, &[]);
    assert_eq!(ran.code, 1, "{}\n{}", ran.stdout, ran.stderr);
    assert!(
        ran.stderr
            .contains("Bamboo answered with build SHOP-APP-42"),
        "{}",
        ran.stderr
    );
    let writes = sim
        .requests()
        .iter()
        .filter(|r| r["method"] != "GET")
        .count();
    assert_eq!(writes, 0, "no label, no call");
}

#[test]
fn a_result_for_another_build_gets_nothing_promoted() {
    let sim = Sim::start(&world(0, "", ""));
    // Asked for build 41, the server answers with 42: while observing ...
    let by_number = manifests(&STAGING.replace("build: 42", "build: 41"));
    sim.set_faults(r#"{ "script": [ { "method": "GET", "path": "result/SHOP-APP-41", "fault": "otherBuild" } ] }"#);
    let ran = apply(&sim, &by_number, &[]);
    assert_eq!(ran.code, 1, "{}\n{}", ran.stdout, ran.stderr);
    assert!(ran.stderr.contains("build SHOP-APP-42"), "{}", ran.stderr);
    assert_eq!(
        sim.requests()
            .iter()
            .filter(|r| r["method"] != "GET")
            .count(),
        0
    );
    // ... and under the lease, when the build was found by its label.
    sim.reset();
    let by_label = manifests(&STAGING.replace("build: 42", "build: { label: rc }"));
    sim.set_faults(r#"{ "script": [ { "method": "GET", "path": "result/SHOP-APP-41", "fault": "otherBuild" } ] }"#);
    let ran = apply(&sim, &by_label, &[]);
    assert_eq!(ran.code, 1, "{}\n{}", ran.stdout, ran.stderr);
    assert!(ran.stdout.contains("build SHOP-APP-42"), "{}", ran.stdout);
    assert!(sim.queue_writes().is_empty(), "no call");
    assert!(lock_labels(&sim, "SHOP-APP-41").is_empty(), "lock released");
    assert!(sim.ran("SHOP-APP-42") == ["Build"] && sim.ran("SHOP-APP-41") == ["Build"]);
}

#[test]
fn under_next_only_wait_continues_a_build_that_stopped_short_and_reports_what_ran() {
    let sim = Sim::start(&world(
        100,
        ", behaviour: { continueStageBound: nextOnly }",
        "",
    ));
    let dir = manifests(&STAGING.replace("stage: Deploy Staging", "stage: Deploy Prod"));
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
    let ran = sim.wait_advancing(child, 100);
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    assert!(
        ran.stderr
            .contains("paused before Deploy Prod; Bamboo ran Deploy Staging, Smoke; continuing it"),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stdout
            .contains("promoted (finished): Deploy Staging, Smoke, Deploy Prod, Verify"),
        "{}",
        ran.stdout
    );
    assert_eq!(
        writes_to(&sim, "SHOP-APP-42"),
        2,
        "one call per manual stage"
    );
    assert_eq!(
        sim.runs("SHOP-APP-42")
            .iter()
            .map(|(_, n)| *n)
            .collect::<Vec<_>>(),
        [1, 1, 1, 1, 1]
    );
}

#[test]
fn a_continuation_that_ends_blocked_still_reports_what_the_run_did() {
    // The first call runs Deploy Staging and Smoke only; then someone marks the build, and
    // the gate stops the continuation. The run did promote it: short of Deploy Prod.
    let sim = Sim::start(&world(
        100,
        ", behaviour: { continueStageBound: nextOnly }",
        "",
    ));
    let dir = manifests(&STAGING.replace(
        "stage: Deploy Staging }",
        "stage: Deploy Prod, require: { withoutLabels: [hold] } }",
    ));
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
    wait_for_request(&sim, |r| r["method"] == "PUT");
    let (status, _) = sim.request(
        "POST",
        "/rest/api/latest/result/SHOP-APP-42/label",
        &[
            ("Content-Type", "application/json"),
            ("X-Atlassian-Token", "no-check"),
        ],
        r#"{"name":"hold"}"#,
    );
    assert_eq!(status, 204);
    let ran = sim.wait_advancing(child, 100);
    assert_eq!(ran.code, 3, "{}\n{}", ran.stdout, ran.stderr);
    assert!(
        ran.stdout
            .contains("Bamboo ran only Deploy Staging, Smoke and paused before Deploy Prod"),
        "{}",
        ran.stdout
    );
    assert!(ran.stdout.contains("1 paused short"), "{}", ran.stdout);
    assert_eq!(writes_to(&sim, "SHOP-APP-42"), 1, "no continuation");
}

#[test]
fn a_saved_plan_under_next_only_lists_only_the_stages_that_ran() {
    let sim = Sim::start(&world(
        100,
        ", behaviour: { continueStageBound: nextOnly }",
        "",
    ));
    let dir = manifests(&STAGING.replace("stage: Deploy Staging", "stage: Deploy Prod"));
    let plan_dir = scratch("plan");
    let plan = plan_dir.join("plan.json");
    let planned = sim
        .cmd(&["plan", "--out", plan.to_str().unwrap(), path_str(&dir)])
        .run();
    assert_eq!(planned.code, 0, "{}", planned.stderr);
    let child = sim
        .cmd(&[
            "apply",
            "--auto-approve",
            "--wait",
            "--poll-interval",
            "100ms",
            plan.to_str().unwrap(),
        ])
        .spawn();
    let ran = sim.wait_advancing(child, 100);
    assert_eq!(ran.code, 3, "{}\n{}", ran.stdout, ran.stderr);
    assert!(
        ran.stdout
            .contains("Bamboo ran only Deploy Staging, Smoke and paused before Deploy Prod"),
        "{}",
        ran.stdout
    );
    assert_eq!(writes_to(&sim, "SHOP-APP-42"), 1);
}

#[test]
fn a_stale_saved_plan_writes_no_lock_label() {
    let sim = Sim::start(&world(0, "", ""));
    let dir = manifests(STAGING);
    let plan_dir = scratch("plan");
    let plan = plan_dir.join("plan.json");
    let plan = plan.to_str().unwrap();
    assert_eq!(
        sim.cmd(&["plan", "--out", plan, path_str(&dir)]).run().code,
        0
    );
    assert_eq!(sim.cmd(&["apply", "--auto-approve", plan]).run().code, 0);
    sim.clear_requests();
    let again = sim.cmd(&["apply", "--auto-approve", plan]).run();
    assert_eq!(again.code, 5, "{}", again.stdout);
    let writes: Vec<Value> = sim
        .requests()
        .into_iter()
        .filter(|r| r["method"] != "GET")
        .collect();
    assert!(writes.is_empty(), "no label on, no label off: {writes:?}");
}

#[test]
fn locks_name_their_age_and_expiry_and_unlock_clears_them() {
    // A live lock (taken at the sim clock's zero, for 600 s) on build 42, and an expired one
    // on build 41 from a crashed apply.
    let live = format!("bamboo-promote-lock-{SERVER_EPOCH_MS}-600-0000beef");
    // Taken 700 s and an hour ago: past its 600 s and the hour front ends' clocks may differ.
    let dead = format!(
        "bamboo-promote-lock-{}-600-0000dead",
        SERVER_EPOCH_MS - 700_000 - 3_600_000
    );
    let sim =
        Sim::start(&world(0, "", &live).replace("labels: [rc]", &format!("labels: [rc, {dead}]")));
    sim.advance(130_000);
    let dir = manifests(STAGING);
    let started = Instant::now();
    let busy = apply(&sim, &dir, &["--lock-timeout", "1s"]);
    assert_eq!(busy.code, 1, "{}", busy.stderr);
    for words in [
        "waiting for the lock on SHOP-APP-42",
        "taken 2m 10s ago, expires in 7m 50s",
        "bamboo-promote unlock SHOP-APP-42 --force",
    ] {
        assert!(
            busy.stderr.contains(words) || busy.stdout.contains(words),
            "{words}: {}\n{}",
            busy.stdout,
            busy.stderr
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "--lock-timeout is obeyed"
    );
    assert!(sim.queue_writes().is_empty());

    let refused = sim.cmd(&["unlock", "SHOP-APP-42", "SHOP-APP-41"]).run();
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(refused.stderr.contains("has a live lock") && refused.stderr.contains("--force"));
    assert!(
        refused
            .stdout
            .contains(&format!("SHOP-APP-41: removed label {dead}")),
        "{}",
        refused.stdout
    );
    assert_eq!(
        lock_labels(&sim, "SHOP-APP-42"),
        [live],
        "a live lock stays without --force"
    );
    assert!(
        labels_of(&sim, "SHOP-APP-41") == ["rc"],
        "other labels stay"
    );

    let forced = sim
        .cmd(&[
            "unlock",
            "--force",
            "--reason",
            "no apply runs",
            "SHOP-APP-42",
        ])
        .run();
    assert_eq!(forced.code, 0, "{}", forced.stderr);
    assert!(lock_labels(&sim, "SHOP-APP-42").is_empty());
    assert_eq!(apply(&sim, &dir, &[]).code, 0);
    assert_staging_ran_once(&sim, "after unlock");
}

#[test]
fn expired_locks_on_builds_that_need_nothing_are_cleared_by_apply() {
    // Taken 700 s and an hour ago: past its 600 s and the hour front ends' clocks may differ.
    let dead = format!(
        "bamboo-promote-lock-{}-600-0000dead",
        SERVER_EPOCH_MS - 700_000 - 3_600_000
    );
    let world = world(0, "", "").replace(
        "- { number: 7, state: { pausedBefore: Deploy Staging } }",
        &format!("- {{ number: 7, labels: [{dead}], state: complete }}"),
    );
    let sim = Sim::start(&world);
    let dir = manifests(
        "apiVersion: bamboo-promote/v1
kind: Promotion
metadata: { name: synced }
spec:
  targets:
    - { id: api-staging, plan: SHOP-API, build: 7, stage: Deploy Staging }
",
    );
    let ran = apply(&sim, &dir, &[]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(
        ran.stderr
            .contains("removed 1 expired lock label from SHOP-API-7"),
        "{}",
        ran.stderr
    );
    assert!(lock_labels(&sim, "SHOP-API-7").is_empty());
    assert!(sim.queue_writes().is_empty());
}

#[test]
fn a_lock_ttl_too_short_for_the_request_timeout_is_refused_before_anything_is_sent() {
    let sim = Sim::start(&world(0, "", ""));
    let dir = manifests(STAGING);
    let ran = apply(
        &sim,
        &dir,
        &["--request-timeout", "30s", "--lock-ttl", "30s"],
    );
    assert_eq!(ran.code, 1);
    assert!(
        ran.stderr.contains("--lock-ttl must be longer than"),
        "{}",
        ran.stderr
    );
    assert!(sim.requests().is_empty());
}

/// Two targets on one build: the same demand twice, under two ids.
const TWICE: &str = "apiVersion: bamboo-promote/v1
kind: Promotion
metadata: { name: twice }
spec:
  targets:
    - { id: a, plan: SHOP-APP, build: 42, stage: Deploy Staging }
    - { id: b, plan: SHOP-APP, build: { label: rc2 }, stage: Deploy Staging }
";

#[test]
fn after_an_unknown_outcome_no_other_target_writes_to_that_build_in_the_run() {
    let dir = manifests(TWICE);
    let sim = Sim::start(&world(0, "", "rc2"));
    for trial in 0..5 {
        let trial = format!("trial {trial}");
        sim.reset();
        sim.set_faults(
            r#"{ "script": [ { "method": "PUT", "path": "queue/SHOP-APP-42",
                 "fault": "applyLate", "afterMs": 1000000000 } ] }"#,
        );
        // The lock lives 5 s on the server's clock, which the test moves 1 s at a time while
        // the second target would wait for it.
        let child = sim
            .cmd(&[
                "apply",
                "--auto-approve",
                "--request-timeout",
                "1s",
                "--lock-ttl",
                "5s",
                "--lock-timeout",
                "30s",
                path_str(&dir),
            ])
            .spawn();
        let ran = sim.wait_advancing(child, 1000);
        assert_eq!(ran.code, 7, "{trial}: {}\n{}", ran.stdout, ran.stderr);
        assert!(
            ran.stderr.contains("earlier in this run is not settled"),
            "{trial}: {}",
            ran.stderr
        );
        assert_eq!(
            writes_to(&sim, "SHOP-APP-42"),
            1,
            "{trial}: one call in the run"
        );
        let label_writes = sim
            .requests()
            .iter()
            .filter(|r| r["method"] != "GET" && r["path"].as_str().unwrap().contains("/label"))
            .count();
        assert_eq!(
            label_writes, 1,
            "{trial}: the kept lock is not touched again"
        );
        // The held call lands now, long after the run.
        sim.advance(1_000_000_000);
        wait_for_run(&sim, "SHOP-APP-42", "Deploy Staging");
        assert_staging_ran_once(&sim, &trial);
    }
}

#[test]
fn a_server_that_does_not_keep_labels_gets_no_call() {
    let sim = Sim::start(&world(0, "", ""));
    sim.set_faults(
        r#"{ "script": [ { "method": "POST", "path": "/label", "fault": "swallow" } ] }"#,
    );
    let ran = apply(&sim, &manifests(STAGING), &[]);
    assert_eq!(ran.code, 1, "{}\n{}", ran.stdout, ran.stderr);
    assert!(ran.stdout.contains("did not show"), "{}", ran.stdout);
    assert!(sim.queue_writes().is_empty());
    assert_eq!(sim.ran("SHOP-APP-42"), ["Build"]);
}

#[test]
fn wait_decides_nothing_on_reads_older_than_its_calls() {
    let dir = manifests(ORDERED);
    let sim = Sim::start(&world(100, "", ""));
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
    // Once the upstream call is confirmed and its lock released, every read of the next
    // round fails, retries and all.
    wait_for_request(&sim, |r| {
        r["method"] == "DELETE"
            && r["path"]
                .as_str()
                .unwrap()
                .starts_with("result/SHOP-APP-42/label")
    });
    sim.set_faults(r#"{ "script": [ { "method": "GET", "times": 12, "fault": "serverError" } ] }"#);
    let ran = sim.wait_advancing(child, 100);
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    assert!(
        ran.stderr.contains("cannot re-read Bamboo"),
        "{}",
        ran.stderr
    );
    assert!(ran.stdout.contains("2 promoted"), "{}", ran.stdout);
    assert_eq!(writes_to(&sim, "SHOP-APP-42"), 1);
    assert_eq!(sim.ran("SHOP-API-7"), ["Build", "Deploy Staging"]);
}

#[test]
fn an_edited_saved_plan_is_refused_before_anything_is_sent() {
    let sim = Sim::start(&world(0, "", ""));
    let dir = manifests(STAGING);
    let plan_dir = scratch("plan");
    let plan = plan_dir.join("plan.json");
    let plan = plan.to_str().unwrap();
    assert_eq!(
        sim.cmd(&["plan", "--out", plan, path_str(&dir)]).run().code,
        0
    );
    let saved = crate::contracts::plan_json(&std::fs::read_to_string(plan).unwrap());
    // The call's own stage, or its executeAllStages, as a person might edit them.
    let edits: [(&str, Value); 2] = [
        ("stage", Value::from("Deploy Prod")),
        ("executeAllStages", Value::from(true)),
    ];
    for (field, value) in edits {
        let mut edited = saved.clone();
        edited["items"][0]["status"]["action"][field] = value;
        std::fs::write(plan, edited.to_string()).unwrap();
        sim.clear_requests();
        let ran = sim.cmd(&["apply", "--auto-approve", plan]).run();
        assert_eq!(ran.code, 1, "{}", ran.stderr);
        assert!(
            ran.stderr.contains("was the file edited?"),
            "{}",
            ran.stderr
        );
        assert!(sim.requests().is_empty(), "nothing sent");
    }
}

#[test]
fn a_second_signal_during_a_call_still_records_it_and_exits_7() {
    let dir = manifests(STAGING);
    let audit_dir = scratch("audit");
    let audit = audit_dir.join("audit.jsonl");
    let sim = Sim::start(&world(0, "", ""));
    sim.set_faults(
        r#"{ "script": [ { "method": "PUT", "path": "queue/SHOP-APP-42",
             "fault": "hold", "afterMs": 1 } ] }"#,
    );
    let mut child = sim
        .cmd(&[
            "apply",
            "--auto-approve",
            "--audit-log",
            audit.to_str().unwrap(),
            path_str(&dir),
        ])
        .spawn();
    wait_for_request(&sim, |r| r["path"] == "queue/SHOP-APP-42");
    signal(&child, "TERM");
    // The first signal is taken (its line printed) before the second is sent: two signals
    // sent together may be delivered as one.
    let first = stderr_until(&mut child, "SIGTERM: no new write");
    signal(&child, "TERM");
    let ran = Ran::finish(child);
    assert_eq!(ran.code, 7, "{}\n{first}{}", ran.stdout, ran.stderr);
    let audit = crate::contracts::audit_log(&audit);
    assert!(
        audit.contains("abandoned by a second signal") && audit.contains("queue/SHOP-APP-42"),
        "{audit}"
    );
    assert_eq!(lock_labels(&sim, "SHOP-APP-42").len(), 1, "the lock stays");
}

#[test]
fn a_lock_listed_past_the_first_page_of_labels_is_seen() {
    // 30 labels on the build, another apply's live lock last; results list 25 of them.
    let mut labels: Vec<String> = (0..30).map(|i| format!("note-{i:02}")).collect();
    let live = format!("bamboo-promote-lock-{SERVER_EPOCH_MS}-600-0000beef");
    labels.push(live.clone());
    let sim = Sim::start(&world(0, ", labelPage: 25", &labels.join(", ")));
    let ran = apply(&sim, &manifests(STAGING), &["--lock-timeout", "1s"]);
    assert_eq!(ran.code, 1, "{}\n{}", ran.stdout, ran.stderr);
    assert!(
        ran.stderr.contains("waiting for the lock on SHOP-APP-42"),
        "{}",
        ran.stderr
    );
    assert!(sim.queue_writes().is_empty());
    assert_eq!(lock_labels(&sim, "SHOP-APP-42"), [live], "ours came off");

    // Without the other lock, the labels are read in full, page by page, and the call goes.
    sim.reset();
    let sim = Sim::start(&world(0, ", labelPage: 25", &labels[..30].join(", ")));
    let ran = apply(&sim, &manifests(STAGING), &[]);
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    assert_eq!(writes_to(&sim, "SHOP-APP-42"), 1);
    assert_staging_ran_once(&sim, "full labels");
    let label_pages: Vec<String> = sim
        .requests()
        .iter()
        .filter(|r| r["method"] == "GET" && r["path"] == "result/SHOP-APP-42/label")
        .map(|r| r["query"].as_str().unwrap().to_string())
        .collect();
    assert!(
        !label_pages.is_empty() && label_pages.iter().all(|q| q.contains("start-index=")),
        "{label_pages:?}"
    );
}

#[test]
fn a_lock_that_moves_between_label_pages_is_not_missed() {
    // 25 labels: with one lock on the build, its labels take two requests, which are not one
    // snapshot. The red team's race: apply X's lock is 26th when Y reads the build (stages
    // and the first 25 labels); X promotes, then swaps its lock for its record label, so Y's
    // second page shows the same count with X's lock gone. Y must not act on stages read
    // before X's call, which would run Deploy Prod (the trap).
    let labels: Vec<String> = (0..25).map(|i| format!("note-{i:02}")).collect();
    let sim = Sim::start(&world(1000, ", labelPage: 25", &labels.join(", ")));
    let dir = manifests(&STAGING.replace(
        "stage: Deploy Staging }",
        "stage: Deploy Staging, record: { label: promoted-staging } }",
    ));
    let label_reads = |sim: &Sim, method: &str| {
        sim.requests()
            .iter()
            .filter(|r| r["method"] == method && r["path"] == "result/SHOP-APP-42/label")
            .count()
    };
    // X takes its lock; its read of the second label page is held.
    sim.set_faults(
        r#"{ "script": [ { "method": "GET", "path": "SHOP-APP-42/label", "fault": "hold",
             "afterMs": 1000 } ] }"#,
    );
    let x = sim
        .cmd(&["apply", "--auto-approve", path_str(&dir)])
        .spawn();
    wait_until("X reads its label pages", || label_reads(&sim, "GET") == 1);
    // Y takes its lock (held briefly), then its read of the build is held for long.
    sim.set_faults(
        r#"{ "script": [ { "method": "POST", "path": "SHOP-APP-42/label", "fault": "hold",
             "afterMs": 100 } ] }"#,
    );
    let y = sim
        .cmd(&[
            "apply",
            "--auto-approve",
            "--lock-timeout",
            "5s",
            path_str(&dir),
        ])
        .spawn();
    wait_until("Y labels the build", || label_reads(&sim, "POST") == 2);
    let builds_read = |sim: &Sim| {
        sim.requests()
            .iter()
            .filter(|r| r["method"] == "GET" && r["path"] == "result/SHOP-APP-42")
            .count()
    };
    let before = builds_read(&sim);
    sim.set_faults(
        r#"{ "script": [ { "method": "GET", "path": "result/SHOP-APP-42", "fault": "hold",
             "afterMs": 5000 } ] }"#,
    );
    sim.advance(100);
    wait_until("Y reads the build", || builds_read(&sim) == before + 1);
    // X goes on. Its page shows no Y: were that enough, it would promote and swap its lock
    // for its record label. Read again, its labels show Y's lock, and it backs off. Either
    // way its lock comes off; then Y's held read arrives.
    sim.set_faults("{}");
    sim.advance(900);
    wait_until("X takes its lock off", || {
        sim.requests().iter().any(|r| r["method"] == "DELETE")
    });
    sim.advance(5000);
    let (x, y) = (Ran::finish(x), Ran::finish(y));
    assert_eq!(x.code, 0, "X: {}\n{}", x.stdout, x.stderr);
    assert_eq!(y.code, 0, "Y: {}\n{}", y.stdout, y.stderr);
    assert_eq!(writes_to(&sim, "SHOP-APP-42"), 1, "one call in all");
    assert_staging_ran_once(&sim, "moving lock");
    assert!(lock_labels(&sim, "SHOP-APP-42").is_empty());
}

#[test]
fn a_server_that_does_not_page_labels_gets_no_call() {
    // Every page of labels is the first: the rest of the list cannot be read.
    let labels: Vec<String> = (0..30).map(|i| format!("note-{i:02}")).collect();
    let sim = Sim::start(&world(0, ", labelPage: 25", &labels.join(", ")));
    sim.set_faults(
        r#"{ "script": [ { "method": "GET", "path": "/label", "fault": "ignorePaging",
             "times": 100 } ] }"#,
    );
    let ran = apply(&sim, &manifests(STAGING), &[]);
    assert_eq!(ran.code, 1, "{}\n{}", ran.stdout, ran.stderr);
    let said = format!("{}{}", ran.stdout, ran.stderr);
    assert!(
        said.contains("read the labels of SHOP-APP-42")
            && said.contains("the server does not page labels"),
        "{said}"
    );
    assert!(sim.queue_writes().is_empty());
    assert!(
        lock_labels(&sim, "SHOP-APP-42").is_empty(),
        "no lock was left"
    );
}

#[test]
fn a_lock_stamped_from_a_stale_answer_is_stamped_again_before_any_call() {
    let sim = Sim::start(&world(0, "", ""));
    // The first two answers (the plan's reads of the build and of its plan's history) come
    // from a cache: their Date is 700 s old. The third (the read of the number after the
    // newest) contradicts them, which leaves the server's time uncertain back to theirs.
    sim.set_faults(
        r#"{ "script": [ { "method": "GET", "fault": "staleDate", "afterMs": 700000, "times": 2 } ] }"#,
    );
    let ran = apply(&sim, &manifests(STAGING), &[]);
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    // The label as written first carried the stale time; it came off, and the one the call
    // was made under carries the server's.
    let log = sim.requests();
    let deletes = log
        .iter()
        .filter(|r| r["method"] == "DELETE")
        .map(|r| r["path"].as_str().unwrap().to_string())
        .collect::<Vec<_>>();
    // Stamped 700 s before the server's time (give or take the milliseconds of the run).
    let stale = format!(
        "bamboo-promote-lock-v2-{}",
        (SERVER_EPOCH_MS - 700_000) / 1000
    );
    assert!(
        deletes.first().is_some_and(|d| d.contains(&stale)),
        "the stale stamp came off first: {deletes:?}"
    );
    let put = log.iter().position(|r| r["method"] == "PUT").unwrap();
    let before_put = log[..put].iter().filter(|r| r["method"] == "POST").count();
    assert_eq!(before_put, 2, "a second label, then the call");
    assert_eq!(writes_to(&sim, "SHOP-APP-42"), 1);
}

#[test]
fn an_edited_saved_plan_that_names_another_build_or_plan_is_refused() {
    let sim = Sim::start(&world(0, "", ""));
    let dir = manifests(STAGING);
    let plan_dir = scratch("plan");
    let plan = plan_dir.join("plan.json");
    let plan = plan.to_str().unwrap();
    assert_eq!(
        sim.cmd(&["plan", "--out", plan, path_str(&dir)]).run().code,
        0
    );
    let saved = crate::contracts::plan_json(&std::fs::read_to_string(plan).unwrap());
    for (field, value) in [
        ("build", Value::from(41)),
        ("plan", Value::from("SHOP-API")),
    ] {
        let mut edited = saved.clone();
        edited["items"][0]["target"][field] = value;
        std::fs::write(plan, edited.to_string()).unwrap();
        sim.clear_requests();
        let ran = sim.cmd(&["apply", "--auto-approve", plan]).run();
        assert_eq!(ran.code, 1, "{field}: {}", ran.stderr);
        assert!(sim.requests().is_empty(), "{field}: nothing sent");
    }
}
