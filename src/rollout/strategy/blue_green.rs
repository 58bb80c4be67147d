//! Blue-green: the candidate gets only preview traffic (requests with the
//! preview header) while analysis runs; then one atomic switch to 100%.
//! The stable pool stays warm for `rollback_window`, during which
//! post-switch analysis can still roll back at once.

use crate::config::RolloutSpec;
use crate::rollout::analysis::Outcome;
use crate::rollout::plan::{Input, Phase, Rollout, Traffic};

pub fn start(spec: &RolloutSpec, mut r: Rollout, now: u64) -> Rollout {
    r.traffic = Traffic {
        preview: true,
        ..Traffic::default()
    };
    let reason = format!(
        "preview: only requests with {} reach the candidate",
        spec.preview_header
    );
    r.with(Phase::Progressing, reason, now)
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
    r.ready_to_promote(gated || !spec.auto_promote, "preview analysis passed", now)
}

pub fn window_over(spec: &RolloutSpec, r: &Rollout, now: u64) -> bool {
    let promoted = r.promoted_at_ms.unwrap_or(r.since_ms);
    now.saturating_sub(promoted) >= spec.rollback_window.as_millis() as u64
}

pub fn after_promotion(spec: &RolloutSpec, r: Rollout, input: Input<'_>, now: u64) -> Rollout {
    if window_over(spec, &r, now) {
        return r;
    }
    match input {
        Input::Interval(v) if v.outcome == Outcome::Fail => {
            let r = r.failed(spec, v, now);
            if r.phase == Phase::RollingBack {
                r
            } else {
                r.with(
                    Phase::Promoted,
                    "post-switch analysis failed once; watching",
                    now,
                )
            }
        }
        _ => r,
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Strategy;
    use crate::rollout::analysis::Outcome::{Fail, Pass};
    use crate::rollout::plan::{plan, Command, Input, Phase, Sizes};
    use crate::rollout::strategy::finished;
    use crate::rollout::strategy::test_support::{begin, spec, verdict};

    #[test]
    fn preview_then_switch_then_window() {
        let s = spec(Strategy::BlueGreen);
        let sz = Sizes::default();
        let r = begin(&s, Strategy::BlueGreen);
        assert!(r.traffic.preview);
        assert_eq!(
            (r.phase, r.traffic.candidate_weight),
            (Phase::Progressing, 0)
        );
        let r = plan(&s, sz, false, &r, Input::Interval(&verdict(Pass)), 60_000);
        assert_eq!(
            (r.phase, r.traffic.candidate_weight, r.traffic.preview),
            (Phase::Promoted, 100, false)
        );
        assert!(!finished(&s, &r, 60_000 + 599_999));
        assert!(finished(&s, &r, 60_000 + 600_000));
    }

    #[test]
    fn post_switch_failures_roll_back_within_the_window_only() {
        let s = spec(Strategy::BlueGreen);
        let sz = Sizes::default();
        let r = begin(&s, Strategy::BlueGreen);
        let promoted = plan(&s, sz, false, &r, Input::Interval(&verdict(Pass)), 1_000);
        let once = plan(
            &s,
            sz,
            false,
            &promoted,
            Input::Interval(&verdict(Fail)),
            61_000,
        );
        assert_eq!((once.phase, once.failed_checks), (Phase::Promoted, 1));
        let twice = plan(
            &s,
            sz,
            false,
            &once,
            Input::Interval(&verdict(Fail)),
            121_000,
        );
        assert_eq!(
            (twice.phase, twice.traffic.candidate_weight),
            (Phase::RollingBack, 0)
        );
        // After the window, analysis no longer acts.
        let late = plan(
            &s,
            sz,
            false,
            &once,
            Input::Interval(&verdict(Fail)),
            1_000 + 600_000,
        );
        assert_eq!(late.phase, Phase::Promoted);
        // The operator can still roll back at once.
        let manual = plan(
            &s,
            sz,
            false,
            &promoted,
            Input::Command(Command::Rollback),
            2_000,
        );
        assert_eq!(manual.phase, Phase::RollingBack);
    }

    #[test]
    fn without_auto_promote_waits_for_the_operator() {
        let mut s = spec(Strategy::BlueGreen);
        s.auto_promote = false;
        let sz = Sizes::default();
        let r = begin(&s, Strategy::BlueGreen);
        let r = plan(&s, sz, false, &r, Input::Interval(&verdict(Pass)), 1);
        assert_eq!(
            (r.phase, r.traffic.preview),
            (Phase::AwaitingPromotion, true)
        );
        let r = plan(&s, sz, false, &r, Input::Command(Command::Promote), 2);
        assert_eq!(
            (r.phase, r.traffic.candidate_weight),
            (Phase::Promoted, 100)
        );
    }
}
