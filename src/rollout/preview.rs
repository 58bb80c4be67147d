//! `veer plan`: what a rollout would do at the traffic a route has now,
//! worked out without starting it. Each step's weight and expected
//! candidate requests per interval, how many intervals the analysis needs
//! there, the earliest promotion, and warnings when a step can never
//! reach `min_requests` or a conclusive verdict before `max_duration`.

use serde::{Deserialize, Serialize};

use crate::config::{Compare, RolloutSpec, Strategy};

use super::analysis::Outcome;
use super::sequential::{outcome, Sample};
use crate::config::AnalysisSpec;
use crate::observe::histogram::HistogramSnapshot;

/// The traffic a preview assumes.
#[derive(Debug, Clone, Copy)]
pub struct Traffic {
    /// Requests per second on the route (the share weights split).
    pub rate: f64,
    /// Stable's failure rate, 0..=1.
    pub stable_failures: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preview {
    pub strategy: Strategy,
    pub interval_secs: f64,
    /// Requests per second assumed on the route.
    pub rate: f64,
    /// Stable's failure rate assumed, percent.
    pub stable_failure_rate: f64,
    pub compare: String,
    pub steps: Vec<StepPreview>,
    /// Seconds from the start to promotion, if the analysis can pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub earliest_promotion_secs: Option<f64>,
    pub warnings: Vec<String>,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepPreview {
    /// Candidate percent at this step.
    pub weight: u32,
    /// Candidate requests expected per interval.
    pub candidate_requests: f64,
    /// Intervals the analysis needs to pass this step (`None`: never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intervals: Option<u64>,
    /// Seconds from the start until this step has passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passed_after_secs: Option<f64>,
}

/// The longest a preview looks ahead.
const HORIZON_SECS: f64 = 90.0 * 86_400.0;

fn human(secs: f64) -> String {
    humantime::format_duration(std::time::Duration::from_secs(secs.ceil() as u64)).to_string()
}

/// Previews `spec` at `traffic`, as a candidate as good as stable would go.
pub fn preview(spec: &RolloutSpec, traffic: Traffic) -> Preview {
    let interval = spec.interval.as_secs_f64();
    let a = &spec.analysis;
    let sequential = a.compare == Compare::Sequential;
    let mut out = Preview {
        strategy: spec.strategy,
        interval_secs: interval,
        rate: traffic.rate,
        stable_failure_rate: 100.0 * traffic.stable_failures,
        compare: if sequential {
            format!(
                "sequential ({}% confidence, tolerance {} points of failures)",
                a.confidence, a.tolerance.failure_rate
            )
        } else {
            "fixed".into()
        },
        steps: Vec::new(),
        earliest_promotion_secs: None,
        warnings: Vec::new(),
        notes: Vec::new(),
    };
    let weights: Vec<u32> = match spec.strategy {
        Strategy::Canary => spec.steps.iter().copied().filter(|&w| w < 100).collect(),
        Strategy::BlueGreen => {
            out.notes.push(format!(
                "blue_green: the candidate gets only requests with {}; their rate is not known ahead; then one switch to 100%",
                spec.preview_header
            ));
            return out;
        }
        Strategy::AbTest => {
            out.notes.push(format!(
                "ab_test: the candidate gets only the matched traffic for {} intervals; its rate is not known ahead",
                spec.iterations
            ));
            return out;
        }
        Strategy::Rolling | Strategy::Recreate => {
            out.notes.push(format!(
                "{}: moves by endpoint readiness, not analysis steps",
                spec.strategy
            ));
            return out;
        }
    };
    if traffic.rate <= 0.0 {
        out.warnings.push(
            "no traffic on the route now: no step can be judged, nothing would promote".into(),
        );
    }
    let first = weights.first().copied().unwrap_or(100).max(1);
    let needed = sequential
        .then(|| {
            let ratio = f64::from(100 - first.min(99)) / f64::from(first);
            requests_to_pass(a, traffic.stable_failures, ratio)
        })
        .flatten();
    if sequential {
        match needed {
            Some(n) => out.notes.push(format!(
                "the sequential tests pass a candidate as good as stable after about {n} candidate requests in all"
            )),
            None => out.warnings.push(
                "the sequential tests cannot pass at this failure rate and tolerance".into(),
            ),
        }
    }
    let (mut t, mut seen) = (0.0, 0.0);
    let mut blocked = traffic.rate <= 0.0 || (sequential && needed.is_none());
    for (i, &w) in weights.iter().enumerate() {
        let per = traffic.rate * f64::from(w) / 100.0 * interval;
        let mut step = StepPreview {
            weight: w,
            candidate_requests: per,
            intervals: None,
            passed_after_secs: None,
        };
        let enough = per >= a.min_requests as f64;
        if !enough && !sequential {
            out.warnings.push(format!(
                "step {} ({w}%) gets about {per:.0} candidate requests per interval, below min_requests {}: it never passes at this traffic",
                i + 1,
                a.min_requests
            ));
            blocked = true;
        }
        if !blocked {
            // Sequential: every interval adds up; a step passes at the
            // first interval after the running total is enough.
            let goal = needed.unwrap_or(0).max(a.min_requests) as f64;
            let mut k = 1u64;
            let after = |k: u64| (seen + per * k as f64, t + k as f64 * interval);
            while sequential && after(k).0 < goal && after(k).1 < HORIZON_SECS {
                k += 1;
            }
            seen += per * k as f64;
            t += k as f64 * interval;
            if sequential && seen < goal {
                blocked = true;
                out.warnings.push(format!(
                    "step {} ({w}%): the tests would not be conclusive within {}",
                    i + 1,
                    human(HORIZON_SECS)
                ));
            } else {
                step.intervals = Some(k);
                step.passed_after_secs = Some(t);
            }
        }
        out.steps.push(step);
    }
    if !blocked {
        out.earliest_promotion_secs = Some(t);
        if let Some(max) = spec.max_duration.filter(|m| t > m.as_secs_f64()) {
            out.warnings.push(format!(
                "promotion needs about {} but max_duration is {}: the rollout would {} before a conclusive verdict",
                human(t),
                human(max.as_secs_f64()),
                match spec.on_timeout {
                    crate::config::OnTimeout::Rollback => "roll back",
                    crate::config::OnTimeout::Hold => "hold",
                }
            ));
        }
    }
    out
}

/// About how many candidate requests the failure-rate test needs to pass
/// a candidate exactly as good as stable (failing `p_stable` of
/// requests), with stable serving `stable_per_candidate` requests for
/// each candidate one; `None` above ten billion.
fn requests_to_pass(spec: &AnalysisSpec, p_stable: f64, stable_per_candidate: f64) -> Option<u64> {
    let empty = HistogramSnapshot::default();
    let passes = |n: u64| {
        let ns = (n as f64 * stable_per_candidate).round() as u64;
        let sample = |requests: u64| Sample {
            requests,
            failures: (requests as f64 * p_stable).round() as u64,
            latency: &empty,
        };
        let mut only_failures = spec.clone();
        only_failures.tolerance.latency.clear();
        outcome(&only_failures, sample(n), sample(ns)) == Outcome::Pass
    };
    let (mut lo, mut hi) = (1u64, 10_000_000_000u64);
    if !passes(hi) {
        return None;
    }
    while hi - lo > (lo / 100).max(1) {
        let mid = lo + (hi - lo) / 2;
        if passes(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(hi)
}

/// Moves each step's pass past the deployment freezes it would fall in
/// (`frozen(at_ms)`: when the freeze holding `at_ms` ends, and its
/// window): a held step passes again at the first interval after.
pub fn with_freezes(p: &mut Preview, start_ms: u64, frozen: impl Fn(u64) -> Option<(u64, String)>) {
    let mut shift = 0.0;
    for (i, step) in p.steps.iter_mut().enumerate() {
        let Some(t) = step.passed_after_secs.as_mut() else {
            return;
        };
        *t += shift;
        let at = start_ms + (*t * 1000.0) as u64;
        if let Some((end, window)) = frozen(at) {
            let moved = (end - at) as f64 / 1000.0 + p.interval_secs;
            *t += moved;
            shift += moved;
            p.notes.push(format!(
                "step {} would pass inside the deployment freeze ({window}): held about {}",
                i + 1,
                human(moved)
            ));
        }
    }
    if let (Some(t), Some(last)) = (p.earliest_promotion_secs.as_mut(), p.steps.last()) {
        *t = last.passed_after_secs.unwrap_or(*t);
    }
}

/// The preview as `veer plan` prints it.
pub fn render(p: &Preview, title: &str, start_ms: u64, fmt_time: impl Fn(u64) -> String) -> String {
    let mut out = format!(
        "{title}: {} every {}, analysis {}\ntraffic: {:.2} req/s on the route, stable failing {:.2}%\n",
        p.strategy,
        human(p.interval_secs),
        p.compare,
        p.rate,
        p.stable_failure_rate
    );
    if !p.steps.is_empty() {
        out.push_str("STEP  WEIGHT  CANDIDATE REQ/INTERVAL  INTERVALS  PASSED AFTER\n");
        for (i, s) in p.steps.iter().enumerate() {
            out.push_str(&format!(
                "{:<4}  {:>5}%  {:>22.1}  {:>9}  {}\n",
                i + 1,
                s.weight,
                s.candidate_requests,
                s.intervals.map_or("never".into(), |k| k.to_string()),
                s.passed_after_secs.map_or("-".into(), human),
            ));
        }
    }
    match p.earliest_promotion_secs {
        Some(t) => out.push_str(&format!(
            "earliest promotion: after {} ({})\n",
            human(t),
            fmt_time(start_ms + (t * 1000.0) as u64)
        )),
        None if !p.steps.is_empty() => {
            out.push_str("earliest promotion: never at this traffic\n");
        }
        None => {}
    }
    for n in &p.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    for w in &p.warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn canary() -> RolloutSpec {
        let mut spec = RolloutSpec::defaults(Strategy::Canary);
        spec.interval = Duration::from_secs(60);
        spec
    }

    #[test]
    fn fixed_analysis_warns_about_steps_below_min_requests() {
        let p = preview(
            &canary(),
            Traffic {
                rate: 5.0,
                stable_failures: 0.0,
            },
        );
        // 5% of 5 req/s for 60 s = 15 requests < 50.
        assert_eq!(p.steps[0].candidate_requests, 15.0);
        assert!(
            p.warnings[0].starts_with("step 1 (5%) gets about 15"),
            "{:?}",
            p.warnings
        );
        assert_eq!(p.earliest_promotion_secs, None);
        let busy = preview(
            &canary(),
            Traffic {
                rate: 100.0,
                stable_failures: 0.0,
            },
        );
        assert_eq!(busy.earliest_promotion_secs, Some(180.0));
        assert!(busy.warnings.is_empty(), "{:?}", busy.warnings);
    }

    #[test]
    fn a_freeze_pushes_the_steps_behind_it() {
        let mut p = preview(
            &canary(),
            Traffic {
                rate: 100.0,
                stable_failures: 0.0,
            },
        );
        // Frozen from 90 s to 10 min after the start: step 2 (at 120 s) waits.
        with_freezes(&mut p, 0, |at| {
            (90_000..600_000)
                .contains(&at)
                .then(|| (600_000, "w".to_string()))
        });
        let after: Vec<f64> = p
            .steps
            .iter()
            .map(|s| s.passed_after_secs.unwrap())
            .collect();
        assert_eq!(after, [60.0, 660.0, 720.0]);
        assert_eq!(p.earliest_promotion_secs, Some(720.0));
        assert!(
            p.notes[0].starts_with("step 2 would pass inside the deployment freeze (w)"),
            "{:?}",
            p.notes
        );
    }

    #[test]
    fn sequential_adds_up_and_warns_before_max_duration() {
        let mut spec = canary();
        spec.analysis.compare = Compare::Sequential;
        spec.max_duration = Some(Duration::from_secs(3600));
        let p = preview(
            &spec,
            Traffic {
                rate: 5.0,
                stable_failures: 0.0,
            },
        );
        let first = p.steps[0].intervals.unwrap();
        assert!(first > 1, "{p:?}");
        assert_eq!(
            p.steps[1].intervals,
            Some(1),
            "later steps need one interval"
        );
        let t = p.earliest_promotion_secs.unwrap();
        assert_eq!(t, 60.0 * (first + 2) as f64);
        if t > 3600.0 {
            assert!(
                p.warnings.iter().any(|w| w.contains("max_duration")),
                "{p:?}"
            );
        }
    }
}
