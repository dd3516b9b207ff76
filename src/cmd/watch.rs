//! `watch`: `apply` in a loop, for a process that keeps Bamboo in line with the manifests.
//!
//! Each cycle pulls the checkout (`--pull`), reads the manifests again, observes, plans, and
//! applies that plan under exactly apply's rules — leases, unknown outcomes, gates, windows,
//! downgrades, records — with one more: a build and stage are tried once, marked before the
//! call (`tried_label`), so a failed or unknown promotion is never tried again by this watcher,
//! a restarted one or another one. The manifests at the cycle's commit are its approval: a
//! cycle writes only what its own plan, made from its own reads, calls for, and
//! `--override-window` is refused. A cycle whose manifests are invalid, whose pull failed, or
//! whose reads of Bamboo failed writes nothing; the next one tries again (after an outage,
//! later each time, jittered). SIGINT and SIGTERM end the call in flight, release the locks
//! and exit 0, or 7 when a call's outcome stayed unknown.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::failure::{Failure, Json};
use super::pipeline;
use crate::apply::{self, Applied, Counts, CycleOutcome, Event, Reporter, Source, Stop};
use crate::cli::{ApplyFormat, WatchArgs};
use crate::config::Connection;
use crate::exit;
use crate::git::Checkout;
use crate::manifest::Desired;
use crate::reconcile;
use crate::render::human::counted;
use crate::watch::{self, Watch};

/// The longest pause after failed cycles, unless the interval is longer.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

pub async fn run(args: &WatchArgs) -> u8 {
    watch::memory::one_arena();
    let json = if args.format == ApplyFormat::Json {
        Json::Event
    } else {
        Json::No
    };
    if args.override_window {
        return Failure::usage("watch does not take --override-window: a watcher promotes what the manifests allow, windows included; run `apply --override-window --reason …` once for an exception").report(json);
    }
    if let Some(problem) = super::apply::lease_problem(&args.server, &args.lease) {
        return Failure::new(problem).report(json);
    }
    let connection = match pipeline::connect(&args.server).await {
        Ok(connection) => connection,
        Err(failure) => return failure.report(json),
    };
    let reporter = match Reporter::new(json == Json::Event, args.audit_log.as_deref(), None) {
        Ok(reporter) => Arc::new(reporter),
        Err(e) => return Failure::new(format!("cannot open the audit log: {e}")).report(json),
    };
    let checkout = match args.paths.first() {
        Some(path) => Checkout::of(path).await,
        None => None,
    };
    if args.pull && checkout.is_none() {
        return Failure::usage("--pull needs the manifests to be in a Git checkout").report(json);
    }
    let watch = Arc::new(Watch::new(args.interval));
    let requests = Arc::new(AtomicU64::new(0));
    let tally = (watch.clone(), requests.clone());
    connection
        .client
        .keep_tally(Arc::new(move |method, status| {
            tally.1.fetch_add(1, Ordering::Relaxed);
            tally.0.metrics.request(method.as_str(), status);
        }));
    // Every write the client sends is in the audit trail before it leaves.
    connection.client.keep_journal(reporter.clone());
    if let Some(addr) = args.listen {
        match watch::serve(addr, watch.clone()).await {
            Ok(bound) => {
                errln!("listening on http://{bound} (/healthz, /metrics, and the board at /)")
            }
            Err(e) => return Failure::new(format!("cannot listen on {addr}: {e}")).report(json),
        }
    }
    let last_words = reporter.clone();
    let stop = Stop::on_signals(move || last_words.last_words());
    let watcher = Watcher {
        args,
        connection: &connection,
        reporter: &reporter,
        checkout,
        watch: &watch,
        stop: &stop,
        requests: &requests,
        json,
        last_failure: None,
        holds: watch::Holds::default(),
    };
    watcher.run().await
}

struct Watcher<'a> {
    args: &'a WatchArgs,
    connection: &'a Connection,
    reporter: &'a Arc<Reporter>,
    checkout: Option<Checkout>,
    watch: &'a Watch,
    stop: &'a Stop,
    /// Requests sent to Bamboo since the start, for each cycle's count.
    requests: &'a AtomicU64,
    json: Json,
    /// The last invalid-manifest report, said again only when it changes.
    last_failure: Option<String>,
    /// Plans held by this watcher's unsettled calls, across cycles.
    holds: watch::Holds,
}

/// How a cycle ended: its outcome, with what was applied when it got that far.
struct Ended {
    outcome: CycleOutcome,
    message: Option<String>,
    applied: Option<Applied>,
}

impl Ended {
    fn without_writes(outcome: CycleOutcome, message: String) -> Ended {
        Ended {
            outcome,
            message: Some(message),
            applied: None,
        }
    }
}

impl Watcher<'_> {
    async fn run(mut self) -> u8 {
        let mut failures: u32 = 0;
        for number in 1.. {
            let started = Instant::now();
            let sent_before = self.requests.load(Ordering::Relaxed);
            let commit = self.commit_to_use().await;
            let ended = match commit {
                Ok(commit) => {
                    let ended = self.cycle(commit.as_deref()).await;
                    (ended, commit)
                }
                Err(why) => (
                    Ended::without_writes(CycleOutcome::PullFailed, why),
                    self.head().await,
                ),
            };
            let (ended, commit) = ended;
            failures = match ended.outcome {
                CycleOutcome::Unreachable | CycleOutcome::PullFailed => failures + 1,
                CycleOutcome::Ok | CycleOutcome::Invalid => 0,
            };
            let last = self.args.once || self.stop.requested();
            let next = (!last).then(|| pause(self.args.interval, failures, started.elapsed()));
            let counts = self.count(ended.applied.as_ref());
            let cycle = watch::Cycle {
                number,
                ended_at: jiff::Timestamp::now(),
                outcome: ended.outcome,
                commit,
                message: ended.message.clone(),
                counts: counts.clone(),
                duration: started.elapsed(),
            };
            let requests = self.requests.load(Ordering::Relaxed) - sent_before;
            self.connection.client.close_idle_connections();
            watch::memory::give_back_freed();
            self.say_cycle(&cycle, requests, next);
            self.watch.ended(cycle);
            if last {
                return self.exit_code(&ended, &counts);
            }
            if !self.stop.sleep(next.unwrap_or_default()).await {
                return self.exit_code(&ended, &counts);
            }
        }
        unreachable!("cycles are counted without end")
    }

    /// The commit this cycle acts on: pulled first with `--pull`.
    async fn commit_to_use(&self) -> Result<Option<String>, String> {
        if let (true, Some(checkout)) = (self.args.pull, &self.checkout) {
            let root = checkout.root().display();
            checkout
                .pull()
                .await
                .map_err(|e| format!("{e} (in {root}); nothing was queued"))?;
            let uncommitted = checkout
                .uncommitted(&self.args.paths)
                .await
                .map_err(|e| format!("git status failed: {e} (in {root}); nothing was queued"))?;
            if let Some(first) = uncommitted.first() {
                return Err(format!(
                    "{} in {root} not committed ({first}{}): with --pull a watcher applies what a commit says; commit or discard them. Nothing was queued",
                    counted(uncommitted.len(), "manifest change"),
                    if uncommitted.len() > 1 { ", …" } else { "" }
                ));
            }
        }
        Ok(self.head().await)
    }

    async fn head(&self) -> Option<String> {
        match &self.checkout {
            Some(checkout) => checkout.head().await,
            None => None,
        }
    }

    /// One cycle after the pull: read, observe, plan, apply.
    async fn cycle(&mut self, commit: Option<&str>) -> Ended {
        let desired = match self.manifests().await {
            Ok(desired) => desired,
            Err(failure) => return self.invalid(failure),
        };
        if let Err(why) = self.all_committed(&desired).await {
            return Ended::without_writes(CycleOutcome::PullFailed, why);
        }
        let client = &self.connection.client;
        client.forget_server_time();
        let observed = match pipeline::observe(self.connection, &desired).await {
            Ok(observed) => observed,
            Err(failure) => {
                return Ended::without_writes(
                    CycleOutcome::Unreachable,
                    format!("{}; nothing was queued", failure.message),
                );
            }
        };
        let online = reconcile::check(&desired, &observed);
        if !online.is_empty() {
            return self.invalid(Failure::manifests(
                online,
                "nothing was queued in this cycle",
            ));
        }
        self.last_failure = None;
        if !self.holds.is_empty() {
            self.holds.recheck(client, &observed).await;
        }
        let moment = reconcile::Moment::on_server(client, false);
        let mut plan = reconcile::plan(&desired, &observed, moment);
        self.holds.block(&mut plan);
        self.watch
            .planned(&plan, &self.connection.server, moment.now.to_string());
        let options = apply::Options {
            approval: apply::Approval::of(&plan, false),
            record: apply::RecordContext::new(&desired.digest, self.reason(commit)),
            override_windows: false,
            wait: false,
            timeout: self.args.interval,
            poll: self.args.interval,
            lease: apply::LeaseSettings {
                // A build another run holds is left to the next cycle, not waited on for the
                // lock's lifetime; this process's watch of the lock goes on across cycles.
                patience: Some(self.args.lease.lock_timeout.unwrap_or(self.args.interval)),
                ..super::apply::lease_settings(&self.args.lease)
            },
            mark_tries: true,
        };
        let source = Source::Manifests(&desired);
        let applied = apply::run(client, source, plan, &options, self.reporter, self.stop).await;
        self.holds.add(applied.held.clone());
        for (_, _, outcome) in &applied.outcomes {
            self.watch.metrics.promotion(outcome);
        }
        Ended {
            outcome: CycleOutcome::Ok,
            message: None,
            applied: Some(applied),
        }
    }

    /// With `--pull`, that every manifest file read is in the commit the cycle names, as read:
    /// not ignored, not edited behind `skip-worktree`, not behind a link out of the checkout.
    async fn all_committed(&self, desired: &Desired) -> Result<(), String> {
        let (true, Some(checkout)) = (self.args.pull, &self.checkout) else {
            return Ok(());
        };
        let files: Vec<_> = desired.files.iter().map(|f| f.path.clone()).collect();
        let root = checkout.root().display();
        let stray = checkout.not_in_head(&files).await.map_err(|e| {
            format!(
                "cannot compare the manifests with the commit: {e} (in {root}); nothing was queued"
            )
        })?;
        match stray.first() {
            None => Ok(()),
            Some(first) => Err(format!(
                "{} read from {root} not as the commit has {} ({first}{}): with --pull a watcher applies what a commit says. Nothing was queued",
                counted(stray.len(), "manifest file"),
                if stray.len() == 1 { "it" } else { "them" },
                if stray.len() > 1 { ", …" } else { "" }
            )),
        }
    }

    /// The manifests as they are on disk now.
    async fn manifests(&self) -> Result<Desired, Failure> {
        let paths = self.args.paths.clone();
        let exclude =
            crate::manifest::Exclude::new(&self.args.walk.exclude).map_err(Failure::new)?;
        let loaded = tokio::task::spawn_blocking(move || pipeline::load(&paths, &exclude))
            .await
            .expect("the manifest loader panicked")?;
        loaded
            .select(&self.args.selection.targets)
            .map_err(|e| Failure::new(format!("{e}; nothing was queued")))
    }

    /// An invalid manifest set: reported in full when it differs from the last one.
    fn invalid(&mut self, failure: Failure) -> Ended {
        let report = failure.message.clone()
            + &failure
                .diagnostics
                .iter()
                .map(|d| d.to_string())
                .collect::<String>();
        if self.last_failure.as_ref() != Some(&report) {
            failure.report(self.json);
            self.last_failure = Some(report);
        }
        Ended::without_writes(CycleOutcome::Invalid, failure.message)
    }

    /// What the record on each promoted build says of why: `--reason`, and the commit.
    fn reason(&self, commit: Option<&str>) -> Option<String> {
        let commit = commit.map(|c| format!("manifests at commit {c}"));
        match (&self.args.reason, commit) {
            (Some(reason), Some(commit)) => Some(format!("{reason} (watch, {commit})")),
            (Some(reason), None) => Some(format!("{reason} (watch)")),
            (None, Some(commit)) => Some(format!("watch, {commit}")),
            (None, None) => Some("watch".into()),
        }
    }

    fn count(&self, applied: Option<&Applied>) -> Counts {
        let mut counts = Counts::default();
        for (_, _, outcome) in applied.map_or(&[][..], |a| &a.outcomes) {
            super::apply::count(&mut counts, outcome);
        }
        counts
    }

    fn say_cycle(&self, cycle: &watch::Cycle, requests: u64, next: Option<Duration>) {
        let event = Event::Cycle {
            cycle: cycle.number,
            outcome: cycle.outcome,
            commit: cycle.commit.clone(),
            message: cycle.message.clone(),
            counts: cycle.counts.clone(),
            requests,
            duration_ms: millis(cycle.duration),
            next_in_ms: next.map(millis),
        };
        self.reporter.emit(event, || {
            let c = &cycle.counts;
            let at = cycle
                .commit
                .as_ref()
                .map_or(String::new(), |c| format!(" at {c}"));
            let what = match &cycle.message {
                Some(message) => format!("{}: {message}", cycle.outcome.word()),
                None => {
                    let mut what = format!(
                        "{} promoted, {} in sync, {} blocked, {} waiting",
                        c.promoted, c.in_sync, c.blocked, c.waiting
                    );
                    for (n, word) in [
                        (c.stage_failed, "stage failed"),
                        (c.unknown, "unknown"),
                        (c.stale, "stale"),
                        (c.moved_by_other, "moved by others"),
                    ] {
                        if n > 0 {
                            what.push_str(&format!(", {n} {word}"));
                        }
                    }
                    if c.errors > 0 {
                        what.push_str(&format!(", {}", counted(c.errors, "error")));
                    }
                    what
                }
            };
            let next = match next {
                Some(next) => format!("next in {:.0?}", next),
                None => "stopping".into(),
            };
            format!(
                "cycle {}{at} ({:.1?}, {}): {what}; {next}",
                cycle.number,
                cycle.duration,
                counted(usize::try_from(requests).unwrap_or(usize::MAX), "request"),
            )
        });
    }

    /// `--once`: apply's code, or 1 when the cycle wrote nothing for a failure. A stop by a
    /// signal: 0, or 7 when a call's outcome stayed unknown in this watcher's life.
    fn exit_code(&self, ended: &Ended, counts: &Counts) -> u8 {
        if self.stop.requested() {
            // A call whose outcome stayed unknown and has not been seen to land since.
            return if !self.holds.is_empty() {
                exit::OUTCOME_UNKNOWN
            } else {
                exit::SUCCESS
            };
        }
        match &ended.applied {
            Some(applied) => super::apply::exit_code(false, counts, applied),
            None => exit::ERROR,
        }
    }
}

/// The pause before the next cycle: the rest of the interval; after failed cycles (an outage),
/// twice as long for each, at most `MAX_BACKOFF` (or the interval, if longer), less up to a
/// quarter at random so that watchers that failed together do not come back together.
fn pause(interval: Duration, failures: u32, took: Duration) -> Duration {
    if failures == 0 {
        return interval.saturating_sub(took);
    }
    let longest = MAX_BACKOFF.max(interval);
    let doubled = interval.saturating_mul(1 << failures.min(16)).min(longest);
    doubled.mul_f64(crate::process::random_in(0.75..=1.0))
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_backs_off_doubling_to_a_bound_with_jitter() {
        let second = Duration::from_secs;
        assert_eq!(pause(second(30), 0, second(4)), second(26));
        assert_eq!(pause(second(30), 0, second(40)), Duration::ZERO);
        let once = pause(second(30), 1, second(1));
        assert!(once >= second(45) && once <= second(60), "{once:?}");
        let often = pause(second(30), 40, second(1));
        assert!(often >= second(225) && often <= MAX_BACKOFF, "{often:?}");
        // An interval longer than the bound is never shortened below three quarters of it.
        assert!(pause(second(600), 3, second(1)) >= second(450));
    }
}
