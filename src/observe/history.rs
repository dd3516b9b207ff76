//! The builds one plan's selectors name — numbers, labels, revisions — from its history:
//! one read of the newest builds for all of them, then only what that read could not show.

use std::collections::BTreeSet;

use crate::bamboo::types::BuildResult;
use crate::bamboo::{BambooClient, BambooError, BuildReader};
use crate::manifest::BuildSelector;

/// How many recent builds one history read covers. Numbers and labels it does not show are
/// asked for directly; a revision is looked for in the pages after it, down to
/// `REVISION_SEARCH_DEPTH`.
pub(super) const HISTORY_DEPTH: usize = 50;

/// How far back a revision is looked for (Bamboo cannot filter by revision): a typo in one
/// must not read a plan's whole history.
const REVISION_SEARCH_DEPTH: usize = 500;

/// What the reads of one plan (or branch plan) found: the build each selector names, and the
/// plan's newest builds, newest first, when its history was read (empty otherwise). Those
/// spare the downgrade check a read: every build newer than one they show is among them.
#[derive(Default)]
pub(super) struct PlanBuilds {
    pub named: Vec<(BuildSelector, Option<BuildResult>)>,
    pub newest: Vec<BuildResult>,
}

/// The builds one plan's selectors name: one direct read for a single `latest`, number or
/// label, otherwise one history read (see `from_history`).
pub(super) async fn read_builds(
    client: &BambooClient,
    plan: &str,
    selectors: &BTreeSet<BuildSelector>,
) -> Result<PlanBuilds, BambooError> {
    if let [single] = selectors.iter().collect::<Vec<_>>().as_slice() {
        let build = match single {
            BuildSelector::Latest => Some(client.build(plan, None).await?),
            BuildSelector::Number(n) => Some(client.build(plan, Some(*n)).await?),
            BuildSelector::Label(label) => Some(client.labelled(plan, label).await?),
            BuildSelector::Revision(_) | BuildSelector::NewestEligible => None,
        };
        if let Some(build) = build {
            let named = vec![((*single).clone(), build)];
            return Ok(PlanBuilds {
                named,
                newest: Vec::new(),
            });
        }
    }
    let (history, total) = client.history(plan, 0, HISTORY_DEPTH).await?;
    let history = with_every_label(client, history).await?;
    let named = from_history(client, plan, &history, total, selectors).await?;
    Ok(PlanBuilds {
        named,
        newest: history,
    })
}

/// The builds a plan's newest builds (`depth` asked, newest first) show for each selector.
/// When the history may go further back, a number or label it does not show is asked for
/// directly, at any age; a revision, which has no such filter, is looked for page by page.
pub(super) async fn from_history(
    client: &BambooClient,
    plan: &str,
    history: &[BuildResult],
    total: usize,
    selectors: &BTreeSet<BuildSelector>,
) -> Result<Vec<(BuildSelector, Option<BuildResult>)>, BambooError> {
    // Complete when it holds the whole history: by the listing's size, not by a page shorter
    // than asked, since servers cap pages (older ones at 25).
    let complete = history.len() >= total;
    let mut found = Vec::new();
    for selector in selectors {
        let build = match (pick(history, selector), selector) {
            (Some(build), _) => Some(build.clone()),
            (None, _) if complete => None,
            (None, BuildSelector::Number(n)) => client.build(plan, Some(*n)).await?,
            (None, BuildSelector::Label(label)) => client.labelled(plan, label).await?,
            (None, revision @ BuildSelector::Revision(_)) => {
                older_revision(client, plan, revision, history, total).await?
            }
            (None, BuildSelector::Latest | BuildSelector::NewestEligible) => None,
        };
        found.push((selector.clone(), build));
    }
    Ok(found)
}

/// The newest build of a revision older than the builds of the first page (`seen`): the
/// history's next pages, until it ends or `REVISION_SEARCH_DEPTH` builds have been looked at.
async fn older_revision(
    client: &BambooClient,
    plan: &str,
    revision: &BuildSelector,
    seen: &[BuildResult],
    total: usize,
) -> Result<Option<BuildResult>, BambooError> {
    let mut start = seen.len();
    let mut pages = Pages::after(seen);
    while start < total.min(REVISION_SEARCH_DEPTH) {
        let (page, _) = client.history(plan, start, HISTORY_DEPTH).await?;
        if page.is_empty() {
            break;
        }
        start += page.len();
        let page = pages.unseen(plan, page)?;
        if let Some(build) = pick(&page, revision) {
            return Ok(Some(build.clone()));
        }
    }
    Ok(None)
}

/// The build of a history (newest first) that a selector names.
fn pick<'a>(history: &'a [BuildResult], selector: &BuildSelector) -> Option<&'a BuildResult> {
    history.iter().find(|b| match selector {
        BuildSelector::Latest => true,
        BuildSelector::Number(n) => b.number == *n,
        BuildSelector::Revision(r) => b.vcs_revision_key.as_deref() == Some(r.as_str()),
        BuildSelector::Label(l) => b
            .labels
            .items
            .iter()
            .any(|x| crate::label::same(&x.name, l)),
        // Chosen by the planner from the candidates, not picked here.
        BuildSelector::NewestEligible => false,
    })
}

/// The builds of a plan newer than one, newest first, and whether that is all of them.
#[derive(Debug, Clone)]
pub struct Newer<B> {
    pub builds: Vec<B>,
    /// False when the read stopped at `REVISION_SEARCH_DEPTH` builds before reaching the one:
    /// an older build that reached the stage may lie beyond.
    pub complete: bool,
    /// A build the pages showed, older ones included, with a watcher's mark whose call may
    /// still land (`tried_label::unsettled`): its key and the mark.
    pub marked: Option<(String, String)>,
}

/// The first build of `page` other than `n` with an unsettled mark.
fn unsettled_on(page: &[BuildResult], n: u32) -> Option<(String, String)> {
    page.iter().filter(|b| b.number != n).find_map(|b| {
        let observed = super::ObservedBuild::from_result(b.clone());
        crate::tried_label::unsettled(&observed, None).map(|mark| (b.key.clone(), mark.to_string()))
    })
}

/// A page of a history, each build with every label. A page lists only a build's first
/// labels (25 on a real server): a watcher's mark or a gate among the rest would go unseen.
/// One build at a time, since a write's last check reads in the one slot it holds; only a
/// build with more labels than the page listed costs a read.
async fn with_every_label(
    client: &impl BuildReader,
    page: Vec<BuildResult>,
) -> Result<Vec<BuildResult>, BambooError> {
    let mut complete = Vec::with_capacity(page.len());
    for build in page {
        complete.push(client.with_all_labels(build).await?);
    }
    Ok(complete)
}

/// The builds of a plan newer than build `n`, newest first: history pages until one reaches
/// `n` (or comes back empty), down to `REVISION_SEARCH_DEPTH` builds; then what the pages
/// could not show is read build by build (`fill_in`). A page's `size` is not trusted to say
/// the history ended: a server may give the page's own length.
pub(super) async fn newer_than(
    client: &impl BuildReader,
    plan: &str,
    n: u32,
) -> Result<Newer<BuildResult>, BambooError> {
    let mut builds = Vec::new();
    let mut start = 0;
    let mut pages = Pages::default();
    let mut marked = None;
    while start < REVISION_SEARCH_DEPTH {
        let (page, _) = client.history(plan, start, HISTORY_DEPTH).await?;
        let reached = page.is_empty() || page.iter().any(|b| b.number <= n);
        start += page.len();
        let page = with_every_label(client, pages.unseen(plan, page)?).await?;
        marked = marked.or_else(|| unsettled_on(&page, n));
        builds.extend(page.into_iter().filter(|b| b.number > n));
        if reached {
            let filled = fill_in(client, plan, n, builds).await?;
            return Ok(Newer { marked, ..filled });
        }
    }
    Ok(Newer {
        builds,
        complete: false,
        marked,
    })
}

/// The builds of a plan newer than build `n` that one page of its history shows: `page`
/// when already read (with every label, as `read_builds` leaves it), else the newest
/// `HISTORY_DEPTH`. For what is said, not decided (a pin in sync that a newer build
/// superseded): no build is read on its own, and the list is complete only when the page
/// reaches `n`.
pub(super) async fn newer_on_a_page(
    client: &BambooClient,
    plan: &str,
    n: u32,
    page: Option<&[BuildResult]>,
) -> Result<Newer<BuildResult>, BambooError> {
    let read;
    let page = match page {
        Some(page) => page,
        None => {
            let (page, _) = client.history(plan, 0, HISTORY_DEPTH).await?;
            read = with_every_label(client, page).await?;
            &read
        }
    };
    Ok(Newer {
        builds: page.iter().filter(|b| b.number > n).cloned().collect(),
        complete: page.iter().any(|b| b.number <= n),
        marked: unsettled_on(page, n),
    })
}

/// Builds numbered between two listed ones, or after the newest, that are read one by one
/// before the list of newer builds is taken as whole; past this, it is "cannot tell".
const GAP_READS: usize = 20;

/// Completes the builds of a plan newer than `n` that a listing showed, newest first: the
/// listing may have left out what a decision needs.
/// - A build listed without its stages (a server that does not expand them in listings) is
///   read by its key, with them.
/// - A build missing from the numbers (a running build that a server leaves out of listings,
///   `includeAllStates` or not) is asked for by its number: each gap between the listed
///   numbers, and the numbers after the newest, until one is not there.
///
/// What cannot be had this way makes the list incomplete (`complete: false`): "cannot tell",
/// never "no newer build".
pub(super) async fn fill_in(
    client: &impl BuildReader,
    plan: &str,
    n: u32,
    listed: Vec<BuildResult>,
) -> Result<Newer<BuildResult>, BambooError> {
    let listed_numbers: BTreeSet<u32> = listed.iter().map(|b| b.number).collect();
    let newest = listed_numbers.last().copied().unwrap_or(n);
    let gaps: Vec<u32> = (n + 1..newest)
        .filter(|k| !listed_numbers.contains(k))
        .collect();
    if gaps.len() > GAP_READS {
        return Ok(Newer {
            builds: listed,
            complete: false,
            marked: None,
        });
    }
    let mut builds = Vec::new();
    for build in listed {
        if build.stages.items.is_empty() || build.stages.items.len() < build.stages.size {
            match client.build(plan, Some(build.number)).await? {
                Some(whole) => builds.push(whole),
                // Gone between the reads: nothing can be said of it.
                None => return incomplete(builds),
            }
        } else {
            builds.push(build);
        }
    }
    for k in gaps {
        if let Some(found) = client.build(plan, Some(k)).await? {
            builds.push(found);
        }
    }
    let mut next = newest + 1;
    loop {
        if next > newest + GAP_READS as u32 {
            return incomplete(builds);
        }
        match client.build(plan, Some(next)).await? {
            Some(found) => builds.push(found),
            None => break,
        }
        next += 1;
    }
    if builds.iter().any(|b| b.stages.items.is_empty()) {
        return incomplete(builds);
    }
    builds.sort_by_key(|b| std::cmp::Reverse(b.number));
    Ok(Newer {
        builds,
        complete: true,
        marked: None,
    })
}

fn incomplete(builds: Vec<BuildResult>) -> Result<Newer<BuildResult>, BambooError> {
    Ok(Newer {
        builds,
        complete: false,
        marked: None,
    })
}

/// The builds `newest: eligible` chooses from, newest first: history pages until one holds a
/// build that passed or waits to be continued (something to choose), down to
/// `REVISION_SEARCH_DEPTH` builds.
pub(super) async fn candidates(
    client: &BambooClient,
    plan: &str,
) -> Result<Vec<BuildResult>, BambooError> {
    let mut found = Vec::new();
    let mut start = 0;
    let mut pages = Pages::default();
    while start < REVISION_SEARCH_DEPTH {
        let (page, total) = client.history(plan, start, HISTORY_DEPTH).await?;
        let empty = page.is_empty();
        start += page.len();
        let page = pages.unseen(plan, page)?;
        let choosable = page
            .iter()
            .any(|b| b.continuable || b.state == "Successful");
        found.extend(page);
        if choosable || empty || start >= total {
            break;
        }
    }
    // The choice is made on stages, and stops at a newer build on its way: what the listing
    // left out (stages, running builds) is read build by build, or nothing is chosen.
    let Some(oldest) = found.iter().map(|b| b.number).min() else {
        return Ok(found);
    };
    let whole = fill_in(client, plan, oldest.saturating_sub(1), found).await?;
    if !whole.complete {
        return Err(BambooError::Decode {
            what: format!("read the history of {plan}"),
            detail: "its listing leaves out builds or their stages, and reading them one by one did not complete it: cannot tell which build is eligible".into(),
        });
    }
    Ok(whole.builds)
}

/// The pages of one plan's history as they come, newest first. A build queued meanwhile
/// pushes the older ones down, so a page may begin with builds the previous page ended with:
/// those are dropped. A page that begins where the first one did is a server that ignores
/// `start-index`: an error, since read as more history it would hide newer builds from the
/// downgrade check and offer `newest: eligible` the same builds twice.
#[derive(Default)]
struct Pages {
    /// The newest build of the first page, and the oldest seen so far.
    newest: Option<u32>,
    oldest: Option<u32>,
}

impl Pages {
    /// The pages after a first one, already read.
    fn after(first: &[BuildResult]) -> Pages {
        Pages {
            newest: first.first().map(|b| b.number),
            oldest: first.iter().map(|b| b.number).min(),
        }
    }

    /// The builds of `page` that earlier pages did not show.
    fn unseen(
        &mut self,
        plan: &str,
        page: Vec<BuildResult>,
    ) -> Result<Vec<BuildResult>, BambooError> {
        if let (Some(newest), Some(first)) = (self.newest, page.first())
            && first.number >= newest
        {
            return Err(BambooError::Mismatch {
                what: format!("read the history of {plan} page by page"),
                answered: format!(
                    "build {} again on a later page (the server does not page history)",
                    first.key
                ),
            });
        }
        let unseen: Vec<BuildResult> = page
            .into_iter()
            .filter(|b| self.oldest.is_none_or(|oldest| b.number < oldest))
            .collect();
        if self.newest.is_none() {
            self.newest = unseen.first().map(|b| b.number);
        }
        self.oldest = unseen.iter().map(|b| b.number).min().or(self.oldest);
        Ok(unseen)
    }
}

#[cfg(test)]
mod tests {
    use super::{BuildResult, Pages};

    fn page(numbers: &[u32]) -> Vec<BuildResult> {
        numbers
            .iter()
            .map(|n| {
                let json = serde_json::json!({
                    "key": format!("P-A-{n}"), "number": n,
                    "lifeCycleState": "Finished", "state": "Successful",
                });
                serde_json::from_value(json).unwrap()
            })
            .collect()
    }

    fn numbers(builds: &[BuildResult]) -> Vec<u32> {
        builds.iter().map(|b| b.number).collect()
    }

    #[test]
    fn pages_drop_what_a_queued_build_pushed_down_and_refuse_a_first_page_again() {
        // After a first page of 10, 9, 8: the page the next read brings, and what is new in
        // it (`None`: an error).
        let first = [10, 9, 8];
        type Case<'a> = (&'a str, &'a [u32], Option<&'a [u32]>);
        let cases: [Case; 4] = [
            ("the next page", &[7, 6, 5], Some(&[7, 6, 5])),
            ("two builds queued meanwhile", &[9, 8, 7], Some(&[7])),
            ("all seen already", &[9, 8], Some(&[])),
            ("the first page again", &[10, 9, 8], None),
        ];
        for (case, next, expected) in cases {
            let mut pages = Pages::default();
            pages.unseen("P-A", page(&first)).unwrap();
            let got = pages.unseen("P-A", page(next));
            match expected {
                Some(expected) => assert_eq!(numbers(&got.unwrap()), expected, "{case}"),
                None => assert!(got.is_err(), "{case}"),
            }
        }
        let mut after = Pages::after(&page(&[10, 9, 8]));
        assert!(
            after.unseen("P-A", page(&[10, 9])).is_err(),
            "seeded from a first page"
        );
    }
}
