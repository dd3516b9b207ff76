//! How `plan` observes at scale: the cheapest strategy per project, the parallelism bound on
//! requests in flight, and a 429 that slows the whole run.

use std::fmt::Write;

use crate::support::Sim;
use crate::worlds::{manifests, path_str};

/// `plans` plans in project BIG, each with one build paused before `Deploy`.
fn world(plans: usize, extra_settings: &str) -> String {
    let mut world = format!(
        "settings: {{ clock: manual{extra_settings} }}\nprojects:\n  - key: BIG\n    plans:\n"
    );
    for i in 0..plans {
        let _ = write!(
            world,
            "      - key: P{i:03}\n        stages: [{{ name: Build }}, {{ name: Deploy, manual: true }}]\n        builds: [{{ number: 1, state: {{ pausedBefore: Deploy }} }}]\n"
        );
    }
    world
}

fn manifest(plans: impl Iterator<Item = usize>, build: &str) -> String {
    let mut text = String::from(
        "apiVersion: bamboo-promote/v1\nkind: Promotion\nmetadata: { name: big }\nspec:\n  targets:\n",
    );
    for i in plans {
        let _ = writeln!(
            text,
            "    - {{ id: t{i}, plan: BIG-P{i:03}, build: {build}, stage: Deploy }}"
        );
    }
    text
}

fn paths(sim: &Sim) -> Vec<String> {
    sim.requests()
        .iter()
        .map(|r| {
            format!(
                "{}?{}",
                r["path"].as_str().unwrap(),
                r["query"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn latest_targets_are_read_from_project_listing_pages_when_that_is_cheaper() {
    // Seven plans, pages capped at 2 like an old server: 4 listing pages instead of 7 reads.
    // A branch plan of the same project is not in listings: it is read on its own.
    let world = world(7, ", pageCap: 2").replacen(
        "builds: [{ number: 1, state: { pausedBefore: Deploy } }]\n",
        "builds: [{ number: 1, state: { pausedBefore: Deploy } }]\n        branches: [{ name: rel, key: P0001, builds: [{ number: 1, state: { pausedBefore: Deploy } }] }]\n",
        1,
    );
    let sim = Sim::start(&world);
    let branch_target = "    - { id: on-branch, plan: BIG-P000, branch: rel, stage: Deploy }\n";
    let dir = manifests(&(manifest(0..7, "latest") + branch_target));
    let ran = sim.cmd(&["plan", path_str(&dir)]).run();
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(ran.stdout.contains("8 to promote"), "{}", ran.stdout);
    let log = paths(&sim);
    let listing = log.iter().filter(|p| p.starts_with("result/BIG?")).count();
    assert_eq!(listing, 4, "{log:#?}");
    assert_eq!(
        log.len(),
        4 + 3,
        "plus the plan's branch listing (a page and the empty one after it) and one read of the branch's builds: {log:#?}"
    );
    assert!(
        log.iter().any(|p| p.starts_with("plan/BIG-P000/branch?"))
            && log
                .iter()
                .any(|p| p.starts_with("result/BIG-P0001-latest?")),
        "{log:#?}"
    );
}

#[test]
fn a_branch_is_found_in_its_plans_listing_then_read_by_its_key() {
    let world = "settings: { clock: manual }
projects:
  - key: BR
    plans:
      - key: APP
        stages: [{ name: Build }, { name: Deploy, manual: true }]
        builds: [{ number: 1, state: complete }]
        branches:
          - { name: rel/1, key: APP1, builds: [{ number: 4, labels: [rc], state: { pausedBefore: Deploy } }, { number: 5, state: { pausedBefore: Deploy } }] }
          - { name: empty, key: APP2, builds: [] }
";
    let sim = Sim::start(world);
    let target = |id: &str, branch: &str, build: &str| {
        format!(
            // Downgrade checks cost reads of their own (see release_day.rs): not counted here.
            "    - {{ id: {id}, plan: BR-APP, branch: {branch}, build: {build}, stage: Deploy, allowDowngrade: true }}\n"
        )
    };
    let cases = [
        // (targets, requests, what)
        // A branch's name never goes into a path (an encoded `/` is refused by Tomcat): the
        // plan's branch listing (read until a page comes back empty) names its key, and the
        // branch plan is read by that key.
        (
            target("latest", "rel/1", "latest"),
            vec![
                "plan/BR-APP/branch?",
                "plan/BR-APP/branch?",
                "result/BR-APP1-latest?",
            ],
            "the listing, then the branch's newest build",
        ),
        (
            target("latest", "rel/1", "latest") + &target("label", "rel/1", "{ label: rc }"),
            vec![
                "plan/BR-APP/branch?",
                "plan/BR-APP/branch?",
                "result/BR-APP1?",
            ],
            "the listing, then one read of the branch's history serves both",
        ),
        (
            target("number", "rel/1", "4") + &target("empty", "empty", "latest"),
            vec![
                "plan/BR-APP/branch?",
                "plan/BR-APP/branch?",
                "result/BR-APP1-4?",
                "result/BR-APP2-latest?",
            ],
            "one listing serves every branch of the plan",
        ),
        (
            target("missing", "nope", "latest"),
            vec!["plan/BR-APP/branch?", "plan/BR-APP/branch?", "plan/BR-APP?"],
            "no branch: the plan is read to tell a missing plan from a missing branch",
        ),
    ];
    for (targets, expected, what) in cases {
        sim.reset();
        let text = format!(
            "apiVersion: bamboo-promote/v1\nkind: Promotion\nmetadata: {{ name: br }}\nspec:\n  targets:\n{targets}"
        );
        let dir = manifests(&text);
        let ran = sim.cmd(&["plan", path_str(&dir)]).run();
        // 3: the empty branch's target is blocked; 1: the missing branch is a diagnostic.
        assert!([0, 1, 3].contains(&ran.code), "{what}: {}", ran.stderr);
        assert!(!ran.stderr.contains("panicked"), "{what}: {}", ran.stderr);
        // Branches are read side by side: in any order.
        let mut log = paths(&sim);
        log.sort();
        let mut expected = expected;
        expected.sort();
        assert_eq!(log.len(), expected.len(), "{what}: {log:#?}");
        for (path, prefix) in log.iter().zip(&expected) {
            assert!(path.starts_with(prefix), "{what}: {log:#?}");
        }
    }
}

#[test]
fn few_latest_targets_in_a_large_project_are_read_one_by_one() {
    // Three plans wanted out of twenty, pages of 2: reading the listing would take 10 pages.
    let sim = Sim::start(&world(20, ", pageCap: 2"));
    let dir = manifests(&manifest([3, 9, 17].into_iter(), "latest"));
    let ran = sim.cmd(&["plan", path_str(&dir)]).run();
    assert!(ran.stdout.contains("3 to promote"), "{}", ran.stdout);
    let log = paths(&sim);
    // The first listing page, then the wanted plans it did not show.
    assert_eq!(log.len(), 1 + 3, "{log:#?}");
}

#[test]
fn one_wanted_plan_in_each_of_several_projects_is_read_from_the_servers_listing() {
    // Four projects of two plans; one `latest` target in each. Plans list in key order:
    // A-P1 A-P2 B-P1 B-P2 C-P1 C-P2 D-P1 D-P2.
    let mut world = String::new();
    for project in ["A", "B", "C", "D"] {
        let _ = write!(world, "  - key: {project}\n    plans:\n");
        for plan in ["P1", "P2"] {
            let _ = write!(
                world,
                "      - key: {plan}\n        stages: [{{ name: Build }}, {{ name: Deploy, manual: true }}]\n        builds: [{{ number: 1, state: {{ pausedBefore: Deploy }} }}]\n"
            );
        }
    }
    let targets: String = ["A", "B", "C", "D"]
        .iter()
        .map(|p| format!("    - {{ id: {p}, plan: {p}-P1, stage: Deploy }}\n"))
        .collect();
    let dir = manifests(&format!(
        "apiVersion: bamboo-promote/v1\nkind: Promotion\nmetadata: {{ name: spread }}\nspec:\n  targets:\n{targets}"
    ));
    let cases = [
        // (page cap, requests, what)
        ("", vec!["result?"], "one page holds the whole server"),
        (
            ", pageCap: 4",
            vec!["result?", "result?"],
            "C-P1 and D-P1 are on the second and last page: it is read",
        ),
        (
            ", pageCap: 3",
            vec!["result/C-P1-latest?", "result/D-P1-latest?", "result?"],
            "two pages remain for two unseen plans: they are read one by one",
        ),
    ];
    for (cap, expected, what) in cases {
        let sim = Sim::start(&format!(
            "settings: {{ clock: manual{cap} }}\nprojects:\n{world}"
        ));
        let ran = sim.cmd(&["plan", path_str(&dir)]).run();
        assert!(
            ran.stdout.contains("4 to promote"),
            "{what}: {}",
            ran.stdout
        );
        let mut log = paths(&sim);
        log.sort(); // requests run concurrently; sorted, `result/…` comes before `result?`
        assert_eq!(log.len(), expected.len(), "{what}: {log:#?}");
        for (path, prefix) in log.iter().zip(&expected) {
            assert!(path.starts_with(prefix), "{what}: {log:#?}");
        }
    }
}

#[test]
fn parallelism_bounds_the_requests_in_flight() {
    let sim = Sim::start(&world(24, ""));
    sim.set_faults(r#"{ "latencyMs": 40 }"#);
    let dir = manifests(&manifest(0..24, "1"));
    let ran = sim
        .cmd(&["plan", "--parallelism", "3", path_str(&dir)])
        .run();
    assert!(ran.stdout.contains("24 to promote"), "{}", ran.stdout);
    let most = sim
        .requests()
        .iter()
        .map(|r| r["inFlight"].as_u64().unwrap())
        .max()
        .unwrap();
    assert!(
        (2..=3).contains(&most),
        "at most --parallelism requests at once, and more than one: {most}"
    );
}

#[test]
fn a_429_pauses_the_whole_run_not_only_the_task_that_got_it() {
    let sim = Sim::start(&world(16, ""));
    sim.set_faults(r#"{ "latencyMs": 5, "retryAfterSecs": 1, "script": [ { "method": "GET", "fault": "rateLimit" } ] }"#);
    let dir = manifests(&manifest(0..16, "1"));
    let ran = sim.cmd(&["plan", path_str(&dir)]).run();
    assert!(ran.stdout.contains("16 to promote"), "{}", ran.stdout);
    let log = sim.requests();
    let limited = log
        .iter()
        .find(|r| r["status"] == 429)
        .expect("one request was rate limited");
    let at = limited["wallMs"].as_u64().unwrap();
    // Requests already in flight when the 429 came are fine; none may start during the pause.
    let in_flight_then = log
        .iter()
        .filter(|r| r["wallMs"].as_u64().unwrap() <= at + 100)
        .count();
    let during_pause = log.iter().filter(|r| {
        let t = r["wallMs"].as_u64().unwrap();
        t > at + 100 && t < at + 900
    });
    assert_eq!(
        during_pause.count(),
        0,
        "requests started during the Retry-After pause: {log:#?}"
    );
    assert!(
        log.len() > in_flight_then,
        "the run went on after the pause"
    );
}

#[test]
fn builds_older_than_the_history_read_are_found() {
    // Sixty builds; the label `old`, build 3 and revision `feedbeef` (build 5) lie beyond the
    // newest fifty a history shows.
    let builds: Vec<String> = (1..=60)
        .map(|n| {
            let labels = match n {
                2 => "[old]",
                58 => "[new]",
                _ => "[]",
            };
            let revision = if n == 5 { ", revision: feedbeef" } else { "" };
            format!(
                "{{ number: {n}, labels: {labels}{revision}, state: {{ pausedBefore: Deploy }} }}"
            )
        })
        .collect();
    let world = format!(
        "settings: {{ clock: manual }}\nprojects:\n  - key: H\n    plans:\n      - key: APP\n        stages: [{{ name: Build }}, {{ name: Deploy, manual: true }}]\n        builds: [{}]\n",
        builds.join(", ")
    );
    let sim = Sim::start(&world);
    let target = |id: &str, build: &str| {
        format!(
            "    - {{ id: {id}, plan: H-APP, build: {build}, stage: Deploy, allowDowngrade: true }}\n"
        )
    };
    let cases = [
        // (targets, requests as (path, part of the query), the builds the plan shows, exit
        // code, what)
        (
            target("old", "{ label: old }"),
            vec![("result/H-APP?", "label=old")],
            vec!["H-APP-2"],
            0,
            "a lone label: the newest build with it, in one request at any age",
        ),
        (
            target("latest", "latest") + &target("new", "{ label: new }"),
            vec![("result/H-APP?", "max-result=50")],
            vec!["H-APP-60", "H-APP-58"],
            0,
            "a label among the newest builds: the history alone",
        ),
        (
            target("latest", "latest") + &target("old", "{ label: old }") + &target("three", "3"),
            vec![
                ("result/H-APP?", "max-result=50"),
                ("result/H-APP-3?", ""),
                ("result/H-APP?", "label=old"),
            ],
            vec!["H-APP-60", "H-APP-2", "H-APP-3"],
            0,
            "older than the history: the history, then each asked for directly",
        ),
        (
            target("rev", "{ revision: feedbeef }"),
            vec![
                ("result/H-APP?", "start-index=0&"),
                ("result/H-APP?", "start-index=50&"),
            ],
            vec!["H-APP-5"],
            0,
            "a revision has no filter: the next page of the history",
        ),
        (
            target("rev", "{ revision: 0000000 }"),
            vec![
                ("result/H-APP?", "start-index=0&"),
                ("result/H-APP?", "start-index=50&"),
                ("plan/H-APP?", ""),
            ],
            vec!["no build matches"],
            3,
            "no such revision: the history is read to its end, the plan for whether it exists, \
             and the target is blocked",
        ),
    ];
    for (targets, expected, shown, code, what) in cases {
        sim.reset();
        let text = format!(
            "apiVersion: bamboo-promote/v1\nkind: Promotion\nmetadata: {{ name: h }}\nspec:\n  targets:\n{targets}"
        );
        let dir = manifests(&text);
        let ran = sim.cmd(&["plan", path_str(&dir)]).run();
        assert_eq!(ran.code, code, "{what}: {}", ran.stderr);
        let log = paths(&sim);
        assert_eq!(log.len(), expected.len(), "{what}: {log:#?}");
        for (path, query) in expected {
            assert!(
                log.iter().any(|p| p.starts_with(path) && p.contains(query)),
                "{what}: no {path}…{query} in {log:#?}"
            );
        }
        for key in shown {
            assert!(ran.stdout.contains(key), "{what}: {key}\n{}", ran.stdout);
        }
    }
}
