//! `init`: reads the current state of a project's plans and writes a manifest that describes
//! it (see `adopt`), with the manifest schema beside it for editors.

use futures_util::future::join_all;

use super::failure::{Failure, Json};
use crate::adopt;
use crate::bamboo::{BambooClient, BambooError};
use crate::cli::InitArgs;
use crate::observe::ObservedBuild;
use crate::{exit, manifest};

/// Builds asked for per listing page, as `plan` reads them.
const PAGE: usize = 100;

pub async fn run(args: &InitArgs) -> u8 {
    match init(args).await {
        Ok(()) => exit::SUCCESS,
        Err(failure) => failure.report(Json::No),
    }
}

async fn init(args: &InitArgs) -> Result<(), Failure> {
    let project = args.project.to_ascii_uppercase();
    let file = args
        .out
        .join(format!("{}.yaml", project.to_ascii_lowercase()));
    if file.exists() && !args.force {
        return Err(Failure::new(format!(
            "{} exists; give --force to overwrite it, or another --out",
            file.display()
        )));
    }
    let connection = super::pipeline::connect(&args.server).await?;
    let client = &connection.client;
    let builds = latest_builds(client, &project, &args.plans)
        .await
        .map_err(|e| Failure::new(e.to_string()))?;
    if builds.is_empty() {
        return Err(Failure::new(format!(
            "no plan of project {project} on {} has a build to describe",
            connection.server
        )));
    }
    let (adopted, passed) = adopt::adopt(&builds);
    let origin = format!(
        "`bamboo-promote init --project {project}` from {} on {}",
        connection.server,
        jiff::Timestamp::now().strftime("%Y-%m-%d")
    );
    let schema = "promotion.v1.schema.json";
    let text = adopt::manifest(
        &project.to_ascii_lowercase(),
        &origin,
        schema,
        &adopted,
        &passed,
    );
    let written = std::fs::create_dir_all(&args.out)
        .and_then(|()| std::fs::write(&file, text))
        .and_then(|()| std::fs::write(args.out.join(schema), manifest::schema()));
    written.map_err(|e| Failure::new(format!("cannot write {}: {e}", file.display())))?;
    errln!(
        "wrote {} target{} to {}{}; `bamboo-promote plan {}` shows nothing to promote",
        adopted.len(),
        if adopted.len() == 1 { "" } else { "s" },
        file.display(),
        if passed.is_empty() {
            String::new()
        } else {
            format!(
                " ({} plan{} with no manual stage run yet, listed at its end)",
                passed.len(),
                if passed.len() == 1 { "" } else { "s" }
            )
        },
        args.out.display()
    );
    Ok(())
}

/// The latest build of each plan asked for, or of every plan of the project: the project's
/// listing, page by page, as `plan` reads it.
async fn latest_builds(
    client: &BambooClient,
    project: &str,
    plans: &[String],
) -> Result<Vec<ObservedBuild>, BambooError> {
    if !plans.is_empty() {
        let reads = join_all(plans.iter().map(|plan| client.build(plan, None))).await;
        let mut builds = Vec::new();
        for read in reads {
            builds.extend(read?.map(ObservedBuild::from_result));
        }
        return Ok(builds);
    }
    let mut builds = Vec::new();
    loop {
        let (page, size) = client
            .latest_builds(Some(project), builds.len(), PAGE)
            .await?;
        let last = page.is_empty();
        builds.extend(page.into_iter().map(ObservedBuild::from_result));
        if last || builds.len() >= size {
            return Ok(builds);
        }
    }
}
