//! The plans a watcher holds after its own unsettled calls. A call whose outcome stayed unknown
//! (or that Bamboo accepted and never showed) may still land; apply holds its plan for the rest
//! of the run, and a watcher's run is its whole life, not one cycle. Each cycle re-reads the
//! held builds — a few requests, only while something is held — and lets a plan go when its
//! build's mark is settled: the stage ran, a stage failed, or a person took the label off.
//! Until then every promotion on the plan is blocked, newer builds included: a call to one
//! could be undone by the late one, or turn it into a run of the next manual stage.

use std::collections::BTreeMap;

use crate::apply::plan_of;
use crate::bamboo::BambooClient;
use crate::bamboo::types::split_build_key;
use crate::observe::ObservedBuild;
use crate::reconcile::{BlockReason, Plan, Status};

#[derive(Default)]
pub struct Holds {
    /// By plan key: the held build, and its mark once a read has shown it.
    by_plan: BTreeMap<String, (String, Option<String>)>,
}

impl Holds {
    /// Holds the plans of builds a cycle left unsettled.
    pub fn add(&mut self, builds: impl IntoIterator<Item = String>) {
        for build in builds {
            self.by_plan
                .entry(plan_of(&build).to_string())
                .or_insert((build, None));
        }
    }

    /// Reads each held build, and lets go of those whose call is settled. A build that cannot
    /// be read stays held: cannot tell is not settled.
    pub async fn recheck(&mut self, client: &BambooClient) {
        let mut settled = Vec::new();
        for (plan, (build, mark)) in &mut self.by_plan {
            let Some((key, number)) = split_build_key(build) else {
                continue;
            };
            match client.build(key, Some(number)).await {
                Ok(Some(result)) => {
                    let observed = ObservedBuild::from_result(result);
                    match crate::tried_label::unsettled(&observed, None) {
                        Some(label) => *mark = Some(label.to_string()),
                        None => settled.push(plan.clone()),
                    }
                }
                Ok(None) => settled.push(plan.clone()),
                Err(e) => tracing::debug!("{build}: still held, it cannot be read: {e}"),
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
            if let Some((build, mark)) = self.by_plan.get(plan_of(&action.build_key)) {
                item.status = Status::Blocked {
                    reason: BlockReason::TriedUnsettled {
                        build: build.clone(),
                        label: mark.clone().unwrap_or_else(|| "its mark".into()),
                    },
                };
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.by_plan.is_empty()
    }
}
