//! The world file: what the simulated Bamboo holds when it starts.
//!
//! A world is written by hand (tests, the quick start, `examples/sim/world.yaml`) or generated
//! (benchmarks), so it is plain YAML with defaults for everything but the plans themselves. The
//! `behaviour` switches select, for each behaviour that `docs/bamboo-api.md` marks
//! [assumed], which way the simulated server goes, so the tool can be tested under each.

use serde::{Deserialize, Serialize};

/// Everything the simulator serves.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct World {
    #[serde(default)]
    pub settings: Settings,
    #[serde(default)]
    pub auth: Auth,
    #[serde(default)]
    pub faults: Faults,
    #[serde(default)]
    pub projects: Vec<Project>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Settings {
    /// `real`: time passes on its own (demos, the quick start). `manual`: time moves only when
    /// `POST /_sim/clock/advance` says so (tests), so nothing depends on timing luck.
    pub clock: ClockMode,
    /// How long a queued build waits for an agent before its first stage starts (ms).
    pub queue_delay_ms: u64,
    /// Served before `/rest/api/latest`, like a Bamboo installed under `/bamboo`.
    pub context_path: String,
    /// Page size when the request names none (Bamboo: 25).
    pub default_page_size: usize,
    /// Largest page served whatever `max-results` asks (older servers: 25).
    pub page_cap: Option<usize>,
    /// Builds that may execute at once before a queue call answers 400.
    pub max_concurrent_builds: Option<usize>,
    /// Largest number of labels a result lists (its `size` still counts them all), as a
    /// server that pages them would.
    pub label_page: Option<usize>,
    pub behaviour: Behaviour,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            clock: ClockMode::Real,
            queue_delay_ms: 0,
            context_path: String::new(),
            default_page_size: 25,
            page_cap: None,
            max_concurrent_builds: None,
            label_page: None,
            behaviour: Behaviour::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ClockMode {
    Real,
    Manual,
}

/// One switch per [assumed] behaviour; each default is the documented or reported one.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Behaviour {
    /// A continue naming a stage that already ran.
    pub continue_ran_stage: ContinueRanStage,
    /// Whether a continue obeys `stage` as an upper bound, like a queue call.
    pub continue_stage_bound: ContinueStageBound,
    /// A continue on a build that is queued or running.
    pub continue_busy: Refusal,
    /// A continue on a build with nothing left to run.
    pub continue_complete: Refusal,
    /// A continue without `stage` on a failed or stopped build.
    pub continue_failed: ContinueFailed,
    /// How `stage` names are compared with the plan's stage names.
    pub stage_names: StageNames,
    /// A `stage` naming no stage of the plan: 400, or go on as if no stage was named.
    pub unknown_stage: Refusal,
    /// Queueing a build of a disabled plan.
    pub disabled_plan: Refusal,
    /// A branch name the plan does not have: 404 (Bamboo 6 to 9), or an empty 204 (seen on
    /// Data Center servers).
    pub unknown_branch: UnknownBranch,
    /// Whether error bodies carry `sub-code` (Bamboo 5's do not).
    pub error_sub_code: ErrorSubCode,
    /// A `%2F` (an encoded `/`) in a path: refused with 400, as Tomcat does by default
    /// (`encodedSolidusHandling="reject"`), or decoded, as a server configured to allow it.
    pub encoded_slash: EncodedSlash,
    /// Labels as written (`keep`), or lower-cased with the characters Bamboo's label parser
    /// does not keep replaced by `_` (`fold`): whether Bamboo folds them is not documented.
    pub labels: LabelCase,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum LabelCase {
    #[default]
    Keep,
    Fold,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum EncodedSlash {
    #[default]
    Reject,
    Allow,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum UnknownBranch {
    #[default]
    NotFound,
    NoContent,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ErrorSubCode {
    #[default]
    Present,
    Absent,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ContinueRanStage {
    /// The reported trap: the build's next runnable stage runs anyway.
    #[default]
    RunNext,
    /// 400, nothing runs.
    Reject,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ContinueStageBound {
    /// Every stage up to and including `stage` runs, as with `POST queue`.
    #[default]
    UpperBound,
    /// Only the runnable stage (and the automatic stages after it) runs; `stage` is ignored.
    NextOnly,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Refusal {
    /// 400 with a JSON message.
    #[default]
    Reject,
    /// 200 and nothing happens.
    Ignore,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ContinueFailed {
    /// Re-run the failed stage's jobs, then go on under the usual rules.
    #[default]
    Rerun,
    /// 400, nothing runs.
    Reject,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum StageNames {
    #[default]
    Exact,
    CaseInsensitive,
}

/// Who may do what. With no tokens and no users the server is open to anonymous readers and
/// triggerers, which suits the quick start.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Auth {
    pub tokens: Vec<TokenGrant>,
    pub users: Vec<UserGrant>,
    /// What a request without credentials may do; `None`: everything when no token or user is
    /// configured, nothing otherwise.
    pub anonymous: Option<Vec<Permission>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenGrant {
    pub token: String,
    pub permissions: Vec<Permission>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserGrant {
    pub username: String,
    pub password: String,
    pub permissions: Vec<Permission>,
}

/// A token's or user's permissions, as Bamboo's personal access tokens have them; each
/// includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Permission {
    /// Reads.
    Read,
    /// Reads, and starts or continues builds (`queue/…`).
    Trigger,
    /// Everything its user may do: labels and comments too.
    User,
}

/// Misbehaviour on purpose, to test how the client copes. Shares are between 0 and 1 and are
/// drawn from a seeded generator, so a run is repeatable for the same order of requests.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Faults {
    /// Added to every `/rest` request before it is answered (real time, not the sim clock).
    pub latency_ms: u64,
    /// Share of requests answered 503.
    pub error_rate: f64,
    /// Share of requests answered 429 with `Retry-After: retry_after_secs`.
    pub rate_limit_rate: f64,
    pub retry_after_secs: u64,
    /// Share of requests whose connection is dropped before an answer.
    pub drop_rate: f64,
    /// Shares apply to reads only unless this is set: writes are left alone by default so that
    /// a test of read retries does not also test write recovery.
    pub include_writes: bool,
    pub seed: u64,
    /// The front end's clock, this far ahead of the sim clock (behind when negative): every
    /// answer's `Date` is stamped with it, as a reverse proxy or a Data Center node with a
    /// clock of its own would stamp it.
    pub date_offset_ms: i64,
    /// Listings of results come without their stages, whatever `expand` asks: a build's stages
    /// are then seen only in a read of the build itself.
    pub listings_without_stages: bool,
    /// Listings and `result/{plan}-latest` leave out queued and running builds even with
    /// `includeAllStates=true`, as some servers are reported to.
    pub listings_hide_running: bool,
    /// A listing's `size` is the length of the page shown, not of the whole list.
    pub size_is_page_length: bool,
    /// Faults for the next matching requests, in order, each used up once.
    pub script: Vec<ScriptedFault>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScriptedFault {
    /// `GET`, `POST`, `PUT`, `DELETE`, or absent for any.
    #[serde(default)]
    pub method: Option<String>,
    /// A substring of the path after `/rest/api/latest/`, or absent for any.
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default = "one")]
    pub times: u32,
    /// Matching requests let through untouched before the fault applies: the fourth read of
    /// a build, not the first.
    #[serde(default)]
    pub skip: u32,
    pub fault: Fault,
    /// For `applyLate` and `hold`: how far the sim clock must move past the request's arrival
    /// before the write is applied or the answer delivered.
    #[serde(default)]
    pub after_ms: u64,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Fault {
    /// Answer 503 without doing anything.
    ServerError,
    /// Answer 429 with `Retry-After`.
    RateLimit,
    /// Close the connection in the middle of the answer: its status line (200) has gone
    /// out, the body never comes. A read does nothing; a write is done first, since a server
    /// sends its status only once it has acted.
    Drop,
    /// Do the request, then never answer: the client times out although the server acted.
    LoseResponse,
    /// Hold a write, as a slow proxy or a busy server would, and apply it only once the sim
    /// clock has moved `afterMs` past its arrival; the answer never comes.
    ApplyLate,
    /// Do the request, then answer 500 as if it had failed.
    AppliedServerError,
    /// Do the request, then answer 429 with `Retry-After`: a proxy or gateway that forwards
    /// a call and throttles its answer.
    AppliedRateLimit,
    /// Do the request, then answer 200 with an HTML page instead of JSON.
    AppliedGarbage,
    /// Answer as it stands on arrival, but deliver the answer only once the sim clock has
    /// moved `afterMs` past the arrival: to the client, a process paused after its read.
    Hold,
    /// Answer `result/{plan}-{n}` with another build of the plan.
    OtherBuild,
    /// Answer as if the query had no filter (`label`, `buildstate`, `continuable`,
    /// `lifeCycleState`), as servers that do not know a filter do.
    IgnoreFilter,
    /// Answer as if the query had no `start-index`: every page is the first, as a server
    /// that does not page an endpoint answers.
    IgnorePaging,
    /// Answer a write with success without doing it (200 for a queue call, 204 otherwise), as
    /// a proxy that swallows requests, or a server that does not keep labels, would.
    Swallow,
    /// Answer with a `Date` header `afterMs` older than the sim clock, as a cache would.
    StaleDate,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Project {
    pub key: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub plans: Vec<Plan>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Plan {
    /// The plan's short key: `APP` in `SHOP-APP`.
    pub key: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    pub stages: Vec<StageDef>,
    #[serde(default)]
    pub branches: Vec<Branch>,
    #[serde(default)]
    pub builds: Vec<BuildSpec>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StageDef {
    pub name: String,
    #[serde(default)]
    pub manual: bool,
    /// How long the stage runs, in ms of the sim clock.
    #[serde(default = "default_duration")]
    pub duration_ms: u64,
    /// The first this-many runs of the stage fail (in any build of the plan).
    #[serde(default)]
    pub failures: u32,
}

fn default_duration() -> u64 {
    1000
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Branch {
    /// The branch name as Bamboo shows it (often the VCS branch, `feature/login`).
    pub name: String,
    /// The branch plan's short key: `APP1` for `SHOP-APP1`.
    pub key: String,
    /// The VCS branch it builds, when it differs from `name` (Bamboo turns `release/2.4`
    /// into a branch named `release-2.4` on some versions); listings show it as `vcsBranch`.
    #[serde(default)]
    pub vcs_branch: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub builds: Vec<BuildSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BuildSpec {
    pub number: u32,
    #[serde(default)]
    pub revision: Option<String>,
    #[serde(default)]
    pub labels: Vec<String>,
    pub state: BuildState,
}

/// Where an existing build stands when the world starts.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum BuildState {
    /// Every stage ran and passed.
    Complete,
    /// Waiting for someone to run this manual stage; all before it passed.
    PausedBefore(String),
    /// This stage failed; all before it passed.
    FailedAt(String),
    /// Someone stopped the build while this stage ran.
    StoppedAt(String),
    /// This stage is running now; it and the automatic stages after it will run.
    RunningAt(String),
    /// Waiting for an agent; the automatic stages from the start will run.
    Queued,
}
