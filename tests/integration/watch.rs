//! `watch`: the real binary looping against the simulator, on its manual clock. Each test
//! reads the watcher's `cycle` events to know where it is, and the simulator's request log and
//! stage runs to know what it did.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Child;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Ran, Scratch, Sim, http, scratch, signal, stderr_until, write};

/// The storefront to staging, then the API to prod once the storefront has passed staging;
/// both stages take a second of sim time.
const WORLD: &str = "
settings: { clock: manual }
projects:
  - key: SHOP
    plans:
      - key: APP
        stages:
          - { name: Build, durationMs: 1000 }
          - { name: Deploy Staging, manual: true, durationMs: 1000, failures: FAILURES }
        builds:
          - { number: 42, state: { pausedBefore: Deploy Staging } }
      - key: API
        stages:
          - { name: Build, durationMs: 1000 }
          - { name: Deploy Prod, manual: true, durationMs: 1000 }
        builds:
          - { number: 17, state: { pausedBefore: Deploy Prod } }
";

const MANIFEST: &str = "apiVersion: bamboo-promote/v1
kind: Promotion
metadata: { name: shop }
spec:
  targets:
    - { id: app-staging, plan: SHOP-APP, stage: Deploy Staging }
    - { id: api-prod, plan: SHOP-API, stage: Deploy Prod, after: [app-staging] }
";

fn world(failures: u32) -> String {
    WORLD.replace("FAILURES", &failures.to_string())
}

fn manifests(text: &str) -> Scratch {
    let dir = scratch("watch");
    write(&dir, "promotions/shop.yaml", text);
    dir
}

fn promotions(dir: &Path) -> String {
    dir.join("promotions").display().to_string()
}

/// A watcher spawned with `--format json`, its events read as they come.
struct Watcher {
    child: Child,
    events: Receiver<Value>,
}

impl Watcher {
    fn start(sim: &Sim, dir: &Path, extra: &[&str]) -> Watcher {
        let promotions = promotions(dir);
        let mut args = vec!["watch", "--format", "json"];
        if !extra.contains(&"--interval") {
            args.extend(["--interval", "1s"]);
        }
        args.extend_from_slice(extra);
        args.push(&promotions);
        let mut child = sim.cmd(&args).spawn();
        let stdout = child.stdout.take().expect("stdout is piped");
        let (send, events) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let event = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not an event ({e}): {line}"));
                if send.send(event).is_err() {
                    return;
                }
            }
        });
        Watcher { child, events }
    }

    /// The events up to and including the next `cycle` event.
    fn cycle(&self) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut events = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(event) => {
                    let done = event["event"] == "cycle";
                    events.push(event);
                    if done {
                        return events;
                    }
                }
                Err(RecvTimeoutError::Timeout) => panic!("no cycle in 30 s: {events:?}"),
                Err(RecvTimeoutError::Disconnected) => panic!("the watcher ended: {events:?}"),
            }
        }
    }

    /// Cycles until one satisfies `done`; returns its events.
    fn cycle_until(&self, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        for _ in 0..20 {
            let events = self.cycle();
            if done(&events) {
                return events;
            }
        }
        panic!("no cycle in 20 {what}");
    }

    fn stop(mut self, name: &str) -> Ran {
        signal(&self.child, name);
        let _ = self.child.stdout.take();
        Ran::finish(self.child)
    }
}

fn last(events: &[Value]) -> &Value {
    events.last().expect("a cycle event")
}

fn promoted(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["event"] == "promoted")
        .map(|e| {
            format!(
                "{} {}",
                e["target"].as_str().unwrap(),
                e["build"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn a_promotion_follows_as_soon_as_its_upstream_settles_and_an_idle_cycle_costs_a_plan() {
    let sim = Sim::start(&world(0));
    let dir = manifests(MANIFEST);
    let watcher = Watcher::start(&sim, &dir, &[]);
    let first = watcher.cycle();
    assert_eq!(promoted(&first), ["app-staging SHOP-APP-42"], "{first:?}");
    assert_eq!(last(&first)["outcome"], "ok");
    assert_eq!(last(&first)["counts"]["waiting"], 1, "{first:?}");
    // Staging runs for a second of sim time; prod waits until it has passed.
    let waiting = watcher.cycle();
    assert!(promoted(&waiting).is_empty(), "{waiting:?}");
    sim.advance(1000);
    let next = watcher.cycle_until("promoted prod", |e| !promoted(e).is_empty());
    assert_eq!(promoted(&next), ["api-prod SHOP-API-17"], "{next:?}");
    sim.advance(1000);
    watcher.cycle_until("in sync", |e| last(e)["counts"]["inSync"] == 2);
    // Nothing to do: a cycle reads what `plan` reads, no more.
    let idle = watcher.cycle();
    assert_eq!(last(&idle)["counts"]["inSync"], 2, "{idle:?}");
    let ran = watcher.stop("TERM");
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    sim.clear_requests();
    let plan = sim.cmd(&["plan", &promotions(&dir)]).run();
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert_eq!(
        last(&idle)["requests"].as_u64().unwrap(),
        sim.requests().len() as u64,
        "an idle cycle against plan's requests"
    );
    for build in ["SHOP-APP-42", "SHOP-API-17"] {
        for (stage, runs) in sim.runs(build) {
            assert_eq!(runs, 1, "{build}: {stage} ran {runs} times");
        }
    }
}

#[test]
fn a_failed_stage_is_not_tried_again_on_its_build_and_a_new_build_is_promoted() {
    let sim = Sim::start(&world(1));
    let dir = manifests(MANIFEST);
    let once = |dir: &Path| sim.cmd(&["watch", "--once", &promotions(dir)]).run();
    let first = once(&dir);
    assert_eq!(first.code, 0, "{}", first.stderr);
    sim.advance(1000);
    for _ in 0..2 {
        let again = once(&dir);
        assert_eq!(again.code, 3, "blocked: {}", again.stderr);
        assert!(again.stderr.contains("0 promoted"), "{}", again.stderr);
    }
    assert_eq!(sim.queued(), ["queue/SHOP-APP-42"]);
    // A new build is a new try.
    assert_eq!(sim.write("POST", "queue/SHOP-APP").0, 200);
    sim.advance(1000);
    let new = once(&dir);
    assert_eq!(new.code, 0, "{}", new.stderr);
    assert!(
        new.stderr.contains("promoted SHOP-APP-43 → Deploy Staging"),
        "{}",
        new.stderr
    );
    // (`queue/SHOP-APP` is the person's new build.)
    assert_eq!(
        sim.queued(),
        ["queue/SHOP-APP-42", "queue/SHOP-APP", "queue/SHOP-APP-43"]
    );
    assert_eq!(
        sim.runs("SHOP-APP-42")[1],
        ("Deploy Staging".to_string(), 1)
    );
}

#[test]
fn a_restarted_watcher_does_not_retry_a_call_whose_outcome_stayed_unknown() {
    let sim = Sim::start(&world(0));
    let dir = manifests(MANIFEST);
    // The call is held by a slow proxy and lands only ten sim-hours later: no answer, and the
    // build does not move while the watcher looks.
    sim.set_faults(
        r#"{"script": [{"method": "PUT", "path": "queue/", "fault": "applyLate", "afterMs": 36000000}]}"#,
    );
    let args = [
        "watch",
        "--once",
        "--request-timeout",
        "2s",
        "--lock-ttl",
        "6s",
    ];
    let with = |extra: &str| {
        let mut args = args.to_vec();
        args.push(extra);
        args.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let promotions = promotions(&dir);
    let args = with(&promotions);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let first = sim.cmd(&args).run();
    assert_eq!(first.code, 7, "unknown outcome: {}", first.stderr);
    assert_eq!(sim.queued(), ["queue/SHOP-APP-42"]);
    // Long past the lock's lifetime and any clock skew: the lock no longer holds anyone off.
    sim.advance(2 * 3600 * 1000);
    for _ in 0..2 {
        let restarted = sim.cmd(&args).run();
        assert_eq!(restarted.code, 3, "{}", restarted.stderr);
        assert!(
            restarted.stderr.contains("0 promoted"),
            "{}",
            restarted.stderr
        );
    }
    assert_eq!(sim.queued(), ["queue/SHOP-APP-42"], "no second call");
    let plan = sim.cmd(&["plan", &promotions]).run();
    assert!(
        plan.stdout
            .contains("a watcher tried this promotion on this build before (label bamboo-promote-tried-deploy-staging)"),
        "{}",
        plan.stdout
    );
}

#[test]
fn a_window_that_opens_lets_the_running_watcher_promote() {
    // The sim clock starts at 2027-01-01T00:00Z, a Friday.
    let manifest = "apiVersion: bamboo-promote/v1
kind: Promotion
metadata: { name: shop }
spec:
  windows:
    early: { timeZone: UTC, allow: [{ days: [fri], from: '00:01', to: '06:00' }] }
  targets:
    - { id: app-staging, plan: SHOP-APP, stage: Deploy Staging, require: { window: early } }
";
    let sim = Sim::start(&world(0));
    let dir = manifests(manifest);
    let watcher = Watcher::start(&sim, &dir, &[]);
    let closed = watcher.cycle();
    assert_eq!(last(&closed)["counts"]["blocked"], 1, "{closed:?}");
    assert!(sim.queued().is_empty());
    // A minute: the server's clock stepping further than the watcher's own would read as
    // clocks that disagree (see `bamboo::server_clock`).
    sim.advance(61_000);
    let open = watcher.cycle_until("promoted", |e| !promoted(e).is_empty());
    assert_eq!(promoted(&open), ["app-staging SHOP-APP-42"]);
    let ran = watcher.stop("INT");
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(sim.queued(), ["queue/SHOP-APP-42"]);
}

#[test]
fn an_invalid_manifest_set_writes_nothing_and_the_watch_recovers_with_health_saying_so() {
    let sim = Sim::start(&world(0));
    let dir =
        manifests(&MANIFEST.replace("stage: Deploy Staging", "stage: Deploy Staging, bogus: 1"));
    let (watcher, addr) = listening(&sim, &dir, &[]);
    let invalid = watcher.cycle();
    assert_eq!(last(&invalid)["outcome"], "invalid", "{invalid:?}");
    assert!(
        invalid.iter().any(|e| e["event"] == "error"
            && e["diagnostics"][0]["message"]
                .as_str()
                .is_some_and(|m| m.contains("bogus"))),
        "{invalid:?}"
    );
    assert!(
        sim.requests().is_empty(),
        "nothing sent with invalid manifests"
    );
    let (status, body) = http(&addr, "GET", "/healthz", &[], "");
    assert_eq!(status, 503, "{body}");
    let health: Value = serde_json::from_str(&body).unwrap();
    assert!(
        health["reason"].as_str().unwrap().contains("invalid"),
        "{body}"
    );
    write(&dir, "promotions/shop.yaml", MANIFEST);
    let fixed = watcher.cycle_until("ok", |e| last(e)["outcome"] == "ok");
    assert_eq!(promoted(&fixed), ["app-staging SHOP-APP-42"], "{fixed:?}");
    let (status, body) = http(&addr, "GET", "/healthz", &[], "");
    assert_eq!(status, 200, "{body}");
    let ran = watcher.stop("TERM");
    assert_eq!(ran.code, 0, "{}", ran.stderr);
}

#[test]
fn sigterm_sees_the_call_in_flight_through_and_releases_its_lock() {
    let sim = Sim::start(&world(0));
    let dir = manifests(MANIFEST);
    sim.set_faults(
        r#"{"script": [{"method": "PUT", "path": "queue/", "fault": "hold", "afterMs": 500}]}"#,
    );
    let watcher = Watcher::start(&sim, &dir, &[]);
    crate::support::wait_until("the call is in flight", || !sim.queued().is_empty());
    signal(&watcher.child, "TERM");
    sim.advance(500);
    let ran = Ran::finish(watcher.child);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(ran.stderr.contains("SIGTERM"), "{}", ran.stderr);
    let labels = sim.get_json("result/SHOP-APP-42?expand=labels");
    let labels: Vec<&str> = labels["labels"]["label"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert!(
        !labels.iter().any(|l| l.starts_with("bamboo-promote-lock-")),
        "the lock is released: {labels:?}"
    );
    assert!(
        labels.contains(&"bamboo-promote-tried-deploy-staging"),
        "{labels:?}"
    );
    assert_eq!(sim.queued(), ["queue/SHOP-APP-42"]);
}

#[test]
fn two_watchers_on_the_same_manifests_run_no_stage_twice() {
    let sim = Sim::start(&world(0));
    let dir = manifests(MANIFEST);
    let one = Watcher::start(&sim, &dir, &[]);
    let two = Watcher::start(&sim, &dir, &[]);
    for _ in 0..8 {
        one.cycle();
        two.cycle();
        sim.advance(500);
    }
    assert_eq!(one.stop("TERM").code, 0);
    assert_eq!(two.stop("TERM").code, 0);
    for build in ["SHOP-APP-42", "SHOP-API-17"] {
        for (stage, runs) in sim.runs(build) {
            assert_eq!(runs, 1, "{build}: {stage} ran {runs} times");
        }
    }
    assert_eq!(
        sim.queued(),
        ["queue/SHOP-APP-42", "queue/SHOP-API-17"],
        "one call each"
    );
}

#[test]
fn override_window_is_refused_and_pull_needs_a_checkout() {
    let sim = Sim::start(&world(0));
    let dir = manifests(MANIFEST);
    let refused = sim
        .cmd(&[
            "watch",
            "--override-window",
            "--reason",
            "x",
            &promotions(&dir),
        ])
        .run();
    assert_eq!(refused.code, 64, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("does not take --override-window"),
        "{}",
        refused.stderr
    );
    let no_git = sim
        .cmd(&["watch", "--pull", "--once", &promotions(&dir)])
        .run();
    assert_eq!(no_git.code, 64, "{}", no_git.stderr);
    assert!(sim.requests().is_empty());
}

#[test]
fn pull_fast_forwards_the_checkout_before_the_cycle_and_the_cycle_names_its_commit() {
    let sim = Sim::start(&world(0));
    let root = scratch("watch-git");
    let git = |dir: &Path, args: &[&str]| {
        let out = std::process::Command::new("git")
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@example.com",
                "-c",
                "init.defaultBranch=main",
            ])
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .expect("git runs");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    git(&root, &["init", "--bare", "-q", "origin.git"]);
    git(&root, &["clone", "-q", "origin.git", "author"]);
    let author = root.join("author");
    write(
        &author,
        "promotions/shop.yaml",
        &MANIFEST
            .replace("app-prod", "app-later")
            .replace("stage: Deploy Prod", "stage: Deploy Prod, build: 41"),
    );
    git(&author, &["add", "."]);
    git(&author, &["commit", "-q", "-m", "first"]);
    git(&author, &["push", "-q", "origin", "HEAD:main"]);
    git(
        &root,
        &["clone", "-q", "-b", "main", "origin.git", "watcher"],
    );
    write(&author, "promotions/shop.yaml", MANIFEST);
    git(&author, &["commit", "-q", "-am", "second"]);
    git(&author, &["push", "-q", "origin", "HEAD:main"]);
    let pushed = git(&author, &["rev-parse", "--short=12", "HEAD"]);
    let watched = root.join("watcher/promotions").display().to_string();
    let ran = sim
        .cmd(&["watch", "--pull", "--once", "--format", "json", &watched])
        .run();
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let cycle: Value = serde_json::from_str(ran.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(cycle["commit"], pushed.as_str(), "{}", ran.stdout);
    assert_eq!(cycle["outcome"], "ok");
    // The second commit's manifest, with no build 41 pinned: staging promoted, prod waiting.
    assert_eq!(cycle["counts"]["waiting"], 1, "{}", ran.stdout);
    assert_eq!(
        git(&root.join("watcher"), &["rev-parse", "--short=12", "HEAD"]),
        pushed
    );
    // An edit in the checkout is not applied under a commit that does not hold it.
    let queued = sim.queued();
    let refused = |why: &str| {
        let ran = sim
            .cmd(&["watch", "--pull", "--once", "--format", "json", &watched])
            .run();
        assert_eq!(ran.code, 1, "{}", ran.stderr);
        let cycle: Value = serde_json::from_str(ran.stdout.lines().last().unwrap()).unwrap();
        assert_eq!(cycle["outcome"], "pullFailed", "{}", ran.stdout);
        assert!(cycle["message"].as_str().unwrap().contains(why), "{cycle}");
        assert_eq!(sim.queued(), queued, "nothing was queued");
    };
    write(&root.join("watcher"), "promotions/more.yaml", MANIFEST);
    refused("1 manifest change in");
    // Nor one that git's status does not show: in an ignored folder (a red team's round 2).
    std::fs::remove_file(root.join("watcher/promotions/more.yaml")).unwrap();
    write(&root.join("watcher"), ".git/info/exclude", "local/\n");
    write(
        &root.join("watcher"),
        "promotions/local/more.yaml",
        "apiVersion: bamboo-promote/v1\nkind: Promotion\nmetadata: { name: local }\nspec:\n  targets:\n    - { id: sneaky, plan: SHOP-API, stage: Deploy Prod }\n",
    );
    refused("promotions/local/more.yaml");
}

/// Starts a watcher with `--listen 127.0.0.1:0`; returns it and the address it serves on.
fn listening(sim: &Sim, dir: &Path, extra: &[&str]) -> (Watcher, String) {
    let mut args = vec!["--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let mut watcher = Watcher::start(sim, dir, &args);
    let said = stderr_until(&mut watcher.child, "listening on http://");
    let addr = said
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the address")
        .to_string();
    (watcher, addr)
}

#[test]
fn metrics_parse_with_the_prometheus_parser_and_say_what_the_watcher_did() {
    let sim = Sim::start(&world(0));
    let dir = manifests(MANIFEST);
    // One cycle, then an hour's pause: the counts below are the cycle's, not a moving target.
    let (watcher, addr) = listening(&sim, &dir, &["--interval", "1h"]);
    watcher.cycle();
    let (status, text) = http(&addr, "GET", "/metrics", &[], "");
    assert_eq!(status, 200, "{text}");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/parse_metrics.py");
    let mut parser = std::process::Command::new("python3")
        .arg(script)
        .env("PYTHONPATH", crate::support::python_deps())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    use std::io::Write as _;
    parser
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let parsed = parser.wait_with_output().unwrap();
    assert!(
        parsed.status.success(),
        "the parser refused the text: {}\n{text}",
        String::from_utf8_lossy(&parsed.stderr)
    );
    let samples: Vec<Value> = serde_json::from_slice(&parsed.stdout).unwrap();
    let value = |name: &str, labels: &[(&str, &str)]| -> f64 {
        samples
            .iter()
            .find(|s| s["name"] == name && labels.iter().all(|(k, v)| s["labels"][k] == *v))
            .unwrap_or_else(|| panic!("no sample {name} {labels:?} in {text}"))["value"]
            .as_f64()
            .unwrap()
    };
    assert_eq!(
        value(
            "bamboo_promote_promotions_total",
            &[("outcome", "promoted")]
        ),
        1.0
    );
    assert_eq!(
        value("bamboo_promote_cycles_total", &[("outcome", "ok")]),
        1.0
    );
    assert_eq!(
        value("bamboo_promote_targets", &[("status", "promote")]),
        1.0
    );
    assert_eq!(
        value("bamboo_promote_targets", &[("status", "waiting")]),
        1.0
    );
    assert_eq!(
        value("bamboo_promote_targets", &[("status", "blocked")]),
        0.0
    );
    assert_eq!(
        value("bamboo_promote_cycle_duration_seconds_count", &[]),
        1.0
    );
    assert!(value("bamboo_promote_last_good_cycle_timestamp_seconds", &[]) > 1.7e9);
    // The requests the simulator logged, by method and status, are the ones counted.
    let put = sim.queued().len() as f64;
    assert_eq!(
        value(
            "bamboo_promote_bamboo_requests_total",
            &[("method", "PUT"), ("status", "200")]
        ),
        put
    );
    let gets = sim
        .requests()
        .iter()
        .filter(|r| r["method"] == "GET" && r["status"] == 200)
        .count() as f64;
    assert_eq!(
        value(
            "bamboo_promote_bamboo_requests_total",
            &[("method", "GET"), ("status", "200")]
        ),
        gets
    );
    assert_eq!(watcher.stop("TERM").code, 0);
}

/// The board in a real browser: Debian's `chromium`, headless, renders it at a phone's width;
/// the test keeps the screenshot (`target/watch-board.png`) and asserts the DOM. `.ci/run`
/// installs chromium and sets `BAMBOO_PROMOTE_BROWSER=required`; elsewhere, without it, the
/// test says so and does not run.
#[test]
fn the_board_shows_what_runs_where_in_a_real_browser() {
    let browser = ["chromium", "chromium-browser"].into_iter().find(|b| {
        std::process::Command::new(b)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    let Some(browser) = browser else {
        assert!(
            std::env::var("BAMBOO_PROMOTE_BROWSER").as_deref() != Ok("required"),
            "no chromium, and BAMBOO_PROMOTE_BROWSER=required"
        );
        eprintln!("the board's browser test needs chromium (apt-get install chromium); not run");
        return;
    };
    // A third plan, whose target waits for a window that opens on Monday.
    let world = world(0)
        + "      - key: WEB
        stages:
          - { name: Build, durationMs: 1000 }
          - { name: Deploy Prod, manual: true, durationMs: 1000 }
        builds:
          - { number: 7, state: { pausedBefore: Deploy Prod } }
";
    let manifest = MANIFEST.replace(
        "spec:\n",
        "spec:\n  windows:\n    monday: { timeZone: UTC, allow: [{ days: [mon], from: '09:00', to: '10:00' }] }\n",
    ) + "    - { id: web-prod, plan: SHOP-WEB, stage: Deploy Prod, require: { window: monday } }\n";
    let sim = Sim::start(&world);
    let dir = manifests(&manifest);
    let (watcher, addr) = listening(&sim, &dir, &[]);
    watcher.cycle();
    watcher.cycle();
    let url = format!("http://{addr}/");
    let shot = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/watch-board.png");
    let _ = std::fs::remove_file(&shot);
    let headless = |extra: &[String]| {
        std::process::Command::new(browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
            ])
            .arg("--window-size=412,915")
            .arg(format!(
                "--user-data-dir={}",
                dir.join("chromium-profile").display()
            ))
            .args(extra)
            .arg(&url)
            .output()
            .expect("chromium runs")
    };
    let dom = headless(&["--dump-dom".into()]);
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let dom = String::from_utf8_lossy(&dom.stdout).into_owned();
    let shot_run = headless(&[format!("--screenshot={}", shot.display())]);
    assert!(
        shot_run.status.success(),
        "{}",
        String::from_utf8_lossy(&shot_run.stderr)
    );
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    assert_eq!(watcher.stop("TERM").code, 0);
    assert!(
        dom.contains("<p id=\"health\"><span class=\"kind ok\">healthy</span></p>"),
        "{dom}"
    );
    // What runs where: staging's build is running the stage this watcher queued, prod waits.
    assert!(
        dom.contains(r#"<tr data-target="app-staging" data-kind="running">"#),
        "{dom}"
    );
    assert!(
        dom.contains(r#"<tr data-target="api-prod" data-kind="waiting">"#),
        "{dom}"
    );
    assert!(
        dom.contains(r#"<tr data-target="web-prod" data-kind="blocked">"#),
        "{dom}"
    );
    // The closed window, when it opens, and who waits for it.
    let windows = &dom[dom
        .find("<table id=\"windows\">")
        .expect("the windows table")..];
    assert!(windows.contains("monday"), "{dom}");
    assert!(windows.contains("2027-01-04"), "Monday's opening: {dom}");
    assert!(windows.contains("web-prod"), "{dom}");
    // The last cycles, newest first.
    let first = dom.find("data-cycle=\"2\"").expect("cycle 2");
    let second = dom.find("data-cycle=\"1\"").expect("cycle 1");
    assert!(first < second, "{dom}");
}

#[test]
fn an_outage_makes_cycles_that_write_nothing_and_the_watcher_recovers_by_itself() {
    let sim = Sim::start(&world(0));
    let dir = manifests(MANIFEST);
    sim.set_faults(r#"{"errorRate": 1.0}"#);
    let watcher = Watcher::start(&sim, &dir, &[]);
    let down = watcher.cycle();
    assert_eq!(last(&down)["outcome"], "unreachable", "{down:?}");
    assert!(
        last(&down)["message"]
            .as_str()
            .unwrap()
            .contains("keeps failing"),
        "{down:?}"
    );
    // Later than the interval: the first failure doubles it, less up to a quarter.
    let next = last(&down)["nextInMs"].as_u64().unwrap();
    assert!((1500..=2000).contains(&next), "{next}");
    assert!(sim.queued().is_empty());
    sim.set_faults("{}");
    let up = watcher.cycle_until("ok", |e| last(e)["outcome"] == "ok");
    assert_eq!(promoted(&up), ["app-staging SHOP-APP-42"], "{up:?}");
    assert!(last(&up)["nextInMs"].as_u64().unwrap() <= 1000);
    assert_eq!(watcher.stop("TERM").code, 0);
}

/// Puts a label on a build, as a person in Bamboo's UI would.
fn add_label(sim: &Sim, build: &str, label: &str) {
    let (status, body) = sim.request(
        "POST",
        &format!("/rest/api/latest/result/{build}/label"),
        &[
            ("Content-Type", "application/json"),
            ("X-Atlassian-Token", "no-check"),
        ],
        &serde_json::json!({ "name": label }).to_string(),
    );
    assert!(status < 300, "{status} {body}");
}

/// The labels on a build, as the simulator has them.
fn labels(sim: &Sim, build: &str) -> Vec<String> {
    let result = sim.get_json(&format!("result/{build}?expand=labels"));
    result["labels"]["label"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_try_that_ends_before_its_call_takes_its_mark_off_and_the_next_cycle_tries() {
    let sim = Sim::start(&world(0));
    let dir = manifests(MANIFEST);
    // The second label write (the mark, after the lock label) is answered late: the watcher is
    // stopped while it waits, and must not call after it.
    sim.set_faults(
        r#"{"script": [{"method": "POST", "path": "/label", "skip": 1, "fault": "hold", "afterMs": 500}]}"#,
    );
    let watcher = Watcher::start(&sim, &dir, &[]);
    let mark_sent = || {
        let requests = sim.requests();
        let label_posts = requests.iter().filter(|r| {
            r["method"] == "POST" && r["path"].as_str().is_some_and(|p| p.ends_with("/label"))
        });
        label_posts.count() >= 2
    };
    crate::support::wait_until("the mark is on its way", mark_sent);
    signal(&watcher.child, "TERM");
    sim.advance(500);
    let ran = Ran::finish(watcher.child);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(sim.queued().is_empty(), "no call after the stop");
    assert_eq!(sim.ran("SHOP-APP-42"), ["Build"]);
    let left = labels(&sim, "SHOP-APP-42");
    assert!(
        !left.iter().any(|l| l.starts_with("bamboo-promote-")),
        "neither the lock nor the mark stays: {left:?}"
    );
    let again = sim.cmd(&["watch", "--once", &promotions(&dir)]).run();
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(sim.queued(), ["queue/SHOP-APP-42"]);
}

/// A plan with a trap: continuing a build with `stage=Deploy Staging` after Deploy Staging ran
/// runs the next manual stage, Deploy DR, which no target asks for.
const TRAP: &str = "
settings: { clock: manual }
projects:
  - key: SHOP
    plans:
      - key: APP
        stages:
          - { name: Build, durationMs: 1000 }
          - { name: Deploy Staging, manual: true, durationMs: 1000 }
          - { name: Deploy Prod, manual: true, durationMs: 1000 }
          - { name: Deploy DR, manual: true, durationMs: 1000 }
        builds:
          - { number: 42, state: { pausedBefore: Deploy Staging } }
";

/// One target on SHOP-APP, `build` and `stage` as given.
fn one_target(build: &str, stage: &str) -> String {
    format!(
        "apiVersion: bamboo-promote/v1\nkind: Promotion\nmetadata: {{ name: shop }}\nspec:\n  targets:\n    - {{ id: app, plan: SHOP-APP, build: {build}, stage: {stage} }}\n"
    )
}

/// A call held on its way for ten sim-hours: no answer, so its outcome is unknown.
const LATE_CALL: &str = r#"{"script": [{"method": "PUT", "path": "queue/", "times": 1, "fault": "applyLate", "afterMs": 36000000}]}"#;

/// Found by a red team: a call of unknown outcome to Deploy Staging, the manifest moved on to
/// Deploy Prod, and — once the lock expired — a call to Deploy Prod; the late call then landed
/// after Deploy Staging had run and ran Deploy DR. A mark whose stage has not run holds its
/// build and plan, in the watcher that made it and in any other, until the stage runs.
#[test]
fn a_call_that_may_still_land_holds_its_build_until_its_stage_runs() {
    let sim = Sim::start(TRAP);
    let dir = manifests(&one_target("42", "Deploy Staging"));
    sim.set_faults(LATE_CALL);
    let watcher = Watcher::start(&sim, &dir, &["--request-timeout", "2s", "--lock-ttl", "6s"]);
    let first = watcher.cycle();
    assert!(first.iter().any(|e| e["event"] == "unknown"), "{first:?}");
    write(
        &dir,
        "promotions/shop.yaml",
        &one_target("42", "Deploy Prod"),
    );
    // Past the lock's lifetime and any clock skew: only the mark holds the build now.
    sim.advance(2 * 3600 * 1000);
    for _ in 0..3 {
        watcher.cycle();
    }
    let restarted = sim.cmd(&["watch", "--once", &promotions(&dir)]).run();
    assert_eq!(restarted.code, 3, "{}", restarted.stderr);
    assert_eq!(
        sim.queued(),
        ["queue/SHOP-APP-42"],
        "no call while the first may land"
    );
    let plan = sim.cmd(&["plan", &promotions(&dir)]).run();
    assert!(
        plan.stdout
            .contains("a watcher's call to SHOP-APP-42 may still land"),
        "{}",
        plan.stdout
    );
    // A person takes the mark off (a red team's round 2): the watcher still knows its own call
    // is on its way, and holds the build until Bamboo shows it.
    let (status, body) = sim.write(
        "DELETE",
        "result/SHOP-APP-42/label/bamboo-promote-tried-deploy-staging",
    );
    assert!(status < 300, "{status} {body}");
    for _ in 0..3 {
        watcher.cycle();
    }
    assert_eq!(sim.queued(), ["queue/SHOP-APP-42"], "still held");
    // The late call lands and Deploy Staging runs: the mark is settled, and Deploy Prod follows.
    sim.advance(10 * 3600 * 1000);
    watcher.cycle_until("Deploy Prod promoted", |events| {
        sim.advance(1000);
        promoted(events) == ["app SHOP-APP-42"]
    });
    sim.advance(2000);
    assert_eq!(watcher.stop("TERM").code, 0);
    assert_eq!(
        sim.runs("SHOP-APP-42"),
        [
            ("Build".to_string(), 1),
            ("Deploy Staging".to_string(), 1),
            ("Deploy Prod".to_string(), 1),
            ("Deploy DR".to_string(), 0)
        ]
    );
}

/// Found by a red team: a new build promoted while the call to the one before it could still
/// land — it would land after, and put the older build on staging. A watcher holds the plan of
/// its unsettled call across cycles, re-reading that build, until its stage runs.
#[test]
fn a_new_build_waits_for_the_unsettled_call_to_the_one_before_it() {
    let sim = Sim::start(TRAP);
    let dir = manifests(&one_target("latest", "Deploy Staging"));
    sim.set_faults(LATE_CALL);
    let watcher = Watcher::start(&sim, &dir, &["--request-timeout", "2s", "--lock-ttl", "6s"]);
    let first = watcher.cycle();
    assert!(first.iter().any(|e| e["event"] == "unknown"), "{first:?}");
    let (status, body) = sim.write("POST", "queue/SHOP-APP");
    assert_eq!(status, 200, "{body}");
    sim.advance(2 * 3600 * 1000);
    for _ in 0..3 {
        let events = watcher.cycle();
        assert_eq!(last(&events)["counts"]["blocked"], 1, "{events:?}");
    }
    assert!(
        !sim.queued().contains(&"queue/SHOP-APP-43".to_string()),
        "{:?}",
        sim.queued()
    );
    sim.advance(10 * 3600 * 1000);
    watcher.cycle_until("the new build promoted", |events| {
        sim.advance(1000);
        promoted(events) == ["app SHOP-APP-43"]
    });
    assert_eq!(
        watcher.stop("TERM").code,
        0,
        "the late call was seen to land"
    );
    assert_eq!(sim.ran("SHOP-APP-42"), ["Build", "Deploy Staging"]);
}

/// Found by a red team: the server's `Date` stepped two hours for a few seconds and back, and
/// every later cycle refused to take a lock ("Date headers disagree by 2h") until a restart.
/// Each cycle reads the server's clock afresh, as each apply does.
#[test]
fn a_clock_step_seen_once_does_not_stop_later_cycles() {
    let sim = Sim::start(&world(0));
    let dir = manifests(
        "apiVersion: bamboo-promote/v1\nkind: Promotion\nmetadata: { name: shop }\nspec:\n  targets:\n    - { id: app, plan: SHOP-APP, build: 42, stage: Deploy Staging, require: { labels: [qa-ok] } }\n",
    );
    sim.set_faults(r#"{ "dateOffsetMs": 7200000 }"#);
    let watcher = Watcher::start(&sim, &dir, &[]);
    assert_eq!(
        last(&watcher.cycle())["counts"]["blocked"],
        1,
        "waits for its gate"
    );
    sim.set_faults("{}");
    watcher.cycle();
    add_label(&sim, "SHOP-APP-42", "qa-ok");
    watcher.cycle_until("the gate passed and the build promoted", |events| {
        assert_eq!(last(events)["counts"]["errors"], 0, "{events:?}");
        promoted(events) == ["app SHOP-APP-42"]
    });
    assert_eq!(watcher.stop("TERM").code, 0);
}

/// A 429 to the queue call keeps its mark: a proxy may have passed the call on before it
/// answered so (a red team's round 2 did), and a loop that sent it again could run a stage
/// twice, or the next one.
#[test]
fn a_call_answered_429_is_not_tried_again_on_its_build() {
    let sim = Sim::start(TRAP);
    let dir = manifests(&one_target("42", "Deploy Staging"));
    sim.set_faults(
        r#"{"script": [{"method": "PUT", "path": "queue/", "times": 1, "fault": "rateLimit"}]}"#,
    );
    let watcher = Watcher::start(&sim, &dir, &[]);
    let first = watcher.cycle();
    assert!(
        first
            .iter()
            .any(|e| e["event"] == "error" || e["event"] == "refused"),
        "{first:?}"
    );
    for _ in 0..3 {
        sim.advance(2000);
        watcher.cycle();
    }
    assert_eq!(watcher.stop("TERM").code, 0);
    assert_eq!(sim.queued(), ["queue/SHOP-APP-42"], "one call");
    assert_eq!(sim.ran("SHOP-APP-42"), ["Build"], "the 429 ran nothing");
    assert_eq!(
        labels(&sim, "SHOP-APP-42"),
        ["bamboo-promote-tried-deploy-staging"]
    );
}

/// Found by a red team (round 2): a mark whose call may still land on build 41, in the history
/// page the last check reads before a call to 42, was read and ignored; the late call then put
/// 41 back on staging after 42. The last check blocks on it, for apply as for watch — also
/// when the page lists only a build's first 25 labels, as a real server does, and the mark
/// is the 26th.
#[test]
fn an_older_builds_unsettled_mark_in_the_last_checks_page_holds_the_call() {
    for others in [0, 25] {
        let world = TRAP
            .replace(
                "          - { number: 42,",
                "          - { number: 41, state: { pausedBefore: Deploy Staging } }\n          - { number: 42,",
            )
            .replace("clock: manual", "clock: manual, labelPage: 25");
        let sim = Sim::start(&world);
        for i in 1..=others {
            add_label(&sim, "SHOP-APP-41", &format!("aa-note-{i:02}"));
        }
        add_label(&sim, "SHOP-APP-41", "bamboo-promote-tried-deploy-staging");
        older_builds_mark_holds_the_call(&sim);
    }
}

/// Found by a red team (session 13): between the history page that lists build 41's first 25
/// labels and the read of the rest, a label before the 25th was taken off and another put on.
/// The mark, 26th, moved back to 25th: past the page already read, before the rest, and the
/// count unchanged — no read showed it, and the call went to 42. The labels are now read
/// again from the start until two reads agree.
#[test]
fn a_mark_moved_back_by_labels_changing_between_pages_is_still_seen() {
    let notes: Vec<String> = (0..25).map(|i| format!("aa-note-{i:02}")).collect();
    let world = TRAP
        .replace(
            "          - { number: 42,",
            &format!(
                "          - {{ number: 41, labels: [{}, bamboo-promote-tried-deploy-staging], state: {{ pausedBefore: Deploy Staging }} }}\n          - {{ number: 42,",
                notes.join(", ")
            ),
        )
        .replace("clock: manual", "clock: manual, labelPage: 25");
    let sim = Sim::start(&world);
    let dir = manifests(&one_target("latest", "Deploy Staging"));
    let promotions = promotions(&dir);
    let apply = || sim.cmd(&["apply", "--auto-approve", &promotions]);
    // Which read of result/SHOP-APP… is the last check's history page: the last one of a run
    // left alone, which the mark blocks.
    assert_eq!(apply().run().code, 3);
    let reads: Vec<String> = sim
        .requests()
        .iter()
        .filter(|r| r["method"] == "GET")
        .map(|r| r["path"].as_str().unwrap().to_string())
        .filter(|p| p.contains("result/SHOP-APP"))
        .collect();
    let page = reads.iter().rposition(|p| p == "result/SHOP-APP").unwrap();
    sim.reset();
    sim.set_faults(&format!(
        r#"{{ "script": [ {{ "method": "GET", "path": "result/SHOP-APP", "skip": {page}, "fault": "hold", "afterMs": 5 }} ] }}"#
    ));
    let child = apply().spawn();
    crate::support::wait_until("the last check's history page never came", || {
        let log = sim.requests();
        let lock = log
            .iter()
            .position(|r| r["method"] == "POST" && r["path"] == "result/SHOP-APP-42/label");
        lock.is_some_and(|at| log[at..].iter().any(|r| r["path"] == "result/SHOP-APP"))
    });
    // While its answer is held: a note before the mark off, another on.
    let (status, _) = sim.request(
        "DELETE",
        "/rest/api/latest/result/SHOP-APP-41/label/aa-note-00",
        &[("X-Atlassian-Token", "no-check")],
        "",
    );
    assert!(status < 300, "{status}");
    add_label(&sim, "SHOP-APP-41", "zz-note");
    sim.advance(10);
    held_by_a_mark(&sim, &Ran::finish(child), "SHOP-APP-41", "SHOP-APP-42");
}

/// Found by a red team (session 13): with `allowDowngrade: true` the last check read no newer
/// build, so a newer build's mark of a call that may still land went unseen, and the rollback
/// to 41 was sent. The newer builds are read for their marks, downgrade or not.
#[test]
fn a_newer_builds_unsettled_mark_holds_a_rollback_allowed_to_downgrade() {
    let sim = Sim::start(&TRAP.replace(
        "          - { number: 42,",
        "          - { number: 41, state: { pausedBefore: Deploy Staging } }\n          - { number: 42,",
    ));
    add_label(&sim, "SHOP-APP-42", "bamboo-promote-tried-deploy-staging");
    let dir = manifests(
        "apiVersion: bamboo-promote/v1\nkind: Promotion\nmetadata: { name: shop }\nspec:\n  targets:\n    - { id: app, plan: SHOP-APP, build: 41, stage: Deploy Staging, allowDowngrade: true }\n",
    );
    let ran = sim
        .cmd(&["apply", "--auto-approve", &promotions(&dir)])
        .run();
    held_by_a_mark(&sim, &ran, "SHOP-APP-42", "SHOP-APP-41");
}

/// A run that the unsettled mark on `marked` held: exit 3, saying so, no call sent, and
/// nothing but Build run on `target`.
fn held_by_a_mark(sim: &Sim, ran: &Ran, marked: &str, target: &str) {
    assert_eq!(ran.code, 3, "{}\n{}", ran.stdout, ran.stderr);
    assert!(
        ran.stderr
            .contains(&format!("a watcher's call to {marked} may still land")),
        "{}",
        ran.stderr
    );
    assert!(sim.queued().is_empty(), "{:?}", sim.queued());
    assert_eq!(sim.ran(target), ["Build"]);
}

fn older_builds_mark_holds_the_call(sim: &Sim) {
    let dir = manifests(&one_target("latest", "Deploy Staging"));
    for command in ["apply", "watch"] {
        let args: &[&str] = if command == "apply" {
            &["apply", "--auto-approve"]
        } else {
            &["watch", "--once"]
        };
        let mut args = args.to_vec();
        let promotions = promotions(&dir);
        args.push(&promotions);
        let ran = sim.cmd(&args).run();
        assert_eq!(ran.code, 3, "{command}: {}", ran.stderr);
        assert!(
            ran.stderr
                .contains("a watcher's call to SHOP-APP-41 may still land"),
            "{command}: {}",
            ran.stderr
        );
    }
    assert!(sim.queued().is_empty(), "{:?}", sim.queued());
    assert_eq!(sim.ran("SHOP-APP-42"), ["Build"]);
}
