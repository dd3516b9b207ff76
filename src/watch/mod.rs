//! What a running `watch` knows about itself, for people and for machines: its last cycles,
//! the last plan it made, whether it is healthy, and its metrics. The loop (`cmd::watch`)
//! writes it after each cycle; the HTTP server (`serve`) reads it for `/healthz`, `/metrics`
//! and the board. Everything here is bounded — a watcher runs for weeks — and made from what a
//! cycle already read: looking at the board sends no request to Bamboo.

mod board;
mod holds;
pub mod memory;
mod metrics;
mod serve;

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::apply::{Counts, CycleOutcome};
use crate::reconcile::{BlockReason, Plan, Status};
use crate::render::human::status_words;

pub use holds::Holds;
pub use metrics::Metrics;
pub use serve::serve;

/// How many cycles the board and `/healthz` remember.
const CYCLES_KEPT: usize = 20;

/// The state one watcher shares between its loop and its HTTP server.
pub struct Watch {
    pub interval: Duration,
    pub metrics: Metrics,
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    /// Newest last.
    cycles: VecDeque<Cycle>,
    /// When the last cycle that ended `ok` ended.
    last_good: Option<Instant>,
    /// The last plan made, as the board shows it.
    board: Option<Snapshot>,
}

/// One cycle, as the board and `/healthz` tell it.
#[derive(Debug, Clone)]
pub struct Cycle {
    pub number: u64,
    pub ended_at: jiff::Timestamp,
    pub outcome: CycleOutcome,
    pub commit: Option<String>,
    pub message: Option<String>,
    pub counts: Counts,
    pub duration: Duration,
}

/// The last plan, row by row.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub server: String,
    /// The server's time the plan was made at.
    pub server_time: String,
    pub rows: Vec<Row>,
}

/// One target of the last plan.
#[derive(Debug, Clone)]
pub struct Row {
    pub target: String,
    pub plan: Option<String>,
    pub stage: String,
    pub build: Option<String>,
    /// `in-sync`, `promote`, `running`, `waiting`, `blocked` or `ahead`: a CSS class and a
    /// metric's label.
    pub kind: &'static str,
    /// The status in the plan's words.
    pub status: String,
    /// A closed window's name and when it opens.
    pub window: Option<(String, Option<String>)>,
}

/// Every status kind, so a gauge of one no target has any more reads 0, not its last value.
pub const KINDS: [&str; 6] = [
    "in-sync", "ahead", "promote", "running", "waiting", "blocked",
];

impl Watch {
    pub fn new(interval: Duration) -> Watch {
        Watch {
            interval,
            metrics: Metrics::default(),
            seen: Mutex::new(Seen::default()),
        }
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps the plan a cycle made, for the board and the targets gauge.
    pub fn planned(&self, plan: &Plan, server: &str, server_time: String) {
        let rows: Vec<Row> = plan.items.iter().map(row).collect();
        self.metrics.targets(&rows);
        self.seen().board = Some(Snapshot {
            server: server.to_string(),
            server_time,
            rows,
        });
    }

    /// Keeps a cycle that ended.
    pub fn ended(&self, cycle: Cycle) {
        self.metrics.cycle(&cycle);
        let mut seen = self.seen();
        if cycle.outcome == CycleOutcome::Ok {
            seen.last_good = Some(Instant::now());
        }
        if seen.cycles.len() == CYCLES_KEPT {
            seen.cycles.pop_front();
        }
        seen.cycles.push_back(cycle);
    }

    /// How long a watcher may go without a good cycle and still be healthy: a few intervals.
    fn patience(&self) -> Duration {
        (self.interval * 3).max(Duration::from_secs(120))
    }

    /// `/healthz`: healthy while the last cycle ended `ok` and did so within `patience`, and
    /// the last cycles did not each fail every promotion they tried (a lock that cannot be
    /// taken, an audit log that cannot be written: writes that never go through); the body
    /// says why not.
    pub fn health(&self) -> (bool, serde_json::Value) {
        let seen = self.seen();
        let last = seen.cycles.back();
        let since_good = seen.last_good.map(|at| at.elapsed());
        let why_not = match (last, since_good) {
            (None, _) => Some("no cycle has ended yet".to_string()),
            (Some(last), _) if last.outcome != CycleOutcome::Ok => Some(format!(
                "the last cycle ({}) ended {}: {}",
                last.number,
                last.outcome.word(),
                last.message.as_deref().unwrap_or("no detail")
            )),
            (Some(_), Some(ago)) if ago > self.patience() => Some(format!(
                "no cycle has ended ok for {}s (the interval is {}s)",
                ago.as_secs(),
                self.interval.as_secs()
            )),
            (Some(last), _) if writes_failing(&seen.cycles) => Some(format!(
                "the last {FAILING_CYCLES} cycles failed every promotion they tried ({} in cycle {}): see their error events",
                crate::render::human::counted(last.counts.errors, "error"),
                last.number
            )),
            _ => None,
        };
        let body = serde_json::json!({
            "status": if why_not.is_none() { "ok" } else { "unhealthy" },
            "reason": why_not,
            "lastCycle": last.map(|c| serde_json::json!({
                "cycle": c.number,
                "outcome": c.outcome.word(),
                "endedAt": c.ended_at.to_string(),
                "commit": c.commit,
            })),
            "secondsSinceGoodCycle": since_good.map(|d| d.as_secs()),
            "intervalSeconds": self.interval.as_secs(),
        });
        (why_not.is_none(), body)
    }

    /// The board's page.
    pub fn board(&self) -> String {
        let (healthy, health) = self.health();
        let why_not = health["reason"].as_str().map(str::to_string);
        let seen = self.seen();
        let health = if healthy { None } else { why_not };
        board::render(self.interval, health, seen.board.as_ref(), &seen.cycles)
    }
}

/// How many cycles in a row failing every promotion they try make a watcher unhealthy.
const FAILING_CYCLES: usize = 3;

/// Whether each of the last `FAILING_CYCLES` cycles tried promotions and made none.
fn writes_failing(cycles: &VecDeque<Cycle>) -> bool {
    cycles.len() >= FAILING_CYCLES
        && cycles
            .iter()
            .rev()
            .take(FAILING_CYCLES)
            .all(|c| c.counts.errors > 0 && c.counts.promoted == 0)
}

fn row(item: &crate::reconcile::PlanItem) -> Row {
    let kind = match &item.status {
        Status::InSync => "in-sync",
        Status::Ahead { .. } => "ahead",
        Status::Queue { .. } => "promote",
        Status::Running { .. } => "running",
        Status::Waiting { .. } => "waiting",
        Status::Blocked { .. } => "blocked",
    };
    let window = match &item.status {
        Status::Blocked {
            reason: BlockReason::WindowClosed { window, opens },
        } => Some((window.clone(), opens.clone())),
        _ => None,
    };
    Row {
        target: item.target.id.clone(),
        plan: crate::environments::item_plan(item).map(str::to_string),
        stage: item.target.stage.clone(),
        build: item.build.as_ref().map(|b| b.key.clone()),
        kind,
        status: status_words(&item.status),
        window,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cycle(number: u64, outcome: CycleOutcome, message: Option<&str>) -> Cycle {
        Cycle {
            number,
            ended_at: jiff::Timestamp::UNIX_EPOCH,
            outcome,
            commit: None,
            message: message.map(str::to_string),
            counts: Counts::default(),
            duration: Duration::from_millis(40),
        }
    }

    #[test]
    fn health_follows_the_last_cycle_and_says_why_not() {
        let watch = Watch::new(Duration::from_secs(30));
        let (healthy, body) = watch.health();
        assert!(!healthy);
        assert_eq!(body["reason"], "no cycle has ended yet");
        watch.ended(cycle(1, CycleOutcome::Ok, None));
        assert!(watch.health().0);
        watch.ended(cycle(2, CycleOutcome::Invalid, Some("2 errors in 1 file")));
        let (healthy, body) = watch.health();
        assert!(!healthy);
        assert_eq!(
            body["reason"],
            "the last cycle (2) ended invalid: 2 errors in 1 file"
        );
        assert_eq!(body["lastCycle"]["cycle"], 2);
        watch.ended(cycle(3, CycleOutcome::Ok, None));
        assert!(watch.health().0);
        // Cycles that end ok but fail every promotion they try: writes are not going through.
        let failing = |n| {
            let mut c = cycle(n, CycleOutcome::Ok, None);
            c.counts.errors = 2;
            c
        };
        watch.ended(failing(4));
        watch.ended(failing(5));
        assert!(watch.health().0, "two cycles may be bad luck");
        watch.ended(failing(6));
        let (healthy, body) = watch.health();
        assert!(!healthy);
        assert_eq!(
            body["reason"],
            "the last 3 cycles failed every promotion they tried (2 errors in cycle 6): see their error events"
        );
        let mut mixed = failing(7);
        mixed.counts.promoted = 1;
        watch.ended(mixed);
        assert!(watch.health().0, "a cycle that promoted something");
        // The board and health remember a bounded number of cycles.
        for n in 8..100 {
            watch.ended(cycle(n, CycleOutcome::Ok, None));
        }
        assert_eq!(watch.seen().cycles.len(), CYCLES_KEPT);
    }
}
