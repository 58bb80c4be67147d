//! Judging one analysis interval: the candidate's window against the
//! bounds of `[route.rollout.analysis]` and against the stable pool.
//!
//! Too few candidate requests is *inconclusive*, never a pass: the step
//! holds its weight and waits for data (the failure Flagger users hit when
//! traffic is low is promoting on no evidence).

use serde::{Deserialize, Serialize};

use crate::config::AnalysisSpec;
use crate::observe::Window;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Fail,
    Inconclusive,
}

/// One verdict with the figures and thresholds it was decided on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub outcome: Outcome,
    pub candidate: Window,
    pub stable: Option<Window>,
    /// Every bound that failed (or why the interval was inconclusive),
    /// written for an operator: "success rate 93.1% < 99%".
    pub reasons: Vec<String>,
    /// With `compare = "sequential"`: the running tests of candidate
    /// versus stable, their bounds and the estimate of what is missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequential: Option<super::sequential::Sequential>,
}

fn ms(d: std::time::Duration) -> String {
    format!("{:.1}ms", d.as_secs_f64() * 1000.0)
}

/// Judges the candidate's interval. `stable` is the stable pool's window
/// over the same interval (for `max_success_rate_drop`), if it served any.
pub fn judge(spec: &AnalysisSpec, candidate: &Window, stable: Option<&Window>) -> Verdict {
    let mut reasons = Vec::new();
    if candidate.requests < spec.min_requests {
        reasons.push(format!(
            "{} candidate requests < min_requests {}",
            candidate.requests, spec.min_requests
        ));
        return Verdict {
            outcome: Outcome::Inconclusive,
            candidate: candidate.clone(),
            stable: stable.cloned(),
            reasons,
            sequential: None,
        };
    }
    if let Some(min) = spec.success_rate {
        if candidate.success_rate < min {
            reasons.push(format!(
                "success rate {:.2}% < {min}%",
                candidate.success_rate
            ));
        }
    }
    let bounds = [
        ("p50", spec.p50, candidate.p50),
        ("p95", spec.p95, candidate.p95),
        ("p99", spec.p99, candidate.p99),
    ];
    for (name, bound, value) in bounds {
        if let (Some(bound), Some(value)) = (bound, value) {
            if value > bound {
                reasons.push(format!("{name} {} > {}", ms(value), ms(bound)));
            }
        }
    }
    if let (Some(drop), Some(stable)) = (spec.max_success_rate_drop, stable) {
        let trail = stable.success_rate - candidate.success_rate;
        if stable.requests > 0 && trail > drop {
            reasons.push(format!(
                "success rate {:.2}% trails stable {:.2}% by {trail:.2} points > {drop}",
                candidate.success_rate, stable.success_rate
            ));
        }
    }
    let outcome = if reasons.is_empty() {
        Outcome::Pass
    } else {
        Outcome::Fail
    };
    Verdict {
        outcome,
        candidate: candidate.clone(),
        stable: stable.cloned(),
        reasons,
        sequential: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn spec() -> AnalysisSpec {
        AnalysisSpec {
            min_requests: 50,
            success_rate: Some(99.0),
            p50: None,
            p95: Some(Duration::from_millis(500)),
            p99: None,
            max_success_rate_drop: Some(0.5),
            ..AnalysisSpec::defaults()
        }
    }

    fn window(requests: u64, failures: u64, p95_ms: u64) -> Window {
        let success_rate = 100.0 * (requests - failures) as f64 / requests.max(1) as f64;
        let p95 = Some(Duration::from_millis(p95_ms));
        Window {
            requests,
            failures,
            success_rate,
            p50: p95,
            p95,
            p99: p95,
        }
    }

    #[test]
    fn too_few_requests_is_inconclusive_not_a_pass() {
        let v = judge(&spec(), &window(49, 0, 10), None);
        assert_eq!(v.outcome, Outcome::Inconclusive);
        assert_eq!(v.reasons, vec!["49 candidate requests < min_requests 50"]);
    }

    #[test]
    fn every_failed_bound_is_named() {
        let v = judge(&spec(), &window(100, 20, 800), Some(&window(100, 0, 10)));
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(v.reasons.len(), 3, "{:?}", v.reasons);
        assert!(v.reasons[0].starts_with("success rate 80.00% < 99"));
        assert_eq!(v.reasons[1], "p95 800.0ms > 500.0ms");
        assert!(v.reasons[2].contains("trails stable 100.00% by 20.00 points"));
    }

    #[test]
    fn healthy_candidate_passes() {
        let v = judge(&spec(), &window(100, 0, 20), Some(&window(900, 1, 20)));
        assert_eq!(v.outcome, Outcome::Pass, "{:?}", v.reasons);
    }

    #[test]
    fn drop_against_stable_alone_fails() {
        let mut s = spec();
        s.success_rate = Some(90.0);
        // 99.0% is fine on its own but trails a perfect stable by 1 point.
        let v = judge(&s, &window(1000, 10, 20), Some(&window(1000, 0, 20)));
        assert_eq!(v.outcome, Outcome::Fail);
    }
}
