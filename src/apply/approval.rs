//! What a run may do: the promotions a person approved when `apply` asked (or that
//! `--auto-approve`, or a saved plan, stands for), as Terraform applies its plan and nothing
//! else. An approval is a set of (target, build, stage, the stages its calls may run); with
//! `--wait` it also holds what the run may do later — targets waiting on `after`, builds still
//! running toward the target's stage — each on the build the plan names now. A promotion
//! outside the set (another build chosen by `latest` meanwhile, another stage) is not made:
//! the plan it would come from was not the one approved.

use crate::observe::ObservedBuild;
use crate::reconcile::{Action, Plan, PlanItem, Status, assess};

/// One promotion the run may make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approved {
    pub target: String,
    pub build: String,
    pub stage: String,
    /// Every stage its calls may run: a continuation of a build Bamboo left short runs some.
    pub runs: Vec<String>,
    /// Made in the first round; otherwise only `--wait` gets to it.
    pub now: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Approval {
    pub promotions: Vec<Approved>,
}

impl Approval {
    /// What `plan` approves: its promotions, and with `wait` the promotions its waiting and
    /// running targets may come to, on the builds it names now.
    pub fn of(plan: &Plan, wait: bool) -> Approval {
        let promotions = plan
            .items
            .iter()
            .filter_map(|item| match &item.status {
                Status::Queue { action } => Some(approved(item, action.runs.clone(), true)),
                Status::Waiting { .. } | Status::Running { .. } if wait => {
                    let build = item.build.as_deref()?;
                    Some(approved(item, may_run(item, build), false))
                }
                _ => None,
            })
            .collect();
        Approval { promotions }
    }

    /// Whether the promotion of `target` by `action` is one of the approved.
    pub fn allows(&self, target: &str, action: &Action) -> bool {
        self.promotions.iter().any(|a| {
            a.target == target
                && a.build == action.build_key
                && a.stage == action.stage
                && action.runs.iter().all(|stage| a.runs.contains(stage))
        })
    }

    /// The promotions only `--wait` may make, in words for the confirmation.
    pub fn later(&self) -> Vec<String> {
        self.promotions
            .iter()
            .filter(|a| !a.now)
            .map(|a| {
                format!(
                    "{}  {} → {} (may run {})",
                    a.target,
                    a.build,
                    a.stage,
                    a.runs.join(", ")
                )
            })
            .collect()
    }

    pub fn len(&self) -> usize {
        self.promotions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.promotions.is_empty()
    }

    /// What was approved for `target`, in words, for the report of a promotion refused.
    pub fn for_target(&self, target: &str) -> String {
        let approved: Vec<String> = self
            .promotions
            .iter()
            .filter(|a| a.target == target)
            .map(|a| format!("{} → {}", a.build, a.stage))
            .collect();
        if approved.is_empty() {
            "nothing for this target".into()
        } else {
            approved.join(", ")
        }
    }
}

fn approved(item: &PlanItem, runs: Vec<String>, now: bool) -> Approved {
    Approved {
        target: item.target.id.clone(),
        build: item.build.as_ref().map_or(String::new(), |b| b.key.clone()),
        stage: item.target.stage.clone(),
        runs,
        now,
    }
}

/// The stages a later call for `item` may run on `build`: what the call would run were it
/// due now, or, for a build still on its way, every stage it has not passed up to the
/// target's, and the automatic stages right after it.
fn may_run(item: &PlanItem, build: &ObservedBuild) -> Vec<String> {
    let target = &item.target;
    if let Status::Queue { action } = assess(build, &target.stage, target.execute_all_stages) {
        return action.runs;
    }
    let Some(at) = build.stages.iter().position(|s| s.name == target.stage) else {
        return vec![target.stage.clone()];
    };
    let before = build.stages[..=at]
        .iter()
        .filter(|s| !s.reached())
        .map(|s| s.name.clone());
    let after = build.stages[at + 1..]
        .iter()
        .take_while(|s| !s.manual)
        .map(|s| s.name.clone());
    before.chain(after).collect()
}
