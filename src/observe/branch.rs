//! A plan branch, found by name in its plan's branch listing, and the builds its selectors
//! name, read by the branch plan's key. Bamboo's own by-name paths (`plan/{key}/branch/{name}`,
//! `result/{key}/branch/{name}`) put the name in the path, and the most common names
//! (`release/2.4`) then carry an encoded `/`, which Tomcat refuses.

use std::collections::BTreeSet;

use super::ObservedBranch;
use super::history::{PlanBuilds, read_builds};
use crate::bamboo::types::BranchInfo;
use crate::bamboo::{BambooClient, BambooError};
use crate::manifest::BuildSelector;

/// A plan branch and the builds its selectors name.
pub(super) async fn branch_builds(
    client: &BambooClient,
    plan: &str,
    name: &str,
    listing: &[BranchInfo],
    selectors: &BTreeSet<BuildSelector>,
) -> Result<(Option<ObservedBranch>, PlanBuilds), BambooError> {
    let Some(branch) = find(plan, name, listing)? else {
        return Ok((None, PlanBuilds::default()));
    };
    let builds = read_builds(client, &branch.key, selectors).await?;
    Ok((Some(branch), builds))
}

/// The branch a manifest's name means: the one whose Bamboo name (short name) or VCS branch is
/// exactly that name. The name is never transformed (Bamboo may have turned `/` into `-`, but
/// `release/2.4` must not find a branch named `release-2.4`); two branches that answer to it
/// are an error naming both.
pub(super) fn find(
    plan: &str,
    name: &str,
    listing: &[BranchInfo],
) -> Result<Option<ObservedBranch>, BambooError> {
    let mut found: Vec<&BranchInfo> = listing
        .iter()
        .filter(|b| b.short_name.as_deref() == Some(name) || b.vcs_branch_name() == Some(name))
        .collect();
    found.dedup_by(|a, b| a.key == b.key);
    match found.as_slice() {
        [] => Ok(None),
        [one] => {
            check_branch_key(plan, name, &one.key)?;
            Ok(Some(ObservedBranch::from((*one).clone())))
        }
        several => Err(BambooError::Ambiguous {
            what: format!("find branch {name:?} of {plan}"),
            candidates: several
                .iter()
                .map(|b| {
                    format!(
                        "{} (named {:?}, VCS branch {:?})",
                        b.key,
                        b.short_name.as_deref().unwrap_or("?"),
                        b.vcs_branch_name().unwrap_or("?")
                    )
                })
                .collect::<Vec<_>>()
                .join(" and "),
        }),
    }
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
    use super::{check_branch_key, find};
    use crate::bamboo::types::BranchInfo;

    fn branch(key: &str, short: &str, vcs: Option<&str>) -> BranchInfo {
        BranchInfo {
            key: key.into(),
            enabled: true,
            short_name: Some(short.into()),
            vcs_branch: vcs.map(|v| serde_json::json!({ "name": v })),
        }
    }

    #[test]
    fn a_branch_is_found_by_its_exact_name_or_vcs_branch_never_a_transformed_one() {
        let listing = [branch("SHOP-APP1", "release-2.4", Some("release/2.4"))];
        let key = |name| find("SHOP-APP", name, &listing).unwrap().map(|b| b.key);
        assert_eq!(
            key("release/2.4").as_deref(),
            Some("SHOP-APP1"),
            "by VCS branch"
        );
        assert_eq!(
            key("release-2.4").as_deref(),
            Some("SHOP-APP1"),
            "by Bamboo's name"
        );
        // Another branch named `release-2.4` (its own VCS branch): `release/2.4` is not it.
        let other = [branch("SHOP-APP2", "release-2.4", Some("release-2.4"))];
        assert!(find("SHOP-APP", "release/2.4", &other).unwrap().is_none());
        // Two branches answer to one name: both are named, and neither is taken.
        let both = [
            branch("SHOP-APP1", "rel", Some("release/2.4")),
            branch("SHOP-APP2", "release/2.4", None),
        ];
        let error = find("SHOP-APP", "release/2.4", &both)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("SHOP-APP1") && error.contains("SHOP-APP2"),
            "{error}"
        );
    }

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
