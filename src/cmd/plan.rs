//! `plan`: what apply would do, without changing anything.

use super::failure::{Failure, json_errors};
use crate::cli::PlanArgs;
use crate::compare::{self, Comparison};
use crate::exit;
use crate::manifest::{self, Desired};
use crate::render::DocumentKind;

pub async fn run(args: &PlanArgs) -> u8 {
    let planned = match super::pipeline::plan(
        &args.paths,
        &args.walk.exclude,
        &args.server,
        &args.selection,
        super::pipeline::When {
            at: args.at,
            override_windows: false,
        },
    )
    .await
    {
        Ok(planned) => planned,
        Err(failure) => return failure.report(json_errors(args.format)),
    };
    let comparison = match compared(args, &planned.desired) {
        Ok(comparison) => comparison,
        Err(failure) => return failure.report(json_errors(args.format)),
    };
    let context = crate::render::markdown::Context {
        provenance: super::pipeline::provenance(args.format, &args.paths).await,
        comparison: comparison.as_ref(),
    };
    super::pipeline::print(args.format, DocumentKind::Plan, &planned, &context);
    if let Some(path) = &args.out {
        let document = super::pipeline::document(DocumentKind::Plan, &planned);
        let text = serde_json::to_string_pretty(&document).expect("plan serializes");
        if let Err(e) = std::fs::write(path, text + "\n") {
            errln!("error: cannot write the plan to {}: {e}", path.display());
            return exit::ERROR;
        }
        errln!(
            "saved the plan to {}; run `bamboo-promote apply {}` to execute exactly it",
            path.display(),
            path.display()
        );
    }
    let summary = planned.plan.summary();
    if summary.blocked > 0 && planned.plan.blocked_only_by_windows() {
        exit::WAITING_ON_TIME
    } else if summary.blocked > 0 {
        exit::BLOCKED
    } else if args.detailed_exitcode && summary.to_promote > 0 {
        exit::CHANGES_PENDING
    } else {
        exit::SUCCESS
    }
}

/// With `--compare`, what this change does against the base's manifests. The base is read as
/// the manifests are (the same `--exclude`), and must be valid: a comparison with a base that
/// cannot be read would show a change that is not there.
fn compared(args: &PlanArgs, desired: &Desired) -> Result<Option<Comparison>, Failure> {
    if args.compare.is_empty() {
        return Ok(None);
    }
    let exclude = manifest::Exclude::new(&args.walk.exclude).map_err(Failure::new)?;
    let base = match manifest::load_excluding(&args.compare, &exclude) {
        Ok(base) => base.targets,
        // A base branch without manifests yet: everything is added.
        Err(errors) if errors.iter().all(|e| e.code == "manifest::none") => Vec::new(),
        Err(errors) => {
            return Err(Failure::manifests(
                errors,
                "the base's manifests (--compare) are not valid; nothing was compared",
            ));
        }
    };
    // With --target, the comparison is of the targets chosen.
    let chosen: Vec<&str> = desired.targets.iter().map(|t| t.id.as_str()).collect();
    let base: Vec<_> = if args.selection.targets.is_empty() {
        base
    } else {
        base.into_iter()
            .filter(|t| chosen.contains(&t.id.as_str()))
            .collect()
    };
    Ok(Some(compare::compare(&base, &desired.targets)))
}
