//! One verdict from the fixed bounds of an interval and the sequential
//! tests over the whole rollout (`compare = "sequential"`).
//!
//! A failed fixed bound still fails the interval. Otherwise the
//! sequential tests decide: an interval with fewer than `min_requests`
//! candidate requests is not judged against the fixed bounds (one request
//! would decide them), but its requests still count in the tests.

use super::analysis::{Outcome, Verdict};
use super::sequential::Sequential;

/// `fixed` (the interval against the bounds) combined with `tests`.
pub fn combine(fixed: Verdict, tests: Sequential) -> Verdict {
    let mut v = fixed;
    let mut reasons = Vec::new();
    match v.outcome {
        Outcome::Fail => {
            reasons.append(&mut v.reasons);
            reasons.extend(tests.reasons());
        }
        Outcome::Inconclusive => {
            reasons.extend(tests.reasons());
            let why = v.reasons.join("; ");
            reasons.push(format!("fixed bounds not judged this interval: {why}"));
            v.outcome = tests.outcome;
        }
        Outcome::Pass => {
            reasons.extend(tests.reasons());
            v.outcome = tests.outcome;
        }
    }
    v.reasons = reasons;
    v.sequential = Some(tests);
    v
}

impl Verdict {
    /// The sequential tests failed: conclusive at the configured
    /// confidence, so the rollout rolls back without waiting for
    /// `threshold` failed intervals.
    pub fn settled_fail(&self) -> bool {
        self.sequential
            .as_ref()
            .is_some_and(|s| s.outcome == Outcome::Fail)
    }
}
