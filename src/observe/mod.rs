//! Observing Bamboo: reads exactly what the targets need — plans, branches, builds — once each,
//! concurrently (the client bounds how many at a time), and turns the JSON into `Observed`.
//! Many targets on one plan cost one read of that plan's builds. This file decides what to
//! read and gathers the answers; how each kind of read is made cheap lives beside it:
//! `listing` (latest builds of many plans by page), `branch` (a plan branch's builds) and
//! `history` (numbers, labels and revisions of one plan).

mod branch;
mod history;
mod listing;
mod model;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use futures_util::future::join_all;

use crate::bamboo::types::{BranchInfo, BuildResult};
use crate::bamboo::{BambooClient, BambooError, BuildReader};
use crate::manifest::{BuildSelector, Desired};

use branch::branch_builds;
pub use history::Newer;
use history::read_builds;
use listing::list_latest;
pub use model::{
    Observed, ObservedBranch, ObservedBuild, ObservedPlan, ObservedStage, build_plan_key,
};

/// Reads everything `desired` needs, with as few requests as Bamboo allows: branches once each,
/// builds by the cheapest of per-plan reads and project listings, and a plan itself only when
/// no build of it was found (a build already says whether its plan exists and is enabled).
pub async fn observe(client: &BambooClient, desired: &Desired) -> Result<Observed, BambooError> {
    let mut observed = Observed::default();

    // What to read: default-branch builds by plan, and branch builds by (plan, branch).
    let mut on_default: BTreeMap<String, BTreeSet<BuildSelector>> = BTreeMap::new();
    let mut on_branch: BTreeMap<(String, String), BTreeSet<BuildSelector>> = BTreeMap::new();
    let mut eligible: BTreeSet<(String, Option<String>)> = BTreeSet::new();
    for target in &desired.targets {
        if target.build == BuildSelector::NewestEligible {
            eligible.insert((target.plan.clone(), target.branch.clone()));
            continue;
        }
        let selectors = match &target.branch {
            None => on_default.entry(target.plan.clone()).or_default(),
            Some(branch) => on_branch
                .entry((target.plan.clone(), branch.clone()))
                .or_default(),
        };
        selectors.insert(target.build.clone());
    }
    // Project listings show default branches only (Atlassian's BAM-21991), so they serve
    // default-branch `latest` targets; everything else is read per plan.
    let (listable, direct): (BTreeMap<_, _>, BTreeMap<_, _>) = on_default
        .into_iter()
        .partition(|(_, selectors)| only_latest(selectors));

    // Branch names are matched against each plan's branch listing, read once per plan that
    // has branch targets (a name never goes into a path: see `BambooClient::branches`).
    let branched: BTreeSet<&String> = on_branch
        .keys()
        .map(|(plan, _)| plan)
        .chain(
            eligible
                .iter()
                .filter(|(_, b)| b.is_some())
                .map(|(plan, _)| plan),
        )
        .collect();
    // Three independent sets of reads, run together so that the parallelism bound stays busy:
    // the branches (each plan's listing, then its branch plans by key), the project listings,
    // and the direct reads. The client's slots are handed out first come, first served, and
    // `biased` polls in this order: branches go first, as theirs take two steps.
    let branch_side = async {
        let listings: HashMap<&String, Vec<BranchInfo>> = branched
            .iter()
            .copied()
            .zip(join_all(branched.iter().map(|plan| client.branches(plan))).await)
            .map(|(plan, listing)| listing.map(|l| (plan, l)))
            .collect::<Result<_, BambooError>>()?;
        let listing_of = |plan: &String| listings.get(plan).map_or(&[][..], Vec::as_slice);
        let reads = join_all(on_branch.iter().map(|((plan, name), selectors)| {
            branch_builds(client, plan, name, listing_of(plan), selectors)
        }))
        .await;
        Ok::<_, BambooError>((listings, reads))
    };
    let (branch_side, listed, direct_reads) = tokio::join!(
        biased;
        branch_side,
        list_latest(client, &listable),
        join_all(
            direct
                .iter()
                .map(|(key, selectors)| read_builds(client, key, selectors))
        ),
    );
    let (listings, branch_reads) = branch_side?;
    let listing_of = |plan: &String| listings.get(plan).map_or(&[][..], Vec::as_slice);
    let chosen_from = join_all(
        eligible
            .iter()
            .map(|(plan, branch)| candidates(client, plan, branch.as_deref(), listing_of(plan))),
    )
    .await;
    // Every build a target names, by (plan or branch-plan key, selector).
    let mut answered: Vec<(String, BuildSelector, Option<BuildResult>)> = Vec::new();
    for ((plan, name), read) in eligible.iter().zip(chosen_from) {
        let (branch, chosen_from) = read?;
        if let Some(name) = name {
            observed
                .branches
                .insert((plan.clone(), name.clone()), branch);
        }
        let Some((key, builds)) = chosen_from else {
            continue;
        };
        for build in &builds {
            check_answer(&key, &BuildSelector::Latest, build)?;
        }
        let first = builds.first().cloned();
        answered.push((key.clone(), BuildSelector::NewestEligible, first));
        let builds = builds
            .into_iter()
            .map(|b| Arc::new(ObservedBuild::from_result(b)))
            .collect();
        observed.candidates.insert(key, builds);
    }
    for (key, build) in listed? {
        answered.push((key, BuildSelector::Latest, build));
    }
    // By plan (or branch plan) key: its newest builds, where its history was read.
    let mut newest: HashMap<String, Vec<BuildResult>> = HashMap::new();
    for ((key, _), read) in direct.iter().zip(direct_reads) {
        let read = read?;
        for (selector, build) in read.named {
            answered.push((key.clone(), selector, build));
        }
        newest.insert(key.clone(), read.newest);
    }
    for ((plan, name), read) in on_branch.keys().zip(branch_reads) {
        let (branch, read) = read?;
        if let Some(branch) = &branch {
            for (selector, build) in read.named {
                answered.push((branch.key.clone(), selector, build));
            }
            newest.insert(branch.key.clone(), read.newest);
        }
        observed
            .branches
            .insert((plan.clone(), name.clone()), branch);
    }
    // Listings and histories may list a page of a build's labels; gates need them all.
    let completed = join_all(answered.into_iter().map(|(key, selector, build)| async {
        let build = match build {
            Some(build) => Some(client.with_all_labels(build).await?),
            None => None,
        };
        Ok::<_, BambooError>((key, selector, build))
    }))
    .await;
    let mut found = Found::default();
    for answer in completed {
        let (key, selector, build) = answer?;
        found.keep(key, selector, build)?;
    }

    // The plans no build spoke for are read.
    let Found { builds, mut plans } = found;
    // A branch that was found proves its plan exists; the branch's own `enabled` governs its
    // builds, so the master plan need not be read for it.
    for ((plan, _), branch) in &observed.branches {
        if branch.is_some() {
            plans.entry(plan.clone()).or_insert(ObservedPlan {
                enabled: true,
                stages: Vec::new(),
            });
        }
    }
    let unread: BTreeSet<&str> = desired
        .targets
        .iter()
        .map(|t| t.plan.as_str())
        .filter(|p| !plans.contains_key(*p))
        .collect();
    let read = join_all(unread.iter().map(|key| client.plan(key))).await;
    for (key, plan) in unread.iter().zip(read) {
        if let Some(plan) = plan? {
            plans.insert(
                key.to_string(),
                ObservedPlan {
                    enabled: plan.enabled,
                    stages: plan.stages.items.into_iter().map(|s| s.name).collect(),
                },
            );
        }
    }
    for target in &desired.targets {
        observed
            .plans
            .insert(target.plan.clone(), plans.get(&target.plan).cloned());
    }
    observed.newer = newer_builds(client, desired, &observed, &builds, &newest).await?;
    observed.builds = builds;
    Ok(observed)
}

/// For each pinned build (`build: 42`, a label, a revision), the builds of its plan newer
/// than it. For a pin that could still be promoted, a promotion over a newer build that
/// already reached the stage is a downgrade (unless `allowDowngrade`); for a pin in sync, a
/// newer build that ran the stage since has superseded it there, which the plan says. Taken
/// from the plan's `newest` builds, already read, when they show the pin.
async fn newer_builds(
    client: &BambooClient,
    desired: &Desired,
    observed: &Observed,
    builds: &HashMap<(String, BuildSelector), Option<Arc<ObservedBuild>>>,
    newest: &HashMap<String, Vec<BuildResult>>,
) -> Result<HashMap<(String, u32), Newer<Arc<ObservedBuild>>>, BambooError> {
    // By pin: whether it may be promoted (the downgrade check: complete data, every label)
    // or is in sync (the superseded note: what the history shows is enough).
    let mut pins: BTreeMap<(String, u32), bool> = BTreeMap::new();
    for target in desired.targets.iter().filter(|t| t.build.pins()) {
        // The pinned build, under its plan's (or branch plan's) key: the branches are known.
        let Some(key) = build_plan_key(target, observed) else {
            continue;
        };
        let Some(Some(build)) = builds.get(&(key.clone(), target.build.clone())) else {
            continue;
        };
        // A pin that may be promoted (paused or failed short of its target stage), unless a
        // downgrade is allowed; or a pin in sync, which a newer build may have superseded.
        let promotable = (build.continuable || build.restartable)
            && !build.passed_stage(&target.stage)
            && !target.allow_downgrade;
        if promotable || build.passed_stage(&target.stage) {
            *pins.entry((key, build.number)).or_default() |= promotable;
        }
    }
    let reads = join_all(pins.iter().map(|((plan, n), promotable)| async move {
        let page = newest
            .get(plan)
            .filter(|page| page.iter().any(|b| b.number == *n));
        if !promotable {
            return history::newer_on_a_page(client, plan, *n, page.map(Vec::as_slice)).await;
        }
        let read = match page {
            Some(page) => {
                let listed = page.iter().filter(|b| b.number > *n).cloned().collect();
                history::fill_in(client, plan, *n, listed).await?
            }
            None => history::newer_than(client, plan, *n).await?,
        };
        let builds = with_all_labels(client, read.builds).await?;
        Ok::<_, BambooError>(Newer { builds, ..read })
    }))
    .await;
    let mut newer = HashMap::new();
    for ((pin, _), read) in pins.into_iter().zip(reads) {
        let read = read?;
        let builds = read
            .builds
            .into_iter()
            .map(|b| Arc::new(ObservedBuild::from_result(b)))
            .collect();
        newer.insert(
            pin,
            Newer {
                builds,
                complete: read.complete,
                marked: read.marked,
            },
        );
    }
    Ok(newer)
}

/// The builds `newest: eligible` chooses from, each with every label (for the gates), and the
/// key of the plan they are builds of. On a plan branch, the branch is found by name first
/// (its builds are its branch plan's) and returned too; it may not exist.
async fn candidates(
    client: &BambooClient,
    plan: &str,
    branch: Option<&str>,
    listing: &[BranchInfo],
) -> Result<(Option<ObservedBranch>, Option<(String, Vec<BuildResult>)>), BambooError> {
    let (branch, key) = match branch {
        None => (None, plan.to_string()),
        Some(name) => {
            let Some(found) = branch::find(plan, name, listing)? else {
                return Ok((None, None));
            };
            let key = found.key.clone();
            (Some(found), key)
        }
    };
    let builds = history::candidates(client, &key).await?;
    let builds = with_all_labels(client, builds).await?;
    Ok((branch, Some((key, builds))))
}

/// The builds, each with every label: gates, and the locks the downgrade check looks for,
/// are decided on the whole list.
async fn with_all_labels(
    client: &BambooClient,
    builds: Vec<BuildResult>,
) -> Result<Vec<BuildResult>, BambooError> {
    join_all(builds.into_iter().map(|b| client.with_all_labels(b)))
        .await
        .into_iter()
        .collect()
}

/// The builds of `plan` newer than build `n`, newest first, read again: `apply` checks under
/// the lease that none has reached a stage its call would run since the plan was made.
pub async fn newer_builds_of(
    reader: &impl BuildReader,
    plan: &str,
    n: u32,
) -> Result<Newer<ObservedBuild>, BambooError> {
    let read = history::newer_than(reader, plan, n).await?;
    let mut builds = Vec::with_capacity(read.builds.len());
    for build in read.builds {
        builds.push(ObservedBuild::from_result(
            reader.with_all_labels(build).await?,
        ));
    }
    Ok(Newer {
        builds,
        complete: read.complete,
        marked: read.marked,
    })
}

/// The builds read so far, by (plan or branch-plan key, selector), and what they say of
/// their plans: a build names its plan and whether it is enabled.
#[derive(Default)]
struct Found {
    builds: HashMap<(String, BuildSelector), Option<Arc<ObservedBuild>>>,
    plans: HashMap<String, ObservedPlan>,
}

impl Found {
    /// Keeps the build the server answered for `selector` on plan `key`, once it is checked to
    /// be what was asked for.
    fn keep(
        &mut self,
        key: String,
        selector: BuildSelector,
        build: Option<BuildResult>,
    ) -> Result<(), BambooError> {
        if let Some(build) = &build {
            check_answer(&key, &selector, build)?;
        }
        if let Some(plan) = build.as_ref().and_then(|b| b.plan.as_ref())
            && !self.plans.contains_key(&plan.key)
        {
            let seen = ObservedPlan {
                enabled: plan.enabled,
                stages: Vec::new(),
            };
            self.plans.insert(plan.key.clone(), seen);
        }
        let build = build.map(|b| Arc::new(ObservedBuild::from_result(b)));
        self.builds.insert((key, selector), build);
        Ok(())
    }
}

/// Whether the build a server answered is the one asked for: a build of plan `key`, with the
/// number, label or revision the selector names. A server that ignores a filter, or answers
/// for another build, must not get a build nobody named promoted.
fn check_answer(
    key: &str,
    selector: &BuildSelector,
    build: &BuildResult,
) -> Result<(), BambooError> {
    let of_plan = build
        .key
        .rsplit_once('-')
        .is_some_and(|(plan, n)| plan == key && n == build.number.to_string());
    let matches = match selector {
        BuildSelector::Latest => true,
        BuildSelector::Number(n) => build.number == *n,
        BuildSelector::Label(label) => build
            .labels
            .items
            .iter()
            .any(|l| crate::label::same(&l.name, label)),
        BuildSelector::Revision(revision) => build.vcs_revision_key.as_ref() == Some(revision),
        BuildSelector::NewestEligible => true,
    };
    if of_plan && matches {
        return Ok(());
    }
    let revision = build.vcs_revision_key.as_deref().unwrap_or("none");
    let labels: Vec<&str> = build.labels.items.iter().map(|l| l.name.as_str()).collect();
    Err(BambooError::Mismatch {
        what: format!("read {selector} of {key}"),
        answered: format!(
            "build {} (revision {revision}, labels [{}])",
            build.key,
            labels.join(", ")
        ),
    })
}

/// Whether the only build asked for is the latest.
fn only_latest(selectors: &BTreeSet<BuildSelector>) -> bool {
    selectors.len() == 1 && selectors.contains(&BuildSelector::Latest)
}
