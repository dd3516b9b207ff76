//! The fault-space explorer's long run (not in CI): `cargo bench --bench explore -- --runs
//! 200000` runs that many seeds (from `--start`, default 0) on every core, with a progress bar,
//! then prints a summary table: runs per minute, and for each fault dimension how often it was
//! on and how many runs with it on broke the promise. Each failing seed is printed with a
//! one-line reproduction; `--seed N` runs one seed and prints its trace. `--beyond` draws
//! faults past the assumptions `docs/safety.md` states (front ends further apart than
//! `--max-clock-skew`, writes held past the lock's lifetime).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bamboo_promote::explore::{Bounds, Dimension, Explored, explore};

struct Args {
    runs: u64,
    start: u64,
    seed: Option<u64>,
    bounds: Bounds,
    threads: usize,
    /// Stop at the first seed that breaks the promise, and say how long finding it took.
    until_found: bool,
}

fn args() -> Args {
    let mut args = Args {
        runs: 2_000,
        start: 0,
        seed: None,
        bounds: Bounds::Within,
        threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
        until_found: false,
    };
    let mut given = std::env::args().skip(1);
    while let Some(arg) = given.next() {
        let mut number = || {
            given
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("{arg} needs a number"))
        };
        match arg.as_str() {
            "--runs" => args.runs = number(),
            "--start" => args.start = number(),
            "--seed" => args.seed = Some(number()),
            "--threads" => args.threads = number() as usize,
            "--beyond" => args.bounds = Bounds::Beyond,
            "--until-found" => args.until_found = true,
            // What `cargo bench` passes to every bench target.
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    args
}

fn main() {
    let args = args();
    if let Some(seed) = args.seed {
        let explored = explore(seed, args.bounds);
        for line in &explored.trace {
            println!("{line}");
        }
        println!("exits: {:?}", explored.exits);
        let on: Vec<&str> = explored.on.iter().map(|d| d.name()).collect();
        println!("faults on: {}", on.join(", "));
        report(&explored);
        if explored.violations.is_empty() {
            println!("seed {seed}: the promise held");
        }
        return;
    }
    let started = Instant::now();
    let next = AtomicU64::new(args.start);
    let end = args.start + args.runs;
    let bar = indicatif::ProgressBar::new(args.runs);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} seeds, {per_sec}, {msg}",
        )
        .expect("a valid template"),
    );
    let tally = Mutex::new(Tally::default());
    let found = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        for _ in 0..args.threads {
            scope.spawn(|| {
                loop {
                    let seed = next.fetch_add(1, Ordering::SeqCst);
                    if seed >= end || found.load(Ordering::SeqCst) {
                        break;
                    }
                    let explored = explore(seed, args.bounds);
                    let mut tally = tally.lock().unwrap();
                    tally.add(&explored);
                    if !explored.violations.is_empty() || !explored.residuals.is_empty() {
                        bar.suspend(|| report(&explored));
                    }
                    if args.until_found && !explored.violations.is_empty() {
                        found.store(true, Ordering::SeqCst);
                        bar.suspend(|| {
                            println!(
                                "found after {} runs in {:.1} s",
                                tally.runs,
                                started.elapsed().as_secs_f64()
                            )
                        });
                    }
                    bar.set_message(format!("{} failing", tally.failing));
                    bar.inc(1);
                }
            });
        }
    });
    bar.finish();
    let minutes = started.elapsed().as_secs_f64() / 60.0;
    let tally = tally.into_inner().unwrap();
    let runs = tally.runs;
    tally.print(runs, minutes);
}

fn report(explored: &Explored) {
    for violation in &explored.violations {
        println!("seed {}: {violation}", explored.seed);
    }
    for residual in &explored.residuals {
        println!("seed {} (known residual): {residual}", explored.seed);
    }
    if !explored.violations.is_empty() {
        println!("  reproduce: {}", explored.reproduction());
    }
}

#[derive(Default)]
struct Tally {
    /// Runs tallied so far.
    runs: u64,
    failing: u64,
    residual: u64,
    queue_calls: u64,
    runners: u64,
    /// Runners by exit code.
    exits: std::collections::BTreeMap<u8, u64>,
    /// By dimension: runs with it on, and failing runs with it on.
    by_dimension: Vec<(Dimension, u64, u64)>,
}

impl Tally {
    fn add(&mut self, explored: &Explored) {
        self.runs += 1;
        if self.by_dimension.is_empty() {
            self.by_dimension = Dimension::ALL
                .iter()
                .chain(&Dimension::LATER)
                .map(|d| (*d, 0, 0))
                .collect();
        }
        let failed = !explored.violations.is_empty();
        self.failing += u64::from(failed);
        self.residual += u64::from(!explored.residuals.is_empty());
        self.queue_calls += explored.queue_calls as u64;
        self.runners += explored.runners as u64;
        for code in &explored.exits {
            *self.exits.entry(*code).or_default() += 1;
        }
        for (dimension, on, failing) in &mut self.by_dimension {
            if explored.on.contains(dimension) {
                *on += 1;
                *failing += u64::from(failed);
            }
        }
    }

    fn print(&self, runs: u64, minutes: f64) {
        println!(
            "\n{runs} runs in {minutes:.1} min: {:.0} runs/min; {} runners, {} queue calls reached the server; {} runs broke the promise; {} ran into a residual docs/safety.md lists",
            runs as f64 / minutes.max(1e-9),
            self.runners,
            self.queue_calls,
            self.failing,
            self.residual
        );
        let exits: Vec<String> = self
            .exits
            .iter()
            .map(|(code, n)| format!("{code}: {n}"))
            .collect();
        println!("runners by exit code: {}", exits.join(", "));
        println!("\n| fault dimension | runs with it on | share | failing runs with it on |");
        println!("|---|---:|---:|---:|");
        for (dimension, on, failing) in &self.by_dimension {
            println!(
                "| {} | {on} | {:.0}% | {failing} |",
                dimension.name(),
                100.0 * *on as f64 / runs.max(1) as f64
            );
        }
    }
}
