//! Observing Bamboo: reads exactly what the targets need — plans, branches, builds — once each,
//! concurrently (the client bounds how many at a time), and turns the JSON into `Observed`.
//! Many targets on one plan cost one read of that plan's builds.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;

use futures_util::future::join_all;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::bamboo::types::{BranchInfo, BuildResult};
use crate::bamboo::{BambooClient, BambooError};
use crate::manifest::{BuildSelector, Desired, Target};

/// How many recent builds one history read covers. Numbers and labels it does not show are
/// asked for directly; a revision is looked for in the pages after it, down to
/// `REVISION_SEARCH_DEPTH`.
pub const HISTORY_DEPTH: usize = 50;

/// How far back a revision is looked for (Bamboo cannot filter by revision): a typo in one
/// must not read a plan's whole history.
pub const REVISION_SEARCH_DEPTH: usize = 500;

/// What Bamboo holds that the targets care about.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// By plan key; `None` when the plan does not exist.
    pub plans: HashMap<String, Option<ObservedPlan>>,
    /// By (plan key, branch name); `None` when the branch does not exist.
    pub branches: HashMap<(String, String), Option<ObservedBranch>>,
    /// By (plan or branch-plan key, selector); `None` when no build matches. Shared: every
    /// target on the build, and the plan's items, hold the same one.
    pub builds: HashMap<(String, BuildSelector), Option<Arc<ObservedBuild>>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedPlan {
    pub enabled: bool,
    pub stages: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedBranch {
    pub key: String,
    pub enabled: bool,
}

impl From<BranchInfo> for ObservedBranch {
    fn from(branch: BranchInfo) -> ObservedBranch {
        ObservedBranch {
            key: branch.key,
            enabled: branch.enabled,
        }
    }
}

/// One build as Bamboo reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObservedBuild {
    pub key: String,
    pub number: u32,
    pub life_cycle_state: String,
    pub state: String,
    pub continuable: bool,
    pub restartable: bool,
    pub revision: Option<String>,
    pub labels: Vec<String>,
    pub stages: Vec<ObservedStage>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObservedStage {
    pub name: String,
    pub life_cycle_state: String,
    pub state: String,
    pub manual: bool,
    pub runnable: bool,
    pub restartable: bool,
}

impl ObservedBuild {
    pub fn from_result(result: BuildResult) -> ObservedBuild {
        ObservedBuild {
            key: result.key,
            number: result.number,
            life_cycle_state: result.life_cycle_state,
            state: result.state,
            continuable: result.continuable,
            restartable: result.restartable,
            revision: result.vcs_revision_key,
            labels: result.labels.items.into_iter().map(|l| l.name).collect(),
            stages: result
                .stages
                .items
                .into_iter()
                .map(|s| ObservedStage {
                    name: s.name,
                    life_cycle_state: s.life_cycle_state,
                    state: s.state,
                    manual: s.manual,
                    runnable: s.runnable,
                    restartable: s.restartable,
                })
                .collect(),
        }
    }

    /// The build's state in 16 hex digits: a saved plan holds it, and `apply` refuses a call
    /// whose build no longer matches. Labels are left out: our own lock labels come and go.
    pub fn fingerprint(&self) -> String {
        // The hashed text is `key|lifeCycleState|state|continuable|restartable`, then
        // `|name:lifeCycleState:state:runnable` per stage; fed piece by piece, without
        // formatting a string per build and stage.
        let mut hasher = Sha256::new();
        let flag = |b: bool| if b { "true" } else { "false" };
        for piece in [
            self.key.as_str(),
            "|",
            &self.life_cycle_state,
            "|",
            &self.state,
            "|",
            flag(self.continuable),
            "|",
            flag(self.restartable),
        ] {
            hasher.update(piece);
        }
        for stage in &self.stages {
            for piece in [
                "|",
                stage.name.as_str(),
                ":",
                &stage.life_cycle_state,
                ":",
                &stage.state,
                ":",
                flag(stage.runnable),
            ] {
                hasher.update(piece);
            }
        }
        let mut hex = String::with_capacity(16);
        for byte in &hasher.finalize()[..8] {
            let _ = write!(hex, "{byte:02x}");
        }
        hex
    }
}

/// The plan key whose builds a target means: the branch plan's key, once it is known.
pub fn build_plan_key(target: &Target, observed: &Observed) -> Option<String> {
    match &target.branch {
        None => Some(target.plan.clone()),
        Some(name) => observed
            .branches
            .get(&(target.plan.clone(), name.clone()))
            .and_then(|b| b.as_ref())
            .map(|b| b.key.clone()),
    }
}

/// Reads everything `desired` needs, with as few requests as Bamboo allows: branches once each,
/// builds by the cheapest of per-plan reads and project listings, and a plan itself only when
/// no build of it was found (a build already says whether its plan exists and is enabled).
pub async fn observe(client: &BambooClient, desired: &Desired) -> Result<Observed, BambooError> {
    let mut observed = Observed::default();

    // What to read: default-branch builds by plan, and branch builds by (plan, branch).
    let mut on_default: BTreeMap<String, BTreeSet<BuildSelector>> = BTreeMap::new();
    let mut on_branch: BTreeMap<(String, String), BTreeSet<BuildSelector>> = BTreeMap::new();
    for target in &desired.targets {
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

    // Three independent sets of reads, run together so that the parallelism bound stays busy:
    // the branches, the listings, and the direct reads. The client's slots are handed out first
    // come, first served, and `biased` polls in this order: branches go first, as their reads
    // may take a second step (a lookup, then the branch plan's builds).
    let (branch_reads, listed, direct_reads) = tokio::join!(
        biased;
        join_all(
            on_branch
                .iter()
                .map(|((plan, name), selectors)| branch_builds(client, plan, name, selectors))
        ),
        list_latest(client, &listable),
        join_all(
            direct
                .iter()
                .map(|(key, selectors)| read_builds(client, key, selectors))
        ),
    );
    let mut found = Found::default();
    for (key, build) in listed? {
        found.keep(key, BuildSelector::Latest, build);
    }
    for ((key, _), builds) in direct.iter().zip(direct_reads) {
        for (selector, build) in builds? {
            found.keep(key.clone(), selector, build);
        }
    }
    for ((plan, name), read) in on_branch.keys().zip(branch_reads) {
        let (branch, builds) = read?;
        if let Some(branch) = &branch {
            for (selector, build) in builds {
                found.keep(branch.key.clone(), selector, build);
            }
        }
        observed
            .branches
            .insert((plan.clone(), name.clone()), branch);
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
    observed.builds = builds;
    Ok(observed)
}

/// The builds read so far, by (plan or branch-plan key, selector), and what they say of
/// their plans: a build names its plan and whether it is enabled.
#[derive(Default)]
struct Found {
    builds: HashMap<(String, BuildSelector), Option<Arc<ObservedBuild>>>,
    plans: HashMap<String, ObservedPlan>,
}

impl Found {
    fn keep(&mut self, key: String, selector: BuildSelector, build: Option<BuildResult>) {
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
    }
}

/// The latest builds of default-branch plans: from listings where that takes fewer requests
/// than one read per plan, and one read each for the plans no listing covered.
async fn list_latest(
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

/// A plan branch and the builds its selectors name. Without build numbers, one read of the
/// branch's builds answers everything, the branch plan's key and `enabled` included (a branch
/// without builds takes the lookup for those); build numbers take the lookup, then reads of
/// the branch plan.
async fn branch_builds(
    client: &BambooClient,
    plan: &str,
    name: &str,
    selectors: &BTreeSet<BuildSelector>,
) -> Result<
    (
        Option<ObservedBranch>,
        Vec<(BuildSelector, Option<BuildResult>)>,
    ),
    BambooError,
> {
    let numbered = selectors
        .iter()
        .any(|s| matches!(s, BuildSelector::Number(_)));
    if !numbered {
        let depth = if only_latest(selectors) {
            1
        } else {
            HISTORY_DEPTH
        };
        let Some(history) = client.branch_history(plan, name, depth).await? else {
            return Ok((None, Vec::new()));
        };
        let branch = match history.first().and_then(|b| b.plan.as_ref()) {
            Some(branch_plan) => Some(ObservedBranch {
                key: branch_plan.key.clone(),
                enabled: branch_plan.enabled,
            }),
            None => client.branch(plan, name).await?.map(ObservedBranch::from),
        };
        let builds = match &branch {
            Some(branch) => from_history(client, &branch.key, &history, depth, selectors).await?,
            None => Vec::new(),
        };
        return Ok((branch, builds));
    }
    let Some(branch) = client.branch(plan, name).await? else {
        return Ok((None, Vec::new()));
    };
    let builds = read_builds(client, &branch.key, selectors).await?;
    Ok((Some(ObservedBranch::from(branch)), builds))
}

/// Whether the only build asked for is the latest.
fn only_latest(selectors: &BTreeSet<BuildSelector>) -> bool {
    selectors.len() == 1 && selectors.contains(&BuildSelector::Latest)
}

/// Results asked for per project listing page; servers may cap it lower (older ones at 25).
pub const LISTING_PAGE: usize = 100;

fn plan_of(build: &BuildResult) -> &str {
    build.plan.as_ref().map_or_else(
        || build.key.rsplit_once('-').map_or("", |(plan, _)| plan),
        |p| p.key.as_str(),
    )
}

/// The builds one plan's selectors name: one direct read for a single `latest`, number or
/// label, otherwise one history read (see `from_history`).
async fn read_builds(
    client: &BambooClient,
    plan: &str,
    selectors: &BTreeSet<BuildSelector>,
) -> Result<Vec<(BuildSelector, Option<BuildResult>)>, BambooError> {
    if let [single] = selectors.iter().collect::<Vec<_>>().as_slice() {
        let build = match single {
            BuildSelector::Latest => Some(client.build(plan, None).await?),
            BuildSelector::Number(n) => Some(client.build(plan, Some(*n)).await?),
            BuildSelector::Label(label) => Some(client.labelled(plan, label).await?),
            BuildSelector::Revision(_) => None,
        };
        if let Some(build) = build {
            return Ok(vec![((*single).clone(), build)]);
        }
    }
    let history = client.history(plan, 0, HISTORY_DEPTH).await?;
    from_history(client, plan, &history, HISTORY_DEPTH, selectors).await
}

/// The builds a plan's newest builds (`depth` asked, newest first) show for each selector.
/// When the history may go further back, a number or label it does not show is asked for
/// directly, at any age; a revision, which has no such filter, is looked for page by page.
async fn from_history(
    client: &BambooClient,
    plan: &str,
    history: &[BuildResult],
    depth: usize,
    selectors: &BTreeSet<BuildSelector>,
) -> Result<Vec<(BuildSelector, Option<BuildResult>)>, BambooError> {
    let complete = history.len() < depth;
    let mut found = Vec::new();
    for selector in selectors {
        let build = match (pick(history, selector), selector) {
            (Some(build), _) => Some(build.clone()),
            (None, _) if complete => None,
            (None, BuildSelector::Number(n)) => client.build(plan, Some(*n)).await?,
            (None, BuildSelector::Label(label)) => client.labelled(plan, label).await?,
            (None, revision @ BuildSelector::Revision(_)) => {
                older_revision(client, plan, revision, history.len()).await?
            }
            (None, BuildSelector::Latest) => None,
        };
        found.push((selector.clone(), build));
    }
    Ok(found)
}

/// The newest build of a revision older than the first `seen` builds: the history's next
/// pages, until it ends or `REVISION_SEARCH_DEPTH` builds have been looked at.
async fn older_revision(
    client: &BambooClient,
    plan: &str,
    revision: &BuildSelector,
    seen: usize,
) -> Result<Option<BuildResult>, BambooError> {
    let mut start = seen;
    while start < REVISION_SEARCH_DEPTH {
        let page = client.history(plan, start, HISTORY_DEPTH).await?;
        if let Some(build) = pick(&page, revision) {
            return Ok(Some(build.clone()));
        }
        if page.len() < HISTORY_DEPTH {
            break;
        }
        start += page.len();
    }
    Ok(None)
}

/// The build of a history (newest first) that a selector names.
fn pick<'a>(history: &'a [BuildResult], selector: &BuildSelector) -> Option<&'a BuildResult> {
    history.iter().find(|b| match selector {
        BuildSelector::Latest => true,
        BuildSelector::Number(n) => b.number == *n,
        BuildSelector::Revision(r) => b.vcs_revision_key.as_deref() == Some(r.as_str()),
        BuildSelector::Label(l) => b.labels.items.iter().any(|x| &x.name == l),
    })
}
