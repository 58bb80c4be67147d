//! Recreate: the stable pool is drained to 0 at once and the candidate
//! takes 100% as soon as it has a healthy endpoint (requests in the gap
//! wait up to `hold` in the data plane). No healthy candidate within
//! `ready_timeout` rolls back.

use crate::config::RolloutSpec;
use crate::rollout::plan::{Input, Phase, Rollout, Traffic};

pub fn start(mut r: Rollout, now: u64) -> Rollout {
    r.traffic = Traffic {
        candidate_weight: 100,
        ..Traffic::default()
    };
    r.wait_since_ms = now;
    r.with(
        Phase::Progressing,
        "stable drained; waiting for a healthy candidate endpoint",
        now,
    )
}

pub fn progress(spec: &RolloutSpec, r: Rollout, input: Input<'_>, now: u64) -> Rollout {
    match input {
        Input::Ready(healthy) if healthy > 0 => {
            r.promote(format!("{healthy} candidate endpoints healthy"), now)
        }
        Input::Tick if r.ready_timed_out(spec, now) => {
            r.roll_back("no healthy candidate endpoint within ready_timeout", now)
        }
        _ => r,
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Strategy;
    use crate::rollout::plan::{plan, Input, Phase, Rollout, Sizes};
    use crate::rollout::strategy::test_support::spec;

    #[test]
    fn switches_once_healthy_or_rolls_back_on_timeout() {
        let s = spec(Strategy::Recreate);
        let sz = Sizes::default();
        let r = plan(
            &s,
            sz,
            false,
            &Rollout::new("app", Strategy::Recreate, "v1", "v2", 0),
            Input::Tick,
            0,
        );
        assert_eq!(
            (r.phase, r.traffic.candidate_weight),
            (Phase::Progressing, 100)
        );
        let waiting = plan(&s, sz, false, &r, Input::Ready(0), 1_000);
        assert_eq!(waiting.phase, Phase::Progressing);
        let up = plan(&s, sz, false, &waiting, Input::Ready(1), 2_000);
        assert_eq!(up.phase, Phase::Promoted);
        let late = plan(&s, sz, false, &waiting, Input::Tick, 60_000);
        assert_eq!(
            (late.phase, late.traffic.candidate_weight),
            (Phase::RollingBack, 0)
        );
    }
}
