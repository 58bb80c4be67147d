//! Rolling: candidate endpoints replace stable ones in batches of
//! `max_surge + max_unavailable`. A batch's candidate endpoints are put in
//! rotation first; only once all of them pass health checks does traffic
//! shift to them and the same number of stable endpoints leave. Stable
//! capacity may dip by `max_unavailable` while a batch starts, never to
//! zero before a candidate is ready. A batch not ready within
//! `ready_timeout` rolls back.
//!
//! Traffic is weighted by ready endpoints, so each serving endpoint gets
//! an equal share whichever pool it is in.

use crate::config::RolloutSpec;
use crate::rollout::plan::{Input, Phase, Rollout, Sizes, Traffic};

fn batch(spec: &RolloutSpec) -> usize {
    (spec.max_surge + spec.max_unavailable).max(1) as usize
}

/// Stable endpoints kept in rotation while a batch starts, with `ready`
/// candidate endpoints already serving.
fn stable_kept(spec: &RolloutSpec, sizes: Sizes, ready: usize) -> usize {
    let kept = sizes
        .stable_endpoints
        .saturating_sub(ready)
        .saturating_sub(spec.max_unavailable as usize);
    if ready == 0 {
        kept.max(1)
    } else {
        kept
    }
}

/// Candidate share in percent with `ready` candidate and `stable` stable
/// endpoints serving.
fn weight(ready: usize, stable: usize) -> u32 {
    if ready + stable == 0 {
        return 0;
    }
    ((100 * ready + (ready + stable) / 2) / (ready + stable)) as u32
}

pub fn start(spec: &RolloutSpec, sizes: Sizes, mut r: Rollout, now: u64) -> Rollout {
    let enabled = batch(spec).min(sizes.candidate_endpoints);
    let stable = stable_kept(spec, sizes, 0);
    r.step = 0;
    r.traffic = Traffic {
        candidate_weight: 0,
        stable_endpoints: Some(stable),
        candidate_endpoints: Some(enabled),
        ..Traffic::default()
    };
    r.wait_since_ms = now;
    r.with(
        Phase::Progressing,
        format!("batch 1: starting {enabled} candidate endpoints"),
        now,
    )
}

pub fn progress(
    spec: &RolloutSpec,
    sizes: Sizes,
    mut r: Rollout,
    input: Input<'_>,
    now: u64,
) -> Rollout {
    let enabled = r.traffic.candidate_endpoints.unwrap_or(0);
    match input {
        Input::Ready(healthy) if healthy >= enabled && enabled > 0 => {
            let ready = enabled;
            if ready >= sizes.candidate_endpoints {
                return r.promote(format!("all {ready} candidate endpoints ready"), now);
            }
            let next = (ready + batch(spec)).min(sizes.candidate_endpoints);
            let stable =
                stable_kept(spec, sizes, ready).min(sizes.stable_endpoints.saturating_sub(ready));
            r.step += 1;
            r.traffic = Traffic {
                candidate_weight: weight(ready, stable),
                stable_endpoints: Some(stable),
                candidate_endpoints: Some(next),
                ..Traffic::default()
            };
            r.wait_since_ms = now;
            let reason = format!(
                "batch {} ready: {ready}/{} candidate and {stable}/{} stable endpoints serve; starting {} more",
                r.step,
                sizes.candidate_endpoints,
                sizes.stable_endpoints,
                next - ready
            );
            let phase = r.phase;
            r.with(phase, reason, now)
        }
        Input::Tick if r.ready_timed_out(spec, now) => {
            let reason = format!("batch {} not ready within ready_timeout", r.step + 1);
            r.roll_back(reason, now)
        }
        _ => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Strategy;
    use crate::rollout::plan::plan;
    use crate::rollout::strategy::test_support::spec;

    fn sizes(stable: usize, candidate: usize) -> Sizes {
        Sizes {
            stable_endpoints: stable,
            candidate_endpoints: candidate,
        }
    }

    /// (ready candidate, stable, enabled candidate, weight) after each batch.
    fn walk(spec: &RolloutSpec, sz: Sizes) -> Vec<(usize, usize, u32)> {
        let mut r = plan(
            spec,
            sz,
            false,
            &Rollout::new("a", Strategy::Rolling, "v1", "v2", 0),
            Input::Tick,
            0,
        );
        let mut seen = vec![(
            r.traffic.stable_endpoints.unwrap(),
            r.traffic.candidate_endpoints.unwrap(),
            0,
        )];
        for t in 1..20 {
            let enabled = r.traffic.candidate_endpoints.unwrap_or(0);
            r = plan(spec, sz, false, &r, Input::Ready(enabled), t);
            if r.phase == Phase::Promoted {
                seen.push((0, sz.candidate_endpoints, 100));
                break;
            }
            seen.push((
                r.traffic.stable_endpoints.unwrap(),
                r.traffic.candidate_endpoints.unwrap(),
                r.traffic.candidate_weight,
            ));
        }
        seen
    }

    #[test]
    fn one_by_one_with_surge() {
        let s = spec(Strategy::Rolling);
        // (stable serving, candidate enabled, candidate weight)
        assert_eq!(
            walk(&s, sizes(4, 4)),
            vec![(4, 1, 0), (3, 2, 25), (2, 3, 50), (1, 4, 75), (0, 4, 100)]
        );
    }

    #[test]
    fn max_unavailable_dips_stable_but_never_to_zero() {
        let mut s = spec(Strategy::Rolling);
        s.max_surge = 0;
        s.max_unavailable = 2;
        let steps = walk(&s, sizes(2, 2));
        assert_eq!(
            steps[0],
            (1, 2, 0),
            "one stable endpoint keeps serving while the first batch starts"
        );
        assert_eq!(steps.last().unwrap().2, 100);
    }

    #[test]
    fn partial_readiness_waits_then_times_out() {
        let s = spec(Strategy::Rolling);
        let sz = sizes(3, 3);
        let r = plan(
            &s,
            sz,
            false,
            &Rollout::new("a", Strategy::Rolling, "v1", "v2", 0),
            Input::Tick,
            0,
        );
        let r = plan(&s, sz, false, &r, Input::Ready(1), 1_000);
        let r2 = plan(&s, sz, false, &r, Input::Ready(1), 2_000);
        assert_eq!(
            (r2.traffic.candidate_endpoints, r2.traffic.candidate_weight),
            (Some(2), 33)
        );
        // Batch 2 began when batch 1 was ready, at 1 s.
        let waited = plan(&s, sz, false, &r2, Input::Tick, 1_000 + 59_999);
        assert_eq!(waited.phase, Phase::Progressing);
        let late = plan(&s, sz, false, &r2, Input::Tick, 1_000 + 60_000);
        assert_eq!(
            (late.phase, late.traffic.candidate_weight),
            (Phase::RollingBack, 0)
        );
        assert_eq!(
            late.traffic.stable_endpoints, None,
            "rollback puts every stable endpoint back"
        );
    }
}
