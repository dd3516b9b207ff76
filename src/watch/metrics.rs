//! `/metrics`: what a watcher did, in the OpenMetrics text format that Prometheus scrapes,
//! through `prometheus-client` (the Prometheus project's own Rust client) rather than text
//! written by hand: names, escaping, `_total` suffixes and histogram buckets follow the format.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::{Cycle, KINDS, Row};
use crate::apply::Outcome;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    /// The answer's status code, or `none` when there was no answer.
    status: String,
}

pub struct Metrics {
    registry: Registry,
    promotions: Family<OutcomeLabel, Counter>,
    cycles: Family<OutcomeLabel, Counter>,
    targets: Family<StatusLabel, Gauge>,
    cycle_seconds: Histogram,
    requests: Family<RequestLabels, Counter>,
    last_good: Gauge<f64, AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let mut registry = Registry::with_prefix("bamboo_promote");
        let promotions = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "promotions",
            "Promotions tried, by how they ended",
            promotions.clone(),
        );
        let cycles = Family::<OutcomeLabel, Counter>::default();
        registry.register("cycles", "Cycles, by how they ended", cycles.clone());
        let targets = Family::<StatusLabel, Gauge>::default();
        registry.register(
            "targets",
            "Targets by status in the last plan",
            targets.clone(),
        );
        // 50 ms to about 7 min.
        let cycle_seconds = Histogram::new(exponential_buckets(0.05, 2.0, 14));
        registry.register(
            "cycle_duration_seconds",
            "How long a cycle took",
            cycle_seconds.clone(),
        );
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "bamboo_requests",
            "Requests sent to Bamboo, by method and answer status",
            requests.clone(),
        );
        let last_good = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "last_good_cycle_timestamp_seconds",
            "When the last cycle that ended ok ended, in seconds since the Unix epoch",
            last_good.clone(),
        );
        Metrics {
            registry,
            promotions,
            cycles,
            targets,
            cycle_seconds,
            requests,
            last_good,
        }
    }
}

impl Metrics {
    /// One request to Bamboo (the client's tally).
    pub fn request(&self, method: &str, status: Option<u16>) {
        let labels = RequestLabels {
            method: method.to_string(),
            status: status.map_or_else(|| "none".to_string(), |s| s.to_string()),
        };
        self.requests.get_or_create(&labels).inc();
    }

    /// The targets of the last plan, by status; a status no target has reads 0.
    pub(super) fn targets(&self, rows: &[Row]) {
        for kind in KINDS {
            let count = rows.iter().filter(|r| r.kind == kind).count();
            let labels = StatusLabel {
                status: kind.to_string(),
            };
            self.targets
                .get_or_create(&labels)
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
    }

    /// A promotion this watcher tried, by how it ended; targets it left alone are not counted.
    pub fn promotion(&self, outcome: &Outcome) {
        let word = match outcome {
            Outcome::Unchanged { .. } => return,
            Outcome::Promoted { .. } => "promoted",
            Outcome::StageFailed { .. } => "stageFailed",
            Outcome::PausedShort { .. } => "pausedShort",
            Outcome::Stale { .. } => "stale",
            Outcome::NotApproved { .. } => "notApproved",
            Outcome::Refused { .. } => "refused",
            Outcome::MovedByOther { .. } => "movedByOther",
            Outcome::Unknown { .. } => "unknown",
            Outcome::Error { .. } => "error",
        };
        let labels = OutcomeLabel {
            outcome: word.to_string(),
        };
        self.promotions.get_or_create(&labels).inc();
    }

    pub(super) fn cycle(&self, cycle: &Cycle) {
        let labels = OutcomeLabel {
            outcome: cycle.outcome.word().to_string(),
        };
        self.cycles.get_or_create(&labels).inc();
        self.cycle_seconds.observe(cycle.duration.as_secs_f64());
        if cycle.outcome == crate::apply::CycleOutcome::Ok {
            self.last_good
                .set(cycle.ended_at.as_millisecond() as f64 / 1000.0);
        }
    }

    /// The OpenMetrics text of every metric.
    pub fn text(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}
