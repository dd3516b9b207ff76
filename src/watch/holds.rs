//! The plans a watcher holds after its own unsettled calls. A call whose outcome stayed unknown
//! (or that Bamboo accepted and never showed) may still land; apply holds its plan for the rest
//! of the run, and a watcher's run is its whole life, not one cycle. Each cycle looks at the
//! held builds — in its own reads, or read on their own when those do not hold them — and lets
//! a plan go when Bamboo shows the call: its stage began, a stage failed, or the build runs. A
//! person's taking the label off does not: only a restart, a new run, lets go of what this
//! process knows. Until then every promotion on the plan is blocked, newer builds included: a
//! call to one could be undone by the late one, or turn it into a run of the next manual stage.

use std::collections::BTreeMap;

use crate::bamboo::BambooClient;
use crate::bamboo::types::{plan_of, split_build_key};
use crate::observe::{Observed, ObservedBuild};
use crate::reconcile::{BlockReason, Plan, Status};

#[derive(Default)]
pub struct Holds {
    /// By plan key: the held build, and the stage its call was for.
    by_plan: BTreeMap<String, (String, String)>,
}

impl Holds {
    /// Holds the plans of builds a cycle left unsettled (build key → stage).
    pub fn add(&mut self, held: impl IntoIterator<Item = (String, String)>) {
        for (build, stage) in held {
            self.by_plan
                .entry(plan_of(&build).to_string())
                .or_insert((build, stage));
        }
    }

    /// Lets go of the held builds whose call is settled: its stage began, a stage failed, or
    /// the build is running. Not the mark: a person who takes it off cannot know that this
    /// process's call is still on its way, and this process does. Each build is judged on the
    /// cycle's own reads when they hold it (the newest build of its plan, usually), else read
    /// on its own. A build that cannot be read stays held: cannot tell is not settled.
    pub async fn recheck(&mut self, client: &BambooClient, observed: &Observed) {
        let mut settled = Vec::new();
        for (plan, (build, stage)) in &self.by_plan {
            let seen = match observed_build(observed, build) {
                Some(seen) => Some(seen),
                None => read(client, build).await,
            };
            if seen.is_some_and(|seen| crate::tried_label::settled(&seen, stage)) {
                settled.push(plan.clone());
            }
        }
        for plan in settled {
            self.by_plan.remove(&plan);
        }
    }

    /// Blocks every promotion on a held plan, saying which build holds it.
    pub fn block(&self, plan: &mut Plan) {
        for item in &mut plan.items {
            let Status::Queue { action } = &item.status else {
                continue;
            };
            if let Some((build, stage)) = self.by_plan.get(plan_of(&action.build_key)) {
                item.status = Status::Blocked {
                    reason: BlockReason::TriedUnsettled {
                        build: build.clone(),
                        label: crate::tried_label::for_stage(stage),
                    },
                };
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.by_plan.is_empty()
    }
}

/// The build of that key among those the cycle read.
fn observed_build(observed: &Observed, key: &str) -> Option<ObservedBuild> {
    observed
        .all_builds()
        .find(|b| b.key == key)
        .map(|b| ObservedBuild::clone(b))
}

/// The build read on its own; `None` when it cannot be (then it stays held).
async fn read(client: &BambooClient, build: &str) -> Option<ObservedBuild> {
    let (key, number) = split_build_key(build)?;
    match client.build(key, Some(number)).await {
        Ok(Some(result)) => Some(ObservedBuild::from_result(result)),
        Ok(None) => {
            tracing::debug!("{build}: still held, Bamboo says it is gone");
            None
        }
        Err(e) => {
            tracing::debug!("{build}: still held, it cannot be read: {e}");
            None
        }
    }
}
