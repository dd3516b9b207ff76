//! `status`: where each target's build stands now.

use crate::cli::{OutputFormat, StatusArgs};
use crate::exit;
use crate::render::{self, human::Style};

pub async fn run(args: &StatusArgs) -> u8 {
    let planned = match super::pipeline::plan(&args.paths, &args.server).await {
        Ok(planned) => planned,
        Err(code) => return code,
    };
    match args.format {
        OutputFormat::Human => print!(
            "{}",
            render::human::render(
                &planned.plan,
                &planned.connection.server,
                false,
                Style::for_stdout()
            )
        ),
        OutputFormat::Markdown => print!(
            "{}",
            render::markdown::render(&planned.plan, &planned.connection.server)
        ),
        OutputFormat::Json => {
            let document = super::pipeline::document("status", &planned);
            println!(
                "{}",
                serde_json::to_string_pretty(&document).expect("status serializes")
            );
        }
    }
    if planned.plan.summary().blocked > 0 {
        exit::BLOCKED
    } else {
        exit::SUCCESS
    }
}
