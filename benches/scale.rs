//! Observe and apply at scale, against the simulator, beside the fewest requests any client
//! needs and a sequential peer (atlassian-python-api, what teams script by hand today).
//!
//! `cargo bench --bench scale` (all sizes) or `cargo bench --bench scale -- --quick`
//! (N = 100 and 1 000). For each N (targets over 10 projects, half in sync, half needing one
//! promotion, 2% on plan branches) and added latency L it runs `plan` (median of eleven runs)
//! and `apply` (no `--wait`, once) as the real binary, and prints wall time, requests, peak
//! RSS and the limit `ceil(R_min / P) × L`. Beside `plan` it prints the transport floor: the
//! same requests replayed after each run by a client that does nothing else, which shows how
//! much of the gap to the limit is the simulator and loopback sharing this machine's cores,
//! and how much is bamboo-promote's own work. A second table shows what each release-day
//! feature adds in requests, at N = 100. Both are also written as JSON to
//! `target/scale-bench.json`.

#[allow(dead_code)]
#[path = "../tests/integration/support.rs"]
mod support;

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Scratch, Sim, scratch, write};

const PROJECTS: usize = 10;
const PARALLELISM: usize = 8;
const PAGE: usize = 100;
/// `plan` timings are the median of this many runs.
const PLAN_RUNS: usize = 11;

struct Setup {
    /// Holds the manifests and targets; removed when the setup is dropped.
    _scratch: Scratch,
    world: String,
    manifest_dir: std::path::PathBuf,
    targets_json: std::path::PathBuf,
    /// Fewest reads any client needs for the same answer.
    reads_min: usize,
    promotions: usize,
}

fn setup(n: usize) -> Setup {
    let per_project = n / PROJECTS;
    let dir = scratch(&format!("bench-{n}"));
    let mut world = String::from("settings: { clock: real }\nprojects:\n");
    let mut targets = Vec::new();
    let (mut reads_min, mut promotions) = (0, 0);
    for p in 0..PROJECTS {
        let project = format!("PRJ{}", (b'A' + p as u8) as char);
        let _ = write!(world, "  - key: {project}\n    plans:\n");
        let mut manifest = format!(
            "apiVersion: bamboo-promote/v1\nkind: Promotion\nmetadata: {{ name: {project} }}\nspec:\n  targets:\n"
        );
        let mut listed = 0;
        for i in 0..per_project {
            let on_branch = i % 50 == 0;
            let in_sync = i % 2 == 1;
            let state = if in_sync {
                "{ pausedBefore: Deploy Prod }"
            } else {
                "{ pausedBefore: Deploy Staging }"
            };
            let _ = write!(
                world,
                "      - key: P{i:05}\n        stages: [{{ name: Build }}, {{ name: Deploy Staging, manual: true }}, {{ name: Deploy Prod, manual: true }}]\n        builds: [{{ number: 1, state: {state} }}]\n"
            );
            let plan = format!("{project}-P{i:05}");
            if on_branch {
                let _ = writeln!(
                    world,
                    "        branches: [{{ name: release, key: P{i:05}1, builds: [{{ number: 1, state: {{ pausedBefore: Deploy Staging }} }}] }}]"
                );
                let _ = writeln!(
                    manifest,
                    "    - {{ id: t-{plan}, plan: {plan}, branch: release, stage: Deploy Staging }}"
                );
                targets
                    .push(json!({ "plan": plan, "branch": "release", "stage": "Deploy Staging" }));
                // A branch's name cannot go into a path (Tomcat refuses `%2F`): its plan's
                // branch listing names its key, then its newest build is read by that key. A
                // client that took a short page for the listing's end would stop there; ours
                // reads on to an empty page (a capped page is no end), one read more.
                reads_min += 2;
                promotions += 1;
            } else {
                let _ = writeln!(
                    manifest,
                    "    - {{ id: t-{plan}, plan: {plan}, stage: Deploy Staging }}"
                );
                targets.push(json!({ "plan": plan, "stage": "Deploy Staging" }));
                listed += 1;
                promotions += usize::from(!in_sync);
            }
        }
        // Default-branch latest builds: the cheaper of one read each and the listing's pages.
        reads_min += listed.min(per_project.div_ceil(PAGE));
        write(&dir, &format!("manifests/{project}.yaml"), &manifest);
    }
    let targets_json = write(&dir, "targets.json", &Value::Array(targets).to_string());
    Setup {
        manifest_dir: dir.join("manifests"),
        _scratch: dir,
        world,
        targets_json,
        reads_min,
        promotions,
    }
}

/// Runs the binary, polling its peak RSS (VmHWM) until it exits.
fn measure(sim: &Sim, args: &[&str]) -> (Duration, u64, i32) {
    let started = Instant::now();
    let mut child = sim.cmd(args).spawn();
    // Drain both pipes while the child runs: a full pipe would stall it.
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let drain_out =
        std::thread::spawn(move || std::io::copy(&mut { stdout }, &mut std::io::sink()));
    let drain_err = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak_kb = 0;
    let status = loop {
        let status_text = std::fs::read_to_string(&status_path).unwrap_or_default();
        let hwm = status_text.lines().find_map(|l| l.strip_prefix("VmHWM:"));
        if let Some(kb) =
            hwm.and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            peak_kb = peak_kb.max(kb);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let wall = started.elapsed();
    let _ = drain_out.join();
    let stderr = drain_err.join().unwrap_or_default();
    assert!(
        status.code().is_some_and(|c| c == 0 || c == 2),
        "{args:?} failed: {stderr}"
    );
    (wall, peak_kb, status.code().unwrap())
}

/// The transport floor: the GETs a `plan` sent, replayed `PARALLELISM` at a time by a client
/// that reads each body and does nothing else, over fresh connections as the binary's are.
/// The simulator's work and loopback on this machine are in it; bamboo-promote's own work
/// (starting, reading manifests, decoding, planning, printing) is not. Each replay follows
/// the plan run it copies, so the machine's drift touches both alike.
fn transport_floor(runtime: &tokio::runtime::Runtime, sim: &Sim, requests: &[Value]) -> Duration {
    let urls: Vec<String> = requests
        .iter()
        .filter(|r| r["method"] == "GET")
        .map(|r| {
            let (path, query) = (r["path"].as_str().unwrap(), r["query"].as_str().unwrap());
            format!("{}/rest/api/latest/{path}?{query}", sim.url)
        })
        .collect();
    runtime.block_on(replay(&urls))
}

async fn replay(urls: &[String]) -> Duration {
    let started = Instant::now();
    let http = reqwest::Client::new();
    let slots = tokio::sync::Semaphore::new(PARALLELISM);
    let (http, slots) = (&http, &slots);
    let reads = urls.iter().map(|url| async move {
        let _slot = slots.acquire().await.unwrap();
        let response = http.get(url).header("Accept", "application/json").send();
        response.await.unwrap().bytes().await.unwrap();
    });
    futures_util::future::join_all(reads).await;
    started.elapsed()
}

/// The release-day features, each as it changes every target line (and, for a window, each
/// document's spec), for the table of what each adds.
const FEATURES: [(&str, &str, &str); 6] = [
    ("none", "", ""),
    (
        "gates",
        ", require: { withoutLabels: [do-not-promote] }",
        "",
    ),
    (
        "window",
        ", require: { window: always }",
        "  windows: { always: { timeZone: UTC, allow: [{ days: [mon, tue, wed, thu, fri, sat, sun], from: '00:00', to: '24:00' }] } }\n",
    ),
    ("build: 1 (pin, downgrade check)", ", build: 1", ""),
    ("newest: eligible", ", build: { newest: eligible }", ""),
    ("record label", ", record: { label: promoted }", ""),
];

/// What each release-day feature adds to `plan` and `apply` (N = 100, no added latency): the
/// requests, beside the same targets with no feature, and per promotion.
fn feature_costs() -> Vec<Value> {
    let setup = setup(100);
    let sim = Sim::start(&setup.world);
    println!(
        "\nWhat each feature adds (N = 100, {} promotions):\n{:<32} {:>10} {:>8} {:>10} {:>8} {:>14}",
        setup.promotions, "feature", "plan req", "Δ plan", "apply req", "Δ apply", "Δ / promotion"
    );
    let mut base: Option<(usize, usize)> = None;
    let mut rows = Vec::new();
    for (feature, on_target, on_spec) in FEATURES {
        let dir = scratch("bench-feature");
        for entry in std::fs::read_dir(&setup.manifest_dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path)
                .unwrap()
                .replace(
                    "stage: Deploy Staging }",
                    &format!("stage: Deploy Staging{on_target} }}"),
                )
                .replace("spec:\n", &format!("spec:\n{on_spec}"));
            write(&dir, path.file_name().unwrap().to_str().unwrap(), &text);
        }
        let dir = dir.to_str().unwrap();
        let mut counts = [0; 2];
        for (i, args) in [
            vec!["plan", "--parallelism", "8", dir],
            vec!["apply", "--auto-approve", "--parallelism", "8", dir],
        ]
        .iter()
        .enumerate()
        {
            sim.reset();
            measure(&sim, args);
            counts[i] = sim.requests().len();
        }
        let [plan, apply] = counts;
        let (plan_0, apply_0) = *base.get_or_insert((plan, apply));
        let per_promotion = (apply as f64 - apply_0 as f64 - (plan as f64 - plan_0 as f64))
            / setup.promotions as f64;
        println!(
            "{feature:<32} {plan:>10} {:>+8} {apply:>10} {:>+8} {per_promotion:>+14.2}",
            plan as i64 - plan_0 as i64,
            apply as i64 - apply_0 as i64,
        );
        rows.push(json!({
            "feature": feature, "planRequests": plan, "applyRequests": apply,
            "addedPerPromotion": per_promotion,
        }));
    }
    rows
}

fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

fn peer(sim: &Sim, targets: &Path, mode: &str) -> Option<(f64, u64)> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/peer.py");
    let output = Command::new("python3")
        .env("PYTHONPATH", support::python_deps())
        .arg(script)
        .arg(&sim.url)
        .arg(targets)
        .arg(mode)
        .output()
        .ok()?;
    if !output.status.success() {
        eprintln!("peer failed: {}", String::from_utf8_lossy(&output.stderr));
        return None;
    }
    let report: Value = serde_json::from_slice(&output.stdout).ok()?;
    Some((report["seconds"].as_f64()?, report["requests"].as_u64()?))
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let sizes: &[usize] = if quick {
        &[100, 1000]
    } else {
        &[100, 1000, 10_000]
    };
    // For the transport floor's client. reqwest is built without a default TLS provider, as
    // in the binary.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut rows = Vec::new();
    println!(
        "{:>6} {:>4} {:>6} {:>9} {:>9} {:>7} {:>9} {:>9} {:>8} {:>9} {:>12} {:>9} {:>8}",
        "N",
        "L ms",
        "cmd",
        "wall s",
        "requests",
        "R_min",
        "limit s",
        "floor s",
        "÷limit",
        "RSS MB",
        "µs/target",
        "peer s",
        "speedup"
    );
    for &n in sizes {
        let setup = setup(n);
        let sim = Sim::start(&setup.world);
        // The environments view: the plan's reads and one history page per plan.
        sim.reset();
        let dir = setup.manifest_dir.to_str().unwrap();
        let (wall, _, _) = measure(&sim, &["environments", "--format", "json", dir]);
        let viewed = sim.requests().len();
        sim.reset();
        measure(&sim, &["plan", dir]);
        let planned = sim.requests().len();
        println!(
            "{n:>6} environments: {viewed} requests ({planned} for the plan + {}), {:.3} s",
            viewed - planned,
            wall.as_secs_f64()
        );
        for latency in [0u64, 20] {
            sim.set_faults(&format!(r#"{{ "latencyMs": {latency} }}"#));
            for cmd in ["plan", "apply"] {
                let dir = setup.manifest_dir.to_str().unwrap();
                let args: Vec<&str> = if cmd == "plan" {
                    vec!["plan", "--parallelism", "8", dir]
                } else {
                    vec!["apply", "--auto-approve", "--parallelism", "8", dir]
                };
                // A plan changes nothing, so it is timed several times and the median kept;
                // an apply changes the world and runs once.
                let runs = if cmd == "plan" { PLAN_RUNS } else { 1 };
                let (mut walls, mut floors) = (Vec::new(), Vec::new());
                let (mut rss_kb, mut requests) = (0, 0);
                for _ in 0..runs {
                    sim.reset();
                    sim.set_faults(&format!(r#"{{ "latencyMs": {latency} }}"#));
                    let (wall, rss, _) = measure(&sim, &args);
                    let log = sim.requests();
                    requests = log.len();
                    if cmd == "plan" {
                        floors.push(transport_floor(&runtime, &sim, &log));
                    }
                    walls.push(wall);
                    rss_kb = rss_kb.max(rss);
                }
                let floor = (!floors.is_empty()).then(|| median(floors.clone()));
                let wall = median(walls.clone());
                let r_min = setup.reads_min + if cmd == "apply" { setup.promotions } else { 0 };
                let limit = (r_min.div_ceil(PARALLELISM) as f64) * latency as f64 / 1000.0;
                // The sequential peer at the sizes where it finishes in reasonable time.
                let peer = (n <= 1000).then(|| {
                    sim.reset();
                    sim.set_faults(&format!(r#"{{ "latencyMs": {latency} }}"#));
                    peer(&sim, &setup.targets_json, cmd)
                });
                let peer = peer.flatten();
                let row = json!({
                    "n": n, "latencyMs": latency, "parallelism": PARALLELISM, "command": cmd,
                    "wallSeconds": wall.as_secs_f64(), "requests": requests, "rMin": r_min,
                    "wallSecondsOfRuns": walls.iter().map(Duration::as_secs_f64).collect::<Vec<_>>(),
                    "floorSeconds": floor.map(|f| f.as_secs_f64()),
                    "floorSecondsOfRuns": floors.iter().map(Duration::as_secs_f64).collect::<Vec<_>>(),
                    "limitSeconds": limit, "wallOverLimit": if limit > 0.0 { Some(wall.as_secs_f64() / limit) } else { None },
                    "peakRssMb": rss_kb as f64 / 1024.0, "microsPerTarget": wall.as_micros() as f64 / n as f64,
                    "peerSeconds": peer.map(|p| p.0), "peerRequests": peer.map(|p| p.1),
                    "speedup": peer.map(|p| p.0 / wall.as_secs_f64()),
                });
                println!(
                    "{:>6} {:>4} {:>6} {:>9.3} {:>9} {:>7} {:>9.3} {:>9} {:>8} {:>9.1} {:>12.0} {:>9} {:>8}",
                    n,
                    latency,
                    cmd,
                    wall.as_secs_f64(),
                    requests,
                    r_min,
                    limit,
                    floor.map_or("-".into(), |f| format!("{:.3}", f.as_secs_f64())),
                    row["wallOverLimit"]
                        .as_f64()
                        .map_or("-".into(), |r| format!("{r:.2}")),
                    rss_kb as f64 / 1024.0,
                    wall.as_micros() as f64 / n as f64,
                    peer.map_or("-".into(), |p| format!("{:.2}", p.0)),
                    row["speedup"]
                        .as_f64()
                        .map_or("-".into(), |s| format!("{s:.1}×")),
                );
                rows.push(row);
            }
        }
    }
    let features = feature_costs();
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/scale-bench.json");
    let report = json!({ "scale": rows, "features": features });
    std::fs::write(&out, serde_json::to_string_pretty(&report).unwrap()).unwrap();
    println!("written to {}", out.display());
}
