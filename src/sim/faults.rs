//! Deciding which request misbehaves: scripted faults first (used up in order), then the
//! configured shares, drawn from a seeded generator so that a run can be repeated.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::world::{Fault, Faults};

#[derive(Debug)]
pub struct FaultPlan {
    pub config: Faults,
    rng: StdRng,
}

impl FaultPlan {
    pub fn new(config: Faults) -> FaultPlan {
        let rng = StdRng::seed_from_u64(config.seed);
        FaultPlan { config, rng }
    }

    /// The fault for this request, if any, with its `afterMs`.
    pub fn pick(&mut self, method: &str, path: &str) -> Option<(Fault, u64)> {
        if let Some(scripted) = self.take_scripted(method, path) {
            return Some(scripted);
        }
        let is_write = method != "GET";
        if is_write && !self.config.include_writes {
            return None;
        }
        let shares = [
            (self.config.error_rate, Fault::ServerError),
            (self.config.rate_limit_rate, Fault::RateLimit),
            (self.config.drop_rate, Fault::Drop),
        ];
        let roll: f64 = self.rng.random();
        let mut edge = 0.0;
        for (share, fault) in shares {
            edge += share;
            if roll < edge {
                return Some((fault, 0));
            }
        }
        None
    }

    fn take_scripted(&mut self, method: &str, path: &str) -> Option<(Fault, u64)> {
        let index = self.config.script.iter().position(|rule| {
            rule.times > 0
                && rule
                    .method
                    .as_deref()
                    .is_none_or(|m| m.eq_ignore_ascii_case(method))
                && rule.path.as_deref().is_none_or(|p| path.contains(p))
        })?;
        let rule = &mut self.config.script[index];
        if rule.skip > 0 {
            rule.skip -= 1;
            return None;
        }
        rule.times -= 1;
        let scripted = (rule.fault, rule.after_ms);
        if rule.times == 0 {
            self.config.script.remove(index);
        }
        Some(scripted)
    }
}
