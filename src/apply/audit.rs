//! The audit trail: a record of every write before it leaves (`sending`), and one per outcome,
//! kept as a JSON line in `--audit-log FILE` (its schema: `bamboo-promote schema --kind audit`)
//! and said on stderr. Queue calls, lock labels on and off and the records left on builds are
//! all in it: the client tells every write to the trail before sending it (`bamboo::journal`).
//! The outcomes are a closed list, so that a compliance job can match them without parsing
//! prose.

use schemars::JsonSchema;
use serde::Serialize;

/// `1.2`: additive changes raise the minor version, renames and removals the major one. 1.1
/// added `sending`, the records of label and comment writes, and `serverTime`; 1.2 `actor` and
/// `ciRun`.
const FORMAT_VERSION: &str = "1.2";

/// What every record of one run says alike: why, who, and from which CI run.
#[derive(Debug, Clone, Default)]
pub struct RunInfo {
    /// `apply --reason`.
    pub reason: Option<String>,
    /// Who ran it: the CI's user when a CI runs it (`GITHUB_ACTOR`, `GITLAB_USER_LOGIN`,
    /// Bamboo's manual trigger), else the login (`USER`, `USERNAME`).
    pub actor: Option<String>,
    /// The CI run, as the record on the build names it.
    pub ci_run: Option<String>,
}

impl RunInfo {
    pub fn new(reason: Option<String>, env: impl Fn(&str) -> Option<String>) -> RunInfo {
        let actor = [
            "GITHUB_ACTOR",
            "GITLAB_USER_LOGIN",
            "bamboo_ManualBuildTriggerReason_userName",
            "USER",
            "USERNAME",
        ]
        .into_iter()
        .find_map(&env);
        RunInfo {
            reason,
            actor,
            ci_run: super::record::ci_run(env),
        }
    }
}

/// One line of the audit log.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord<'a> {
    /// `1.2`.
    pub format_version: &'static str,
    /// When the outcome was known, RFC 3339 in UTC, on this machine's clock.
    pub time: String,
    /// The same moment on the server's clock as this process knows it (from the `Date` of its
    /// answers), when it knows it: runners' clocks may disagree, the server's is shared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_time: Option<String>,
    /// The target's id; empty for a write that is not for one target (an expired lock
    /// cleared from a build nothing is promoted on).
    pub target: &'a str,
    /// The build the call went to, e.g. `SHOP-APP-42`.
    pub build: &'a str,
    /// The call as sent, e.g. `PUT queue/SHOP-APP-42?stage=Deploy%20Prod&executeAllStages=false`,
    /// or `POST result/SHOP-APP-42/label (bamboo-promote-lock-…)`.
    pub call: String,
    pub outcome: Outcome,
    /// What Bamboo answered, or why the outcome is unknown; lock labels kept are named here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// `apply --reason`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
    /// Who ran the apply (see `RunInfo`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<&'a str>,
    /// The CI run that ran it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ci_run: Option<&'a str>,
}

impl<'a> AuditRecord<'a> {
    pub fn now(
        target: &'a str,
        build: &'a str,
        call: String,
        outcome: Outcome,
        detail: Option<String>,
        run: &'a RunInfo,
        server_ms: Option<i64>,
    ) -> AuditRecord<'a> {
        AuditRecord {
            format_version: FORMAT_VERSION,
            time: jiff::Timestamp::now().to_string(),
            server_time: server_ms
                .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
                .map(|t| t.to_string()),
            target,
            build,
            call,
            outcome,
            detail,
            reason: run.reason.as_deref(),
            actor: run.actor.as_deref(),
            ci_run: run.ci_run.as_deref(),
        }
    }
}

/// What became of a call. The names are the words of the trail, kept as they were before
/// the schema: the log's readers match them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
pub enum Outcome {
    /// About to be sent: on disk before the first byte leaves.
    #[serde(rename = "sending")]
    Sending,
    /// Bamboo answered 2xx.
    #[serde(rename = "accepted")]
    Accepted,
    /// Accepted, but no read showed its effect in time: the lock label stays until it expires.
    #[serde(rename = "accepted; Bamboo did not show it in time, lock kept")]
    AcceptedUnseen,
    /// Bamboo refused, and the build had moved: someone else promoted it first.
    #[serde(rename = "refused; build moved by someone else")]
    RefusedMoved,
    /// Bamboo refused (4xx), and the build did not move.
    #[serde(rename = "refused")]
    Refused,
    /// The call never left this machine (no connection could be made).
    #[serde(rename = "not sent")]
    NotSent,
    /// No answer, or a 5xx: the build is read again to learn whether it took effect.
    #[serde(rename = "outcome unknown; re-reading the build")]
    Unknown,
    /// A label or comment write had no answer that says what happened.
    #[serde(rename = "outcome unknown")]
    Unanswered,
    /// After an unknown outcome, the re-read showed the build moved: the call took effect.
    #[serde(rename = "took effect (seen on re-read)")]
    SeenOnReread,
    /// After an unknown outcome, the build had not moved: the call may still land, so it is
    /// not sent again and the lock label stays.
    #[serde(rename = "outcome unknown; lock kept, not sent again")]
    UnknownLockKept,
    /// A second signal ended the run while the call waited for its answer.
    #[serde(rename = "abandoned by a second signal; outcome unknown, lock kept")]
    Abandoned,
}

impl Outcome {
    /// The outcome's words, as in the log.
    pub fn words(self) -> String {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::String(words)) => words,
            _ => unreachable!("an outcome serializes to its name"),
        }
    }
}

/// The JSON Schema of an audit log line, as `bamboo-promote schema --kind audit` prints it.
pub fn schema() -> String {
    crate::render::schema_text::<AuditRecord<'static>>()
}
