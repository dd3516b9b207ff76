//! `status`: where each target's build stands now.

use crate::cli::StatusArgs;
use crate::exit;

pub async fn run(args: &StatusArgs) -> u8 {
    let planned = match super::pipeline::plan(&args.paths, &args.server, &args.selection).await {
        Ok(planned) => planned,
        Err(code) => return code,
    };
    super::pipeline::print(args.format, "status", &planned);
    if planned.plan.summary().blocked > 0 {
        exit::BLOCKED
    } else {
        exit::SUCCESS
    }
}
