//! A plan branch's builds in one read where Bamboo allows it: `result/{plan}/branch/{name}`
//! names the branch plan and carries its builds (Atlassian's workaround for BAM-21991).

use std::collections::BTreeSet;

use super::history::{HISTORY_DEPTH, PlanBuilds, from_history, read_builds};
use super::{ObservedBranch, only_latest};
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
) -> Result<(Option<ObservedBranch>, PlanBuilds), BambooError> {
    let numbered = selectors
        .iter()
        .any(|s| matches!(s, BuildSelector::Number(_)));
    if !numbered {
        let depth = if only_latest(selectors) {
            1
        } else {
            HISTORY_DEPTH
        };
        let Some((history, total)) = client.branch_history(plan, name, depth).await? else {
            return Ok((None, PlanBuilds::default()));
        };
        let branch = match history.first().and_then(|b| b.plan.as_ref()) {
            Some(branch_plan) => Some(ObservedBranch {
                key: branch_plan.key.clone(),
                enabled: branch_plan.enabled,
            }),
            None => client.branch(plan, name).await?.map(ObservedBranch::from),
        };
        if let Some(branch) = &branch {
            check_branch_key(plan, name, &branch.key)?;
        }
        let named = match &branch {
            Some(branch) => from_history(client, &branch.key, &history, total, selectors).await?,
            None => Vec::new(),
        };
        let newest = history;
        return Ok((branch, PlanBuilds { named, newest }));
    }
    let Some(branch) = client.branch(plan, name).await? else {
        return Ok((None, PlanBuilds::default()));
    };
    check_branch_key(plan, name, &branch.key)?;
    let builds = read_builds(client, &branch.key, selectors).await?;
    Ok((Some(ObservedBranch::from(branch)), builds))
}

/// A plan branch's key is its plan's key and a number (`SHOP-APP` → `SHOP-APP3`). An answer
/// naming another plan — another plan's builds, or the master plan's — must not get them
/// promoted as the branch's.
pub(super) fn check_branch_key(plan: &str, name: &str, key: &str) -> Result<(), BambooError> {
    let numbered = key
        .strip_prefix(plan)
        .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
    if numbered {
        return Ok(());
    }
    Err(BambooError::Mismatch {
        what: format!("read branch {name:?} of {plan}"),
        answered: format!("plan {key}, which is not a branch of {plan}"),
    })
}

#[cfg(test)]
mod tests {
    use super::check_branch_key;

    #[test]
    fn a_branch_key_is_its_plans_key_and_a_number() {
        assert!(check_branch_key("SHOP-APP", "rel", "SHOP-APP12").is_ok());
        for other in ["SHOP-API", "SHOP-APP", "SHOP-APPX", "SHOP-API3"] {
            assert!(
                check_branch_key("SHOP-APP", "rel", other).is_err(),
                "{other}"
            );
        }
    }
}
