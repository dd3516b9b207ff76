//! What a run keeps about its own writes between rounds: how each target ended, the builds
//! that must take no other write (an unknown outcome, or an accepted call Bamboo never
//! showed), and the stages earlier calls ran when Bamboo stopped short. `--wait` follows the
//! promoted builds through it, and decides from it whether a build may be continued again.

use std::collections::BTreeMap;

use super::progress::Progress;
use super::promotion::Promotion;
use super::report::Reporter;
use super::{Event, Outcome};
use crate::observe::{ObservedBuild, ObservedStage};
use crate::reconcile::{Action, Plan, PlanItem, Status};

/// How often one target's build may be continued again in a run when Bamboo ran less than
/// asked (a server that runs one manual stage per call): one call per manual stage, at most.
const CONTINUATIONS: usize = 10;

/// What a run keeps about its own writes between rounds.
#[derive(Default)]
pub(super) struct Ledger {
    /// How each target ended, once it did (or while its promoted stages run).
    pub done: BTreeMap<String, Outcome>,
    /// Builds whose write this run has an unknown outcome, or was accepted without Bamboo
    /// showing it: no other write goes to them, or to any build of their plan, in this run
    /// (such a call may still land, after a call to an older build: a downgrade).
    /// By build key, the stage the call was for.
    pub held: BTreeMap<String, String>,
    /// Per target, stages earlier calls of this run ran, when Bamboo stopped short.
    pub carried: BTreeMap<String, Vec<String>>,
}

impl Ledger {
    /// What a promotion means for the run: the target's outcome, if it has one yet, and
    /// whether its build may take another write.
    pub(super) fn record(&mut self, action: &Action, promotion: Promotion) -> Option<Outcome> {
        Some(match promotion {
            Promotion::Queued {
                runs, confirmed, ..
            } => {
                if !confirmed {
                    self.held
                        .insert(action.build_key.clone(), action.stage.clone());
                }
                Outcome::Promoted {
                    runs,
                    finished: false,
                }
            }
            // Blocked on the fresh read (a gate, a failed stage): that is how the target ends.
            Promotion::NotNeeded(status @ Status::Blocked { .. }) => Outcome::Unchanged { status },
            Promotion::NotNeeded(_) | Promotion::Stopped => return None,
            // Held back by an unsettled call to its plan: not done, and said so in the counts.
            Promotion::Skipped(reason) => Outcome::Error {
                message: format!("not sent: {reason}"),
            },
            Promotion::Stale { planned, found } => Outcome::Stale { planned, found },
            Promotion::NotApproved { approved, found } => Outcome::NotApproved { approved, found },
            Promotion::Refused(message) => Outcome::Refused { message },
            Promotion::MovedByOther(message) => Outcome::MovedByOther { message },
            Promotion::Unknown { detail, lock } => {
                self.held
                    .insert(action.build_key.clone(), action.stage.clone());
                Outcome::Unknown {
                    message: detail,
                    lock,
                }
            }
            Promotion::Failed(message) => Outcome::Error { message },
        })
    }

    /// How a target ended. One that this run's earlier calls moved, and whose continuation
    /// then did not go (a gate, a downgrade found since), was promoted short of its target:
    /// not left unchanged.
    pub(super) fn outcome(&mut self, item: &PlanItem, build: Option<&ObservedBuild>) -> Outcome {
        let outcome = self
            .done
            .remove(&item.target.id)
            .unwrap_or_else(|| Outcome::Unchanged {
                status: item.status.clone(),
            });
        let (Outcome::Unchanged { .. }, Some(ran), Some(build)) =
            (&outcome, self.carried.remove(&item.target.id), build)
        else {
            return outcome;
        };
        let before = build
            .stages
            .iter()
            .find(|s| !s.passed() && !ran.contains(&s.name))
            .map_or_else(|| item.target.stage.clone(), |s| s.name.clone());
        Outcome::PausedShort { ran, before }
    }

    /// Follows the builds this run promoted: progress, and whether their stages finished,
    /// failed, or stopped short of the target. A build that came to rest short of it (a
    /// server that runs one manual stage per call) is promoted again in the next round,
    /// through the same lease and re-read, when `may_continue` and its write was confirmed.
    pub(super) fn follow(
        &mut self,
        reporter: &Reporter,
        progress: &mut Progress,
        plan: &Plan,
        builds: &BTreeMap<String, ObservedBuild>,
        may_continue: bool,
    ) {
        for item in &plan.items {
            let id = &item.target.id;
            let (
                Some(Outcome::Promoted {
                    runs,
                    finished: false,
                }),
                Some(build),
            ) = (self.done.get(id), builds.get(id))
            else {
                continue;
            };
            progress.update(reporter, id, build, &item.target.stage);
            let stage_of = |name: &String| build.stages.iter().find(|s| &s.name == name);
            if let Some(failed) = runs
                .iter()
                .filter_map(stage_of)
                .find(|s| ended(s, "Failed"))
            {
                let stage = failed.name.clone();
                reporter.emit(
                    Event::StageFailed {
                        target: id.clone(),
                        build: build.key.clone(),
                        stage: stage.clone(),
                    },
                    || format!("{id}: stage {stage} of {} failed", build.key),
                );
                self.done.insert(id.clone(), Outcome::StageFailed { stage });
                continue;
            }
            let ran: Vec<String> = runs
                .iter()
                .filter_map(stage_of)
                .filter(|s| s.passed())
                .map(|s| s.name.clone())
                .collect();
            let mut all_ran = self.carried.get(id).cloned().unwrap_or_default();
            all_ran.extend(ran.iter().cloned());
            if ran.len() == runs.len() {
                self.carried.remove(id);
                reporter.emit(
                    Event::Finished {
                        target: id.clone(),
                        build: build.key.clone(),
                        runs: all_ran.clone(),
                    },
                    || format!("{id}: {} finished {}", build.key, all_ran.join(", ")),
                );
                let finished = Outcome::Promoted {
                    runs: all_ran,
                    finished: true,
                };
                self.done.insert(id.clone(), finished);
                continue;
            }
            // An accepted call that Bamboo never showed leaves the build as it was: that is
            // not a build that stopped short, and it gets no other call in this run.
            let unshown = self.held.contains_key(&build.key) && ran.is_empty();
            if !at_rest(build) || unshown {
                continue;
            }
            let before = runs
                .iter()
                .find(|r| !ran.contains(r))
                .cloned()
                .unwrap_or_default();
            let again = may_continue
                && !self.held.contains_key(&build.key)
                && all_ran.len() < CONTINUATIONS;
            let words = format!(
                "{id}: {} paused before {before}; Bamboo ran {}{}",
                build.key,
                if ran.is_empty() {
                    "nothing".into()
                } else {
                    ran.join(", ")
                },
                if again { "; continuing it" } else { "" }
            );
            reporter.emit(
                Event::Paused {
                    target: id.clone(),
                    build: build.key.clone(),
                    ran: ran.clone(),
                    before: before.clone(),
                    continuing: again,
                },
                || words,
            );
            if again {
                // The next round re-plans the target from this read and promotes it anew.
                self.carried.insert(id.clone(), all_ran);
                self.done.remove(id);
            } else {
                self.carried.remove(id);
                let short = Outcome::PausedShort {
                    ran: all_ran,
                    before,
                };
                self.done.insert(id.clone(), short);
            }
        }
        let ours = |o: &Outcome| {
            matches!(
                o,
                Outcome::Promoted { .. }
                    | Outcome::StageFailed { .. }
                    | Outcome::PausedShort { .. }
            )
        };
        let continuing = self
            .carried
            .keys()
            .filter(|id| !self.done.contains_key(*id));
        let total = self.done.values().filter(|o| ours(o)).count() + continuing.count();
        let running = |o: &Outcome| {
            matches!(
                o,
                Outcome::Promoted {
                    finished: false,
                    ..
                }
            )
        };
        let finished = self
            .done
            .values()
            .filter(|o| ours(o) && !running(o))
            .count();
        progress.tally(reporter, finished, total);
    }
}

fn ended(stage: &ObservedStage, state: &str) -> bool {
    stage.life_cycle_state == "Finished" && stage.state == state
}

/// A build that nothing moves now: not queued, and no stage waiting or running.
fn at_rest(build: &ObservedBuild) -> bool {
    !build.is_active() && !build.stages.iter().any(ObservedStage::is_active)
}
