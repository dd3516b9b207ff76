//! `status`: where each target's build stands now.

use super::failure::json_errors;
use crate::cli::StatusArgs;
use crate::exit;
use crate::render::DocumentKind;

pub async fn run(args: &StatusArgs) -> u8 {
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
    let context = crate::render::markdown::Context {
        provenance: super::pipeline::provenance(args.format, &args.paths).await,
        ..Default::default()
    };
    super::pipeline::print(args.format, DocumentKind::Status, &planned, &context);
    if planned.plan.blocked_only_by_windows() {
        exit::WAITING_ON_TIME
    } else if planned.plan.summary().blocked > 0 {
        exit::BLOCKED
    } else {
        exit::SUCCESS
    }
}
