//! The fault-space explorer (issue 21): searches the space of faults and schedules instead of
//! sampling it. A seed draws a world, targets, one to four concurrent `apply` runs and the
//! fault dimensions that are on (`scenario`); the runs are the real command, in-process
//! (`process::InProcess` gives each its own network, output, signals and lock watches),
//! against the simulator in memory (`network`), on tokio's paused clock: no socket, no real
//! time, so thousands of runs take a minute and a seed gives the same schedule again. After
//! every run the promise is checked from the simulator's ground truth (`invariants`).
//!
//! What it cannot cover: the real TCP stack and HTTP library (reqwest is replaced by
//! `network::Link`; the client above it is the same code), a real Bamboo, a process frozen
//! between two instructions (its pauses are at await points), and the operating system's
//! clocks (the boot clock follows the runtime's). A second signal ends a run through
//! `InProcess::exit`, as `std::process::exit` ends the binary; requests already on their way
//! are delivered by tasks of their own, so they reach the server after their runner is gone.

mod invariants;
mod network;
mod scenario;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use futures_util::FutureExt;

pub use scenario::{Bounds, Dimension, Scenario};

use crate::bamboo::transport::Transport;
use crate::process::{Captured, InProcess, Signal};
use crate::sim::{InMemory, World};
use invariants::RunnerEnd;
use network::{Link, Trace};

/// How long a run may last in virtual time before it is called stuck.
const RUN_LIMIT: Duration = Duration::from_secs(3 * 3600);

/// What one seed's run showed.
pub struct Explored {
    pub seed: u64,
    pub bounds: Bounds,
    pub on: Vec<Dimension>,
    pub runners: usize,
    pub exits: Vec<u8>,
    /// Every violation of the promise, in words; empty when the run kept it.
    pub violations: Vec<String>,
    /// Runs into what `docs/safety.md` lists as what cannot be closed.
    pub residuals: Vec<String>,
    pub trace: Vec<String>,
    pub queue_calls: usize,
}

impl Explored {
    /// The command that runs this seed again, with what was on.
    pub fn reproduction(&self) -> String {
        let beyond = if self.bounds == Bounds::Beyond {
            " --beyond"
        } else {
            ""
        };
        let on: Vec<&str> = self.on.iter().map(|d| d.name()).collect();
        format!(
            "cargo bench --bench explore -- --seed {}{beyond}   # faults on: {}",
            self.seed,
            on.join(", ")
        )
    }
}

/// Runs one seed: its scenario on a fresh paused runtime, then the checks.
pub fn explore(seed: u64, bounds: Bounds) -> Explored {
    crate::boot_clock::follow_runtime_clock();
    let scenario = Scenario::generate(seed, bounds);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime starts");
    runtime.block_on(run(scenario))
}

async fn run(scenario: Scenario) -> Explored {
    let world: World = match serde_json::from_value(scenario.world.clone()) {
        Ok(world) => world,
        Err(e) => return broken(&scenario, format!("the generated world is invalid: {e}")),
    };
    let sim = match InMemory::new(world, "http://bamboo.explore") {
        Ok(sim) => Arc::new(sim),
        Err(e) => return broken(&scenario, format!("the generated world is invalid: {e}")),
    };
    let initial = sim.engine(|engine| {
        let mut runs = Vec::new();
        for plan in engine.plans.values() {
            for build in plan.builds.values() {
                let key = format!("{}-{}", plan.key, build.number);
                runs.push((key, build.stages.iter().map(|s| s.runs).collect()));
            }
        }
        runs
    });
    let dir = match Scratch::new(scenario.seed) {
        Ok(dir) => dir,
        Err(e) => return broken(&scenario, format!("no scratch directory: {e}")),
    };
    let manifests = dir.path().join("manifests");
    if let Err(e) = std::fs::create_dir_all(&manifests)
        .and_then(|()| std::fs::write(manifests.join("explored.yaml"), scenario.manifest()))
    {
        return broken(&scenario, format!("cannot write the manifests: {e}"));
    }
    let trace = Arc::new(Trace::new());
    let runs = scenario.runners.iter().enumerate().map(|(i, spec)| {
        let audit = if spec.audit_fails {
            std::path::PathBuf::from("/dev/full")
        } else {
            dir.path().join(format!("audit-{i}.jsonl"))
        };
        runner(i, &scenario, spec.clone(), &sim, &trace, &manifests, audit)
    });
    tokio::spawn(change_gates(
        scenario.gate_changes.clone(),
        sim.clone(),
        trace.clone(),
    ));
    tokio::spawn(queue_new_builds(
        scenario.new_builds.clone(),
        sim.clone(),
        trace.clone(),
    ));
    let ended = tokio::time::timeout(RUN_LIMIT, futures_util::future::join_all(runs)).await;
    let Ok(ends) = ended else {
        let mut explored = broken(
            &scenario,
            format!("the runs did not end within {RUN_LIMIT:?} of virtual time"),
        );
        explored.trace = trace.lines();
        return explored;
    };
    let requests = sim.requests();
    let departures = trace.departures();
    let found = sim.engine(|engine| {
        invariants::check(
            &scenario,
            &initial,
            engine,
            &invariants::Witness {
                requests: &requests,
                departures: &departures,
            },
            &ends,
        )
    });
    Explored {
        seed: scenario.seed,
        bounds: scenario.bounds,
        on: scenario.on.clone(),
        runners: scenario.runners.len(),
        exits: ends.iter().map(|e| e.code).collect(),
        violations: found.violations,
        residuals: found.residuals,
        trace: trace.lines(),
        queue_calls: requests.iter().filter(|r| r.method == "PUT").count(),
    }
}

/// One runner: `apply` as its own process would run it, with its own network, output,
/// signals and lock watches.
async fn runner(
    i: usize,
    scenario: &Scenario,
    spec: scenario::RunnerSpec,
    sim: &Arc<InMemory>,
    trace: &Arc<Trace>,
    manifests: &std::path::Path,
    audit: std::path::PathBuf,
) -> RunnerEnd {
    tokio::time::sleep(Duration::from_millis(spec.start_ms)).await;
    let server = ["--server", "http://bamboo.explore"];
    let timeout = format!("{}ms", scenario.request_timeout_ms);
    let mut apply: Vec<String> = ["bamboo-promote", "apply", "--auto-approve"]
        .into_iter()
        .chain(server)
        // In seconds with a fraction, as a person writes it: `--lock-ttl 37.412s`.
        .chain([
            "--lock-ttl",
            &format!("{:.3}s", scenario.lock_ttl_ms as f64 / 1000.0),
        ])
        .chain(["--request-timeout", &timeout])
        .map(str::to_string)
        .collect();
    apply.extend(spec.args.iter().cloned());
    apply.push("--audit-log".into());
    apply.push(audit.display().to_string());
    let saved = manifests.with_file_name(format!("plan-{i}.json"));
    let plan: Option<Vec<String>> = spec.saved_plan_after_ms.map(|_| {
        ["bamboo-promote", "plan"]
            .into_iter()
            .chain(server)
            .chain(["--request-timeout", &timeout, "--out"])
            .map(str::to_string)
            .chain([saved.display().to_string(), manifests.display().to_string()])
            .collect()
    });
    apply.push(
        if plan.is_some() { &saved } else { manifests }
            .display()
            .to_string(),
    );
    let parse = |args: &[String]| {
        crate::cli::Cli::try_parse_from(args).map_err(|e| RunnerEnd {
            code: crate::exit::USAGE,
            output: e.to_string(),
            broken: false,
            audit: String::new(),
        })
    };
    let (plan, apply) = match (plan.as_deref().map(parse).transpose(), parse(&apply)) {
        (Ok(plan), Ok(apply)) => (plan, apply),
        (Err(end), _) | (_, Err(end)) => return end,
    };
    let (signals, listen) = tokio::sync::watch::channel(None);
    let link = Link::new(
        i,
        sim.clone(),
        spec.clone(),
        Duration::from_millis(scenario.request_timeout_ms),
        trace.clone(),
        scenario.seed.wrapping_mul(31).wrapping_add(i as u64),
    );
    let (exit, exited) = tokio::sync::oneshot::channel();
    let process = Arc::new(InProcess {
        network: Arc::new(Arc::new(link) as Arc<dyn Transport>),
        captured: Arc::new(Captured {
            out_broken: spec.out_broken,
            err_broken: spec.err_broken,
            ..Captured::default()
        }),
        signals: listen,
        watches: Mutex::default(),
        rng: Mutex::new(rand::SeedableRng::seed_from_u64(
            scenario.seed.wrapping_mul(7).wrapping_add(i as u64),
        )),
        exit: Mutex::new(Some(exit)),
    });
    let signal = {
        let trace = trace.clone();
        async move {
            if let Some((at_ms, terminate)) = spec.signal {
                tokio::time::sleep(Duration::from_millis(at_ms)).await;
                let which = if terminate {
                    Signal::Terminate
                } else {
                    Signal::Interrupt
                };
                trace.note(i, format!("{} sent", which.name()));
                let _ = signals.send(Some(which));
                if let Some(after_ms) = spec.second_signal_after_ms {
                    tokio::time::sleep(Duration::from_millis(after_ms)).await;
                    trace.note(i, format!("{} sent again", which.name()));
                    let _ = signals.send(Some(which));
                }
            }
            // Kept open until the run ends: a closed channel is no signal.
            std::future::pending::<()>().await;
        }
    };
    // A saved plan is applied once `plan` wrote it, unless a signal ended the job. A panic ends the process with 101, as the binary's would; the
    // calls on their way go on.
    let after_ms = spec.saved_plan_after_ms.unwrap_or(0);
    let commands = async {
        if let Some(plan) = plan {
            let code = crate::process::scope(process.clone(), crate::run(plan)).await;
            let stopped = [crate::exit::INTERRUPTED, crate::exit::TERMINATED].contains(&code);
            if stopped || !saved.is_file() {
                return code;
            }
            tokio::time::sleep(Duration::from_millis(after_ms)).await;
        }
        crate::process::scope(process.clone(), crate::run(apply)).await
    };
    let apply = std::panic::AssertUnwindSafe(commands).catch_unwind();
    let code = tokio::select! {
        biased;
        code = exited => code.unwrap_or(crate::exit::ERROR),
        code = apply => code.unwrap_or(101),
        () = signal => unreachable!("a signal's sender waits for ever"),
    };
    let captured = &process.captured;
    // The scratch directory's name differs from run to run of a seed: not in the trace.
    let scratch = manifests
        .parent()
        .unwrap_or(manifests)
        .display()
        .to_string();
    let output = format!(
        "{}{}",
        captured.out.lock().unwrap_or_else(|e| e.into_inner()),
        captured.err.lock().unwrap_or_else(|e| e.into_inner())
    )
    .replace(&scratch, "$SCRATCH");
    trace.note(i, format!("exited {code}; its output:\n{output}"));
    RunnerEnd {
        code,
        output,
        broken: spec.out_broken || spec.err_broken,
        // `/dev/full` reads as zeros for ever: a log that could not be written holds nothing.
        audit: if spec.audit_fails {
            String::new()
        } else {
            std::fs::read_to_string(&audit).unwrap_or_default()
        },
    }
}

/// A person puts the gate label on builds, and takes it off, while the runs go on.
async fn change_gates(changes: Vec<scenario::GateChange>, sim: Arc<InMemory>, trace: Arc<Trace>) {
    let started = tokio::time::Instant::now();
    for change in changes {
        tokio::time::sleep_until(started + Duration::from_millis(change.at_ms)).await;
        sim.change(|engine| {
            let Some(build) = engine
                .plans
                .get_mut(&change.plan)
                .and_then(|p| p.builds.get_mut(&change.number))
            else {
                return;
            };
            build.labels.retain(|l| l != scenario::GATE_LABEL);
            if change.on {
                build.labels.push(scenario::GATE_LABEL.to_string());
            }
        });
        let what = if change.on { "put on" } else { "taken off" };
        trace.note_world(format!(
            "{} {what} {}-{}",
            scenario::GATE_LABEL,
            change.plan,
            change.number
        ));
    }
}

/// A person (or a commit) queues new builds while the runs go on: `latest` moves on.
async fn queue_new_builds(builds: Vec<scenario::NewBuild>, sim: Arc<InMemory>, trace: Arc<Trace>) {
    let started = tokio::time::Instant::now();
    for build in builds {
        tokio::time::sleep_until(started + Duration::from_millis(build.at_ms)).await;
        let now = sim.now_ms();
        let queued = sim.change(|engine| {
            engine.queue_new(&build.plan, &crate::sim::QueueRequest::default(), now)
        });
        match queued {
            Ok(number) => trace.note_world(format!("queued {}-{number}", build.plan)),
            Err(e) => trace.note_world(format!("queueing {} refused: {}", build.plan, e.message)),
        }
    }
}

fn broken(scenario: &Scenario, why: String) -> Explored {
    Explored {
        seed: scenario.seed,
        bounds: scenario.bounds,
        on: scenario.on.clone(),
        runners: scenario.runners.len(),
        exits: Vec::new(),
        violations: vec![why],
        residuals: Vec::new(),
        trace: Vec::new(),
        queue_calls: 0,
    }
}

/// A directory of its own for one run's manifests and audit trails, removed after it.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(seed: u64) -> std::io::Result<Scratch> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!(
            "bamboo-promote-explore-{}-{seed}-{n}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path)?;
        Ok(Scratch(path))
    }

    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
