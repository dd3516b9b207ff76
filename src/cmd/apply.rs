//! `apply`: plan (or read a saved plan), show it, ask on a terminal, then promote.

use std::io::{BufRead, IsTerminal};
use std::path::Path;
use std::sync::Arc;

use super::failure::{Failure, Json};
use crate::apply::{self, Applied, Counts, Event, Outcome, Reporter, Source, Stop, TargetOutcome};
use crate::bamboo::BambooClient;
use crate::cli::{ApplyArgs, ApplyFormat, LeaseArgs, ServerArgs};
use crate::exit;
use crate::reconcile::{Plan, Status};
use crate::render::human::{Style, counted, status_words};
use crate::render::{self, PlanDocument};

pub async fn run(args: &ApplyArgs) -> u8 {
    if let Some(problem) = lease_problem(&args.server, &args.lease) {
        return Failure::new(problem).report(json_events(args));
    }
    let reporter = match Reporter::new(
        args.format == ApplyFormat::Json,
        args.audit_log.as_deref(),
        args.reason.clone(),
    ) {
        Ok(reporter) => Arc::new(reporter),
        Err(e) => {
            return Failure::new(format!("cannot open the audit log: {e}"))
                .report(json_events(args));
        }
    };
    match saved_plan_path(args) {
        Some(path) => apply_saved(args, path, &reporter).await,
        None => apply_manifests(args, &reporter).await,
    }
}

/// What is wrong with the lock lifetime asked for, if anything (`apply` and `watch`).
pub(super) fn lease_problem(server: &ServerArgs, lease: &LeaseArgs) -> Option<String> {
    let least_ttl = server.request_timeout + apply::TTL_MARGIN;
    if lease.lock_ttl > apply::MAX_TTL {
        return Some("--lock-ttl is at most 24h: a lock left behind by a killed apply blocks its build that long".into());
    }
    (lease.lock_ttl <= least_ttl).then(|| format!("--lock-ttl must be longer than {least_ttl:?} (--request-timeout plus {:?}): a write must land well before its lock may be taken for abandoned",
        apply::TTL_MARGIN))
}

pub(super) fn lease_settings(lease: &LeaseArgs) -> apply::LeaseSettings {
    apply::LeaseSettings {
        ttl: lease.lock_ttl,
        patience: lease.lock_timeout,
        max_skew: lease.max_clock_skew,
    }
}

/// `apply plan.json`: one argument naming a JSON file.
fn saved_plan_path(args: &ApplyArgs) -> Option<&Path> {
    match args.paths.as_slice() {
        [path] if path.is_file() && path.extension().is_some_and(|e| e == "json") => Some(path),
        _ => None,
    }
}

async fn apply_manifests(args: &ApplyArgs, reporter: &Arc<Reporter>) -> u8 {
    let planned = match super::pipeline::plan(
        &args.paths,
        &args.walk.exclude,
        &args.server,
        &args.selection,
        super::pipeline::When {
            at: None,
            override_windows: args.override_window,
        },
    )
    .await
    {
        Ok(planned) => planned,
        Err(failure) => return failure.report(json_events(args)),
    };
    let source = Source::Manifests(&planned.desired);
    let connection = &planned.connection;
    execute(
        args,
        reporter,
        &connection.client,
        &connection.server,
        source,
        planned.plan.clone(),
        &planned.desired.digest,
    )
    .await
}

async fn apply_saved(args: &ApplyArgs, path: &Path, reporter: &Arc<Reporter>) -> u8 {
    if !args.selection.targets.is_empty() {
        return Failure::new(
            "a saved plan is applied whole; choose targets with `plan --target` instead",
        )
        .report(json_events(args));
    }
    let document = match read_saved(path) {
        Ok(document) => document,
        Err(e) => {
            return Failure::new(format!(
                "cannot apply the saved plan {}: {e}",
                path.display()
            ))
            .report(json_events(args));
        }
    };
    if let Some(item) = document
        .plan
        .items
        .iter()
        .find(|i| !i.call_matches_target())
    {
        return Failure::new(format!("{}: the call saved for target `{}` is not the one its target asks for (was the file edited?); nothing was sent. Make a new plan with `bamboo-promote plan --out`",
            path.display(),
            item.target.id)).report(json_events(args));
    }
    // The plan names its server; one given as well must be the same.
    let server = match &args.server.server {
        Some(given) if given.trim_end_matches('/') != document.server.trim_end_matches('/') => {
            return Failure::new(format!(
                "the saved plan was made for {}, not {given}",
                document.server
            ))
            .report(json_events(args));
        }
        _ => crate::cli::ServerArgs {
            server: Some(document.server.clone()),
            ..args.server.clone()
        },
    };
    let connection = match super::pipeline::connect(&server).await {
        Ok(connection) => connection,
        Err(failure) => return failure.report(json_events(args)),
    };
    execute(
        args,
        reporter,
        &connection.client,
        &connection.server,
        Source::Saved,
        document.plan,
        &document.manifests_digest,
    )
    .await
}

/// apply prints its errors as events of its stream with `--format json`.
fn json_events(args: &ApplyArgs) -> Json {
    if args.format == ApplyFormat::Json {
        Json::Event
    } else {
        Json::No
    }
}

/// A saved plan this version can apply: read as JSON first, so that a document of another
/// format version or kind is named as such rather than failing on its first unknown field.
fn read_saved(path: &Path) -> Result<PlanDocument, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let version = value["formatVersion"].as_str().unwrap_or("unknown");
    let kind = value["kind"].as_str().unwrap_or("unknown");
    if !PlanDocument::is_compatible(version) || kind != "plan" {
        return Err(format!(
            "it is a {kind} document of format {version}; this version applies plans of format {}: make a new one with `bamboo-promote plan --out`",
            crate::reconcile::FORMAT_VERSION
        ));
    }
    serde_json::from_value(value).map_err(|e| e.to_string())
}

/// What both kinds of apply share once they have a plan: show it, confirm, run, summarize.
async fn execute(
    args: &ApplyArgs,
    reporter: &Arc<Reporter>,
    client: &BambooClient,
    server: &str,
    source: Source<'_>,
    plan: Plan,
    digest: &str,
) -> u8 {
    show_plan(args, reporter, &plan, server);
    let approval = apply::Approval::of(&plan, args.wait);
    if let Err(code) = confirm(args, &approval) {
        return code;
    }
    let last_words = reporter.clone();
    let stop = Stop::on_signals(move || last_words.last_words());
    let options = options(args, digest, approval);
    // Every write the client sends is in the audit trail before it leaves.
    client.keep_journal(reporter.clone());
    let applied = apply::run(client, source, plan, &options, reporter, &stop).await;
    finish(args, reporter, &applied)
}

fn options(args: &ApplyArgs, digest: &str, approval: apply::Approval) -> apply::Options {
    apply::Options {
        approval,
        record: apply::RecordContext::new(digest, args.reason.clone()),
        override_windows: args.override_window,
        wait: args.wait,
        timeout: args.timeout,
        poll: args.poll_interval,
        lease: lease_settings(&args.lease),
        mark_tries: false,
    }
}

fn show_plan(args: &ApplyArgs, reporter: &Reporter, plan: &Plan, server: &str) {
    if args.format == ApplyFormat::Json {
        for item in &plan.items {
            let planned = Event::Planned {
                target: item.target.id.clone(),
                build: item.build.as_ref().map(|b| b.key.clone()),
                status: item.status.clone(),
            };
            reporter.emit(planned, String::new);
        }
    } else {
        crate::output::out_text(render::human::render(
            plan,
            server,
            true,
            Style::for_stdout(),
        ));
    }
}

/// Asks on a terminal; refuses to go on without one unless `--auto-approve`.
/// Asks for the approval of every promotion this run may make: the plan's, and with `--wait`
/// those it may come to later (listed here, since the plan shows them as waiting or running).
/// `--auto-approve` lists them too, and approves the same set.
fn confirm(args: &ApplyArgs, approval: &apply::Approval) -> Result<(), u8> {
    let promotions = approval.len();
    let later = approval.later();
    if !later.is_empty() && args.format == ApplyFormat::Human {
        errln!("\nWith --wait, this run may also make, once they are due:");
        for line in &later {
            errln!("  + {line}");
        }
        errln!("Nothing else: a promotion outside these is not made (run apply again).");
    }
    if args.auto_approve || approval.is_empty() {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        errln!("error: no terminal to confirm on; run with --auto-approve to apply without asking");
        return Err(exit::ERROR);
    }
    let these = if promotions == 1 {
        "this promotion".to_string()
    } else {
        format!("these {promotions} promotions")
    };
    crate::output::err_text(format_args!(
        "\nDo you want to perform {these}? Only 'yes' will be accepted: "
    ));
    crate::output::flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    if answer.trim() == "yes" {
        Ok(())
    } else {
        errln!("apply cancelled; nothing was queued");
        Err(exit::ERROR)
    }
}

/// The closing report: a line per target and the counts for people, or the `summary` event;
/// then the exit code, by the README's precedence.
fn finish(args: &ApplyArgs, reporter: &Reporter, applied: &Applied) -> u8 {
    let mut counts = Counts::default();
    let mut unfinished = 0;
    let mut lines = Vec::new();
    let id_width = applied
        .outcomes
        .iter()
        .map(|(id, _, _)| id.len())
        .max()
        .unwrap_or(0);
    let build_width = applied
        .outcomes
        .iter()
        .map(|(_, b, _)| b.as_ref().map_or(1, String::len))
        .max()
        .unwrap_or(0);
    for (id, build, outcome) in &applied.outcomes {
        if matches!(
            outcome,
            Outcome::Promoted {
                finished: false,
                ..
            }
        ) && args.wait
        {
            unfinished += 1;
        }
        let text = count(&mut counts, outcome);
        let build = build.as_deref().unwrap_or("-");
        lines.push(format!("  {id:<id_width$}  {build:<build_width$}  {text}"));
    }
    let mut code = exit_code(args.detailed_exitcode, &counts, applied);
    // An audit log that failed stopped every write after it: the lock labels this run held
    // may be left (taking them off is a write too), and the run is an error.
    if reporter.audit_broken() && code != exit::OUTCOME_UNKNOWN {
        code = exit::ERROR;
    }
    if reporter.is_json() {
        let outcomes = applied
            .outcomes
            .iter()
            .map(|(id, build, outcome)| TargetOutcome {
                target: id.clone(),
                build: build.clone(),
                outcome: outcome.clone(),
            })
            .collect();
        let summary = Event::Summary {
            counts,
            outcomes,
            timed_out: applied.timed_out,
            stopped_by: applied.stopped_by.map(|s| s.name().to_string()),
            exit_code: code,
        };
        reporter.emit(summary, String::new);
    } else {
        let mut summary = format!(
            "Apply: {} promoted, {} in sync, {} stage failed, {} paused short, {} blocked, {} waiting, {} moved by others, {} stale, {} unknown, {}",
            counts.promoted,
            counts.in_sync,
            counts.stage_failed,
            counts.paused_short,
            counts.blocked,
            counts.waiting,
            counts.moved_by_other,
            counts.stale,
            counts.unknown,
            counted(counts.errors, "error"),
        );
        if applied.timed_out {
            summary.push_str(&format!(", timed out with {unfinished} still running"));
        }
        if let Some(signal) = applied.stopped_by {
            summary.push_str(&format!(", stopped by {}", signal.name()));
        }
        if reporter.audit_broken() {
            summary.push_str(
                "; the audit log could not be written, so no write followed: lock labels this run held may be left on their builds (they expire; `bamboo-promote unlock BUILD --watch` clears them)",
            );
        }
        crate::output::out_line(format_args!("\n{}\n{summary}.", lines.join("\n")));
    }
    code
}

/// Counts an outcome and says it in a few words.
pub(super) fn count(counts: &mut Counts, outcome: &Outcome) -> String {
    match outcome {
        Outcome::Promoted { runs, finished } => {
            counts.promoted += 1;
            let state = if *finished { "finished" } else { "queued" };
            format!("promoted ({state}): {}", runs.join(", "))
        }
        Outcome::PausedShort { ran, before } => {
            counts.paused_short += 1;
            let ran = if ran.is_empty() {
                "nothing".to_string()
            } else {
                ran.join(", ")
            };
            format!("promoted, but Bamboo ran only {ran} and paused before {before}")
        }
        Outcome::Unknown { message, lock } => {
            counts.unknown += 1;
            format!(
                "outcome unknown ({message}); not sent again. Check the build in Bamboo; lock label {lock} stays until it expires"
            )
        }
        Outcome::StageFailed { stage } => {
            counts.stage_failed += 1;
            format!("promoted, but stage {stage} failed")
        }
        Outcome::Unchanged { status } => {
            match status {
                Status::InSync | Status::Ahead { .. } => counts.in_sync += 1,
                Status::Blocked { .. } => counts.blocked += 1,
                Status::Waiting { .. } => counts.waiting += 1,
                Status::Running { .. } | Status::Queue { .. } => {}
            }
            match status {
                Status::Queue { .. } => "not promoted".into(),
                Status::Running { .. } => "running (not this run's call)".into(),
                other => status_words(other),
            }
        }
        Outcome::Stale { planned, found } => {
            counts.stale += 1;
            format!("not promoted: plan is stale (planned {planned}, now {found})")
        }
        Outcome::NotApproved { approved, found } => {
            counts.stale += 1;
            format!(
                "not promoted: {found} is not in the approved plan (approved: {approved}); run apply again"
            )
        }
        Outcome::MovedByOther { message } => {
            counts.moved_by_other += 1;
            format!("moved by someone else meanwhile ({message})")
        }
        Outcome::Refused { message } | Outcome::Error { message } => {
            counts.errors += 1;
            format!("error: {message}")
        }
    }
}

/// The first that applies of: 7, 1, 6, the signal's, 4, 5, 8, 3, 2 (with --detailed-exitcode), 0.
pub(super) fn exit_code(detailed: bool, counts: &Counts, applied: &Applied) -> u8 {
    if counts.unknown > 0 {
        exit::OUTCOME_UNKNOWN
    } else if counts.errors > 0 {
        exit::ERROR
    } else if counts.stage_failed > 0 {
        exit::STAGE_FAILED
    } else if let Some(signal) = applied.stopped_by {
        signal.exit_code()
    } else if applied.timed_out {
        exit::TIMED_OUT
    } else if counts.stale > 0 {
        exit::STALE_PLAN
    } else if counts.paused_short == 0 && blocked_only_by_windows(applied) {
        exit::WAITING_ON_TIME
    } else if counts.blocked > 0 || counts.paused_short > 0 {
        exit::BLOCKED
    } else if detailed && counts.promoted > 0 {
        exit::CHANGES_PENDING
    } else {
        exit::SUCCESS
    }
}

/// Whether the targets left blocked all wait only for a window to open: nothing needs a person.
fn blocked_only_by_windows(applied: &Applied) -> bool {
    crate::reconcile::only_windows(applied.outcomes.iter().filter_map(|(_, _, outcome)| {
        match outcome {
            Outcome::Unchanged {
                status: Status::Blocked { reason },
            } => Some(reason),
            _ => None,
        }
    }))
}
