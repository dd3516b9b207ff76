//! After the call left: what became of it. An accepted call is confirmed by reading until
//! Bamboo shows its effect (then the record goes on the build and the lock comes off); a
//! refused one by reading whether someone else moved the build; one with no answer, or a 5xx,
//! by reading once — if the build moved, the call took effect; if not, its outcome stays
//! unknown, it is not sent again, and its lock label stays (`docs/safety.md`, rule 4).

use std::time::Duration;

use tokio::time::Instant;

use super::audit::Outcome;
use super::lease::Lease;
use super::promote::unmark;
use super::promotion::{Context, Promotion, Request, describe_call, moved_stages, release, reread};
use super::record;
use crate::bamboo::WriteError;
use crate::observe::ObservedBuild;
use crate::reconcile::Action;

/// Pauses between the reads that confirm a write: quick at first, then calmer.
const CONFIRM_PAUSES: [Duration; 4] = [
    Duration::from_millis(100),
    Duration::from_millis(200),
    Duration::from_millis(500),
    Duration::from_secs(1),
];
/// Confirmation reads stop after this long even when the lease would allow more; the label
/// then stays on the build until it expires.
const CONFIRM_AT_MOST: Duration = Duration::from_secs(30);

/// A call that left: what it was, its answer, and a closed window it went through.
pub(super) struct Call {
    pub action: Action,
    pub sent: Result<(), WriteError>,
    pub overridden: Option<String>,
}

/// What became of the call: confirmed by reading, refused, or unknown.
pub(super) async fn settle(
    ctx: &Context<'_>,
    request: &Request<'_>,
    lease: Lease,
    before: &ObservedBuild,
    call: Call,
) -> Promotion {
    let client = ctx.client;
    let Call {
        action,
        sent,
        overridden,
    } = call;
    let audit = |outcome: Outcome, detail: Option<String>| {
        let call = describe_call(&action);
        let detail = match (detail, &overridden) {
            (Some(detail), Some(o)) => Some(format!("{detail}; {o}")),
            (detail, o) => detail.or_else(|| o.clone()),
        };
        let _ = ctx
            .reporter
            .audit(&request.target.id, &action.build_key, call, outcome, detail);
    };
    // An unknown outcome is unknown until the re-read settles it: a second signal before then
    // records the call as abandoned (exit 7).
    if !matches!(sent, Err(WriteError::Unknown(_))) {
        ctx.reporter.answered(&action.build_key);
    }
    match sent {
        Ok(()) => {
            audit(Outcome::Accepted, None);
            if let Some(after) = confirm(ctx, before, &lease).await {
                leave_record(ctx, request, &action, before, &after).await;
                let queued = Promotion::Queued {
                    runs: action.runs,
                    note: None,
                    confirmed: true,
                };
                return release(client, lease, queued).await;
            }
            let lock = lease.keep();
            audit(Outcome::AcceptedUnseen, Some(lock.clone()));
            Promotion::Queued {
                runs: action.runs,
                note: Some(format!(
                    "accepted, but Bamboo did not show it yet; lock label {lock} stays until it expires"
                )),
                confirmed: false,
            }
        }
        Err(WriteError::Refused { status, message }) => {
            let moved = reread(client, &action.build_key)
                .await
                .is_ok_and(|now| now.fingerprint() != before.fingerprint());
            // A 429 comes from whatever counts requests, often a gateway in front of Bamboo,
            // which may have passed the call on before answering so: then the move is ours.
            let detail = if moved && status == 429 {
                format!("{status}: {message}; a gateway may have passed this call on first")
            } else {
                format!("{status}: {message}")
            };
            let promotion = if moved {
                audit(Outcome::RefusedMoved, Some(detail.clone()));
                Promotion::MovedByOther(detail)
            } else {
                audit(Outcome::Refused, Some(detail.clone()));
                Promotion::Refused(detail)
            };
            // The mark stays, even on a 429: a proxy may have passed the call on before it
            // answered so, and a loop that retried would send it again (a red team's proxy
            // did, and the late first call then ran the next manual stage).
            release(client, lease, promotion).await
        }
        Err(WriteError::NotSent(detail)) => {
            audit(Outcome::NotSent, Some(detail.clone()));
            let failed = Promotion::Failed(format!("the call was not sent: {detail}"));
            let failed = unmark(ctx, request, failed).await;
            release(client, lease, failed).await
        }
        Err(WriteError::Unknown(detail)) => {
            audit(Outcome::Unknown, Some(detail.clone()));
            let reread = reread(client, &action.build_key).await;
            ctx.reporter.answered(&action.build_key);
            match reread {
                Ok(now) if now.fingerprint() != before.fingerprint() && lease.holds(&now) => {
                    audit(Outcome::SeenOnReread, None);
                    leave_record(ctx, request, &action, before, &now).await;
                    let queued = Promotion::Queued {
                        runs: action.runs,
                        note: Some(format!("confirmed by re-reading after: {detail}")),
                        confirmed: true,
                    };
                    release(client, lease, queued).await
                }
                read => {
                    let seen = match read {
                        Ok(now) if now.fingerprint() != before.fingerprint() => format!(
                            "the build moved, but our lock label {} is gone from it: another apply may have moved it",
                            lease.label
                        ),
                        Ok(_) => "the build has not moved".to_string(),
                        Err(e) => format!("the build cannot be re-read: {e}"),
                    };
                    let lock = lease.keep();
                    audit(
                        Outcome::UnknownLockKept,
                        Some(format!("{detail}; {seen}; lock label {lock}")),
                    );
                    Promotion::Unknown {
                        detail: format!("{detail}; {seen}"),
                        lock,
                    }
                }
            }
        }
    }
}

/// The record of a promotion Bamboo showed, on its build: what the call moved, as the read
/// that showed it says (`before` → `after`), not what it was to run.
async fn leave_record(
    ctx: &Context<'_>,
    request: &Request<'_>,
    action: &Action,
    before: &ObservedBuild,
    after: &ObservedBuild,
) {
    let moved = record::Moved {
        stage: &action.stage,
        stages: moved_stages(before, after),
    };
    // After SIGINT or SIGTERM, no new write: the record is a write of its own.
    if ctx.stop.requested() {
        record::not_written(
            ctx.reporter,
            request.target,
            &action.build_key,
            "stopped by a signal: no new write after it",
        );
        return;
    }
    record::write(
        ctx.client,
        ctx.reporter,
        request.target,
        &action.build_key,
        &moved,
        ctx.record,
    )
    .await;
}

/// Reads until Bamboo shows the write's effect (the build is no longer as before), while the
/// lease allows; returns the read that showed it. After a stop, one read more at most.
///
/// A move is the call's only while the lease holds: answered before the confirmation window
/// ends, with our label still on the build. A read answered later (one that waited out a
/// 429's `Retry-After`) may show another apply's call, made once our lock had expired and
/// that apply took it off (found by the explorer, seed 27933: two records of one promotion).
async fn confirm(
    ctx: &Context<'_>,
    before: &ObservedBuild,
    lease: &Lease,
) -> Option<ObservedBuild> {
    let until = lease.confirm_until().min(Instant::now() + CONFIRM_AT_MOST);
    let last = CONFIRM_PAUSES[CONFIRM_PAUSES.len() - 1];
    let mut pauses = CONFIRM_PAUSES.into_iter().chain(std::iter::repeat(last));
    loop {
        if let Ok(now) = reread(ctx.client, &before.key).await
            && now.fingerprint() != before.fingerprint()
        {
            let held = Instant::now() < until && lease.holds(&now);
            return held.then_some(now);
        }
        let pause = pauses.next().unwrap_or(last);
        if ctx.stop.requested() || Instant::now() + pause >= until {
            return None;
        }
        tokio::time::sleep(pause).await;
    }
}
