//! The record left on a build this run promoted, once Bamboo shows the promotion: a comment
//! saying which target of which manifest set promoted it to which stage, why (`--reason`) and
//! from which CI run; and the label the target's `record.label` names. Bamboo's own history
//! then says who moved the build, without this tool's audit log. Failing to write the record is
//! reported and never undoes or fails the promotion.

use super::events::Event;
use super::report::Reporter;
use crate::bamboo::BambooClient;
use crate::bamboo::types::split_build_key;
use crate::lock_label::looks_like_a_lock;
use crate::reconcile::TargetRef;

/// What every record of a run shares.
#[derive(Debug, Clone, Default)]
pub struct RecordContext {
    /// SHA-256 of the manifests (or of those a saved plan was made from).
    pub digest: String,
    pub reason: Option<String>,
    /// The CI run, when the environment names one.
    pub ci_run: Option<String>,
}

impl RecordContext {
    pub fn new(digest: &str, reason: Option<String>) -> RecordContext {
        RecordContext {
            digest: digest.to_string(),
            reason,
            ci_run: ci_run(env),
        }
    }
}

/// An environment variable that is set and not empty.
pub fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The URL of the CI run, from what GitHub Actions, GitLab CI and Bamboo put in the
/// environment.
pub fn ci_run(env: impl Fn(&str) -> Option<String>) -> Option<String> {
    if let (Some(server), Some(repository), Some(run)) = (
        env("GITHUB_SERVER_URL"),
        env("GITHUB_REPOSITORY"),
        env("GITHUB_RUN_ID"),
    ) {
        return Some(format!("{server}/{repository}/actions/runs/{run}"));
    }
    env("CI_JOB_URL").or_else(|| env("bamboo_resultsUrl"))
}

/// What a call was seen to move: the target's stage, and the stages whose state changed.
pub struct Moved<'a> {
    pub stage: &'a str,
    pub stages: Vec<String>,
}

impl Moved<'_> {
    /// Whether the target's stage itself was seen to move (queued, running or done).
    fn reached(&self) -> bool {
        self.stages.iter().any(|s| s == self.stage)
    }

    /// The record's first words: only what was seen.
    fn words(&self) -> String {
        let stage = self.stage;
        match self.stages.as_slice() {
            [] => format!(
                "Continued toward {stage} by bamboo-promote; Bamboo accepted the call and has not started a stage yet"
            ),
            queued if self.reached() => {
                format!(
                    "Promoted to {stage} by bamboo-promote (queued {})",
                    queued.join(", ")
                )
            }
            queued => format!(
                "Continued toward {stage} by bamboo-promote; Bamboo queued {} only, and {stage} has not run",
                queued.join(", ")
            ),
        }
    }
}

pub fn comment(target: &TargetRef, moved: &Moved<'_>, context: &RecordContext) -> String {
    let digest: String = context.digest.chars().take(12).collect();
    let mut text = format!(
        "{}: target {} of manifest set {} (digest {digest}).",
        moved.words(),
        target.id,
        target.set
    );
    if let Some(reason) = &context.reason {
        text.push_str(&format!("\nReason: {reason}"));
    }
    if let Some(run) = &context.ci_run {
        text.push_str(&format!("\nCI run: {run}"));
    }
    text
}

/// Writes the record: one comment saying what the call moved, and the label when asked for —
/// only once the target's stage itself was seen to move: the label says the build got there.
pub async fn write(
    client: &BambooClient,
    reporter: &Reporter,
    target: &TargetRef,
    build_key: &str,
    moved: &Moved<'_>,
    context: &RecordContext,
) {
    let text = comment(target, moved, context);
    let mut written = client
        .add_comment(build_key, &text)
        .await
        .map_err(|e| e.to_string());
    let label = target.record_label.as_ref().filter(|_| moved.reached());
    if written.is_ok()
        && let Some(label) = label
    {
        // Validation refuses it in a manifest; a saved plan edited by hand must not get it
        // through either.
        written = if looks_like_a_lock(label) || crate::tried_label::looks_like_a_mark(label) {
            Err(format!(
                "record label {label:?} looks like a lock label or a watcher's mark, and was not written"
            ))
        } else {
            match client.add_label(build_key, label).await {
                Ok(()) => read_back(client, build_key, label).await,
                Err(e) => Err(e.to_string()),
            }
        };
    }
    match written {
        Ok(()) => reporter.emit(
            Event::Recorded {
                target: target.id.clone(),
                build: build_key.to_string(),
                label: label.cloned(),
            },
            || {
                let written = label.map_or(String::new(), |l| format!(" and label {l}"));
                let left = match (&target.record_label, label) {
                    (Some(l), None) => {
                        format!("; label {l} not written: {} has not started", moved.stage)
                    }
                    _ => String::new(),
                };
                format!(
                    "{}: recorded on {build_key} (a comment{written}){left}",
                    target.id
                )
            },
        ),
        Err(e) => not_written(reporter, target, build_key, &e),
    }
}

/// Reads the build again to see the record label on it, as the lease does its own: a server
/// (or a proxy) that answers a label write without keeping it would leave no record.
async fn read_back(client: &BambooClient, build_key: &str, label: &str) -> Result<(), String> {
    let (plan, number) =
        split_build_key(build_key).ok_or_else(|| format!("{build_key} is not a build key"))?;
    let build = client
        .build(plan, Some(number))
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("build {build_key} no longer exists"))?;
    if build
        .labels
        .items
        .iter()
        .any(|l| crate::label::same(&l.name, label))
    {
        Ok(())
    } else {
        Err(format!(
            "label {label} was accepted but did not show when the build was read back"
        ))
    }
}

/// Says that a promotion's record was not written, and why; the promotion stands.
pub fn not_written(reporter: &Reporter, target: &TargetRef, build_key: &str, why: &str) {
    reporter.emit(
        Event::RecordFailed {
            target: target.id.clone(),
            build: build_key.to_string(),
            message: why.to_string(),
        },
        || {
            format!(
                "warning: {}: the promotion of {build_key} stands, but its record could not be written: {why}",
                target.id
            )
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ci_run_comes_from_github_gitlab_or_bamboo() {
        let github = |name: &str| match name {
            "GITHUB_SERVER_URL" => Some("https://github.com".into()),
            "GITHUB_REPOSITORY" => Some("acme/releases".into()),
            "GITHUB_RUN_ID" => Some("42".into()),
            _ => None,
        };
        assert_eq!(
            ci_run(github).as_deref(),
            Some("https://github.com/acme/releases/actions/runs/42")
        );
        let gitlab =
            |name: &str| (name == "CI_JOB_URL").then(|| "https://gitlab/-/jobs/7".to_string());
        assert_eq!(ci_run(gitlab).as_deref(), Some("https://gitlab/-/jobs/7"));
        assert_eq!(ci_run(|_| None), None);
    }
}
