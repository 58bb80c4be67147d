//! Canary: walk the candidate's weight through `steps`, one analysis per
//! interval; the last step passed promotes (after the gate, if any).

use crate::config::RolloutSpec;
use crate::rollout::plan::{Input, Phase, Rollout};

pub fn start(spec: &RolloutSpec, mut r: Rollout, now: u64) -> Rollout {
    let first = spec.steps.first().copied().unwrap_or(100);
    if first >= 100 {
        return r.promote("single step: switched to the candidate", now);
    }
    r.step = 0;
    r.traffic.candidate_weight = first;
    r.with(
        Phase::Progressing,
        format!("step 1/{}: candidate at {first}%", spec.steps.len()),
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
    // The next step is the first one above the weight the candidate has
    // now, so steps changed by a reload apply from here: never down,
    // never a jump to 100% that no analysis passed.
    let current = r.traffic.candidate_weight;
    let next = spec.steps.iter().position(|&w| w > current);
    match next.map(|i| (i, spec.steps[i])) {
        Some((next, weight)) if weight < 100 => {
            r.step = next;
            r.traffic.candidate_weight = weight;
            let reason = format!(
                "analysis passed; step {}/{}: candidate at {weight}%",
                next + 1,
                spec.steps.len()
            );
            r.with(Phase::Progressing, reason, now)
        }
        _ => r.ready_to_promote(gated, "last step passed", now),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Strategy;
    use crate::rollout::analysis::Outcome::{Fail, Inconclusive, Pass};
    use crate::rollout::plan::{plan, Command, Input, Phase, Rollout, Sizes};
    use crate::rollout::strategy::test_support::{self, interval, spec, verdict};

    fn begin() -> Rollout {
        test_support::begin(&spec(Strategy::Canary), Strategy::Canary)
    }

    #[test]
    fn waits_for_a_healthy_candidate_then_times_out() {
        let s = spec(Strategy::Canary);
        let sz = Sizes::default();
        let r = Rollout::new("app", Strategy::Canary, "blue", "green", 0);
        let r = plan(&s, sz, false, &r, Input::Tick, 0);
        assert_eq!(
            (r.phase, r.waiting, r.traffic.candidate_weight),
            (Phase::Progressing, true, 0)
        );
        let still = plan(&s, sz, false, &r, Input::Ready(0), 1_000);
        assert_eq!(still.traffic.candidate_weight, 0);
        // Intervals judge nothing while waiting.
        let judged = plan(
            &s,
            sz,
            false,
            &still,
            Input::Interval(&verdict(Fail)),
            2_000,
        );
        assert_eq!((judged.failed_checks, judged.waiting), (0, true));
        let late = plan(&s, sz, false, &still, Input::Tick, 60_000);
        assert_eq!(
            (late.phase, late.traffic.candidate_weight),
            (Phase::RollingBack, 0)
        );
    }

    #[test]
    fn changed_steps_apply_from_the_current_weight() {
        let mut s = spec(Strategy::Canary);
        let mut r = begin();
        r = interval(&s, &r, Pass, 1);
        r = interval(&s, &r, Pass, 2);
        assert_eq!(r.traffic.candidate_weight, 50);
        // Fewer, smaller steps: the next is the first above 50, not index 3.
        s.steps = vec![10, 20, 60, 80, 100];
        r = interval(&s, &r, Pass, 3);
        assert_eq!(
            (r.phase, r.traffic.candidate_weight, r.step),
            (Phase::Progressing, 60, 2)
        );
        // Steps all below the current weight: a pass at the last step promotes.
        s.steps = vec![10, 20];
        r = interval(&s, &r, Pass, 4);
        assert_eq!(
            (r.phase, r.traffic.candidate_weight),
            (Phase::Promoted, 100)
        );
    }

    #[test]
    fn a_paused_canary_whose_candidate_fails_rolls_back() {
        let s = spec(Strategy::Canary);
        let sz = Sizes::default();
        let paused = plan(&s, sz, false, &begin(), Input::Command(Command::Pause), 1);
        let once = interval(&s, &paused, Fail, 2);
        assert_eq!((once.phase, once.failed_checks), (Phase::Paused, 1));
        let twice = interval(&s, &once, Fail, 3);
        assert_eq!(twice.phase, Phase::RollingBack);
        let tripped = plan(&s, sz, false, &paused, Input::Tripwire(9), 4);
        assert_eq!(tripped.phase, Phase::RollingBack);
        // A pass while paused advances nothing.
        let held = interval(&s, &paused, Pass, 5);
        assert_eq!(
            (held.phase, held.traffic.candidate_weight),
            (Phase::Paused, 5)
        );
    }

    #[test]
    fn walks_the_steps_and_promotes() {
        let s = spec(Strategy::Canary);
        let mut r = begin();
        let mut weights = vec![r.traffic.candidate_weight];
        for t in 1..=3 {
            r = interval(&s, &r, Pass, t * 60_000);
            weights.push(r.traffic.candidate_weight);
        }
        assert_eq!(weights, vec![5, 25, 50, 100]);
        assert_eq!(r.phase, Phase::Promoted);
    }

    #[test]
    fn inconclusive_holds_and_never_advances() {
        let s = spec(Strategy::Canary);
        let mut r = begin();
        for t in 1..=5 {
            r = interval(&s, &r, Inconclusive, t * 60_000);
            assert_eq!(
                (r.phase, r.traffic.candidate_weight, r.failed_checks),
                (Phase::Progressing, 5, 0)
            );
            assert_eq!(r.since_ms, t * 60_000, "a new interval starts");
        }
    }

    #[test]
    fn threshold_failures_roll_back() {
        let s = spec(Strategy::Canary);
        let mut r = begin();
        r = interval(&s, &r, Pass, 1);
        r = interval(&s, &r, Fail, 2);
        assert_eq!(
            (r.phase, r.traffic.candidate_weight, r.failed_checks),
            (Phase::Progressing, 25, 1)
        );
        r = interval(&s, &r, Fail, 3);
        assert_eq!(
            (r.phase, r.traffic.candidate_weight),
            (Phase::RollingBack, 0)
        );
        assert!(
            r.reason.starts_with("2 failed analyses (threshold 2)"),
            "{}",
            r.reason
        );
        r = plan(&s, Sizes::default(), false, &r, Input::Tick, 4);
        assert_eq!(r.phase, Phase::RolledBack);
        // Rolled back stays rolled back.
        r = interval(&s, &r, Pass, 5);
        assert_eq!(r.phase, Phase::RolledBack);
    }

    #[test]
    fn gate_holds_before_promotion() {
        let s = spec(Strategy::Canary);
        let mut r = begin();
        for t in 1..=3 {
            r = plan(
                &s,
                Sizes::default(),
                true,
                &r,
                Input::Interval(&verdict(Pass)),
                t,
            );
        }
        assert_eq!(
            (r.phase, r.traffic.candidate_weight),
            (Phase::AwaitingPromotion, 50)
        );
        r = plan(
            &s,
            Sizes::default(),
            true,
            &r,
            Input::Interval(&verdict(Pass)),
            9,
        );
        assert_eq!(r.phase, Phase::AwaitingPromotion);
        r = plan(&s, Sizes::default(), true, &r, Input::GateOpened, 10);
        assert_eq!(
            (r.phase, r.traffic.candidate_weight),
            (Phase::Promoted, 100)
        );
    }

    #[test]
    fn pause_resume_promote_abort_tripwire() {
        let s = spec(Strategy::Canary);
        let sz = Sizes::default();
        let r = begin();
        let paused = plan(&s, sz, false, &r, Input::Command(Command::Pause), 1);
        assert_eq!(paused.phase, Phase::Paused);
        let still = plan(&s, sz, false, &paused, Input::Interval(&verdict(Pass)), 2);
        assert_eq!(
            (still.phase, still.traffic.candidate_weight),
            (Phase::Paused, 5)
        );
        let resumed = plan(&s, sz, false, &still, Input::Command(Command::Resume), 3);
        assert_eq!((resumed.phase, resumed.since_ms), (Phase::Progressing, 3));
        let promoted = plan(&s, sz, false, &resumed, Input::Command(Command::Promote), 4);
        assert_eq!(
            (promoted.phase, promoted.traffic.candidate_weight),
            (Phase::Promoted, 100)
        );
        let aborted = plan(&s, sz, false, &resumed, Input::Command(Command::Abort), 4);
        assert_eq!(
            (aborted.phase, aborted.traffic.candidate_weight),
            (Phase::RolledBack, 0)
        );
        let tripped = plan(&s, sz, false, &resumed, Input::Tripwire(5), 4);
        assert_eq!(tripped.phase, Phase::RollingBack);
    }
}
