//! `plan`: what apply would do, without changing anything.

use crate::cli::PlanArgs;
use crate::exit;

pub async fn run(args: &PlanArgs) -> u8 {
    let planned = match super::pipeline::plan(&args.paths, &args.server, &args.selection).await {
        Ok(planned) => planned,
        Err(code) => return code,
    };
    super::pipeline::print(args.format, "plan", &planned);
    if let Some(path) = &args.out {
        let document = super::pipeline::document("plan", &planned);
        let text = serde_json::to_string_pretty(&document).expect("plan serializes");
        if let Err(e) = std::fs::write(path, text + "\n") {
            eprintln!("error: cannot write the plan to {}: {e}", path.display());
            return exit::ERROR;
        }
        eprintln!(
            "saved the plan to {}; run `bamboo-promote apply {}` to execute exactly it",
            path.display(),
            path.display()
        );
    }
    let summary = planned.plan.summary();
    if summary.blocked > 0 {
        exit::BLOCKED
    } else if args.detailed_exitcode && summary.to_promote > 0 {
        exit::CHANGES_PENDING
    } else {
        exit::SUCCESS
    }
}
