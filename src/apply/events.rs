//! What `apply --format json` prints: one event per line, each a versioned JSON object with
//! typed fields, published as `schemas/events.v2.schema.json` (generated from these types). The
//! names are the plan's: a target is promoted, in sync, ahead, running, waiting or blocked.

use schemars::JsonSchema;
use serde::Serialize;

use super::Outcome;
use crate::manifest::JsonDiagnostic;
use crate::reconcile::{FORMAT_VERSION, Status};

/// One line of the stream.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventLine<'a> {
    /// `2.0`: additive changes raise the minor version, renames and removals the major one.
    pub format_version: &'static str,
    /// When the event happened, RFC 3339 in UTC.
    pub time: String,
    #[serde(flatten)]
    pub event: &'a Event,
}

impl EventLine<'_> {
    pub fn now(event: &Event) -> EventLine<'_> {
        EventLine {
            format_version: FORMAT_VERSION,
            time: jiff::Timestamp::now().to_string(),
            event,
        }
    }
}

#[derive(Serialize, JsonSchema)]
#[serde(
    tag = "event",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Event {
    /// A target as planned, before anything is done.
    Planned {
        target: String,
        build: Option<String>,
        status: Status,
    },
    /// Bamboo accepted this run's call (or, after no answer, showed its effect).
    Promoted {
        target: String,
        build: String,
        stage: String,
        /// The stages the call is to run.
        runs: Vec<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// No call was sent for the target, for `reason`.
    Skipped {
        target: String,
        build: String,
        reason: String,
    },
    /// The plan is stale for this build (a saved plan's build changed, an `after` target is
    /// out of sync, `latest` moved on): no call.
    Stale {
        target: String,
        build: String,
        planned: String,
        found: String,
    },
    /// The promotion `found` is not among those approved for the target (`approved`): no
    /// call (format 2.3).
    NotApproved {
        target: String,
        build: String,
        approved: String,
        found: String,
    },
    /// The call's outcome is unknown; it is not sent again, and the lock label `lock` stays.
    Unknown {
        target: String,
        build: String,
        message: String,
        lock: String,
    },
    /// `watch` marked the build as tried for the stage (`label`), before its call: the build
    /// and stage are not tried again until a person takes the label off (format 2.4).
    Marked {
        target: String,
        build: String,
        stage: String,
        label: String,
    },
    /// Another apply holds the lock on the build; this one waits.
    LockWait {
        target: String,
        build: String,
        holder: String,
    },
    /// The build came to rest short of the target after this run's call.
    Paused {
        target: String,
        build: String,
        ran: Vec<String>,
        before: String,
        /// Whether this run calls again to go on.
        continuing: bool,
    },
    /// Every stage this run promoted has passed.
    Finished {
        target: String,
        build: String,
        runs: Vec<String>,
    },
    /// The record of a promotion is on the build: a comment, and `label` when asked for.
    Recorded {
        target: String,
        build: String,
        label: Option<String>,
    },
    /// The record could not be written; the promotion stands.
    RecordFailed {
        target: String,
        build: String,
        message: String,
    },
    /// A stage this run promoted failed.
    StageFailed {
        target: String,
        build: String,
        stage: String,
    },
    /// Something failed: a target's promotion (with `target`), or the whole command (without;
    /// then manifest problems are in `diagnostics`).
    Error {
        #[serde(skip_serializing_if = "Option::is_none")]
        target: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        build: Option<String>,
        message: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        diagnostics: Vec<JsonDiagnostic>,
    },
    /// `watch`: one cycle ended (format 2.4). Its actions came before it as events of their
    /// own; an invalid manifest set as an `error` event with its diagnostics.
    Cycle {
        /// Counted from 1 since the watcher started.
        cycle: u64,
        /// `ok`, or why the cycle wrote nothing: `invalid` (the manifests), `unreachable`
        /// (Bamboo), `pullFailed` (`--pull`).
        outcome: CycleOutcome,
        /// The manifests' commit, when they are in a Git checkout.
        #[serde(skip_serializing_if = "Option::is_none")]
        commit: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        counts: Counts,
        /// Requests sent to Bamboo in the cycle.
        requests: u64,
        duration_ms: u64,
        /// When the next cycle starts; absent when the watcher stops.
        #[serde(skip_serializing_if = "Option::is_none")]
        next_in_ms: Option<u64>,
    },
    /// The last line: how each target ended, the counts, and the exit code.
    Summary {
        counts: Counts,
        outcomes: Vec<TargetOutcome>,
        timed_out: bool,
        /// `SIGINT` or `SIGTERM` when a signal stopped the run.
        stopped_by: Option<String>,
        exit_code: u8,
    },
}

impl Event {
    /// Whether someone must act on it: said even with `-q`.
    pub fn is_alarm(&self) -> bool {
        matches!(
            self,
            Event::Error { .. }
                | Event::Unknown { .. }
                | Event::StageFailed { .. }
                | Event::Stale { .. }
                | Event::NotApproved { .. }
        )
    }
}

/// How a `watch` cycle ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum CycleOutcome {
    Ok,
    Invalid,
    Unreachable,
    PullFailed,
}

impl CycleOutcome {
    /// The word in events, metrics and the board.
    pub fn word(self) -> &'static str {
        match self {
            CycleOutcome::Ok => "ok",
            CycleOutcome::Invalid => "invalid",
            CycleOutcome::Unreachable => "unreachable",
            CycleOutcome::PullFailed => "pullFailed",
        }
    }
}

/// How many targets ended each way.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub promoted: usize,
    pub in_sync: usize,
    pub stage_failed: usize,
    pub paused_short: usize,
    pub blocked: usize,
    pub waiting: usize,
    /// Bamboo refused the call because someone else had moved the build.
    pub moved_by_other: usize,
    pub stale: usize,
    pub unknown: usize,
    pub errors: usize,
}

/// How one target ended.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetOutcome {
    pub target: String,
    pub build: Option<String>,
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// The JSON Schema of the event stream, as `bamboo-promote schema --kind events` prints it.
pub fn schema() -> String {
    crate::render::schema_text::<EventLine<'static>>()
}
