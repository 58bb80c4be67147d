//! One planner per strategy, each pure. `plan` in the parent module
//! handles what every strategy shares (commands, failed and inconclusive
//! analyses, tripwire); these only decide what a passing interval, a
//! readiness report or the passing of time means for their strategy.

mod ab_test;
mod blue_green;
mod canary;
mod recreate;
mod rolling;

use crate::config::{RolloutSpec, Strategy};

use super::plan::{Input, Phase, Rollout, Sizes, Traffic};

/// Begins a rollout that is `Idle`. Canary, blue-green and A/B first
/// wait for a healthy candidate endpoint: no user is sent to a pool that
/// cannot serve (rolling and recreate wait on readiness their own way).
pub fn start(spec: &RolloutSpec, sizes: Sizes, mut r: Rollout, now: u64) -> Rollout {
    match r.strategy {
        Strategy::Canary | Strategy::BlueGreen | Strategy::AbTest => {
            r.waiting = true;
            r.wait_since_ms = now;
            r.traffic = Traffic::default();
            let reason = format!(
                "waiting for a healthy endpoint of {} before sending it users (ready_timeout {})",
                r.candidate,
                humantime::format_duration(spec.ready_timeout)
            );
            r.with(Phase::Progressing, reason, now)
        }
        Strategy::Recreate => recreate::start(r, now),
        Strategy::Rolling => rolling::start(spec, sizes, r, now),
    }
}

/// A rollout waiting for its first healthy candidate endpoint: starts
/// for real once there is one, rolls back after `ready_timeout`.
pub fn ready_wait(
    spec: &RolloutSpec,
    sizes: Sizes,
    mut r: Rollout,
    input: Input<'_>,
    now: u64,
) -> Rollout {
    match input {
        Input::Ready(healthy) if healthy > 0 => {
            r.waiting = false;
            match (&spec.shadow, r.strategy) {
                (Some(shadow), Strategy::Canary | Strategy::BlueGreen | Strategy::AbTest) => {
                    super::shadow::start(shadow, r, now)
                }
                (_, Strategy::Recreate | Strategy::Rolling) => start(spec, sizes, r, now),
                _ => first_step(spec, r, now),
            }
        }
        Input::Tick if r.ready_timed_out(spec, now) => {
            let reason = format!(
                "no healthy endpoint of {} within ready_timeout {}",
                r.candidate,
                humantime::format_duration(spec.ready_timeout)
            );
            r.roll_back(reason, now)
        }
        _ => r,
    }
}

/// The first step that sends users to the candidate (canary, blue-green,
/// A/B), once it is healthy and any shadow stage has passed.
pub fn first_step(spec: &RolloutSpec, r: Rollout, now: u64) -> Rollout {
    match r.strategy {
        Strategy::Canary => canary::start(spec, r, now),
        Strategy::BlueGreen => blue_green::start(spec, r, now),
        Strategy::AbTest => ab_test::start(r, now),
        Strategy::Recreate | Strategy::Rolling => r,
    }
}

/// A `Progressing` rollout meets a passing interval, a readiness report,
/// a tick or an early gate answer.
pub fn progress(
    spec: &RolloutSpec,
    sizes: Sizes,
    gated: bool,
    r: Rollout,
    input: Input<'_>,
    now: u64,
) -> Rollout {
    match r.strategy {
        Strategy::Canary => canary::progress(spec, gated, r, input, now),
        Strategy::BlueGreen => blue_green::progress(spec, gated, r, input, now),
        Strategy::AbTest => ab_test::progress(spec, gated, r, input, now),
        Strategy::Recreate => recreate::progress(spec, r, input, now),
        Strategy::Rolling => rolling::progress(spec, sizes, r, input, now),
    }
}

/// After the switch: only blue-green keeps watching (its rollback window).
pub fn after_promotion(spec: &RolloutSpec, r: Rollout, input: Input<'_>, now: u64) -> Rollout {
    match r.strategy {
        Strategy::BlueGreen => blue_green::after_promotion(spec, r, input, now),
        _ => r,
    }
}

/// True once a promoted rollout needs nothing more (blue-green: its
/// rollback window has passed), so the old stable pool can be drained.
pub fn finished(spec: &RolloutSpec, r: &Rollout, now: u64) -> bool {
    match r.strategy {
        Strategy::BlueGreen => blue_green::window_over(spec, r, now),
        _ => true,
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use crate::config::{AnalysisSpec, RolloutSpec, Strategy};
    use crate::observe::Window;
    use crate::rollout::analysis::{Outcome, Verdict};
    use crate::rollout::plan::{plan, Input, Rollout, Sizes};

    pub fn spec(strategy: Strategy) -> RolloutSpec {
        let mut spec = RolloutSpec::defaults(strategy);
        spec.threshold = 2;
        spec.iterations = 3;
        spec.analysis = AnalysisSpec {
            min_requests: 10,
            success_rate: Some(99.0),
            ..AnalysisSpec::defaults()
        };
        spec
    }

    /// `plan` for one analysis interval with `outcome`, ungated.
    pub fn interval(spec: &RolloutSpec, r: &Rollout, outcome: Outcome, now: u64) -> Rollout {
        plan(
            spec,
            Sizes::default(),
            false,
            r,
            Input::Interval(&verdict(outcome)),
            now,
        )
    }

    /// A rollout of `strategy` from blue to green, started and (for the
    /// strategies that wait) with a healthy candidate endpoint.
    pub fn begin(spec: &RolloutSpec, strategy: Strategy) -> Rollout {
        let r = Rollout::new("app", strategy, "blue", "green", 0);
        let r = plan(spec, Sizes::default(), false, &r, Input::Tick, 0);
        plan(spec, Sizes::default(), false, &r, Input::Ready(1), 0)
    }

    pub fn verdict(outcome: Outcome) -> Verdict {
        let candidate = Window {
            requests: 100,
            failures: 0,
            success_rate: 100.0,
            p50: None,
            p95: None,
            p99: None,
        };
        Verdict {
            outcome,
            candidate,
            stable: None,
            reasons: vec![format!("{outcome:?}")],
            sequential: None,
        }
    }
}
