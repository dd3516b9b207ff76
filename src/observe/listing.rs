//! The latest builds of many default-branch plans at once: a project's listing
//! (`GET result/{project}`) or the server's (`GET result`), page by page, where that takes
//! fewer requests than one read per plan.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use futures_util::future::join_all;

use crate::bamboo::types::BuildResult;
use crate::bamboo::{BambooClient, BambooError};
use crate::manifest::BuildSelector;

/// Results asked for per project listing page; servers may cap it lower (older ones at 25).
const LISTING_PAGE: usize = 100;

/// The latest builds of default-branch plans: from listings where that takes fewer requests
/// than one read per plan, and one read each for the plans no listing covered.
pub(super) async fn list_latest(
    client: &BambooClient,
    plans: &BTreeMap<String, BTreeSet<BuildSelector>>,
) -> Result<HashMap<String, Option<BuildResult>>, BambooError> {
    let mut by_project: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for key in plans.keys() {
        if let Some((project, _)) = key.split_once('-') {
            by_project.entry(project).or_default().insert(key);
        }
    }
    // A listing's first page costs what one per-plan read does: only worth it for two or more
    // wanted plans. Projects with one each are pooled into the server's listing, which holds
    // them all (in a handful of pages on a small server).
    let (mut listings, singles): (Vec<_>, Vec<_>) = by_project
        .into_iter()
        .map(|(project, plans)| (Some(project), plans))
        .partition(|(_, plans)| plans.len() >= 2);
    let singles: BTreeSet<&str> = singles.into_iter().flat_map(|(_, plans)| plans).collect();
    let mut unlisted: Vec<String> = Vec::new();
    match singles.len() {
        0 => {}
        1 => unlisted.extend(singles.iter().map(|p| p.to_string())),
        _ => listings.push((None, singles)),
    }
    let read = join_all(
        listings
            .iter()
            .map(|(project, plans)| list(client, *project, plans)),
    )
    .await;
    let mut found = HashMap::new();
    for (listing, (_, plans)) in read.into_iter().zip(&listings) {
        let listing = listing?;
        unlisted.extend(
            plans
                .iter()
                .filter(|p| !listing.contains_key(**p))
                .map(|p| p.to_string()),
        );
        found.extend(listing);
    }
    // Read as soon as the listings are, not after every other read of `observe`.
    let reads = join_all(unlisted.iter().map(|key| client.build(key, None))).await;
    for (key, build) in unlisted.into_iter().zip(reads) {
        found.insert(key, build?);
    }
    Ok(found)
}

/// One listing, of a project or (`None`) of the whole server. The first page tells the
/// listing's size; the rest is read only if its pages are fewer than the wanted plans still
/// unseen.
async fn list(
    client: &BambooClient,
    project: Option<&str>,
    plans: &BTreeSet<&str>,
) -> Result<HashMap<String, Option<BuildResult>>, BambooError> {
    let (first, size) = client.latest_builds(project, 0, LISTING_PAGE).await?;
    let page = first.len().max(1);
    let mut builds = first;
    let remaining_pages = size.saturating_sub(builds.len()).div_ceil(page);
    let unseen = plans
        .iter()
        .filter(|p| !builds.iter().any(|b| plan_of(b) == **p))
        .count();
    let complete = remaining_pages == 0 || remaining_pages < unseen;
    if remaining_pages > 0 && remaining_pages < unseen {
        let starts: Vec<usize> = (1..=remaining_pages).map(|i| i * page).collect();
        let pages = join_all(
            starts
                .iter()
                .map(|start| client.latest_builds(project, *start, page)),
        )
        .await;
        for result in pages {
            builds.extend(result?.0);
        }
    }
    let mut found: HashMap<String, Option<BuildResult>> = HashMap::new();
    for build in builds {
        let key = plan_of(&build).to_string();
        if plans.contains(key.as_str()) {
            found.insert(key, Some(build));
        }
    }
    if complete {
        // The whole listing was read: a wanted plan absent from it has no build.
        for plan in plans {
            found.entry(plan.to_string()).or_insert(None);
        }
    }
    Ok(found)
}

fn plan_of(build: &BuildResult) -> &str {
    build.plan.as_ref().map_or_else(
        || build.key.rsplit_once('-').map_or("", |(plan, _)| plan),
        |p| p.key.as_str(),
    )
}
