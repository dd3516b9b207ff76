//! `apply`: plan (or read a saved plan), show it, ask on a terminal, then promote.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;

use serde_json::json;

use crate::apply::{self, Applied, Outcome, Reporter, Source, Stop};
use crate::bamboo::BambooClient;
use crate::cli::{ApplyArgs, OutputFormat};
use crate::reconcile::{Plan, Status};
use crate::render::{self, PlanDocument, human::Style};
use crate::{exit, stdout};

pub async fn run(args: &ApplyArgs) -> u8 {
    let least_ttl = args.server.request_timeout + apply::TTL_MARGIN;
    if args.lock_ttl > apply::MAX_TTL {
        eprintln!(
            "error: --lock-ttl is at most 24h: a lock left behind by a killed apply blocks its build that long"
        );
        return exit::ERROR;
    }
    if args.lock_ttl <= least_ttl {
        eprintln!(
            "error: --lock-ttl must be longer than {least_ttl:?} (--request-timeout plus {:?}): a write must land well before its lock may be taken for abandoned",
            apply::TTL_MARGIN
        );
        return exit::ERROR;
    }
    let reporter = match Reporter::new(args.format == OutputFormat::Json, args.audit_log.as_deref())
    {
        Ok(reporter) => Arc::new(reporter),
        Err(e) => {
            eprintln!("error: cannot open the audit log: {e}");
            return exit::ERROR;
        }
    };
    match saved_plan_path(args) {
        Some(path) => apply_saved(args, path, &reporter).await,
        None => apply_manifests(args, &reporter).await,
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
    let planned = match super::pipeline::plan(&args.paths, &args.server, &args.selection).await {
        Ok(planned) => planned,
        Err(code) => return code,
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
    )
    .await
}

async fn apply_saved(args: &ApplyArgs, path: &Path, reporter: &Arc<Reporter>) -> u8 {
    if !args.selection.targets.is_empty() {
        eprintln!(
            "error: a saved plan is applied whole; choose targets with `plan --target` instead"
        );
        return exit::ERROR;
    }
    let document: PlanDocument = match std::fs::read_to_string(path)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
    {
        Ok(document) => document,
        Err(e) => {
            eprintln!("error: cannot read the saved plan {}: {e}", path.display());
            return exit::ERROR;
        }
    };
    if !PlanDocument::is_compatible(&document.format_version) || document.kind != "plan" {
        eprintln!(
            "error: {} is a {} document of format {}; this version applies plans of format {}",
            path.display(),
            document.kind,
            document.format_version,
            crate::reconcile::FORMAT_VERSION
        );
        return exit::ERROR;
    }
    if let Some(item) = document
        .plan
        .items
        .iter()
        .find(|i| !i.call_matches_target())
    {
        eprintln!(
            "error: {}: the call saved for target `{}` is not the one its target asks for (was the file edited?); nothing was sent. Make a new plan with `bamboo-promote plan --out`",
            path.display(),
            item.target.id
        );
        return exit::ERROR;
    }
    if document.server != args.server.server {
        eprintln!(
            "error: the saved plan was made for {}, not {}",
            document.server, args.server.server
        );
        return exit::ERROR;
    }
    let connection = match super::pipeline::connect(&args.server).await {
        Ok(connection) => connection,
        Err(code) => return code,
    };
    execute(
        args,
        reporter,
        &connection.client,
        &connection.server,
        Source::Saved,
        document.plan,
    )
    .await
}

/// What both kinds of apply share once they have a plan: show it, confirm, run, summarize.
async fn execute(
    args: &ApplyArgs,
    reporter: &Arc<Reporter>,
    client: &BambooClient,
    server: &str,
    source: Source<'_>,
    plan: Plan,
) -> u8 {
    show_plan(args, reporter, &plan, server);
    if let Err(code) = confirm(args, &plan) {
        return code;
    }
    let last_words = reporter.clone();
    let stop = Stop::on_signals(move || last_words.abandon_in_flight());
    let applied = apply::run(client, source, plan, &options(args), reporter, &stop).await;
    finish(args, reporter, &applied)
}

fn options(args: &ApplyArgs) -> apply::Options {
    apply::Options {
        wait: args.wait,
        timeout: args.timeout,
        poll: args.poll_interval,
        lease: apply::LeaseSettings {
            ttl: args.lock_ttl,
            patience: args.lock_timeout,
        },
    }
}

fn show_plan(args: &ApplyArgs, reporter: &Reporter, plan: &Plan, server: &str) {
    if args.format == OutputFormat::Json {
        for item in &plan.items {
            reporter.event("planned", String::new, json!({ "target": item.target.id, "build": item.build.as_ref().map(|b| &b.key), "status": item.status }));
        }
    } else {
        stdout::text(render::human::render(
            plan,
            server,
            true,
            Style::for_stdout(),
        ));
    }
}

/// Asks on a terminal; refuses to go on without one unless `--auto-approve`.
fn confirm(args: &ApplyArgs, plan: &Plan) -> Result<(), u8> {
    let promotions = plan.summary().to_promote;
    if args.auto_approve || promotions == 0 {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        eprintln!(
            "error: no terminal to confirm on; run with --auto-approve to apply without asking"
        );
        return Err(exit::ERROR);
    }
    eprint!(
        "\nDo you want to perform these {promotions} promotions? Only 'yes' will be accepted: "
    );
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    if answer.trim() == "yes" {
        Ok(())
    } else {
        eprintln!("apply cancelled; nothing was queued");
        Err(exit::ERROR)
    }
}

#[derive(Default)]
struct Tally {
    promoted: usize,
    in_sync: usize,
    failed: Vec<String>,
    blocked: usize,
    waiting: usize,
    stale: usize,
    errors: usize,
    unknown: usize,
    short: usize,
    unfinished: usize,
}

fn finish(args: &ApplyArgs, reporter: &Reporter, applied: &Applied) -> u8 {
    let mut tally = Tally::default();
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
        let build = build.as_deref().unwrap_or("-");
        let text = match outcome {
            Outcome::Promoted { runs, finished } => {
                tally.promoted += 1;
                if args.wait && !finished {
                    tally.unfinished += 1;
                }
                let state = if *finished { "finished" } else { "queued" };
                format!("promoted ({state}): {}", runs.join(", "))
            }
            Outcome::PausedShort { ran, before } => {
                tally.short += 1;
                let ran = if ran.is_empty() {
                    "nothing".to_string()
                } else {
                    ran.join(", ")
                };
                format!("promoted, but Bamboo ran only {ran} and paused before {before}")
            }
            Outcome::Unknown { detail, lock } => {
                tally.unknown += 1;
                format!(
                    "outcome unknown ({detail}); not sent again. Check the build in Bamboo; lock label {lock} stays until it expires"
                )
            }
            Outcome::StageFailed { stage } => {
                tally.failed.push(format!("{id}: {stage}"));
                format!("promoted, but stage {stage} failed")
            }
            Outcome::Unchanged(status) => match status {
                Status::InSync | Status::Ahead { .. } => {
                    tally.in_sync += 1;
                    "in sync".into()
                }
                Status::Blocked { reason } => {
                    tally.blocked += 1;
                    format!("blocked: {reason}")
                }
                Status::Waiting { on } => {
                    tally.waiting += 1;
                    format!("waiting on {}", on.join(", "))
                }
                Status::Running { .. } => "running (not ours)".into(),
                Status::Queue { .. } => "not promoted".into(),
            },
            Outcome::Stale { planned, found } => {
                tally.stale += 1;
                format!("not queued: saved plan is stale (planned {planned}, now {found})")
            }
            Outcome::MovedByOther(message) => {
                tally.in_sync += 1;
                format!("moved by someone else meanwhile ({message})")
            }
            Outcome::Refused(message) | Outcome::Error(message) => {
                tally.errors += 1;
                format!("error: {message}")
            }
        };
        lines.push(format!("  {id:<id_width$}  {build:<build_width$}  {text}"));
    }
    let summary = format!(
        "Apply: {} promoted, {} in sync, {} failed{}, {} blocked, {} waiting, {} stale, {} unknown, {} errors{}{}.",
        tally.promoted,
        tally.in_sync,
        tally.failed.len(),
        if tally.failed.is_empty() {
            String::new()
        } else {
            format!(" ({})", tally.failed.join("; "))
        },
        tally.blocked,
        tally.waiting,
        tally.stale,
        tally.unknown,
        tally.errors,
        if applied.timed_out {
            format!(", timed out with {} still running", tally.unfinished)
        } else {
            String::new()
        },
        applied
            .stopped_by
            .map_or(String::new(), |s| format!(", stopped by {}", s.name())),
    );
    if reporter.is_json() {
        let outcomes: Vec<_> = applied.outcomes.iter().map(|(id, build, o)| json!({ "target": id, "build": build, "outcome": format!("{o:?}") })).collect();
        reporter.event(
            "summary",
            String::new,
            json!({ "summary": summary, "outcomes": outcomes, "timedOut": applied.timed_out }),
        );
    } else {
        stdout::line(format_args!("\n{}\n{summary}", lines.join("\n")));
    }
    if tally.unknown > 0 {
        exit::OUTCOME_UNKNOWN
    } else if tally.errors > 0 {
        exit::ERROR
    } else if !tally.failed.is_empty() {
        exit::STAGE_FAILED
    } else if let Some(signal) = applied.stopped_by {
        signal.exit_code()
    } else if applied.timed_out {
        exit::TIMED_OUT
    } else if tally.stale > 0 {
        exit::STALE_PLAN
    } else if tally.blocked > 0 || tally.short > 0 {
        exit::BLOCKED
    } else if args.detailed_exitcode && tally.promoted > 0 {
        exit::CHANGES_PENDING
    } else {
        exit::SUCCESS
    }
}
