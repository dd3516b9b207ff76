//! `plan` and `status` against the simulator: output, exit codes, and the requests made.

use std::collections::HashSet;

use crate::support::{Run, Sim, redact};
use crate::worlds::{MANIFEST, SHOP, manifests, path_str};

#[test]
fn plan_shows_calls_and_stages_and_only_reads_each_thing_once() {
    let sim = Sim::start(SHOP);
    let dir = manifests(MANIFEST);
    let ran = sim.cmd(&["plan", path_str(&dir)]).run();
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    insta::assert_snapshot!("plan_human", redact(&ran.stdout, &sim));

    let log = sim.requests();
    assert!(
        log.iter().all(|r| r["method"] == "GET"),
        "plan only reads: {log:?}"
    );
    let distinct: HashSet<String> = log
        .iter()
        .map(|r| format!("{} {}?{}", r["method"], r["path"], r["query"]))
        .collect();
    assert_eq!(distinct.len(), log.len(), "no request twice: {log:#?}");
    // Eight reads: SHOP-APP's build labelled rc, SHOP-APP's newest builds (rc pins a build
    // short of its stage: is a newer one further? the downgrade check) and the number after
    // the newest (a running build a listing left out), SHOP-APP's branch listing (its key; a
    // page, then the empty one that ends it) and the branch's newest build, SHOP-API-7, and
    // a page of SHOP-API's history (7 is in sync: has a newer build run its stage since?).
    // No plan read: a build says its plan exists and whether it is enabled.
    assert_eq!(log.len(), 8, "{log:#?}");
}

#[test]
fn a_reader_that_stops_early_is_no_error() {
    let sim = Sim::start(SHOP);
    let dir = manifests(MANIFEST);
    for args in [vec!["plan", path_str(&dir)], vec!["schema"]] {
        let ran = sim.cmd(&args).closed_stdout().run();
        assert_eq!(ran.code, 0, "{args:?}: {}", ran.stderr);
        assert_eq!(ran.stderr, "", "{args:?}");
    }
}

#[test]
fn detailed_exitcode_says_changes_are_pending_and_blocked_targets_have_their_own_code() {
    let sim = Sim::start(SHOP);
    let dir = manifests(MANIFEST);
    assert_eq!(
        sim.cmd(&["plan", "--detailed-exitcode", path_str(&dir)])
            .run()
            .code,
        2
    );
    let blocked = manifests(&format!(
        "{MANIFEST}    - {{ id: web-staging, plan: SHOP-WEB, stage: Deploy Staging }}\n"
    ));
    let ran = sim.cmd(&["plan", path_str(&blocked)]).run();
    assert_eq!(ran.code, 3, "{}", ran.stdout);
    assert!(
        ran.stdout
            .contains("blocked: stage Build failed before the target"),
        "{}",
        ran.stdout
    );
}

#[test]
fn json_and_markdown_plans() {
    let sim = Sim::start(SHOP);
    let dir = manifests(MANIFEST);
    let ran = sim.cmd(&["plan", "--format", "json", path_str(&dir)]).run();
    let doc = crate::contracts::plan_json(&ran.stdout);
    assert_eq!(doc["formatVersion"], "2.5");
    assert_eq!(doc["summary"]["toPromote"], 2);
    let app = &doc["items"][0];
    assert_eq!(app["status"]["status"], "promote");
    assert_eq!(app["status"]["action"]["path"], "queue/SHOP-APP-42");
    assert_eq!(
        app["status"]["action"]["runs"],
        serde_json::json!(["Deploy Staging", "Smoke"])
    );
    assert_eq!(
        doc["items"][2]["status"]["status"], "inSync",
        "the trap: staging already ran"
    );

    let ran = sim
        .cmd(&["plan", "--format", "markdown", "shop.yaml"])
        .current_dir(&dir)
        .run();
    insta::assert_snapshot!("plan_markdown", redact(&ran.stdout, &sim));
}

#[test]
fn status_shows_where_each_target_stands() {
    let sim = Sim::start(SHOP);
    let dir = manifests(MANIFEST);
    let ran = sim.cmd(&["status", path_str(&dir)]).run();
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    insta::assert_snapshot!("status_human", redact(&ran.stdout, &sim));
}

#[test]
fn unknown_plan_and_stage_point_at_the_manifest_line() {
    let sim = Sim::start(SHOP);
    let dir = manifests(
        &MANIFEST
            .replace(
                "stage: Deploy Staging\n    - id: branch",
                "stage: Deploy Stagin\n    - id: branch",
            )
            .replace("plan: SHOP-API", "plan: SHOP-APX"),
    );
    let ran = sim.cmd(&["plan", "."]).current_dir(&dir).run();
    assert_eq!(ran.code, 1);
    insta::assert_snapshot!("plan_online_diagnostics", ran.stderr);
}

#[test]
fn credentials_come_from_the_environment_and_never_show() {
    let world = SHOP.replace("settings: { clock: manual }", "settings: { clock: manual }\nauth:\n  tokens: [{ token: s3cret-token, permissions: [read] }]");
    let sim = Sim::start(&world);
    let dir = manifests(MANIFEST);
    let denied = sim.cmd(&["plan", path_str(&dir)]).run();
    assert_eq!(denied.code, 1);
    assert!(
        denied.stderr.contains("401")
            && denied
                .stderr
                .contains("no credentials were given: set BAMBOO_TOKEN"),
        "{}",
        denied.stderr
    );
    let wrong = Run::new(&["plan", path_str(&dir)])
        .server(&sim.url)
        .env("BAMBOO_TOKEN", "not-the-token")
        .run();
    assert_eq!(wrong.code, 1);
    assert!(
        wrong
            .stderr
            .contains("did not accept the credentials given"),
        "{}",
        wrong.stderr
    );
    let ran = Run::new(&["plan", "--format", "json", path_str(&dir)])
        .server(&sim.url)
        .env("BAMBOO_TOKEN", "s3cret-token")
        .run();
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(!ran.stdout.contains("s3cret") && !ran.stderr.contains("s3cret"));
    // A read-only token may plan but not apply: the refusal says which permission is missing.
    let applied = Run::new(&["apply", "--auto-approve", path_str(&dir)])
        .server(&sim.url)
        .env("BAMBOO_TOKEN", "s3cret-token")
        .run();
    assert_eq!(applied.code, 1, "{}", applied.stderr);
    let output = applied.stdout + &applied.stderr;
    assert!(
        output.contains("403") && output.contains("a token with USER permission"),
        "{output}"
    );
    assert!(!output.contains("s3cret"));
    assert!(sim.queue_writes().is_empty());
}

#[test]
fn a_server_under_a_context_path() {
    let sim = Sim::start(&SHOP.replace(
        "settings: { clock: manual }",
        "settings: { clock: manual, contextPath: /bamboo }",
    ));
    let dir = manifests(MANIFEST);
    let ran = Run::new(&["plan", path_str(&dir)])
        .server(&format!("{}/bamboo/", sim.url))
        .run();
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(ran.stdout.contains("2 to promote"), "{}", ran.stdout);
    // A wrong address is one message naming it and the fix, not one error per target.
    let wrong = [
        (sim.url.clone(), "with its context path if it has one"),
        (
            format!("{}/bamboo/ci", sim.url),
            &*format!(
                "without a context path if it has none (such as {})",
                sim.url
            ),
        ),
        (
            format!("{}/bamboo/rest/api/latest", sim.url),
            "without /rest/api/latest",
        ),
    ];
    for (server, fix) in wrong {
        let ran = Run::new(&["plan", path_str(&dir)]).server(&server).run();
        assert_eq!(ran.code, 1, "{server}: {}", ran.stderr);
        assert!(
            ran.stderr
                .contains(&format!("{server} does not answer as Bamboo"))
                && ran.stderr.contains(fix),
            "{server}: {}",
            ran.stderr
        );
        assert_eq!(ran.stderr.lines().count(), 1, "{server}: {}", ran.stderr);
    }
}

#[test]
fn target_selects_targets_with_those_they_are_after() {
    let sim = Sim::start(SHOP);
    let text = "apiVersion: bamboo-promote/v1
kind: Promotion
metadata: { name: shop }
spec:
  targets:
    - { id: app-staging, plan: SHOP-APP, build: { label: rc }, stage: Deploy Staging }
    - { id: branch-staging, plan: SHOP-APP, branch: release/1.0, stage: Deploy Staging }
    - { id: api-prod, plan: SHOP-API, build: 7, stage: Deploy Prod, after: [app-staging] }
";
    let dir = manifests(text);
    let ran = sim
        .cmd(&["plan", "--target", "api-prod", path_str(&dir)])
        .run();
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(ran.stdout.contains("Plan for 2 targets"), "{}", ran.stdout);
    assert!(ran.stdout.contains("app-staging"), "{}", ran.stdout);
    assert!(!ran.stdout.contains("branch-staging"), "{}", ran.stdout);
    let paths: Vec<String> = sim
        .requests()
        .iter()
        .map(|r| r["path"].as_str().unwrap().to_string())
        .collect();
    assert!(
        paths.iter().all(|p| !p.contains("branch")),
        "the unselected target is not read: {paths:?}"
    );

    sim.reset();
    let typo = sim
        .cmd(&["plan", "--target", "api-prd", path_str(&dir)])
        .run();
    assert_eq!(typo.code, 1, "{}", typo.stderr);
    assert!(
        typo.stderr.contains("--target api-prd")
            && typo.stderr.contains("did you mean `api-prod`?"),
        "{}",
        typo.stderr
    );
    assert!(sim.requests().is_empty(), "nothing is contacted");

    let saved = dir.join("plan.json");
    std::fs::write(&saved, "{}").unwrap();
    let whole = sim
        .cmd(&[
            "apply",
            "--auto-approve",
            "--target",
            "api-prod",
            path_str(&saved),
        ])
        .run();
    assert_eq!(whole.code, 1, "{}", whole.stderr);
    assert!(
        whole.stderr.contains("a saved plan is applied whole"),
        "{}",
        whole.stderr
    );
    assert!(sim.requests().is_empty(), "nothing is contacted");
}

#[test]
fn two_selectors_that_name_the_same_build_with_different_stages_are_an_error() {
    let sim = Sim::start(SHOP);
    let dir = manifests(
        "apiVersion: bamboo-promote/v1
kind: Promotion
metadata: { name: twice }
spec:
  targets:
    - { id: by-number, plan: SHOP-APP, build: 42, stage: Deploy Staging }
    - { id: by-label, plan: SHOP-APP, build: { label: rc }, stage: Deploy Prod }
",
    );
    let ran = sim.cmd(&["apply", "--auto-approve", path_str(&dir)]).run();
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert!(
        ran.stderr.contains("bamboo::same_build")
            && ran.stderr.contains("SHOP-APP-42")
            && ran.stderr.contains("wants `Deploy Prod`"),
        "{}",
        ran.stderr
    );
    assert!(
        sim.requests().iter().all(|r| r["method"] == "GET"),
        "nothing written"
    );
}

#[test]
fn markdown_comments_escape_fold_link_order_and_stay_under_githubs_limit() {
    // 600 targets over one plan whose stage names carry Markdown; every fourth needs a call.
    let mut world = String::from(
        "settings: { clock: manual }\nprojects:\n  - key: BIG\n    plans:\n      - key: P\n        stages:\n          - { name: Build }\n          - { name: \"Deploy | *prod*\", manual: true }\n        builds:\n",
    );
    let mut manifest = String::from(
        "apiVersion: bamboo-promote/v1\nkind: Promotion\nmetadata: { name: big }\nspec:\n  targets:\n",
    );
    for n in 1..=600 {
        let state = if n % 4 == 0 {
            "{ pausedBefore: \"Deploy | *prod*\" }"
        } else {
            "complete"
        };
        world.push_str(&format!("          - {{ number: {n}, state: {state} }}\n"));
        let after = if n == 8 { ", after: [t4]" } else { "" };
        manifest.push_str(&format!(
            "    - {{ id: t{n}, plan: BIG-P, build: {n}, stage: \"Deploy | *prod*\", allowDowngrade: true{after} }}\n"
        ));
    }
    let sim = Sim::start(&world);
    let dir = manifests(&manifest);
    let ran = sim
        .cmd(&["plan", "--format", "markdown", "shop.yaml"])
        .current_dir(&dir)
        .run();
    let comment = ran.stdout;
    assert!(comment.len() < 65_536, "{} characters", comment.len());
    assert!(
        comment.starts_with("<!-- bamboo-promote:plan shop.yaml -->"),
        "{comment}"
    );
    assert!(comment.contains("Deploy \\| \\*prod\\*"), "escaped");
    assert!(!comment.contains("Deploy | *prod*"), "never raw in a cell");
    assert!(comment.contains(&format!("[BIG-P-4]({}/browse/BIG-P-4)", sim.url)));
    assert!(comment.contains("<details><summary>450 in sync or ahead</summary>"));
    assert!(
        comment.contains("more targets are not shown"),
        "the cap says what it left out"
    );
    // The 150 that need something come first, whole: t8 waits on t4, the others need a call.
    let first_table = comment.split("<details>").next().unwrap();
    assert_eq!(first_table.matches("promote to").count(), 149);
    assert_eq!(first_table.matches("waiting on t4").count(), 1);
    assert!(comment.contains("```mermaid\ngraph LR"), "{comment}");
    // Status is titled as such.
    let status = sim
        .cmd(&["status", "--format", "markdown", "shop.yaml"])
        .current_dir(&dir)
        .run();
    assert!(status.stdout.contains("### bamboo-promote status"));
    assert!(
        status
            .stdout
            .starts_with("<!-- bamboo-promote:status shop.yaml -->")
    );
}

/// `plan --compare BASE --format markdown`: the pull request's comment shows first what the
/// change adds, changes and removes, with what each will do, and folds the rest, saying how
/// many of those a merge would promote all the same; it names the commit, the time and the CI
/// run. A base that is not valid is an error: a comparison with it would show changes that are
/// not there.
#[test]
fn a_pull_requests_comment_shows_what_the_change_does_first() {
    let sim = Sim::start(SHOP);
    let base = manifests(MANIFEST);
    let head = manifests(
        &MANIFEST
            .replace("build: 7\n      stage: Deploy Staging", "build: 7\n      stage: Deploy Prod")
            .replace(
                "    - id: branch-staging\n      branch: release/1.0\n      stage: Deploy Staging\n",
                "    - id: branch-prod\n      branch: release/1.0\n      stage: Deploy Prod\n      after: [app-staging]\n",
            ),
    );
    let git = |args: &[&str]| {
        let status = std::process::Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .current_dir(&*head)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "git {args:?}");
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "promote the API to production"]);
    let ran = sim
        .cmd(&[
            "plan",
            "--format",
            "markdown",
            "--compare",
            path_str(&base),
            "shop.yaml",
        ])
        .current_dir(&head)
        .env("GITHUB_SERVER_URL", "https://github.example.com")
        .env("GITHUB_REPOSITORY", "shop/promotions")
        .env("GITHUB_RUN_ID", "4242")
        .run();
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(&*head)
        .output()
        .unwrap();
    let commit = String::from_utf8(commit.stdout).unwrap();
    assert!(
        ran.stdout
            .contains(&format!("Manifests at `{}`", commit.trim()))
    );
    let shown = redact(&ran.stdout, &sim).replace(commit.trim(), "[COMMIT]");
    insta::assert_snapshot!("plan_markdown_compared", shown);

    // On a terminal or in a log, the same after the plan.
    let human = sim
        .cmd(&["plan", "--compare", path_str(&base), "shop.yaml"])
        .current_dir(&head)
        .run();
    assert!(
        human.stdout.ends_with(
            "This change, against the base:\n  ~ api-staging: stage: Deploy Staging → Deploy Prod\n  + branch-prod: added\n  - branch-staging: removed (SHOP-APP (release/1.0) › Deploy Staging); nothing is undone on Bamboo\n"
        ),
        "{}",
        human.stdout
    );
    let unchanged = sim
        .cmd(&[
            "plan",
            "--format",
            "markdown",
            "--compare",
            "shop.yaml",
            "shop.yaml",
        ])
        .current_dir(&head)
        .run();
    assert!(
        unchanged
            .stdout
            .contains("_It adds, changes or removes no target._"),
        "{}",
        unchanged.stdout
    );
    std::fs::write(
        base.join("shop.yaml"),
        "apiVersion: bamboo-promote/v1\nkind: Promotion\n",
    )
    .unwrap();
    let broken = sim
        .cmd(&[
            "plan",
            "--format",
            "markdown",
            "--compare",
            path_str(&base),
            "shop.yaml",
        ])
        .current_dir(&head)
        .run();
    assert_eq!(broken.code, 1, "{}", broken.stderr);
    assert!(
        broken
            .stderr
            .contains("the base's manifests (--compare) are not valid"),
        "{}",
        broken.stderr
    );
}
