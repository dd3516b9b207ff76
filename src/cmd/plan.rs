//! `plan`: what apply would do, without changing anything.

use super::failure::json_errors;
use crate::cli::PlanArgs;
use crate::exit;
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
    super::pipeline::print(args.format, DocumentKind::Plan, &planned);
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
