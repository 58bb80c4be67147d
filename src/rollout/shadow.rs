//! The shadow stage (`[route.rollout.shadow]`, SPEC §12): before the
//! first traffic step of canary, blue_green or ab_test, the candidate
//! receives mirrored copies only, and each interval is judged on how its
//! responses differ from stable's. `iterations` passing intervals start
//! the strategy; `threshold` failed ones roll back, and no user has been
//! sent to the candidate.

use crate::config::{RolloutSpec, ShadowSpec};
use crate::observe::{ShadowSummary, Window};

use super::analysis::{Outcome, Verdict};
use super::plan::{Phase, Rollout, Traffic};
use super::strategy;

/// Enters the stage (the candidate has a healthy endpoint).
pub fn start(spec: &ShadowSpec, mut r: Rollout, now: u64) -> Rollout {
    r.shadow = true;
    r.passes = 0;
    r.traffic = Traffic::default();
    let m = &spec.mirror;
    let reason = format!(
        "shadow: {}% of {} requests copied to {}, compared with stable; no user reaches it (interval 1/{})",
        m.percent,
        m.methods.join("/"),
        r.candidate,
        spec.iterations
    );
    r.with(Phase::Progressing, reason, now)
}

/// A passing interval: after `iterations` of them, the strategy's first
/// traffic step.
pub fn passed(spec: &RolloutSpec, verdict: &Verdict, mut r: Rollout, now: u64) -> Rollout {
    let iterations = spec.shadow.as_ref().map_or(1, |s| s.iterations);
    r.passes += 1;
    let compared = verdict.candidate.requests;
    if r.passes < iterations {
        let reason = format!(
            "shadow interval {}/{iterations} passed ({compared} compared pairs)",
            r.passes
        );
        return r.with(Phase::Progressing, reason, now);
    }
    leave(
        spec,
        r,
        now,
        &format!("shadow passed ({iterations} intervals)"),
    )
}

/// `[route.rollout.shadow]` left the config while the stage ran (a
/// reload): the stage is over, the strategy starts as it would have.
pub fn removed(spec: &RolloutSpec, r: Rollout, now: u64) -> Rollout {
    leave(spec, r, now, "shadow stage removed from the config")
}

/// The stage is over (`why`): the strategy's first traffic step.
fn leave(spec: &RolloutSpec, mut r: Rollout, now: u64, why: &str) -> Rollout {
    r.shadow = false;
    r.passes = 0;
    let next = strategy::first_step(spec, r, now);
    let reason = format!("{why}; {}", next.reason);
    let phase = next.phase;
    next.with(phase, reason, now)
}

/// Judges one shadow interval: at least `min_compared` pairs, at most
/// `max_mismatch_rate` percent of them differing.
pub fn judge(spec: &ShadowSpec, window: &ShadowSummary) -> Verdict {
    let candidate = Window {
        requests: window.compared,
        failures: window.mismatched,
        success_rate: 100.0 - window.mismatch_rate,
        p50: None,
        p95: None,
        p99: None,
    };
    let mut reasons = Vec::new();
    let outcome = if window.compared < spec.min_compared {
        reasons.push(format!(
            "{} compared pairs < min_compared {} ({} dropped, {} errors)",
            window.compared, spec.min_compared, window.dropped, window.errors
        ));
        Outcome::Inconclusive
    } else if window.mismatch_rate > spec.max_mismatch_rate {
        let fields: Vec<String> = window
            .fields
            .iter()
            .take(5)
            .map(|f| format!("{} x{}", f.field, f.count))
            .collect();
        reasons.push(format!(
            "shadow mismatch rate {:.2}% > {}% ({} of {} compared pairs differ: {})",
            window.mismatch_rate,
            spec.max_mismatch_rate,
            window.mismatched,
            window.compared,
            fields.join(", ")
        ));
        Outcome::Fail
    } else {
        Outcome::Pass
    };
    Verdict {
        outcome,
        candidate,
        stable: None,
        reasons,
        sequential: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ShadowSpec, Strategy};
    use crate::observe::shadow::FieldCount;
    use crate::rollout::plan::{plan, Input, Sizes};
    use crate::rollout::strategy::test_support::spec;

    fn shadowed(strategy: Strategy) -> RolloutSpec {
        let mut s = spec(strategy);
        s.shadow = Some(ShadowSpec {
            mirror: crate::config::MirrorSpec {
                pool: String::new(),
                percent: 100,
                methods: vec!["GET".into()],
                max_body: 0,
                queue: 8,
                compare: Default::default(),
            },
            iterations: 2,
            max_mismatch_rate: 1.0,
            min_compared: 10,
        });
        s
    }

    fn window(compared: u64, mismatched: u64) -> ShadowSummary {
        ShadowSummary {
            compared,
            mismatched,
            matched: compared - mismatched,
            mismatch_rate: 100.0 * mismatched as f64 / compared.max(1) as f64,
            fields: vec![FieldCount {
                field: "$.price".into(),
                count: mismatched,
            }],
            ..ShadowSummary::default()
        }
    }

    fn interval(s: &RolloutSpec, r: &Rollout, w: ShadowSummary, now: u64) -> Rollout {
        let v = judge(s.shadow.as_ref().unwrap(), &w);
        plan(s, Sizes::default(), false, r, Input::Interval(&v), now)
    }

    fn begin(s: &RolloutSpec, strategy: Strategy) -> Rollout {
        let r = Rollout::new("app", strategy, "blue", "green", 0);
        let r = plan(s, Sizes::default(), false, &r, Input::Tick, 0);
        plan(s, Sizes::default(), false, &r, Input::Ready(1), 0)
    }

    #[test]
    fn passes_then_the_first_step_for_every_strategy() {
        for (strategy, first) in [
            (Strategy::Canary, (5, false, false)),
            (Strategy::BlueGreen, (0, true, false)),
            (Strategy::AbTest, (0, false, true)),
        ] {
            let s = shadowed(strategy);
            let mut r = begin(&s, strategy);
            assert!(r.shadow && !r.waiting, "{strategy}");
            assert_eq!(r.traffic, Traffic::default(), "no user reaches it");
            r = interval(&s, &r, window(5, 0), 1);
            assert_eq!((r.shadow, r.passes), (true, 0), "inconclusive holds");
            r = interval(&s, &r, window(50, 0), 2);
            assert_eq!(
                (r.shadow, r.passes, r.traffic.candidate_weight),
                (true, 1, 0)
            );
            r = interval(&s, &r, window(50, 0), 3);
            assert!(!r.shadow, "{strategy}");
            let t = &r.traffic;
            assert_eq!(
                (t.candidate_weight, t.preview, t.ab_match),
                first,
                "{strategy}"
            );
            assert!(r.reason.starts_with("shadow passed"), "{}", r.reason);
        }
    }

    #[test]
    fn a_stage_removed_by_a_reload_ends() {
        let s = shadowed(Strategy::Canary);
        let r = begin(&s, Strategy::Canary);
        let mut plain = s.clone();
        plain.shadow = None;
        let r = plan(&plain, Sizes::default(), false, &r, Input::Tick, 1);
        assert_eq!((r.shadow, r.traffic.candidate_weight), (false, 5));
        assert!(r.reason.starts_with("shadow stage removed"), "{}", r.reason);
    }

    #[test]
    fn failing_intervals_roll_back_before_any_user() {
        let s = shadowed(Strategy::Canary);
        let mut r = begin(&s, Strategy::Canary);
        r = interval(&s, &r, window(50, 10), 1);
        assert_eq!((r.phase, r.failed_checks), (Phase::Progressing, 1));
        assert!(r.reason.contains("$.price x10"), "{}", r.reason);
        r = interval(&s, &r, window(50, 10), 2);
        assert_eq!(r.phase, Phase::RollingBack);
        assert_eq!((r.shadow, r.traffic.candidate_weight), (false, 0));
    }
}
