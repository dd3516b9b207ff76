//! `environments`: what runs where — the plan's reads, plus the newest page of each plan's
//! history, shown as a table (`environments::human`), JSON or Markdown.

use futures_util::StreamExt;

use super::failure::Json;
use crate::cli::{EnvironmentsArgs, ViewFormat};
use crate::environments::{self, HISTORY_PAGE, History};
use crate::exit;

pub async fn run(args: &EnvironmentsArgs) -> u8 {
    let json = match args.format {
        ViewFormat::Json => Json::Document,
        _ => Json::No,
    };
    let planned = match super::pipeline::plan(
        &args.paths,
        &args.walk.exclude,
        &args.server,
        &args.selection,
        super::pipeline::When::default(),
    )
    .await
    {
        Ok(planned) => planned,
        Err(failure) => return failure.report(json),
    };
    let client = &planned.connection.client;
    let mut plans: Vec<&str> = Vec::new();
    for item in &planned.plan.items {
        if let Some(plan) = environments::item_plan(item)
            && !plans.contains(&plan)
        {
            plans.push(plan);
        }
    }
    // The client's request slots bound how many go at once; the order is the manifests'.
    let reads = plans
        .iter()
        .map(|plan| client.history_with_comments(plan, HISTORY_PAGE));
    let pages = futures_util::stream::iter(reads)
        .buffered(64)
        .collect::<Vec<_>>()
        .await;
    let mut histories = Vec::new();
    for (plan, page) in plans.iter().zip(pages) {
        match page {
            // A page shorter than asked for reached the plan's first build; `size` is not
            // trusted to say so.
            Ok((builds, _)) => histories.push((
                plan.to_string(),
                History {
                    whole: builds.len() < HISTORY_PAGE,
                    builds,
                },
            )),
            // Said as the pipeline's own failures are: an error document with --format json.
            Err(e) => return super::failure::Failure::new(e.to_string()).report(json),
        }
    }
    let server_time = crate::reconcile::Moment::on_server(client, false)
        .now
        .to_string();
    let view = environments::view(
        planned.connection.server.clone(),
        server_time,
        histories,
        &planned.plan.items,
    );
    match args.format {
        ViewFormat::Human => {
            let width = crate::render::human::Style::for_stdout().width;
            crate::output::out_text(environments::human(&view, width));
        }
        ViewFormat::Json => {
            let mut text = serde_json::to_string_pretty(&view).expect("the view serializes");
            text.push('\n');
            crate::output::out_text(text);
        }
        ViewFormat::Markdown => crate::output::out_text(environments::markdown(&view)),
    }
    exit::SUCCESS
}
