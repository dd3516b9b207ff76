//! Real Bamboo, not only ours (issue 20): what a Data Center server answers differently from
//! the simulator's defaults, each replayed with the simulator switch that models it. The tool
//! must be safe under both answers; each test asserts the simulator's request log and stage
//! runs, not only the exit code.

use crate::support::Sim;
use crate::worlds::{manifests, path_str};

/// Two plans of one project (so `latest` is read from the project's listing, and alone from
/// `-latest`): 42 waits before Deploy Staging, 43 runs its automatic stage.
const RUNNING_NEWER: &str = "
settings: { clock: manual }
projects:
  - key: SHOP
    plans:
      - key: APP
        stages:
          - { name: Build, durationMs: 600000 }
          - { name: Deploy Staging, manual: true }
        builds:
          - { number: 42, state: { pausedBefore: Deploy Staging } }
          - { number: 43, state: { runningAt: Build } }
      - key: WEB
        stages:
          - { name: Build, durationMs: 600000 }
          - { name: Deploy Staging, manual: true }
        builds:
          - { number: 42, state: { pausedBefore: Deploy Staging } }
          - { number: 43, state: { runningAt: Build } }
";

fn targets(selector: &str, plans: &[&str]) -> String {
    let mut text =
        "apiVersion: bamboo-promote/v1\nkind: Promotion\nmetadata: { name: newer }\nspec:\n  targets:\n"
            .to_string();
    for plan in plans {
        text.push_str(&format!(
            "    - {{ id: {plan}, plan: SHOP-{plan}, build: {selector}, stage: Deploy Staging }}\n"
        ));
    }
    text
}

/// `latest` is the newest build, even one still in its automatic stages. On a server that shows
/// it (`-latest` and listings with `includeAllStates`), the plan waits for 43. On one that
/// leaves running builds out whatever it is asked (`listingsHideRunning`), the plan can only
/// show 42; but `apply` reads the plan's newer builds under the lease, number by number past
/// the newest listed, and does not promote 42 as the latest: the plan is stale, and says why.
/// Before, 42 was promoted as "latest" while 43 ran.
#[test]
fn latest_is_never_an_older_build_than_one_a_server_left_out() {
    for plans in [&["APP"][..], &["APP", "WEB"]] {
        for hide in [false, true] {
            let case = format!("{plans:?}, hiding running builds: {hide}");
            let sim = Sim::start(RUNNING_NEWER);
            if hide {
                sim.set_faults(r#"{ "listingsHideRunning": true }"#);
            }
            let dir = manifests(&targets("latest", plans));
            let ran = sim.cmd(&["plan", path_str(&dir)]).run();
            assert_eq!(ran.code, 0, "{case}: {}\n{}", ran.stdout, ran.stderr);
            let shown = if hide { "SHOP-APP-42" } else { "SHOP-APP-43" };
            assert!(ran.stdout.contains(shown), "{case}: {}", ran.stdout);

            let ran = sim.cmd(&["apply", "--auto-approve", path_str(&dir)]).run();
            assert!(sim.queue_writes().is_empty(), "{case}: {:?}", sim.calls());
            assert_eq!(sim.ran("SHOP-APP-42"), ["Build"], "{case}");
            if hide {
                assert_eq!(ran.code, 5, "{case}: {}\n{}", ran.stdout, ran.stderr);
                assert!(
                    ran.stdout.contains(
                        "newer build SHOP-APP-43 is running its automatic stages; plan again"
                    ),
                    "{case}: {}",
                    ran.stdout
                );
            } else {
                assert_eq!(ran.code, 0, "{case}: {}\n{}", ran.stdout, ran.stderr);
            }
        }
    }
}

/// A pin chose an older build on purpose: it is promoted (43 has not reached Deploy Staging,
/// so this is no downgrade), and the plan says that a newer build is on its way.
#[test]
fn a_pin_says_a_newer_build_is_running_its_automatic_stages() {
    for hide in [false, true] {
        let sim = Sim::start(RUNNING_NEWER);
        if hide {
            sim.set_faults(r#"{ "listingsHideRunning": true }"#);
        }
        let dir = manifests(&targets("42", &["APP"]));
        let ran = sim.cmd(&["plan", path_str(&dir)]).run();
        assert_eq!(ran.code, 0, "hide {hide}: {}\n{}", ran.stdout, ran.stderr);
        assert!(
            ran.stdout
                .contains("passed over: SHOP-APP-43 (running its automatic stages)"),
            "hide {hide}: {}",
            ran.stdout
        );
        let ran = sim.cmd(&["apply", "--auto-approve", path_str(&dir)]).run();
        assert_eq!(ran.code, 0, "hide {hide}: {}\n{}", ran.stdout, ran.stderr);
        assert_eq!(sim.queued(), ["queue/SHOP-APP-42"], "hide {hide}");
        assert_eq!(sim.ran("SHOP-APP-42"), ["Build", "Deploy Staging"]);
    }
}

/// A token created with TRIGGER continues builds but cannot label them: `apply` fails at its
/// first lock label, which comes before any queue call, and says what the token lacks. A
/// READ token fails there too; a USER token promotes.
#[test]
fn a_token_that_may_trigger_but_not_label_fails_before_any_queue_call() {
    let world = RUNNING_NEWER.replace(
        "settings: { clock: manual }",
        "settings: { clock: manual }
auth:
  tokens:
    - { token: reader, permissions: [read] }
    - { token: trigger, permissions: [trigger] }
    - { token: user, permissions: [user] }",
    );
    let sim = Sim::start(&world);
    let dir = manifests(&targets("42", &["APP"]));
    for token in ["reader", "trigger"] {
        sim.reset();
        let ran = sim
            .cmd(&["apply", "--auto-approve", path_str(&dir)])
            .env("BAMBOO_TOKEN", token)
            .run();
        assert_eq!(ran.code, 1, "{token}: {}\n{}", ran.stdout, ran.stderr);
        assert!(
            ran.stderr
                .contains("adding or removing a build's label needs a token with USER permission"),
            "{token}: {}",
            ran.stderr
        );
        assert!(sim.queue_writes().is_empty(), "{token}: {:?}", sim.calls());
        assert_eq!(sim.ran("SHOP-APP-42"), ["Build"], "{token}");
        // A refused label was never put: nothing to take off, and no "it may be on the build".
        assert!(
            !sim.calls().iter().any(|c| c.starts_with("DELETE")),
            "{token}: {:?}",
            sim.calls()
        );
        assert!(!ran.stderr.contains("unlock"), "{token}: {}", ran.stderr);
    }
    let ran = sim
        .cmd(&["apply", "--auto-approve", path_str(&dir)])
        .env("BAMBOO_TOKEN", "user")
        .run();
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    assert_eq!(sim.queued(), ["queue/SHOP-APP-42"]);
}
