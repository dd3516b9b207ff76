//! Online validation: what only Bamboo can tell about a manifest — the plan, branch or stage it
//! names does not exist, or the stage is automatic — as diagnostics at the manifest's line.
//! Pure: it reads `Observed`, not the network.

use crate::manifest::{Desired, ManifestError, Target};
use crate::observe::{Observed, build_plan_key};
use crate::suggest;

pub fn check(desired: &Desired, observed: &Observed) -> Vec<ManifestError> {
    desired
        .targets
        .iter()
        .filter_map(|t| check_target(t, observed))
        .collect()
}

fn check_target(target: &Target, observed: &Observed) -> Option<ManifestError> {
    let places = &target.places;
    let Some(Some(plan)) = observed.plans.get(&target.plan) else {
        return Some(
            ManifestError::at("bamboo::unknown_plan", places.plan.clone(), "not on the server", format!("no plan `{}` on the Bamboo server", target.plan))
                .with_help("check the key in Bamboo's plan page (PROJECT-PLAN), and that the token may read it"),
        );
    };
    if let (Some(name), Some(place)) = (&target.branch, &places.branch)
        && matches!(
            observed.branches.get(&(target.plan.clone(), name.clone())),
            None | Some(None)
        )
    {
        return Some(ManifestError::at(
            "bamboo::unknown_branch",
            place.clone(),
            "no such branch",
            format!("plan {} has no branch `{name}`", target.plan),
        ));
    }
    // Stage names from the plan when the server lists them, otherwise from the build.
    let build = build_plan_key(target, observed)
        .and_then(|key| observed.builds.get(&(key, target.build.clone())))
        .and_then(Option::as_ref);
    let build_stages: Vec<&str> = build
        .iter()
        .flat_map(|b| b.stages.iter().map(|s| s.name.as_str()))
        .collect();
    let names: Vec<&str> = if plan.stages.is_empty() {
        build_stages
    } else {
        plan.stages.iter().map(String::as_str).collect()
    };
    if !names.is_empty() && !names.contains(&target.stage.as_str()) {
        return Some(
            ManifestError::at(
                "bamboo::unknown_stage",
                places.stage.clone(),
                "no such stage",
                format!("no stage `{}` in plan {}", target.stage, target.plan),
            )
            .with_help(suggest::help(&target.stage, "stage", &names)),
        );
    }
    let automatic = build
        .iter()
        .flat_map(|b| &b.stages)
        .any(|s| s.name == target.stage && !s.manual);
    if automatic {
        let manual: Vec<&str> = build
            .iter()
            .flat_map(|b| &b.stages)
            .filter(|s| s.manual)
            .map(|s| s.name.as_str())
            .collect();
        return Some(
            ManifestError::at(
                "bamboo::automatic_stage",
                places.stage.clone(),
                "automatic stage",
                format!(
                    "stage `{}` of {} is automatic: it runs by itself or not at all",
                    target.stage, target.plan
                ),
            )
            .with_help(format!(
                "targets name manual stages; this plan's are: {}",
                manual.join(", ")
            )),
        );
    }
    None
}
