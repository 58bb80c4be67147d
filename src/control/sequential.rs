//! The controller's side of `compare = "sequential"`: the tests count
//! every request since the rollout's candidate began serving (the
//! [`Live::origin`] reading), are judged at the end of each interval, and
//! are looked at on every tick too, so a clearly failing candidate rolls
//! back before its interval ends (looking often is what the tests allow).

use crate::config::{AnalysisSpec, Compare};
use crate::rollout::sequential::{compare, Sample, Sequential};
use crate::rollout::{combine, Outcome, Verdict};

use super::sense::Sensed;
use super::task::Live;

/// The sequential tests on everything since `live.origin`, with the time
/// estimate at the candidate's rate over the current interval.
fn tests(spec: &AnalysisSpec, live: &Live, sensed: &Sensed, now: u64) -> Sequential {
    let (c0, s0) = (&live.origin.candidate, &live.origin.stable);
    let (c1, s1) = (&sensed.candidate, &sensed.stable);
    let (cl, sl) = (c1.latency.since(&c0.latency), s1.latency.since(&s0.latency));
    let sample = |requests: u64, failures: u64, latency| Sample {
        requests,
        failures: failures.min(requests),
        latency,
    };
    let candidate = sample(
        c1.attempts.saturating_sub(c0.attempts),
        c1.failures.saturating_sub(c0.failures),
        &cl,
    );
    let stable = sample(
        s1.attempts.saturating_sub(s0.attempts),
        s1.failures.saturating_sub(s0.failures),
        &sl,
    );
    // The candidate's rate over the current interval; over the whole run
    // when the interval is too short or saw no candidate request.
    let per_second = |from: u64, since: u64| {
        let seconds = now.saturating_sub(since) as f64 / 1000.0;
        c1.attempts.saturating_sub(from) as f64 / seconds.max(0.001)
    };
    let interval = (now.saturating_sub(live.since) >= 1_000)
        .then(|| per_second(live.start.candidate.attempts, live.since))
        .filter(|r| *r > 0.0);
    let rate = interval.unwrap_or_else(|| per_second(c0.attempts, live.origin_at));
    compare(spec, candidate, stable).at_rate(rate)
}

/// The interval's verdict: `fixed` as is, or combined with the tests.
pub(super) fn verdict(
    spec: &AnalysisSpec,
    live: &Live,
    sensed: &Sensed,
    fixed: Verdict,
    now: u64,
) -> Verdict {
    if spec.compare != Compare::Sequential {
        return fixed;
    }
    combine(fixed, tests(spec, live, sensed, now))
}

/// The tests already fail before the interval ends.
pub(super) fn fails_early(spec: &AnalysisSpec, live: &Live, sensed: &Sensed, now: u64) -> bool {
    spec.compare == Compare::Sequential
        && sensed.candidate.attempts > live.origin.candidate.attempts
        && tests(spec, live, sensed, now).outcome == Outcome::Fail
}

/// In a fleet, a replica joining or restarting resets what the tests
/// count from: summed counters from different sets do not subtract.
pub(super) fn keep_origin(live: &mut Live, sensed: &Sensed, now: u64) {
    if live.origin.sources != sensed.sources {
        (live.origin, live.origin_at) = (sensed.clone(), now);
    }
}
