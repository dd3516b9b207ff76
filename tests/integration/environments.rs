//! What runs where (issue 22): a target in sync whose stage a newer build has run since is
//! superseded, and every format says so.

use crate::support::Sim;
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
