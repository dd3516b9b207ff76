//! A soak of `watch`: the real binary, cycling every second for `CYCLES` cycles over `N`
//! targets against the simulator with 5 % of requests (reads and writes) faulted — 503s,
//! 429s and dropped connections.
//!
//! `cargo bench --bench soak` (about 20 minutes; `-- --cycles 100` for a shorter run, and
//! `--every 10` to print the RSS every 10 cycles rather than 100). Not in CI. It prints, and checks:
//! - no stage ran twice, and none ran that no target asked for (the simulator's run counts);
//! - requests per idle cycle, beside `plan`'s for the same state and R_min (the fewest reads
//!   any client needs): the fewest in any idle cycle equal `plan`'s, and faults add retries;
//! - the watcher's RSS after the last cycle against its RSS after the 10th (within 10 %).

#[allow(dead_code)]
#[path = "../tests/integration/support.rs"]
mod support;

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};

use serde_json::Value;
use support::{Sim, scratch, write};

const PROJECTS: usize = 10;
const N: usize = 1_000;
const PAGE: usize = 100;
const FAULTS: &str = r#"{"errorRate": 0.03, "rateLimitRate": 0.01, "retryAfterSecs": 1, "dropRate": 0.01, "includeWrites": true, "seed": 23}"#;

fn main() {
    let arg = |name: &str, default: u64| {
        std::env::args()
            .skip_while(|a| a != name)
            .nth(1)
            .map_or(default, |n| n.parse().expect("a number"))
    };
    let (cycles, every) = (arg("--cycles", 1_000), arg("--every", 100));
    let dir = scratch("soak");
    // Half the targets in sync, half to promote in the first cycles; stages take no time.
    let per_project = N / PROJECTS;
    let mut world = String::from("settings: { clock: real }\nprojects:\n");
    for p in 0..PROJECTS {
        let project = format!("PRJ{}", (b'A' + p as u8) as char);
        let _ = write!(world, "  - key: {project}\n    plans:\n");
        let mut manifest = format!(
            "apiVersion: bamboo-promote/v1\nkind: Promotion\nmetadata: {{ name: {project} }}\nspec:\n  targets:\n"
        );
        for i in 0..per_project {
            let state = if i % 2 == 1 {
                "{ pausedBefore: Deploy Prod }"
            } else {
                "{ pausedBefore: Deploy Staging }"
            };
            let _ = write!(
                world,
                "      - key: P{i:05}\n        stages: [{{ name: Build, durationMs: 0 }}, {{ name: Deploy Staging, manual: true, durationMs: 0 }}, {{ name: Deploy Prod, manual: true, durationMs: 0 }}]\n        builds: [{{ number: 1, state: {state} }}]\n"
            );
            let _ = writeln!(
                manifest,
                "    - {{ id: t-{project}-{i}, plan: {project}-P{i:05}, stage: Deploy Staging }}"
            );
        }
        write(&dir, &format!("manifests/{project}.yaml"), &manifest);
    }
    // Each project's latest builds in its listing's pages.
    let r_min = PROJECTS * per_project.div_ceil(PAGE);
    let sim = Sim::start(&world);
    let manifests = dir.join("manifests").display().to_string();
    sim.set_faults(FAULTS);
    let mut child = sim
        .cmd(&[
            "watch",
            "--interval",
            "1s",
            "--format",
            "json",
            "--request-timeout",
            "5s",
            "--lock-ttl",
            "30s",
            &manifests,
        ])
        .spawn();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || std::io::copy(&mut { stderr }, &mut std::io::sink()));
    let status_path = format!("/proc/{}/status", child.id());
    // kB of one line of the watcher's /proc status: VmRSS, or its parts RssAnon (the heap and
    // stacks) and RssFile (the binary's pages, read in as code paths are first taken).
    let status_kb = |field: &str| {
        let status = std::fs::read_to_string(&status_path).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .expect(field)
    };
    let rss_kb = || status_kb("VmRSS");
    let (mut rss_10, mut rss_last) = (0, 0);
    let mut idle: Vec<u64> = Vec::new();
    let mut outcomes: std::collections::BTreeMap<String, u64> = Default::default();
    let (mut promoted, mut unknown, mut errors) = (0, 0, 0);
    let mut reasons: std::collections::BTreeMap<String, u64> = Default::default();
    let started = std::time::Instant::now();
    for line in stdout.lines().map_while(Result::ok) {
        let event: Value = serde_json::from_str(&line).expect("an event");
        match event["event"].as_str() {
            Some("promoted") => promoted += 1,
            Some("unknown") => unknown += 1,
            Some("error") => {
                errors += 1;
                *reasons.entry(reason(&event["message"])).or_default() += 1;
            }
            Some("cycle") => {}
            _ => continue,
        }
        if event["event"] != "cycle" {
            continue;
        }
        let number = event["cycle"].as_u64().unwrap();
        *outcomes
            .entry(event["outcome"].as_str().unwrap().to_string())
            .or_default() += 1;
        let counts = &event["counts"];
        if event["outcome"] == "ok" && counts["promoted"] == 0 && counts["errors"] == 0 {
            idle.push(event["requests"].as_u64().unwrap());
        }
        if number == 10 {
            rss_10 = rss_kb();
        }
        if number.is_multiple_of(every) {
            eprintln!(
                "cycle {number}: RSS {} kB (anon {}, file {}), {:.0?}",
                rss_kb(),
                status_kb("RssAnon"),
                status_kb("RssFile"),
                started.elapsed()
            );
        }
        if number == cycles {
            rss_last = rss_kb();
            break;
        }
    }
    support::signal(&child, "TERM");
    let code = child.wait().unwrap().code();
    sim.set_faults("{}");
    sim.clear_requests();
    let plan = sim.cmd(&["plan", &manifests]).run();
    let plan_requests = sim.requests().len() as u64;
    let (_, runs) = sim.request("GET", "/_sim/runs", &[], "");
    let runs: Value = serde_json::from_str(&runs).unwrap();
    let mut twice = Vec::new();
    let mut unasked = Vec::new();
    for (build, stages) in runs.as_object().unwrap() {
        for stage in stages.as_array().unwrap() {
            let (name, n) = (
                stage["stage"].as_str().unwrap(),
                stage["runs"].as_u64().unwrap(),
            );
            if n > 1 {
                twice.push(format!("{build} {name} ×{n}"));
            }
            if name == "Deploy Prod" && n > 0 {
                unasked.push(format!("{build} {name}"));
            }
        }
    }
    idle.sort_unstable();
    let median = idle.get(idle.len() / 2).copied().unwrap_or(0);
    let growth = (rss_last as f64 - rss_10 as f64) / rss_10 as f64 * 100.0;
    println!("watch soak: {cycles} cycles over {N} targets, faults {FAULTS}");
    println!(
        "  took {:.0?}; the watcher exited {code:?} on SIGTERM",
        started.elapsed()
    );
    println!("  cycles by outcome: {outcomes:?}");
    println!("  events: {promoted} promoted, {unknown} unknown, {errors} errors");
    for (why, n) in &reasons {
        println!("    {n} × {why}");
    }
    println!(
        "  requests per idle cycle ({} idle cycles): fewest {}, median {}, most {}; plan sends {plan_requests} (exit {}), R_min {r_min}",
        idle.len(),
        idle.first().copied().unwrap_or(0),
        median,
        idle.last().copied().unwrap_or(0),
        plan.code
    );
    println!(
        "  RSS after cycle 10: {rss_10} kB; after cycle {cycles}: {rss_last} kB ({growth:+.1} %)"
    );
    println!("  stages run twice: {twice:?}; stages run unasked: {unasked:?}");
    assert!(twice.is_empty() && unasked.is_empty(), "the promise broke");
    assert_eq!(
        idle.first().copied(),
        Some(plan_requests),
        "an idle cycle sends plan's requests"
    );
    assert!(growth.abs() <= 10.0, "RSS grew {growth:.1} %");
}

/// An error's message with its keys and numbers taken out, so like errors count together.
fn reason(message: &Value) -> String {
    let message = message.as_str().unwrap_or("(no message)");
    let words: Vec<String> = message
        .split_whitespace()
        .map(|w| {
            if w.chars().any(|c| c.is_ascii_digit()) {
                "#".to_string()
            } else {
                w.to_string()
            }
        })
        .collect();
    words.join(" ").chars().take(140).collect()
}
