//! One promotion, done safely: take the build's lease, re-read the build, act only if the
//! planner still calls for the same promotion (and, for a saved plan, only if the build is as
//! it was planned), send one queue call, and confirm its effect by reading again. A write that
//! fails or times out is never retried blindly: the build is re-read, and only a build that is
//! exactly as before the write gets one more call.

use std::time::Duration;

use super::lease::{Lease, LeaseError};
use super::report::Reporter;
use crate::bamboo::{BambooClient, WriteError};
use crate::observe::ObservedBuild;
use crate::reconcile::{Action, Status, assess};

/// How long to wait for another apply's lease on the same build.
const LEASE_PATIENCE: Duration = Duration::from_secs(60);
/// Reads after an accepted write until Bamboo shows it.
const CONFIRM_READS: u32 = 10;
const CONFIRM_PAUSE: Duration = Duration::from_millis(200);

#[derive(Debug)]
pub enum Promotion {
    /// The call was accepted (or, after a lost answer, its effect was seen).
    Queued {
        runs: Vec<String>,
        note: Option<String>,
    },
    /// The re-read showed nothing to do any more.
    NotNeeded(Status),
    /// The build changed since the saved plan was made.
    Stale { planned: String, found: String },
    /// Bamboo refused, and the build did not move.
    Refused(String),
    /// Bamboo refused because someone else moved the build first.
    MovedByOther(String),
    /// Another apply held the lease for too long, or reads failed.
    Failed(String),
}

pub struct Request<'a> {
    pub target: &'a str,
    pub action: &'a Action,
    /// For a saved plan: the build must still match what was planned.
    pub require_fingerprint: bool,
}

pub async fn promote(
    client: &BambooClient,
    reporter: &Reporter,
    request: &Request<'_>,
) -> Promotion {
    let (lease, before) =
        match Lease::acquire(client, &request.action.build_key, LEASE_PATIENCE).await {
            Ok(taken) => taken,
            Err(LeaseError::Busy { holder, waited, .. }) => {
                return Promotion::Failed(format!(
                    "another apply holds the build (label {holder}) after waiting {waited:.0?}"
                ));
            }
            Err(e) => return Promotion::Failed(format!("cannot take the lease: {e}")),
        };
    let outcome = under_lease(client, reporter, request, before).await;
    if let Err(e) = lease.release(client).await {
        eprintln!(
            "warning: cannot remove our lock label from {}: {e}; it expires by itself",
            request.action.build_key
        );
    }
    outcome
}

/// `before` is the build as read just now, under the lease.
async fn under_lease(
    client: &BambooClient,
    reporter: &Reporter,
    request: &Request<'_>,
    before: ObservedBuild,
) -> Promotion {
    let planned = request.action;
    if request.require_fingerprint && before.fingerprint() != planned.fingerprint {
        return Promotion::Stale {
            planned: planned.fingerprint.clone(),
            found: before.fingerprint(),
        };
    }
    let action = match assess(&before, &planned.stage, planned.execute_all_stages) {
        Status::Queue { action } => action,
        other => return Promotion::NotNeeded(other),
    };
    let call = describe_call(&action);
    let mut note = None;
    for attempt in 0..2 {
        match client
            .continue_build(&action.build_key, &action.stage, action.execute_all_stages)
            .await
        {
            Ok(_) => {
                reporter.audit(
                    request.target,
                    &action.build_key,
                    call.clone(),
                    "accepted",
                    note.clone(),
                );
                confirm(client, &before).await;
                return Promotion::Queued {
                    runs: action.runs,
                    note,
                };
            }
            Err(WriteError::Refused { status, message }) => {
                let moved = reread(client, &action.build_key)
                    .await
                    .map(|now| now.fingerprint() != before.fingerprint());
                let detail = format!("{status}: {message}");
                return if moved.unwrap_or(false) {
                    reporter.audit(
                        request.target,
                        &action.build_key,
                        call,
                        "refused; build moved by someone else",
                        Some(detail.clone()),
                    );
                    Promotion::MovedByOther(detail)
                } else {
                    reporter.audit(
                        request.target,
                        &action.build_key,
                        call,
                        "refused",
                        Some(detail.clone()),
                    );
                    Promotion::Refused(detail)
                };
            }
            Err(WriteError::Unknown(detail)) => {
                reporter.audit(
                    request.target,
                    &action.build_key,
                    call.clone(),
                    "no answer; re-reading the build",
                    Some(detail.clone()),
                );
                let now = match reread(client, &action.build_key).await {
                    Ok(now) => now,
                    Err(e) => {
                        return Promotion::Failed(format!(
                            "write got no answer ({detail}) and the build cannot be re-read: {e}"
                        ));
                    }
                };
                if now.fingerprint() != before.fingerprint() {
                    reporter.audit(
                        request.target,
                        &action.build_key,
                        call,
                        "took effect (seen on re-read)",
                        None,
                    );
                    return Promotion::Queued {
                        runs: action.runs,
                        note: Some(format!("confirmed by re-reading after: {detail}")),
                    };
                }
                if attempt == 1 {
                    return Promotion::Failed(format!(
                        "two calls got no answer and the build did not move: {detail}"
                    ));
                }
                // The build is exactly as it was before the write: the call did not take effect,
                // so one more call cannot run a stage twice.
                note = Some(format!("second call after: {detail}"));
            }
        }
    }
    unreachable!("the loop returns on its second attempt")
}

/// Holds the lease until Bamboo shows the write's effect (the build is no longer as before).
async fn confirm(client: &BambooClient, before: &ObservedBuild) {
    for _ in 0..CONFIRM_READS {
        if let Ok(now) = reread(client, &before.key).await
            && now.fingerprint() != before.fingerprint()
        {
            return;
        }
        tokio::time::sleep(CONFIRM_PAUSE).await;
    }
}

pub async fn reread(client: &BambooClient, build_key: &str) -> Result<ObservedBuild, String> {
    let (plan, number) = build_key
        .rsplit_once('-')
        .ok_or_else(|| format!("{build_key} is not a build key"))?;
    let number: u32 = number
        .parse()
        .map_err(|_| format!("{build_key} is not a build key"))?;
    match client.build(plan, Some(number)).await {
        Ok(Some(result)) => Ok(ObservedBuild::from_result(result)),
        Ok(None) => Err(format!("build {build_key} no longer exists")),
        Err(e) => Err(e.to_string()),
    }
}

pub fn describe_call(action: &Action) -> String {
    let query: Vec<String> = action
        .query
        .iter()
        .map(|(k, v)| format!("{k}={}", crate::bamboo::encode_segment(v)))
        .collect();
    format!("{} {}?{}", action.method, action.path, query.join("&"))
}
