//! The CI recipes in `examples/ci/` stay true: every `bamboo-promote` command they run is run
//! here, against the simulator, with the environment the recipe sets up, so that a renamed
//! flag or a changed exit code breaks this test rather than a user's pipeline.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{BIN, Sim, scratch, write};
use crate::worlds::MANIFEST;

/// The example manifests' plans, with stages short enough for `--wait` on a real clock.
const WORLD: &str = "
settings: { clock: real }
auth:
  tokens: [{ token: t0ken, permissions: [user] }]
projects:
  - key: SHOP
    plans:
      - key: APP
        stages:
          - { name: Build, durationMs: 20 }
          - { name: Deploy Staging, manual: true, durationMs: 20 }
          - { name: Smoke, durationMs: 20 }
          - { name: Deploy Prod, manual: true, durationMs: 20 }
        branches:
          - { name: release/1.0, key: APP1, builds: [{ number: 1, state: { pausedBefore: Deploy Staging } }] }
        builds:
          - { number: 42, labels: [rc], state: { pausedBefore: Deploy Staging } }
      - key: API
        stages:
          - { name: Build, durationMs: 20 }
          - { name: Deploy Staging, manual: true, durationMs: 20 }
        builds:
          - { number: 7, state: complete }
";

/// The shell lines of a recipe that run bamboo-promote, and the `export` lines before them.
fn commands(recipe: &str) -> (Vec<String>, Vec<String>) {
    let (mut exports, mut commands) = (Vec::new(), Vec::new());
    for line in recipe.lines() {
        let line = line.trim_start().trim_start_matches("- ").trim();
        if line.starts_with("export ") {
            exports.push(line.to_string());
        } else if line.starts_with("bamboo-promote ") {
            commands.push(line.to_string());
        }
    }
    (exports, commands)
}

fn recipe(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples/ci")
            .join(name),
    )
    .unwrap()
}

fn path_with_binary() -> String {
    let dir: PathBuf = Path::new(BIN).parent().unwrap().to_path_buf();
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

#[test]
fn every_command_of_every_recipe_runs_against_the_simulator() {
    let sim = Sim::start(WORLD);
    for (name, expected) in [
        // validate, plan (2: promotions pending, with --detailed-exitcode), apply --wait.
        ("github-actions.yml", vec![0, 2, 0]),
        ("gitlab-ci.yml", vec![0, 0, 0]),
        ("bamboo-specs.yaml", vec![0, 0]),
    ] {
        sim.reset();
        let dir = scratch("recipe");
        write(&dir, "promotions/shop.yaml", MANIFEST);
        // The base branch's worktree, as the recipes add it: the same manifests but one.
        write(
            &dir,
            ".base/promotions/shop.yaml",
            &MANIFEST.replace("branch: release/1.0", "branch: release/0.9"),
        );
        let (exports, commands) = commands(&recipe(name));
        let codes: Vec<i32> = commands
            .iter()
            .map(|command| {
                let script = exports
                    .iter()
                    .chain(std::iter::once(command))
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("\n");
                let ran = Command::new("sh")
                    .args(["-c", &script])
                    .current_dir(&*dir)
                    .env("PATH", path_with_binary())
                    .env("NO_COLOR", "1")
                    // What the CI systems' settings provide.
                    .env("BAMBOO_URL", &sim.url)
                    .env("BAMBOO_TOKEN", "t0ken")
                    .env("bamboo_promote_url", &sim.url)
                    .env("bamboo_promote_token_password", "t0ken")
                    .output()
                    .unwrap();
                assert!(
                    !String::from_utf8_lossy(&ran.stderr).contains("error: unexpected argument"),
                    "{name}: `{command}`: {}",
                    String::from_utf8_lossy(&ran.stderr)
                );
                ran.status.code().unwrap_or(-1)
            })
            .collect();
        assert_eq!(codes, expected, "{name}: {commands:#?}");
        // The pull-request recipes' comments show what the change does first.
        if name != "bamboo-specs.yaml" {
            let comment = std::fs::read_to_string(dir.join("plan.md")).unwrap();
            assert!(
                comment.contains("| ✏️ branch: release/0.9 → release/1.0 | branch-staging |"),
                "{name}: {comment}"
            );
        }
        // The apply at the end promoted both builds once, and waited for them.
        assert_eq!(
            sim.ran("SHOP-APP-42"),
            ["Build", "Deploy Staging", "Smoke"],
            "{name}"
        );
        assert_eq!(sim.queue_writes().len(), 2, "{name}");
        assert!(
            dir.join("audit.jsonl").exists(),
            "{name}: the audit trail is kept"
        );
    }
}

#[test]
fn the_github_recipe_finds_its_comment_by_the_marker_plan_prints() {
    let recipe = recipe("github-actions.yml");
    let sim = Sim::start(WORLD);
    let dir = scratch("marker");
    write(&dir, "promotions/shop.yaml", MANIFEST);
    let ran = Command::new(BIN)
        .args(["plan", "--format", "markdown", "promotions"])
        .current_dir(&*dir)
        .env("BAMBOO_URL", &sim.url)
        .env("BAMBOO_TOKEN", "t0ken")
        .output()
        .unwrap();
    let first_line = String::from_utf8_lossy(&ran.stdout)
        .lines()
        .next()
        .unwrap()
        .to_string();
    assert!(
        recipe.contains(&format!("marker='{first_line}'")),
        "the recipe looks for {first_line}"
    );
}

/// Plans and applies never share a concurrency group: GitHub keeps one pending run per group
/// and cancels it when another comes, so a push to a pull request would cancel a merge's
/// pending apply. An apply that started is never cancelled, on GitHub or on GitLab.
#[test]
fn a_plan_never_cancels_an_apply() {
    let read = |name: &str| -> serde_json::Value {
        serde_saphyr::from_str(&recipe(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let github = read("github-actions.yml");
    assert!(
        github.get("concurrency").is_none(),
        "a workflow-wide group holds plans and applies together"
    );
    let (plan, apply) = (
        &github["jobs"]["plan"]["concurrency"],
        &github["jobs"]["apply"]["concurrency"],
    );
    assert!(
        plan["group"].is_string() && apply["group"].is_string(),
        "{github}"
    );
    assert_ne!(plan["group"], apply["group"]);
    assert!(
        plan["group"]
            .as_str()
            .is_some_and(|g| g.contains("github.event.pull_request.number")),
        "one plan group per pull request: {plan}"
    );
    assert_eq!(apply["cancel-in-progress"], false, "{apply}");

    let gitlab = read("gitlab-ci.yml");
    assert!(
        gitlab["apply"]["resource_group"].is_string(),
        "applies queue"
    );
    assert_eq!(gitlab["apply"]["interruptible"], false);
    assert!(gitlab["plan"].get("resource_group").is_none());
}
