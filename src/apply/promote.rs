//! One promotion, done safely: take the build's lease, re-read the build, act only if the
//! planner still calls for the same promotion (and, for a saved plan, only if the build is as
//! it was planned), send one queue call, and learn its outcome by reading again.
//!
//! The call is never sent twice. When its outcome is unknown (no answer, a 5xx) the build is
//! read again: if it moved, the call took effect; if not, the outcome stays unknown — the call
//! may still be on its way, and a re-read cannot see it — so the lock label stays on the
//! build, and no run acts on it until the label expires and a fresh read decides.

use std::time::Duration;

use tokio::time::Instant;

use super::audit::Outcome;
use super::lease::{self, Lease, LeaseError};
use super::promotion::{
    Context, Promotion, Request, Upstream, describe_call, release, reread, what_changed,
};
use super::settle::{Call, settle};
use crate::bamboo::types::split_build_key;
use crate::bamboo::{BuildReader, WriteError, WriteTurn};
use crate::lock_label::looks_like_a_lock;
use crate::manifest::BuildSelector;
use crate::observe::{Newer, ObservedBuild, newer_builds_of};
use crate::reconcile::{Action, BlockReason, Moment, Status, assess, downgrade, running};
use crate::render::human::status_words;

/// Renewals of a lease that was not fresh by the time of the write, before giving up.
const RENEWALS: u32 = 3;
/// Turns whose reads failed (a 429, a 5xx) taken again under one promotion, before giving up;
/// each waits out the server's pause first, and each is bounded by the lease's freshness.
const TURN_READ_FAILURES: u32 = 10;

pub async fn promote(ctx: &Context<'_>, request: &Request<'_>) -> Promotion {
    let client = ctx.client;
    let build_key = &request.action.build_key;
    if request.require_fingerprint {
        // A stale saved plan is found from a plain read, before any label is written.
        match reread(client, build_key).await {
            Ok(now) if now.fingerprint() != request.action.fingerprint => {
                let changed = match request.planned_build.as_deref() {
                    Some(before) => what_changed(before, &now),
                    None => "the build changed".into(),
                };
                return Promotion::Stale {
                    planned: request.action.fingerprint.clone(),
                    found: format!("{}: {changed} since this plan was made", now.fingerprint()),
                };
            }
            Ok(_) => {}
            Err(e) => return Promotion::Failed(e),
        }
    }
    let waiting = |holder: &str| {
        ctx.reporter
            .lock_wait(&request.target.id, build_key, holder)
    };
    let taken = Lease::acquire(client, build_key, ctx.lease, ctx.stop, waiting).await;
    let (mut lease, mut before) = match taken {
        Ok(taken) => taken,
        Err(e) => return lease_failed(e),
    };
    if ctx.mark_tries {
        // Under the lease, so no other watcher marks or calls in between: a mark already
        // there is another try's, and ends this one.
        if let Err(promotion) = still_needed(ctx, request, &before, false) {
            return release(client, lease, *promotion).await;
        }
        if let Err(promotion) = mark(ctx, request).await {
            return release(client, lease, promotion).await;
        }
    }
    // From here, every end before the call goes through `unsent`, which takes the mark off.
    let marked = ctx.mark_tries;
    let mut renewals = 0;
    let mut failed_reads = 0;
    loop {
        let action = match still_needed(ctx, request, &before, marked) {
            Ok(action) => action,
            Err(promotion) => return unsent(ctx, request, lease, *promotion).await,
        };
        if ctx.stop.requested() {
            return unsent(ctx, request, lease, Promotion::Stopped).await;
        }
        let again = if lease.fresh() {
            match last_check_and_send(ctx, request, &lease, &action).await {
                Turn::Sent {
                    sent,
                    read,
                    overridden,
                } => {
                    let call = Call {
                        action,
                        sent,
                        overridden,
                    };
                    return settle(ctx, request, lease, &read, call).await;
                }
                Turn::Ended(promotion) => return unsent(ctx, request, lease, promotion).await,
                Turn::ReadFailed(why) if failed_reads < TURN_READ_FAILURES => {
                    failed_reads += 1;
                    tracing::debug!("{build_key}: taking the turn again: {why}");
                    continue;
                }
                Turn::Again(why) | Turn::ReadFailed(why) => why,
            }
        } else {
            // Verified too long ago (a paused process, a slow read): others may soon take the
            // label for abandoned.
            "the lock was verified too long ago".to_string()
        };
        // Take a new label and read the build again before any write.
        if renewals == RENEWALS {
            let failed = Promotion::Failed(format!(
                "the lock on {build_key} could not be verified quickly enough to write under it ({again}); nothing was sent (a longer --lock-ttl gives more room)"
            ));
            return unsent(ctx, request, lease, failed).await;
        }
        renewals += 1;
        match lease.renew(client, ctx.lease, ctx.stop, waiting).await {
            Ok((renewed, now)) => (lease, before) = (renewed, now),
            Err(e) => return unmark(ctx, request, lease_failed(e)).await,
        }
    }
}

/// How the last step before a write went.
enum Turn {
    /// The call left; its answer (or why there is none) and the read it was decided on.
    Sent {
        sent: Result<(), WriteError>,
        read: ObservedBuild,
        /// Said in the call's audit record: a closed window it went through.
        overridden: Option<String>,
    },
    /// Nothing was sent, and nothing will be under this lease.
    Ended(Promotion),
    /// Nothing was sent: start again from a new lease, for this reason.
    Again(String),
    /// Nothing was sent: a read of the turn failed (a 429, a 5xx, a dropped connection). The
    /// turn is taken again under the same lease while it is fresh.
    ReadFailed(String),
}

/// The last step, in the order that leaves nothing to wait between the last check and the
/// call: a request slot and every pause the server asked for first; then the audit record, on
/// disk; then one read of the build in that same slot; then, with no await in between, every
/// check on that read — its age, our label there and no other lock, the same action, the
/// gates, the window, the stop flag — and the call.
async fn last_check_and_send(
    ctx: &Context<'_>,
    request: &Request<'_>,
    lease: &Lease,
    action: &Action,
) -> Turn {
    let build_key = &action.build_key;
    let call = describe_call(action);
    let turn = match ctx.client.write_turn(lease.write_deadline()).await {
        Ok(turn) => turn,
        Err(e) => return Turn::Ended(Promotion::Failed(e.to_string())),
    };
    if let Err(e) = turn.announce(build_key, &call) {
        return Turn::Ended(Promotion::Failed(format!(
            "the audit trail cannot record the call to {build_key}: {e}; nothing was sent"
        )));
    }
    let not_sent = |why: String| {
        let _ = ctx.reporter.audit(
            &request.target.id,
            build_key,
            call.clone(),
            Outcome::NotSent,
            Some(why.clone()),
        );
        why
    };
    // The plan's newer builds, in the same slot: a newer build that reached the stage since
    // the plan (promoted by hand, by another run, or deploying now) makes the call a downgrade,
    // and one with a call that may still land could undo it.
    let newer_at = Instant::now();
    let newer = match newer_in_turn(&turn, action).await {
        Ok(newer) => newer,
        Err(e) => {
            return Turn::ReadFailed(not_sent(format!("the newer builds' read failed: {e}")));
        }
    };
    let upstream_at = Instant::now();
    let upstream = match upstream_in_turn(&turn, request).await {
        Ok(upstream) => upstream,
        Err(e) => return Turn::ReadFailed(not_sent(e)),
    };
    let read_at = Instant::now();
    let read = match lease::read_in_turn(&turn, build_key).await {
        Ok(read) => read,
        Err(e) => return Turn::ReadFailed(not_sent(format!("the last read failed: {e}"))),
    };
    // From here to the call: no await.
    let reads = Reads {
        build: &read,
        build_at: read_at,
        newer: &newer,
        newer_at,
        upstream: &upstream,
        upstream_at,
    };
    let checked = last_check(ctx, request, lease, action, &reads);
    let overridden = match checked {
        Ok(overridden) => overridden,
        Err(Check::Again(why)) => return Turn::Again(not_sent(why)),
        Err(Check::End(promotion)) => {
            not_sent(promotion_words(&promotion));
            return Turn::Ended(*promotion);
        }
    };
    ctx.reporter.sending(&request.target.id, build_key, &call);
    let sent = turn
        .continue_build(build_key, &action.stage, action.execute_all_stages)
        .await;
    let overridden = overridden
        .map(|window| format!("window {window} is closed; overridden by --override-window"));
    Turn::Sent {
        sent,
        read,
        overridden,
    }
}

/// Why the last check did not let the call go.
enum Check {
    Again(String),
    End(Box<Promotion>),
}

/// The last read's longest age at the call, counted from when its request left: what it shows
/// is at least that old. A slow answer passes; one held on the way, or a process paused with
/// the answer in hand (found by the explorer, seed 31708: a read 115 s old let a call go past
/// a gate label taken off meanwhile), is read again.
const LAST_READ_AGE: Duration = Duration::from_secs(2);
/// What the last check decides on: the build, when it was read, and its plan's newer builds
/// (`None` with `allowDowngrade`).
struct Reads<'a> {
    build: &'a ObservedBuild,
    /// When the build's read began.
    build_at: Instant,
    newer: &'a Newer<ObservedBuild>,
    /// When the newer builds' read began.
    newer_at: Instant,
    /// The build each target this one is `after` names now, and when their reads began.
    upstream: &'a [Named<'a>],
    upstream_at: Instant,
}

/// The longest time from the start of the newer builds' read to the call. Other builds are
/// not under this lease: a newer build promoted by another run after that read is not seen,
/// so a read that took longer (a held answer, a slow page) is made again.
const NEWER_READ_AGE: Duration = Duration::from_secs(3);

/// Every check on the last read, with no await: `Ok` with the name of a closed window that
/// `--override-window` lets through, if any.
fn last_check(
    ctx: &Context<'_>,
    request: &Request<'_>,
    lease: &Lease,
    action: &Action,
    reads: &Reads<'_>,
) -> Result<Option<String>, Check> {
    let read = reads.build;
    if reads.build_at.elapsed() > LAST_READ_AGE || !lease.fresh() {
        return Err(Check::Again("the last read is too old to write on".into()));
    }
    if reads.newer_at.elapsed() > NEWER_READ_AGE {
        return Err(Check::Again(
            "the newer builds took too long to read to rule out a downgrade".into(),
        ));
    }
    if !reads.upstream.is_empty() && reads.upstream_at.elapsed() > NEWER_READ_AGE {
        return Err(Check::Again(
            "the targets this one is `after` took too long to read to be sure they are in sync"
                .into(),
        ));
    }
    for named in reads.upstream {
        named.in_sync().map_err(Check::End)?;
    }
    let newer = reads.newer;
    // Another build of the plan with a call that may still land: it could undo this one.
    if let Some((build, label)) = &newer.marked {
        let reason = BlockReason::TriedUnsettled {
            build: build.clone(),
            label: label.clone(),
        };
        return Err(Check::End(Box::new(Promotion::NotNeeded(
            Status::Blocked { reason },
        ))));
    }
    let now_ms = Moment::on_server(ctx.client, false).now.as_millisecond();
    if !request.target.allow_downgrade
        && let Some(reason) = downgrade(&newer.builds, newer.complete, action, now_ms)
    {
        return Err(Check::End(Box::new(Promotion::NotNeeded(
            Status::Blocked { reason },
        ))));
    }
    // `latest` meant the newest build; a newer one (queued since the plan, or one still
    // in its automatic stages that the server left out of `-latest` and its listings)
    // makes the planned one no longer it.
    if request.target.build == BuildSelector::Latest
        && let Some(newest) = newer.builds.first()
    {
        let doing = match newest.life_cycle_state.as_str() {
            "Finished" | "NotBuilt" => format!("{} is there", newest.key),
            _ => format!("{} is {}", newest.key, running(newest)),
        };
        return Err(Check::End(Box::new(Promotion::Stale {
            planned: format!("{} as the latest build", action.build_key),
            found: format!("newer build {doing}; plan again"),
        })));
    }
    // The server's clock as the answers since the lock show it: readings that disagree by
    // more than the skew bound (a front end's clock, a clock set), or a clock that moved on
    // past the lock's stamp, mean others may take our lock for older than it is.
    match lease.clock_check(ctx.client, ctx.lease) {
        Ok(()) => {}
        Err(lease::ClockProblem::Disagree(why)) => {
            return Err(Check::End(Box::new(Promotion::Failed(format!(
                "{why}; nothing was sent"
            )))));
        }
        Err(lease::ClockProblem::MovedOn(why)) => return Err(Check::Again(why)),
    }
    if !lease.holds(read) {
        return Err(Check::End(Box::new(Promotion::Failed(format!(
            "our lock label {} is gone from {}: another process removed it (did it take the lock for expired?); nothing was sent",
            lease.label, action.build_key
        )))));
    }
    if let Some(other) = read
        .labels
        .iter()
        .find(|l| looks_like_a_lock(l) && !crate::label::same(l, &lease.label))
    {
        return Err(Check::Again(format!(
            "another lock label, {other}, is on the build"
        )));
    }
    if ctx.mark_tries && crate::tried_label::on(&read.labels, &action.stage).is_none() {
        return Err(Check::End(Box::new(Promotion::Failed(format!(
            "the mark {} written before the call is not on {}: a call without it could be tried again; nothing was sent",
            crate::tried_label::for_stage(&action.stage),
            action.build_key
        )))));
    }
    let now_needed = match still_needed(ctx, request, read, ctx.mark_tries) {
        Ok(now) => now,
        Err(promotion) => return Err(Check::End(promotion)),
    };
    if now_needed.stage != action.stage || now_needed.runs != action.runs {
        return Err(Check::Again(format!(
            "the build changed since it was checked: the call would now run {}",
            now_needed.runs.join(", ")
        )));
    }
    if ctx.stop.requested() {
        return Err(Check::End(Box::new(Promotion::Stopped)));
    }
    let now = Moment::on_server(ctx.client, ctx.override_windows);
    let overridden = request
        .target
        .require
        .window_at(now.span(), now.override_windows)
        .filter(|w| w.overridden)
        .map(|w| w.name);
    Ok(overridden)
}

/// A promotion that ended before the call, in words for the audit trail.
fn promotion_words(promotion: &Promotion) -> String {
    match promotion {
        Promotion::NotNeeded(status) => format!("not needed: {}", status_words(status)),
        Promotion::Stale { planned, found } => format!("stale: planned {planned}, now {found}"),
        Promotion::Failed(why) | Promotion::Skipped(why) => why.clone(),
        Promotion::Stopped => "stopped by a signal".into(),
        other => format!("{other:?}"),
    }
}

/// A target this one is `after`, and the build it names now (`None`: none).
struct Named<'a> {
    up: &'a Upstream,
    build: Option<ObservedBuild>,
}

/// The build each target this one is `after` names now, read in the call's turn: the plan was
/// made while they were in sync, and one that is not any more (its build moved on, failed, was
/// replaced) — while a saved plan waited to be applied, or this run waited out another's lock
/// — makes the plan stale. Other builds are not under this lease, so the reads are as fresh as
/// the newer builds' (`NEWER_READ_AGE`).
async fn upstream_in_turn<'a>(
    turn: &WriteTurn<'_>,
    request: &'a Request<'_>,
) -> Result<Vec<Named<'a>>, String> {
    let mut named = Vec::with_capacity(request.upstream.len());
    for up in &request.upstream {
        let build = named_now(turn, up)
            .await
            .map_err(|e| format!("cannot tell whether {} is in sync: {e}", up.id))?;
        named.push(Named { up, build });
    }
    Ok(named)
}

/// The build `up` names now. `latest` (and `newest: eligible`, judged as strictly) is the
/// plan's newest build, and a label's the newest that carries it: the server's answer, then
/// the builds after it, since a server that leaves running builds out of `-latest` and its
/// listings names an older one (found by the explorer, seed 11955; for a label, by a red
/// team).
async fn named_now(turn: &WriteTurn<'_>, up: &Upstream) -> Result<Option<ObservedBuild>, String> {
    let Some(build_key) = &up.build_key else {
        return Ok(None);
    };
    let (plan, number) =
        split_build_key(build_key).ok_or_else(|| format!("{build_key} is not a build key"))?;
    let text = |e: crate::bamboo::BambooError| e.to_string();
    let answered = match &up.selector {
        BuildSelector::Number(_) | BuildSelector::Revision(_) => {
            let pinned = turn.build(plan, Some(number)).await.map_err(text)?;
            return Ok(pinned.map(ObservedBuild::from_result));
        }
        BuildSelector::Label(label) => {
            let Some(build) = turn.labelled(plan, label).await.map_err(text)? else {
                return Ok(None);
            };
            // A server that ignores the label filter answers its newest build.
            let build = turn.with_all_labels(build).await.map_err(text)?;
            if !build
                .labels
                .items
                .iter()
                .any(|l| crate::label::same(&l.name, label))
            {
                return Err(format!(
                    "the server answered {} for the build labelled {label:?}, without that label",
                    build.key
                ));
            }
            build
        }
        BuildSelector::Latest | BuildSelector::NewestEligible => {
            match turn.build(plan, None).await.map_err(text)? {
                Some(latest) => latest,
                None => return Ok(None),
            }
        }
    };
    let newer = newer_builds_of(turn, plan, answered.number)
        .await
        .map_err(text)?;
    if !newer.complete {
        return Err(format!(
            "the builds of {plan} after {} could not all be read",
            answered.key
        ));
    }
    let newest = newer.builds.into_iter().find(|b| match &up.selector {
        BuildSelector::Label(label) => b.labels.iter().any(|l| crate::label::same(l, label)),
        _ => true,
    });
    Ok(Some(
        newest.unwrap_or_else(|| ObservedBuild::from_result(answered)),
    ))
}

impl Named<'_> {
    /// In sync: its build has done the stage (or gone past it).
    fn in_sync(&self) -> Result<(), Box<Promotion>> {
        let up = self.up;
        let planned = format!("after {}: in sync", up.id);
        let Some(build) = &self.build else {
            let found = match up.build_key {
                Some(_) => format!("{} names no build now", up.id),
                None => format!("{} is not in the plan with a build", up.id),
            };
            return Err(Box::new(Promotion::Stale { planned, found }));
        };
        let status = assess(build, &up.stage, false);
        if status.is_settled() {
            return Ok(());
        }
        let found = format!("{}: {} is {}", up.id, build.key, status_words(&status));
        Err(Box::new(Promotion::Stale { planned, found }))
    }
}

/// Puts the mark of a try on the build, before its call (`watch`). A mark whose write failed
/// or went unanswered may be on the build: the stage is then not tried on it again until a
/// person takes the label off, which errs the safe way.
async fn mark(ctx: &Context<'_>, request: &Request<'_>) -> Result<(), Promotion> {
    let action = request.action;
    let label = crate::tried_label::for_stage(&action.stage);
    match ctx.client.add_label(&action.build_key, &label).await {
        Ok(()) => {
            ctx.reporter.emit(
                super::Event::Marked {
                    target: request.target.id.clone(),
                    build: action.build_key.clone(),
                    stage: action.stage.clone(),
                    label: label.clone(),
                },
                || {
                    format!(
                        "{}: marked {} with {label}: this build and stage are tried once",
                        request.target.id, action.build_key
                    )
                },
            );
            Ok(())
        }
        Err(e) => Err(Promotion::Failed(format!(
            "cannot mark {} as tried before the call ({e}); nothing was sent. If the label {label} landed, the stage is not tried on this build again until a person takes it off",
            action.build_key
        ))),
    }
}

/// Ends a promotion whose call was not sent: takes this try's mark off (`watch`), then the
/// lease. A try that never called is no try; left on, the mark would keep the stage from its
/// build over a failed read. A mark whose removal fails stays: that errs the safe way.
async fn unsent(
    ctx: &Context<'_>,
    request: &Request<'_>,
    lease: Lease,
    promotion: Promotion,
) -> Promotion {
    let promotion = unmark(ctx, request, promotion).await;
    release(ctx.client, lease, promotion).await
}

/// Takes this try's mark off, if it put one on (`watch`); says so when it cannot.
pub(super) async fn unmark(
    ctx: &Context<'_>,
    request: &Request<'_>,
    promotion: Promotion,
) -> Promotion {
    if !ctx.mark_tries {
        return promotion;
    }
    let key = &request.action.build_key;
    let label = crate::tried_label::for_stage(&request.action.stage);
    if let Err(e) = ctx.client.remove_label(key, &label).await {
        ctx.reporter.say(&format!(
            "warning: {}: no call was sent to {key}, but its mark {label} could not be taken off ({e}): the stage is not tried on this build again until a person takes the label off",
            request.target.id
        ));
    }
    promotion
}

/// The action the fresh build still calls for, or why there is none. `marked`: this promotion
/// put the build's mark of a try on it, so the mark is not another try's.
fn still_needed(
    ctx: &Context<'_>,
    request: &Request<'_>,
    before: &ObservedBuild,
    marked: bool,
) -> Result<Action, Box<Promotion>> {
    let planned = request.action;
    if request.require_fingerprint && before.fingerprint() != planned.fingerprint {
        return Err(Box::new(Promotion::Stale {
            planned: planned.fingerprint.clone(),
            found: before.fingerprint(),
        }));
    }
    let action = match assess(before, &planned.stage, planned.execute_all_stages) {
        Status::Queue { action } => action,
        other => return Err(Box::new(Promotion::NotNeeded(other))),
    };
    if !marked && let Some(mark) = crate::tried_label::on(&before.labels, &planned.stage) {
        let reason = BlockReason::Tried {
            label: mark.to_string(),
        };
        return Err(Box::new(Promotion::NotNeeded(Status::Blocked { reason })));
    }
    // Another try's call to this build that may still land: this one could turn it into a run
    // of the next manual stage.
    let own = marked.then_some(planned.stage.as_str());
    if let Some(label) = crate::tried_label::unsettled(before, own) {
        let reason = BlockReason::TriedUnsettled {
            build: before.key.clone(),
            label: label.to_string(),
        };
        return Err(Box::new(Promotion::NotNeeded(Status::Blocked { reason })));
    }
    // A label may have come or gone since the plan: the gates are checked on this read.
    if let Some(failed) = request
        .target
        .require
        .check(&before.labels)
        .into_iter()
        .find(|g| !g.passed)
    {
        let reason = BlockReason::GateNotMet {
            gate: failed.gate,
            label: failed.label,
        };
        return Err(Box::new(Promotion::NotNeeded(Status::Blocked { reason })));
    }
    // The window may have closed since the plan: read on the server's clock, now.
    let now = Moment::on_server(ctx.client, ctx.override_windows);
    if let Some(window) = request
        .target
        .require
        .window_at(now.span(), now.override_windows)
        && !window.lets_through()
    {
        let reason = BlockReason::WindowClosed {
            window: window.name,
            opens: window.opens,
        };
        return Err(Box::new(Promotion::NotNeeded(Status::Blocked { reason })));
    }
    Ok(action)
}

/// The newer builds of the build's plan, read in the call's turn, whatever the selector (a
/// saved plan's `latest` is a pin by then). With `allowDowngrade: true` too: no downgrade is
/// looked for then, but a newer build's call that may still land would undo this one.
async fn newer_in_turn(
    turn: &WriteTurn<'_>,
    action: &Action,
) -> Result<Newer<ObservedBuild>, String> {
    let (plan, number) = split_build_key(&action.build_key)
        .ok_or_else(|| format!("{} is not a build key", action.build_key))?;
    newer_builds_of(turn, plan, number)
        .await
        .map_err(|e| e.to_string())
}

fn lease_failed(error: LeaseError) -> Promotion {
    match error {
        LeaseError::Stopped => Promotion::Stopped,
        busy @ LeaseError::Busy { .. } => Promotion::Failed(busy.to_string()),
        other => Promotion::Failed(format!("cannot take the lock: {other}")),
    }
}
