//! `init`: manifests from the current state that round-trip (a plan right after shows nothing
//! to promote), read with as few requests as `plan` would make.

use std::fmt::Write as _;
use std::path::Path;

use crate::support::{Run, Sim, scratch};

fn example_world() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sim/world.yaml"))
        .unwrap()
        .replace("clock: real", "clock: manual")
}

#[test]
fn init_describes_the_example_world_and_the_next_plan_has_nothing_to_promote() {
    let sim = Sim::start(&example_world());
    for project in ["SHOP", "PAY", "DATA"] {
        let dir = scratch("init");
        let out = dir.join("promotions");
        let ran = sim
            .cmd(&["init", "--project", project, "--out", out.to_str().unwrap()])
            .run();
        assert_eq!(ran.code, 0, "{project}: {}", ran.stderr);
        assert!(ran.stderr.contains("wrote "), "{}", ran.stderr);
        let manifest =
            std::fs::read_to_string(out.join(format!("{}.yaml", project.to_lowercase()))).unwrap();
        assert!(
            manifest.starts_with("# yaml-language-server: $schema=promotion.v1.schema.json\n"),
            "{manifest}"
        );
        assert!(out.join("promotion.v1.schema.json").exists());
        let valid = Run::new(&["validate", out.to_str().unwrap()]).run();
        assert_eq!(valid.code, 0, "{project}: {}\n{manifest}", valid.stderr);
        let plan = sim
            .cmd(&["plan", "--detailed-exitcode", out.to_str().unwrap()])
            .run();
        assert_eq!(
            plan.code, 0,
            "{project}: {}\n{}\n{manifest}",
            plan.stdout, plan.stderr
        );
        assert!(plan.stdout.contains("\n0 to promote"), "{}", plan.stdout);
        // Run again, it keeps what is there unless told.
        let again = sim
            .cmd(&["init", "--project", project, "--out", out.to_str().unwrap()])
            .run();
        assert_eq!(again.code, 1);
        assert!(again.stderr.contains("--force"), "{}", again.stderr);
    }
}

#[test]
fn init_reads_a_project_of_200_plans_in_two_listing_pages() {
    let mut world =
        String::from("settings: { clock: manual }\nprojects:\n  - key: BIG\n    plans:\n");
    for n in 0..200 {
        let _ = write!(
            world,
            "      - key: P{n:03}\n        stages:\n          - {{ name: Build }}\n          - {{ name: Deploy, manual: true }}\n        builds:\n          - {{ number: {}, state: {} }}\n",
            n + 1,
            if n % 2 == 0 {
                "complete"
            } else {
                "{ pausedBefore: Deploy }"
            }
        );
    }
    let sim = Sim::start(&world);
    let dir = scratch("init-big");
    let out = dir.join("promotions");
    let ran = sim
        .cmd(&["init", "--project", "BIG", "--out", out.to_str().unwrap()])
        .run();
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(ran.stderr.contains("wrote 100 targets"), "{}", ran.stderr);
    assert!(
        ran.stderr
            .contains("100 plans with no manual stage run yet"),
        "{}",
        ran.stderr
    );
    let requests = sim.requests();
    assert_eq!(requests.len(), 2, "R_min: two pages of 100: {requests:#?}");
    assert!(requests.iter().all(|r| r["path"] == "result/BIG"));
    sim.clear_requests();
    let plan = sim
        .cmd(&["plan", "--detailed-exitcode", out.to_str().unwrap()])
        .run();
    assert_eq!(plan.code, 0, "{}", plan.stderr);
}
