//! The controller's side of a rollout's shadow stage: one interval's
//! comparisons, judged (the planning itself is in `rollout::shadow`).

use crate::config::ShadowSpec;
use crate::observe::ShadowSummary;
use crate::rollout::{shadow, Rollout, Verdict};

use super::sense::Sensed;

/// The verdict on the shadow interval between `start` and `end`, and its
/// diff summary (differing fields, redacted samples) for status.
pub(super) fn judge(
    spec: &ShadowSpec,
    r: &Rollout,
    start: &Sensed,
    end: &Sensed,
) -> (Verdict, ShadowSummary) {
    let summary = ShadowSummary::between(&r.candidate, &start.shadow, &end.shadow);
    (shadow::judge(spec, &summary), summary)
}
