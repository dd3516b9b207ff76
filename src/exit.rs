//! Exit codes, as documented in the README. They follow Terraform's `-detailed-exitcode` and
//! Argo CD: 0 nothing to do or success, 1 error, 2 changes pending; the rest are ours.

pub const SUCCESS: u8 = 0;
pub const ERROR: u8 = 1;
/// `plan --detailed-exitcode`: there are promotions to apply. `apply --detailed-exitcode`:
/// this run promoted something.
pub const CHANGES_PENDING: u8 = 2;
/// At least one target is blocked (failed, stopped, missing build, disabled plan).
pub const BLOCKED: u8 = 3;
/// `apply --wait` gave up before every promoted stage finished.
pub const TIMED_OUT: u8 = 4;
/// `apply plan.json`: the saved plan no longer matches Bamboo; nothing stale was queued.
pub const STALE_PLAN: u8 = 5;
/// `apply --wait`: a stage that was promoted failed.
pub const STAGE_FAILED: u8 = 6;
/// `apply`: a write's outcome is unknown (no answer, a 5xx, or a build that did not show the
/// call's effect). Its lock label stays on the build, so no other run acts on it before it
/// expires; check the build in Bamboo.
pub const OUTCOME_UNKNOWN: u8 = 7;
/// Nothing needs a person: the only targets blocked wait for a promotion window that will
/// open (and others may be waiting or running). A merge job may take it as success; a run
/// later, or `apply --wait`, promotes them.
pub const WAITING_ON_TIME: u8 = 8;
/// The command line is wrong (an unknown flag, a missing value): clap's own 2 would read as
/// "changes pending" to a CI job, so usage errors take sysexits' EX_USAGE.
pub const USAGE: u8 = 64;
/// `apply` stopped by SIGINT (Ctrl-C): no write after the signal.
pub const INTERRUPTED: u8 = 130;
/// `apply` stopped by SIGTERM (how CI systems cancel a job): no write after the signal.
pub const TERMINATED: u8 = 143;

/// Every code with what it means, for the man pages' EXIT STATUS section.
pub const MEANINGS: [(u8, &str); 12] = [
    (SUCCESS, "nothing to do, or done"),
    (
        ERROR,
        "an error: invalid manifests, a server that cannot be read, a write refused",
    ),
    (
        CHANGES_PENDING,
        "with --detailed-exitcode: promotions pending (plan), or promoted (apply)",
    ),
    (BLOCKED, "a target is blocked and needs a person"),
    (
        TIMED_OUT,
        "apply --wait gave up before every promoted stage finished",
    ),
    (
        STALE_PLAN,
        "the plan is stale for a build, or a promotion was not in the approved plan; nothing stale was queued",
    ),
    (STAGE_FAILED, "apply --wait: a promoted stage failed"),
    (
        OUTCOME_UNKNOWN,
        "a call's outcome is unknown: its lock label stays; check the build in Bamboo",
    ),
    (
        WAITING_ON_TIME,
        "the only targets blocked wait for a promotion window to open",
    ),
    (
        USAGE,
        "the command line is wrong (no server, an unknown flag, a value that does not parse)",
    ),
    (INTERRUPTED, "apply stopped by SIGINT: no write after it"),
    (TERMINATED, "apply stopped by SIGTERM: no write after it"),
];
