//! A/B: only requests matching the rollout's `match` reach the candidate,
//! for `iterations` passing intervals; then promote (or roll back on
//! `threshold` failures).

use crate::config::RolloutSpec;
use crate::rollout::plan::{Input, Phase, Rollout, Traffic};

pub fn start(mut r: Rollout, now: u64) -> Rollout {
    r.traffic = Traffic {
        ab_match: true,
        ..Traffic::default()
    };
    r.with(
        Phase::Progressing,
        "A/B: matched requests reach the candidate",
        now,
    )
}

pub fn progress(
    spec: &RolloutSpec,
    gated: bool,
    mut r: Rollout,
    input: Input<'_>,
    now: u64,
) -> Rollout {
    let Input::Interval(_) = input else { return r };
    r.passes += 1;
    if r.passes >= spec.iterations {
        let reason = format!("{} of {} iterations passed", r.passes, spec.iterations);
        return r.ready_to_promote(gated, &reason, now);
    }
    let reason = format!("iteration {}/{} passed", r.passes, spec.iterations);
    r.with(Phase::Progressing, reason, now)
}

#[cfg(test)]
mod tests {
    use crate::config::Strategy;
    use crate::rollout::analysis::Outcome::{Inconclusive, Pass};
    use crate::rollout::plan::{plan, Input, Phase, Sizes};
    use crate::rollout::strategy::test_support::{begin, interval, spec};

    #[test]
    fn iterations_then_promote_and_inconclusive_does_not_count() {
        let s = spec(Strategy::AbTest);
        let mut r = begin(&s, Strategy::AbTest);
        assert_eq!((r.traffic.ab_match, r.traffic.candidate_weight), (true, 0));
        for (t, outcome) in [Pass, Inconclusive, Pass].into_iter().enumerate() {
            r = interval(&s, &r, outcome, t as u64 + 1);
            assert_eq!(r.phase, Phase::Progressing);
        }
        assert_eq!(r.passes, 2);
        r = interval(&s, &r, Pass, 9);
        assert_eq!(
            (r.phase, r.traffic.candidate_weight, r.traffic.ab_match),
            (Phase::Promoted, 100, false)
        );
    }

    #[test]
    fn no_matching_traffic_rolls_back_after_max_duration() {
        let mut s = spec(Strategy::AbTest);
        s.max_duration = Some(std::time::Duration::from_secs(300));
        let sz = Sizes::default();
        let mut r = begin(&s, Strategy::AbTest);
        for t in 1..=4 {
            r = interval(&s, &r, Inconclusive, t * 60_000);
        }
        let held = plan(&s, sz, false, &r, Input::Tick, 299_999);
        assert_eq!(held.phase, Phase::Progressing);
        let late = plan(&s, sz, false, &r, Input::Tick, 300_000);
        assert_eq!(late.phase, Phase::RollingBack);
        assert!(late.reason.contains("max_duration"), "{}", late.reason);
    }
}
