//! Online validation: what only Bamboo can tell about a manifest — the plan, branch or stage it
//! names does not exist, the stage is automatic, or two selectors name the same build with
//! different demands — as diagnostics at the manifest's line. Pure: it reads `Observed`, not
//! the network.

use std::collections::BTreeMap;

use crate::manifest::{BuildSelector, Desired, ManifestError, Target};
use crate::observe::{Observed, build_plan_key};
use crate::suggest;

pub fn check(desired: &Desired, observed: &Observed) -> Vec<ManifestError> {
    let mut errors: Vec<ManifestError> = desired
        .targets
        .iter()
        .filter_map(|t| check_target(t, observed))
        .collect();
    if errors.is_empty() {
        errors.extend(same_build(desired, observed));
    }
    errors
}

/// Two targets whose selectors differ (`build: 42` and `{label: rc}`) but that name the same
/// build, demanding different stages or one with `executeAllStages`: offline validation
/// cannot see it, and the build can only do one.
fn same_build(desired: &Desired, observed: &Observed) -> Vec<ManifestError> {
    let mut first: BTreeMap<String, &Target> = BTreeMap::new();
    let mut errors = Vec::new();
    for target in &desired.targets {
        let chosen = match target.build {
            BuildSelector::NewestEligible => super::newest_eligible(target, observed).0,
            _ => build_plan_key(target, observed)
                .and_then(|key| observed.builds.get(&(key, target.build.clone())))
                .and_then(Clone::clone),
        };
        let Some(build) = chosen.as_deref() else {
            continue;
        };
        let Some(other) = first.get(build.key.as_str()).copied() else {
            first.insert(build.key.clone(), target);
            continue;
        };
        if other.stage == target.stage && other.execute_all_stages == target.execute_all_stages {
            continue;
        }
        let wants = |t: &Target| {
            let all = if t.execute_all_stages {
                ", executeAllStages"
            } else {
                ""
            };
            format!("target `{}` ({}) wants `{}`{all}", t.id, t.build, t.stage)
        };
        errors.push(
            ManifestError::at(
                "bamboo::same_build",
                target.places.stage.clone(),
                wants(target),
                format!(
                    "targets `{}` and `{}` name the same build, {}, with different demands",
                    other.id, target.id, build.key
                ),
            )
            .with_related(other.places.stage.clone(), wants(other))
            .with_help("a build reaches one stage; keep the target for the furthest stage and remove the other"),
        );
    }
    errors
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
