//! A plan branch's builds in one read where Bamboo allows it: `result/{plan}/branch/{name}`
//! names the branch plan and carries its builds (Atlassian's workaround for BAM-21991).

use std::collections::BTreeSet;

use super::history::{HISTORY_DEPTH, from_history, read_builds};
use super::{ObservedBranch, only_latest};
use crate::bamboo::types::BuildResult;
use crate::bamboo::{BambooClient, BambooError};
use crate::manifest::BuildSelector;

/// A plan branch and the builds its selectors name. Without build numbers, one read of the
/// branch's builds answers everything, the branch plan's key and `enabled` included (a branch
/// without builds takes the lookup for those); build numbers take the lookup, then reads of
/// the branch plan.
pub(super) async fn branch_builds(
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
