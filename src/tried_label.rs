//! The mark `watch` leaves on a build before it calls for a stage: `bamboo-promote-tried-<stage>`.
//!
//! A loop that retries would turn one failed promotion into one per cycle, and one call whose
//! outcome stayed unknown into one per lock lifetime. So, as Argo CD tries one sync per
//! revision, a watcher tries each build and stage once: the label goes on before the call (the
//! audit trail records its write), every run reads it — the planner blocks the stage on a
//! build that carries it — and only a person takes it off. A new build is a new try. Records
//! written after a call say what ran; this says that a call may have left.

use crate::observe::ObservedBuild;

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

/// A mark on `build` whose call may still land: the stage it names has not started, no stage
/// of the build failed (a call that ran and failed shows), and the build is not running (a
/// call that landed shows). A mark naming no stage of the build cannot be read, and counts.
/// `own`: the stage this promotion marked itself, left out. While such a mark is on a build,
/// nothing else is sent to it, or to another build of its plan that a late call could undo:
/// a continue that lands after its stage has run runs the next manual stage instead.
pub fn unsettled<'a>(build: &'a ObservedBuild, own: Option<&str>) -> Option<&'a str> {
    let own = own.map(for_stage);
    let active = |state: &str| matches!(state, "Pending" | "Queued" | "InProgress");
    let moved = active(&build.life_cycle_state)
        || build
            .stages
            .iter()
            .any(|s| s.life_cycle_state == "Finished" && s.state == "Failed");
    if moved {
        return None;
    }
    build
        .labels
        .iter()
        .filter(|label| looks_like_a_mark(label))
        .filter(|label| {
            !own.as_ref()
                .is_some_and(|own| crate::label::same(label, own))
        })
        .find(|label| {
            let stage = build
                .stages
                .iter()
                .find(|s| crate::label::same(label, &for_stage(&s.name)));
            // Only a state that shows the stage began settles the mark.
            stage.is_none_or(|s| !(s.life_cycle_state == "Finished" || active(&s.life_cycle_state)))
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
}
