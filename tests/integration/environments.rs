//! What runs where (issue 22): the environments view in its three formats, a target in sync
//! whose stage a newer build has run since (superseded), locks in plain sight, and the exit
//! code that tells "waits for a window" from "needs a person".

use crate::support::{Sim, redact};
use crate::worlds::{manifests, path_str};

const PROD_RAN_42: &str = "
settings: { clock: manual }
projects:
  - key: SHOP
    plans:
      - key: APP
        stages:
          - { name: Build }
          - { name: Deploy Staging, manual: true }
          - { name: Deploy Prod, manual: true }
        builds:
          - { number: 41, state: complete }
          - { number: 42, state: complete }
          - { number: 43, state: { pausedBefore: Deploy Staging } }
";

/// Build 42 ran Deploy Prod after 41: a manifest pinning 41 there is in sync (Bamboo cannot
/// run the stage again on 41), and the plan says 42 superseded it, in every format. The exit
/// code does not change.
#[test]
fn a_pin_in_sync_that_a_newer_build_superseded_says_so_in_every_format() {
    let sim = Sim::start(PROD_RAN_42);
    for allow in ["", ", allowDowngrade: true"] {
        let dir = manifests(&format!(
            "apiVersion: bamboo-promote/v1\nkind: Promotion\nmetadata: {{ name: prod }}\nspec:\n  targets:\n    - {{ id: prod, plan: SHOP-APP, build: 41, stage: Deploy Prod{allow} }}\n"
        ));
        let ran = sim
            .cmd(&["plan", "--detailed-exitcode", path_str(&dir)])
            .run();
        assert_eq!(ran.code, 0, "{allow}: {}\n{}", ran.stdout, ran.stderr);
        assert!(ran.stdout.contains("= prod"), "{}", ran.stdout);
        assert!(
            ran.stdout.contains("superseded: SHOP-APP-42 has since run Deploy Prod; Bamboo cannot run that stage again on SHOP-APP-41"),
            "{allow}: {}",
            ran.stdout
        );
        let json = sim.cmd(&["plan", "--format", "json", path_str(&dir)]).run();
        let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
        assert_eq!(doc["items"][0]["supersededBy"], "SHOP-APP-42", "{allow}");
        assert_eq!(doc["items"][0]["status"]["status"], "inSync");
        let markdown = sim
            .cmd(&["plan", "--format", "markdown", path_str(&dir)])
            .run();
        assert!(
            markdown
                .stdout
                .contains("in sync — superseded: SHOP-APP-42 has since run Deploy Prod"),
            "{}",
            markdown.stdout
        );
    }
    // The newest build that ran it is in sync, and superseded by nothing.
    let dir = manifests(
        "apiVersion: bamboo-promote/v1\nkind: Promotion\nmetadata: { name: prod }\nspec:\n  targets:\n    - { id: prod, plan: SHOP-APP, build: 42, stage: Deploy Prod }\n",
    );
    let ran = sim.cmd(&["plan", path_str(&dir)]).run();
    assert!(!ran.stdout.contains("superseded"), "{}", ran.stdout);
    assert!(sim.queue_writes().is_empty());
}

/// After an exit 7 the build keeps that run's lock label. `plan` and `status` say the build is
/// locked and what to do; `locks` lists it; `unlock --force` wants a reason, which goes into
/// the audit trail with the label it removed.
#[test]
fn a_live_lock_is_in_plain_sight_and_forcing_it_off_needs_a_reason() {
    let sim = Sim::start(&crate::safety::world(1000, "", ""));
    let label = format!(
        "bamboo-promote-lock-v2-{}-600000-deadbeef",
        crate::safety::SERVER_EPOCH_MS
    );
    let (status, body) = sim.request(
        "POST",
        "/rest/api/latest/result/SHOP-APP-42/label",
        &[
            ("Content-Type", "application/json"),
            ("X-Atlassian-Token", "no-check"),
        ],
        &format!(r#"{{"name":"{label}"}}"#),
    );
    assert_eq!(status, 204, "{body}");
    let dir = manifests(crate::safety::STAGING);
    for command in ["plan", "status"] {
        let ran = sim.cmd(&[command, path_str(&dir)]).run();
        assert!(
            ran.stdout.contains(&format!(
                "locked by another apply: label {label}, taken 0s ago, expires in 10m"
            )) && ran
                .stdout
                .contains("bamboo-promote unlock SHOP-APP-42 --force --reason"),
            "{command}: {}",
            ran.stdout
        );
    }
    let json = sim.cmd(&["plan", "--format", "json", path_str(&dir)]).run();
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert!(
        doc["items"][0]["lockedBy"]
            .as_str()
            .is_some_and(|l| l.contains(&label)),
        "{doc}"
    );
    let listed = sim.cmd(&["locks", path_str(&dir)]).run();
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    assert!(
        listed
            .stdout
            .contains(&format!("SHOP-APP-42  live: label {label}, taken 0s ago")),
        "{}",
        listed.stdout
    );

    let forced = sim.cmd(&["unlock", "--force", "SHOP-APP-42"]).run();
    assert_eq!(
        forced.code, 64,
        "--force without --reason: {}",
        forced.stderr
    );
    assert!(forced.stderr.contains("--reason"), "{}", forced.stderr);
    assert_eq!(
        crate::safety::lock_labels(&sim, "SHOP-APP-42"),
        std::slice::from_ref(&label)
    );

    let audit = dir.join("audit.jsonl");
    let forced = sim
        .cmd(&[
            "unlock",
            "--force",
            "--reason",
            "checked in Bamboo after an exit 7",
            "--audit-log",
            path_str(&audit),
            "SHOP-APP-42",
        ])
        .run();
    assert_eq!(forced.code, 0, "{}", forced.stderr);
    assert!(crate::safety::lock_labels(&sim, "SHOP-APP-42").is_empty());
    let trail = std::fs::read_to_string(&audit).unwrap();
    assert!(
        trail
            .lines()
            .any(|l| l.contains(&label)
                && l.contains(r#""reason":"checked in Bamboo after an exit 7""#)),
        "{trail}"
    );
    let listed = sim.cmd(&["locks", path_str(&dir)]).run();
    assert!(
        listed.stdout.contains("No lock labels"),
        "{}",
        listed.stdout
    );
}

/// Exit 8 tells "will happen by itself" from "needs a person": a target blocked only by a
/// closed window gives 8 in plan, status and apply; one blocked for another reason beside it
/// gives 3.
#[test]
fn a_closed_window_alone_exits_8_and_anything_else_blocked_exits_3() {
    // The simulator's clock starts on Friday 2027-01-01 at 01:00 in Berlin: the office is
    // closed.
    let sim = Sim::start(crate::worlds::SHOP);
    let windowed = crate::release_day::WINDOWED;
    let dir = manifests(windowed);
    for command in ["plan", "status", "apply"] {
        let mut args = vec![command];
        if command == "apply" {
            args.push("--auto-approve");
        }
        args.push(path_str(&dir));
        let ran = sim.cmd(&args).run();
        assert_eq!(ran.code, 8, "{command}: {}\n{}", ran.stdout, ran.stderr);
    }
    // Beside it, a target on a build that does not exist: a person must act.
    let both = format!(
        "{windowed}    - {{ id: missing, plan: SHOP-APP, build: 999, stage: Deploy Staging }}\n"
    );
    let dir = manifests(&both);
    for command in ["plan", "status"] {
        let ran = sim.cmd(&[command, path_str(&dir)]).run();
        assert_eq!(ran.code, 3, "{command}: {}\n{}", ran.stdout, ran.stderr);
    }
    assert!(sim.queue_writes().is_empty());
}

const RELEASE: &str = "apiVersion: bamboo-promote/v1
kind: Promotion
metadata: { name: release }
spec:
  targets:
    - { id: app-staging, plan: SHOP-APP, build: latest, stage: Deploy Staging }
    - { id: app-prod, plan: SHOP-APP, build: 42, stage: Deploy Prod }
    - { id: web-prod, plan: SHOP-WEB, build: latest, stage: Deploy Prod }
";

const TWO_PLANS: &str = "
settings: { clock: manual }
projects:
  - key: SHOP
    plans:
      - key: APP
        stages:
          - { name: Build }
          - { name: Deploy Staging, manual: true }
          - { name: Deploy Prod, manual: true }
        builds:
          - { number: 41, state: complete }
          - { number: 42, state: { pausedBefore: Deploy Prod } }
          - { number: 43, state: { pausedBefore: Deploy Staging } }
      - key: WEB
        stages:
          - { name: Build }
          - { name: Deploy Prod, manual: true }
        builds:
          - { number: 7, state: { pausedBefore: Deploy Prod } }
";

/// What runs where, in the three formats: for each plan and manual stage, the build that last
/// ran it and how long ago, what is on its way, and the targets that want it. The JSON
/// follows its schema; the view costs one history page per plan beyond what `plan` reads.
#[test]
fn the_environments_view_in_every_format() {
    let sim = Sim::start(TWO_PLANS);
    sim.advance(2 * 3600 * 1000 + 5 * 60 * 1000);
    let dir = manifests(RELEASE);
    let before = sim.requests().len();
    let plan = sim.cmd(&["plan", path_str(&dir)]).run();
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    let planned = sim.requests().len();
    let human = sim.cmd(&["environments", path_str(&dir)]).run();
    assert_eq!(human.code, 0, "{}", human.stderr);
    let viewed = sim.requests().len();
    let plans = 2;
    assert_eq!(
        (viewed - planned) - (planned - before),
        plans,
        "one history page per plan beyond the plan's reads"
    );
    insta::assert_snapshot!("environments_human", redact(&human.stdout, &sim));
    let json = sim
        .cmd(&["environments", "--format", "json", path_str(&dir)])
        .run();
    assert_eq!(json.code, 0, "{}", json.stderr);
    let doc = crate::contracts::environments_json(&json.stdout);
    assert_eq!(
        doc["plans"][0]["stages"][1]["current"]["build"],
        "SHOP-APP-41"
    );
    assert_eq!(
        doc["plans"][0]["stages"][1]["onItsWay"][0]["build"],
        "SHOP-APP-42"
    );
    insta::assert_snapshot!("environments_json", redact(&json.stdout, &sim));
    let markdown = sim
        .cmd(&["environments", "--format", "markdown", path_str(&dir)])
        .run();
    assert_eq!(markdown.code, 0, "{}", markdown.stderr);
    insta::assert_snapshot!("environments_markdown", redact(&markdown.stdout, &sim));
    assert!(sim.queue_writes().is_empty(), "a view writes nothing");
}

const BUILD_42_RUNNING: &str = "
settings: { clock: manual }
projects:
  - key: SHOP
    plans:
      - key: APP
        stages:
          - { name: Build, durationMs: 60000 }
          - { name: Deploy Staging, manual: true }
        builds:
          - { number: 41, state: complete }
          - { number: 42, state: { runningAt: Build } }
";

/// Apply does what was approved, and no more. On a terminal, under `--wait`, the confirmation
/// lists the promotion the run may make later (build 42, still building, to Deploy Staging);
/// while it waits, a newer build 43 becomes `latest`: its promotion was not approved, so it is
/// not made, and the run says so (exit 5, as a stale plan).
#[test]
fn the_confirmation_lists_later_promotions_and_nothing_unlisted_is_made() {
    use std::io::{Read, Write};
    let sim = Sim::start(BUILD_42_RUNNING);
    let dir = manifests(
        "apiVersion: bamboo-promote/v1\nkind: Promotion\nmetadata: { name: staging }\nspec:\n  targets:\n    - { id: app-staging, plan: SHOP-APP, build: latest, stage: Deploy Staging }\n",
    );
    let apply = format!(
        "{} apply --wait --poll-interval 100ms --timeout 30s --server {} {}",
        env!("CARGO_BIN_EXE_bamboo-promote"),
        sim.url,
        path_str(&dir)
    );
    // `script` gives the command a pseudo-terminal: apply asks only on a terminal.
    let mut child = std::process::Command::new("script")
        .args(["-qec", &apply, "/dev/null"])
        .env("NO_COLOR", "1")
        .env_remove("BAMBOO_URL")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("script(1) runs");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = child.stdout.take().expect("stdout");
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = {
        let seen = seen.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                seen.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buffer[..n]));
            }
        })
    };
    crate::support::wait_until("the confirmation never came", || {
        seen.lock().unwrap().contains("Only 'yes' will be accepted")
    });
    stdin.write_all(b"yes\n").unwrap();
    // While it waits: a newer build, then the clock past both builds' Build stage.
    let (status, body) = sim.write("POST", "queue/SHOP-APP");
    assert_eq!(status, 200, "{body}");
    sim.advance(120_000);
    let code = child.wait().unwrap().code();
    drop(stdin);
    reader.join().unwrap();
    let text = seen.lock().unwrap().clone();
    assert!(
        text.contains("With --wait, this run may also make")
            && text.contains("app-staging  SHOP-APP-42 → Deploy Staging (may run Deploy Staging)"),
        "{text}"
    );
    assert!(
        text.contains("these 1 promotions") || text.contains("this promotion"),
        "{text}"
    );
    assert!(
        text.contains("SHOP-APP-43 → Deploy Staging (runs Deploy Staging) is not in the approved plan (approved: SHOP-APP-42 → Deploy Staging); run apply again"),
        "{text}"
    );
    assert_eq!(code, Some(5), "{text}");
    // The only queue write is the test's own, which made build 43.
    let writes = sim.queue_writes();
    assert!(
        writes.iter().all(|w| w["method"] == "POST"),
        "nothing unapproved was continued: {writes:?}"
    );
}

/// The apply that put a build in an environment is named, from its record comment on the
/// build, read in the same history page (no request more).
#[test]
fn the_environments_view_names_the_apply_that_promoted_a_build() {
    let sim = Sim::start(TWO_PLANS);
    let dir = manifests(RELEASE);
    let applied = sim
        .cmd(&[
            "apply",
            "--auto-approve",
            "--target",
            "app-prod",
            path_str(&dir),
        ])
        .run();
    assert_eq!(applied.code, 0, "{}\n{}", applied.stdout, applied.stderr);
    sim.advance(10 * 60 * 1000);
    let json = sim
        .cmd(&["environments", "--format", "json", path_str(&dir)])
        .run();
    assert_eq!(json.code, 0, "{}", json.stderr);
    let doc = crate::contracts::environments_json(&json.stdout);
    let prod = &doc["plans"][0]["stages"][1];
    assert_eq!(prod["current"]["build"], "SHOP-APP-42", "{doc:#}");
    let by = prod["current"]["promotedBy"].as_str().unwrap_or_default();
    assert!(
        by.starts_with("target app-prod of manifest set "),
        "{doc:#}"
    );
    let human = sim.cmd(&["environments", path_str(&dir)]).run();
    assert!(
        human
            .stdout
            .contains(" ago · by target app-prod of manifest set release"),
        "{}",
        human.stdout
    );
}
