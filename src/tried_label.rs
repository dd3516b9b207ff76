//! The mark `watch` leaves on a build before it calls for a stage: `bamboo-promote-tried-<stage>`.
//!
//! A loop that retries would turn one failed promotion into one per cycle, and one call whose
//! outcome stayed unknown into one per lock lifetime. So, as Argo CD tries one sync per
//! revision, a watcher tries each build and stage once: the label goes on before the call (the
//! audit trail records its write), every run reads it — the planner blocks the stage on a
//! build that carries it — and only a person takes it off. A new build is a new try. Records
//! written after a call say what ran; this says that a call may have left.

use crate::observe::{ObservedBuild, ObservedStage};

/// What every mark starts with.
pub const PREFIX: &str = "bamboo-promote-tried-";

/// The mark for `stage`: its name lower-cased, every run of characters other than ASCII
/// letters and digits one `-`, so Bamboo keeps the label as written. Two stage names that
/// differ only in those characters share a mark; a mark then blocks both, which errs the safe
/// way.
pub fn for_stage(stage: &str) -> String {
    let mut slug = String::with_capacity(stage.len());
    for c in stage.trim().chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    format!("{PREFIX}{}", slug.trim_matches('-'))
}

/// The mark for `stage` among a build's labels, if it carries one.
pub fn on<'a>(labels: &'a [String], stage: &str) -> Option<&'a str> {
    let mark = for_stage(stage);
    labels
        .iter()
        .find(|l| crate::label::same(l, &mark))
        .map(String::as_str)
}

/// Whether Bamboo shows that `build` moved on its own: it is running, or a stage failed (a
/// call that landed shows so).
fn moved(build: &ObservedBuild) -> bool {
    build.is_active()
        || build
            .stages
            .iter()
            .any(|s| s.life_cycle_state == "Finished" && s.state == "Failed")
}

/// Only a state that shows the stage began settles a call for it.
fn began(stage: &ObservedStage) -> bool {
    stage.life_cycle_state == "Finished" || stage.is_active()
}

/// Whether a call for `stage` on `build` can no longer land unseen: the stage began, a stage
/// failed, or the build is running.
pub fn settled(build: &ObservedBuild, stage: &str) -> bool {
    moved(build) || build.stages.iter().any(|s| s.name == stage && began(s))
}

/// A mark on `build` whose call may still land: a stage it may name has not begun, no stage
/// of the build failed, and the build is not running. Two stage names can share a mark
/// (`Deploy EU`, `Deploy-EU`): it is settled only when every stage it may name has begun, and
/// a mark naming no stage of the build cannot be read, and counts. `own`: the stage this
/// promotion marked itself, left out. While such a mark is on a build, nothing else is sent to
/// it, or to another build of its plan that a late call could undo: a continue that lands
/// after its stage has run runs the next manual stage instead.
pub fn unsettled<'a>(build: &'a ObservedBuild, own: Option<&str>) -> Option<&'a str> {
    if moved(build) {
        return None;
    }
    let own = own.map(for_stage);
    build
        .labels
        .iter()
        .filter(|label| looks_like_a_mark(label))
        .filter(|label| {
            !own.as_ref()
                .is_some_and(|own| crate::label::same(label, own))
        })
        .find(|label| {
            let mut named = build
                .stages
                .iter()
                .filter(|s| crate::label::same(label, &for_stage(&s.name)))
                .peekable();
            named.peek().is_none() || named.any(|s| !began(s))
        })
        .map(String::as_str)
}

/// Whether a label reads as a mark, whatever its stage: no record label may.
pub fn looks_like_a_mark(label: &str) -> bool {
    label.trim().to_ascii_lowercase().starts_with(PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stage_gets_one_mark_that_bamboo_keeps_and_any_case_reads() {
        assert_eq!(for_stage("Deploy Prod"), "bamboo-promote-tried-deploy-prod");
        assert_eq!(
            for_stage("  QA: smoke / EU  "),
            "bamboo-promote-tried-qa-smoke-eu"
        );
        assert_eq!(crate::label::not_kept(&for_stage("a:b/c d")), None);
        let labels = vec!["rc".to_string(), "BAMBOO-PROMOTE-TRIED-DEPLOY-PROD".into()];
        assert!(on(&labels, "Deploy Prod").is_some());
        assert!(on(&labels, "Deploy Staging").is_none());
        assert!(looks_like_a_mark(" Bamboo-Promote-Tried-x"));
        assert!(!looks_like_a_mark("tried"));
    }

    fn build(stages: &[(&str, &str, &str)], labels: &[&str]) -> ObservedBuild {
        let stage = |(name, life, state): &(&str, &str, &str)| ObservedStage {
            name: name.to_string(),
            life_cycle_state: life.to_string(),
            state: state.to_string(),
            manual: true,
            runnable: false,
            restartable: false,
        };
        ObservedBuild {
            key: "P-A-7".into(),
            number: 7,
            life_cycle_state: "Finished".into(),
            state: "Successful".into(),
            continuable: true,
            restartable: false,
            revision: None,
            labels: labels.iter().map(|l| l.to_string()).collect(),
            stages: stages.iter().map(stage).collect(),
        }
    }

    /// Found by a red team (round 2): `Deploy-EU` had run, `Deploy EU` had not, and their
    /// shared mark was taken as settled. A mark is settled only when every stage it may name
    /// has begun.
    #[test]
    fn a_mark_two_stages_share_is_settled_only_when_both_began() {
        let mark = "bamboo-promote-tried-deploy-eu";
        let done = ("Deploy-EU", "Finished", "Successful");
        let not_run = ("Deploy EU", "NotBuilt", "Unknown");
        assert_eq!(
            unsettled(&build(&[done, not_run], &[mark]), None),
            Some(mark)
        );
        let ran = ("Deploy EU", "Finished", "Successful");
        assert_eq!(unsettled(&build(&[done, ran], &[mark]), None), None);
        // A stage that failed shows a call landed; a build's own stage, by name.
        let failed = ("Deploy EU", "Finished", "Failed");
        assert_eq!(unsettled(&build(&[not_run, failed], &[mark]), None), None);
        assert!(!settled(&build(&[done, not_run], &[]), "Deploy EU"));
        assert!(settled(&build(&[done, not_run], &[]), "Deploy-EU"));
        assert_eq!(
            unsettled(&build(&[not_run], &[mark]), Some("Deploy EU")),
            None
        );
    }
}
