//! Observing Bamboo: reads exactly what the targets need — plans, branches, builds — once each,
//! concurrently (the client bounds how many at a time), and turns the JSON into `Observed`.
//! Many targets on one plan cost one read of that plan's builds.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use futures_util::future::join_all;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::bamboo::types::BuildResult;
use crate::bamboo::{BambooClient, BambooError};
use crate::manifest::{BuildSelector, Desired, Target};

/// How many recent builds one history read covers, for revision and label selectors.
pub const HISTORY_DEPTH: usize = 50;

/// What Bamboo holds that the targets care about.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// By plan key; `None` when the plan does not exist.
    pub plans: HashMap<String, Option<ObservedPlan>>,
    /// By (plan key, branch name); `None` when the branch does not exist.
    pub branches: HashMap<(String, String), Option<ObservedBranch>>,
    /// By (plan or branch-plan key, selector); `None` when no build matches.
    pub builds: HashMap<(String, BuildSelector), Option<ObservedBuild>>,
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
        let mut hasher = Sha256::new();
        let head = format!(
            "{}|{}|{}|{}|{}",
            self.key, self.life_cycle_state, self.state, self.continuable, self.restartable
        );
        hasher.update(head.as_bytes());
        for stage in &self.stages {
            hasher.update(
                format!(
                    "|{}:{}:{}:{}",
                    stage.name, stage.life_cycle_state, stage.state, stage.runnable
                )
                .as_bytes(),
            );
        }
        hasher
            .finalize()
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect()
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

/// Reads everything `desired` needs.
pub async fn observe(client: &BambooClient, desired: &Desired) -> Result<Observed, BambooError> {
    let mut observed = Observed::default();

    let plan_keys: BTreeSet<&str> = desired.targets.iter().map(|t| t.plan.as_str()).collect();
    let plans = join_all(plan_keys.iter().map(|key| client.plan(key))).await;
    for (key, plan) in plan_keys.iter().zip(plans) {
        let plan = plan?.map(|p| ObservedPlan {
            enabled: p.enabled,
            stages: p.stages.items.into_iter().map(|s| s.name).collect(),
        });
        observed.plans.insert(key.to_string(), plan);
    }

    let branch_keys: BTreeSet<(&str, &str)> = desired
        .targets
        .iter()
        .filter(|t| matches!(observed.plans.get(&t.plan), Some(Some(_))))
        .filter_map(|t| t.branch.as_deref().map(|b| (t.plan.as_str(), b)))
        .collect();
    let branches = join_all(
        branch_keys
            .iter()
            .map(|(plan, name)| client.branch(plan, name)),
    )
    .await;
    for ((plan, name), branch) in branch_keys.iter().zip(branches) {
        let branch = branch?.map(|b| ObservedBranch {
            key: b.key,
            enabled: b.enabled,
        });
        observed
            .branches
            .insert((plan.to_string(), name.to_string()), branch);
    }

    let mut wanted: BTreeMap<String, BTreeSet<BuildSelector>> = BTreeMap::new();
    for target in &desired.targets {
        let plan_exists = matches!(observed.plans.get(&target.plan), Some(Some(_)));
        if let (true, Some(key)) = (plan_exists, build_plan_key(target, &observed)) {
            wanted.entry(key).or_default().insert(target.build.clone());
        }
    }
    let reads = join_all(
        wanted
            .iter()
            .map(|(key, selectors)| read_builds(client, key, selectors)),
    )
    .await;
    for ((key, selectors), found) in wanted.iter().zip(reads) {
        let found = found?;
        for selector in selectors {
            observed.builds.insert(
                (key.clone(), selector.clone()),
                found.get(selector).cloned().flatten(),
            );
        }
    }
    Ok(observed)
}

/// The builds one plan's selectors name: one direct read for a single `latest` or number,
/// otherwise one history read, with direct reads for numbers older than the history shows.
async fn read_builds(
    client: &BambooClient,
    plan: &str,
    selectors: &BTreeSet<BuildSelector>,
) -> Result<HashMap<BuildSelector, Option<ObservedBuild>>, BambooError> {
    let mut found = HashMap::new();
    if let [single @ (BuildSelector::Latest | BuildSelector::Number(_))] =
        selectors.iter().collect::<Vec<_>>().as_slice()
    {
        let number = match single {
            BuildSelector::Number(n) => Some(*n),
            _ => None,
        };
        let build = client
            .build(plan, number)
            .await?
            .map(ObservedBuild::from_result);
        found.insert((*single).clone(), build);
        return Ok(found);
    }
    let history: Vec<ObservedBuild> = client
        .history(plan, HISTORY_DEPTH, &[])
        .await?
        .into_iter()
        .map(ObservedBuild::from_result)
        .collect();
    for selector in selectors {
        let pick = history.iter().find(|b| match selector {
            BuildSelector::Latest => true,
            BuildSelector::Number(n) => b.number == *n,
            BuildSelector::Revision(r) => b.revision.as_deref() == Some(r.as_str()),
            BuildSelector::Label(l) => b.labels.iter().any(|x| x == l),
        });
        let build = match (pick, selector) {
            (Some(build), _) => Some(build.clone()),
            (None, BuildSelector::Number(n)) => client
                .build(plan, Some(*n))
                .await?
                .map(ObservedBuild::from_result),
            (None, _) => None,
        };
        found.insert(selector.clone(), build);
    }
    Ok(found)
}
