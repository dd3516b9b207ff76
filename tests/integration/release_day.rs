//! Release-day controls: gates on a target's build, checked when planning and again under the
//! lease, from the labels read with the build (no request of their own).

use crate::support::Sim;
use crate::worlds::{SHOP, manifests, path_str};

const GATED: &str = "apiVersion: bamboo-promote/v1
kind: Promotion
metadata: { name: gated }
spec:
  targets:
    - id: app-staging
      plan: SHOP-APP
      build: 42
      stage: Deploy Staging
      require: { labels: [rc], withoutLabels: [do-not-promote] }
";

#[test]
fn a_gate_not_met_blocks_with_its_reason_and_gates_that_pass_are_shown() {
    let sim = Sim::start(SHOP);
    let passing = manifests(GATED);
    let ran = sim.cmd(&["plan", path_str(&passing)]).run();
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(
        ran.stdout.contains("gates: ✓ rc, ✓ without do-not-promote"),
        "{}",
        ran.stdout
    );
    let requests = sim.requests().len();

    let lacking = manifests(&GATED.replace("labels: [rc]", "labels: [rc, qa-approved]"));
    let ran = sim
        .cmd(&["apply", "--auto-approve", path_str(&lacking)])
        .run();
    assert_eq!(ran.code, 3, "blocked: {}", ran.stdout);
    assert!(
        ran.stdout
            .contains("blocked: the build lacks label qa-approved (require.labels)"),
        "{}",
        ran.stdout
    );
    assert!(sim.queue_writes().is_empty());
    assert!(
        sim.requests().iter().all(|r| r["method"] == "GET"),
        "a blocked gate writes nothing, not even a lock"
    );
    // A gate costs no request: the labels come with the build.
    sim.clear_requests();
    sim.cmd(&["plan", path_str(&passing)]).run();
    assert_eq!(sim.requests().len(), requests);

    let forbidden =
        manifests(&GATED.replace("withoutLabels: [do-not-promote]", "withoutLabels: [rc]"));
    let ran = sim
        .cmd(&["plan", "--format", "json", path_str(&forbidden)])
        .run();
    let doc = crate::contracts::plan_json(&ran.stdout);
    let item = &doc["items"][0];
    assert_eq!(item["status"]["reason"]["kind"], "gateNotMet");
    assert_eq!(item["status"]["reason"]["gate"], "withoutLabel");
    assert_eq!(item["gates"][1]["passed"], false);
}

#[test]
fn gates_are_checked_again_under_the_lease() {
    let sim = Sim::start(SHOP);
    let dir = manifests(GATED);
    let plan_dir = crate::support::scratch("gated-plan");
    let plan = plan_dir.join("plan.json");
    let plan = plan.to_str().unwrap();
    assert_eq!(
        sim.cmd(&["plan", "--out", plan, path_str(&dir)]).run().code,
        0
    );
    // Between the plan and the apply, someone marks the build: do not promote.
    let (status, _) = sim.request(
        "POST",
        "/rest/api/latest/result/SHOP-APP-42/label",
        &[
            ("Content-Type", "application/json"),
            ("X-Atlassian-Token", "no-check"),
        ],
        r#"{"name":"do-not-promote"}"#,
    );
    assert_eq!(status, 204);
    for source in [plan, path_str(&dir)] {
        let ran = sim.cmd(&["apply", "--auto-approve", source]).run();
        assert_eq!(ran.code, 3, "{source}: {}", ran.stdout);
        assert!(
            ran.stdout
                .contains("blocked: the build carries label do-not-promote"),
            "{source}: {}",
            ran.stdout
        );
        assert!(sim.queue_writes().is_empty(), "{source}: no call");
    }
    assert_eq!(sim.ran("SHOP-APP-42"), ["Build"]);
}
