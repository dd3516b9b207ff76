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

/// `latest` is the newest build, even one still in its automatic stages. A server that leaves
/// running builds out of `-latest` and of listings (`listingsHideRunning`) must not make the
/// older build look like the latest: the numbers after it are asked for, and the target waits
/// for 43 as it does on a server that shows it. Before, 42 was promoted as "latest".
#[test]
fn latest_waits_for_a_newer_build_a_server_left_out() {
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
            assert!(ran.stdout.contains("SHOP-APP-43"), "{case}: {}", ran.stdout);
            assert!(!ran.stdout.contains("SHOP-APP-42"), "{case}: {}", ran.stdout);
            let probes = sim
                .calls()
                .into_iter()
                .filter(|c| c.contains("result/SHOP-APP-44"))
                .count();
            // Only a server that hid 43 costs the reads after 42: 43, then 44 (not there).
            assert_eq!(probes, usize::from(hide), "{case}: {:?}", sim.calls());

            let ran = sim.cmd(&["apply", "--auto-approve", path_str(&dir)]).run();
            assert_eq!(ran.code, 0, "{case}: {}\n{}", ran.stdout, ran.stderr);
            assert!(sim.queue_writes().is_empty(), "{case}: {:?}", sim.calls());
            assert_eq!(sim.ran("SHOP-APP-42"), ["Build"], "{case}");
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
