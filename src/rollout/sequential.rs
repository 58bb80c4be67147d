//! Sequential comparison of candidate and stable (`compare =
//! "sequential"`): running tests over every request since the candidate
//! began serving, valid however often they are looked at.
//!
//! Each test keeps an *always-valid confidence sequence* (Robbins' normal
//! mixture, as in the mixture SPRT of Johari et al., "Always Valid
//! Inference", 2017) around a degradation estimate: at the configured
//! confidence, the true value stays inside the bounds at every look, so
//! checking after each interval (or each tick) does not inflate errors.
//!
//! - failure rate: the difference of proportions, candidate minus stable,
//!   against `tolerance.failure_rate` points;
//! - latency quantile q: the share of candidate requests slower than
//!   stable's q quantile plus `tolerance.pNN`, against 1 - q (a candidate
//!   whose p95 is within tolerance has at most 5% of requests above it).
//!
//! A test *fails* when its lower bound is above the limit (worse than the
//! tolerance, with confidence), *passes* when its upper bound is below
//! (not worse by the tolerance, with confidence), else it is inconclusive
//! and says about how many more candidate requests would settle it.

use serde::{Deserialize, Serialize};

use super::analysis::Outcome;
use crate::config::{AnalysisSpec, LatencyTolerance};
use crate::observe::histogram::{upper_bound, HistogramSnapshot};

/// What one pool served since the test began.
#[derive(Debug, Clone, Copy)]
pub struct Sample<'a> {
    pub requests: u64,
    pub failures: u64,
    pub latency: &'a HistogramSnapshot,
}

/// One running test, as verdicts show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestResult {
    /// `failure_rate`, `p50`, `p95` or `p99`.
    pub metric: String,
    pub outcome: Outcome,
    /// Failure rate (%) or the quantile (ms) of each pool.
    pub candidate: f64,
    pub stable: f64,
    /// The degradation estimate: failure-rate difference in points, or
    /// the percent of candidate requests slower than stable's quantile
    /// plus the tolerance.
    pub estimate: f64,
    /// Its confidence bounds (same unit).
    pub lower: f64,
    pub upper: f64,
    /// What the bounds are compared with (same unit).
    pub limit: f64,
    /// Inconclusive: about how many more candidate requests settle it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needs_requests: Option<u64>,
}

/// Every test together: the sequential part of a verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sequential {
    pub outcome: Outcome,
    /// Percent.
    pub confidence: f64,
    /// Requests the tests have seen so far, per pool.
    pub candidate_requests: u64,
    pub stable_requests: u64,
    pub tests: Vec<TestResult>,
    /// Inconclusive: about how many more candidate requests settle every
    /// test (`None`: more than can be estimated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needs_requests: Option<u64>,
    /// ... and about how long at the current candidate rate, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needs_seconds: Option<f64>,
}

/// Half-width of the normal-mixture confidence sequence for an estimate
/// of variance `v`, mixing variance `tau2`, error `alpha`.
pub fn half_width(v: f64, tau2: f64, alpha: f64) -> f64 {
    if v <= 0.0 {
        return 0.0;
    }
    let w = v * (v + tau2) / tau2;
    (w * (2.0 * (1.0 / alpha).ln() + ((v + tau2) / v).ln())).sqrt()
}

/// A proportion's variance with one pseudo-failure and one pseudo-success
/// added, so no failures yet is not taken as certainty.
fn variance(k: u64, n: u64) -> f64 {
    if n == 0 {
        return f64::INFINITY;
    }
    let p = (k as f64 + 1.0) / (n as f64 + 2.0);
    p * (1.0 - p) / n as f64
}

/// The smallest total `n` for which `width(n)` is below `gap`, from `from`.
fn requests_for(from: u64, gap: f64, width: impl Fn(f64) -> f64) -> Option<u64> {
    const MAX: f64 = 1e10;
    if gap <= 0.0 || width(MAX) >= gap {
        return None;
    }
    let (mut lo, mut hi) = (from.max(1) as f64, MAX);
    if width(lo) < gap {
        return Some(from);
    }
    while hi / lo > 1.01 {
        let mid = (lo * hi).sqrt();
        if width(mid) < gap {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(hi.ceil() as u64)
}

fn decide(lower: f64, upper: f64, limit: f64) -> Outcome {
    if lower > limit {
        Outcome::Fail
    } else if upper < limit {
        Outcome::Pass
    } else {
        Outcome::Inconclusive
    }
}

/// Mixing scales of the fail side, as multiples of the tolerance: one
/// mixture is tight near small effects, another near gross ones (a broken
/// candidate fails within a few dozen requests). The error is split
/// evenly between them (a union bound).
const FAIL_SCALES: [f64; 3] = [1.0, 8.0, 64.0];

/// The fail side's half-width: the tightest of the mixtures.
fn fail_width(v: f64, scale: f64, alpha: f64) -> f64 {
    let alpha = alpha / FAIL_SCALES.len() as f64;
    FAIL_SCALES
        .iter()
        .map(|k| half_width(v, (k * scale).powi(2), alpha))
        .fold(f64::INFINITY, f64::min)
}

/// The failure-rate test: candidate minus stable, in proportions.
///
/// The upper bound (a pass) uses the candidate's variance as if it were
/// exactly at the tolerance whenever it looks better: a candidate that is
/// lucky early does not also get a narrower interval.
fn failure_rate(
    c: Sample,
    s: Sample,
    tolerance: f64,
    alpha: f64,
    estimate_more: bool,
) -> TestResult {
    let rate = |x: Sample| x.failures as f64 / x.requests.max(1) as f64;
    let (pc, ps) = (rate(c), rate(s));
    let estimate = pc - ps;
    let smoothed = |x: Sample| (x.failures as f64 + 1.0) / (x.requests as f64 + 2.0);
    let per = |p: f64| p * (1.0 - p);
    let (nc, ns) = (c.requests.max(1) as f64, s.requests.max(1) as f64);
    let (vc, vs) = (per(smoothed(c)), per(smoothed(s)));
    let vc_pass = per(smoothed(c).max((ps + tolerance).min(0.5)));
    let lower = estimate - fail_width(vc / nc + vs / ns, tolerance, alpha);
    let upper = estimate + half_width(vc_pass / nc + vs / ns, tolerance * tolerance, alpha);
    let outcome = decide(lower, upper, tolerance);
    let needs = (outcome == Outcome::Inconclusive && estimate_more)
        .then(|| {
            // Projected at the rates seen so far (not the smoothed ones,
            // which are pessimistic at a handful of requests), stable
            // keeping its share of traffic relative to the candidate.
            let ratio = ns / nc;
            let vs = per(ps.max(1e-4));
            let gap = (estimate - tolerance).abs().max(tolerance / 4.0);
            if estimate < tolerance {
                let vc = per((ps + tolerance).min(0.5).max(pc));
                let width =
                    |n: f64| half_width(vc / n + vs / (ratio * n), tolerance * tolerance, alpha);
                requests_for(c.requests, gap, width)
            } else {
                let vc = per(pc.max(1e-4));
                let width = |n: f64| fail_width(vc / n + vs / (ratio * n), tolerance, alpha);
                requests_for(c.requests, gap, width)
            }
            .map(|n| n.saturating_sub(c.requests))
        })
        .flatten();
    TestResult {
        metric: "failure_rate".into(),
        outcome,
        candidate: 100.0 * pc,
        stable: 100.0 * ps,
        estimate: 100.0 * estimate,
        lower: (100.0 * lower).max(-100.0),
        upper: (100.0 * upper).min(100.0),
        limit: 100.0 * tolerance,
        needs_requests: needs,
    }
}

/// The latency test of one quantile: the share of candidate requests
/// slower than stable's quantile times (1 + tolerance). Buckets that
/// straddle that limit count as slow for a pass and as fast for a fail,
/// so histogram resolution never decides in either direction.
fn latency(
    c: Sample,
    s: Sample,
    t: &LatencyTolerance,
    alpha: f64,
    estimate_more: bool,
) -> Option<TestResult> {
    let stable_q = s.latency.quantile(t.quantile)?;
    let candidate_q = c.latency.quantile(t.quantile);
    let threshold = stable_q.as_secs_f64() * 1e6 * (1.0 + t.fraction);
    let (mut sure, mut maybe, mut n) = (0u64, 0u64, 0u64);
    for (i, &count) in c.latency.buckets.iter().enumerate() {
        let lower = if i == 0 { 0 } else { upper_bound(i - 1) };
        n += count;
        if lower as f64 >= threshold {
            sure += count;
        }
        if upper_bound(i) as f64 > threshold {
            maybe += count;
        }
    }
    let limit = 1.0 - t.quantile;
    let tau2 = limit * limit;
    let share = |k: u64| k as f64 / n.max(1) as f64;
    let smoothed = |k: u64| (k as f64 + 1.0) / (n as f64 + 2.0);
    let pass_p = smoothed(maybe).max(limit);
    let lower = share(sure) - fail_width(variance(sure, n), limit, alpha);
    let upper = share(maybe) + half_width(pass_p * (1.0 - pass_p) / n.max(1) as f64, tau2, alpha);
    let outcome = decide(lower, upper, limit);
    let needs = (outcome == Outcome::Inconclusive && estimate_more)
        .then(|| {
            if share(maybe) < limit {
                let gap = (limit - share(maybe)).max(limit / 4.0);
                let width = |m: f64| half_width(pass_p * (1.0 - pass_p) / m, tau2, alpha);
                requests_for(n, gap, width)
            } else {
                let gap = (share(sure) - limit).max(limit / 4.0);
                let p = smoothed(sure);
                let width = |m: f64| fail_width(p * (1.0 - p) / m, limit, alpha);
                requests_for(n, gap, width)
            }
            .map(|m| m.saturating_sub(n))
        })
        .flatten();
    Some(TestResult {
        metric: t.name.to_string(),
        outcome,
        candidate: candidate_q.map_or(0.0, |d| d.as_secs_f64() * 1000.0),
        stable: stable_q.as_secs_f64() * 1000.0,
        estimate: 100.0 * share(sure),
        lower: (100.0 * lower).max(0.0),
        upper: (100.0 * upper).min(100.0),
        limit: 100.0 * limit,
        needs_requests: needs,
    })
}

/// Runs every test of `spec` on what both pools served so far. A pass
/// also needs `min_requests` candidate requests in all.
pub fn compare(spec: &AnalysisSpec, candidate: Sample, stable: Sample) -> Sequential {
    run(spec, candidate, stable, true)
}

/// [`compare`] without the estimate of what an inconclusive test needs
/// (simulations and previews, which only want the outcome).
pub fn outcome(spec: &AnalysisSpec, candidate: Sample, stable: Sample) -> Outcome {
    run(spec, candidate, stable, false).outcome
}

fn run(spec: &AnalysisSpec, candidate: Sample, stable: Sample, estimate_more: bool) -> Sequential {
    let alpha = (1.0 - spec.confidence / 100.0).clamp(1e-9, 0.5);
    let tolerance = spec.tolerance.failure_rate / 100.0;
    let mut tests = vec![failure_rate(
        candidate,
        stable,
        tolerance,
        alpha,
        estimate_more,
    )];
    for t in &spec.tolerance.latency {
        match latency(candidate, stable, t, alpha, estimate_more) {
            Some(test) => tests.push(test),
            None => tests.push(TestResult {
                metric: t.name.to_string(),
                outcome: Outcome::Inconclusive,
                candidate: 0.0,
                stable: 0.0,
                estimate: 0.0,
                lower: 0.0,
                upper: 100.0,
                limit: 100.0 * (1.0 - t.quantile),
                needs_requests: None,
            }),
        }
    }
    let outcome = if tests.iter().any(|t| t.outcome == Outcome::Fail) {
        Outcome::Fail
    } else if tests.iter().all(|t| t.outcome == Outcome::Pass)
        && candidate.requests >= spec.min_requests
    {
        Outcome::Pass
    } else {
        Outcome::Inconclusive
    };
    let needs_requests = match outcome {
        Outcome::Inconclusive => tests
            .iter()
            .filter(|t| t.outcome == Outcome::Inconclusive)
            .map(|t| t.needs_requests)
            .try_fold(
                spec.min_requests.saturating_sub(candidate.requests),
                |most, n| Some(most.max(n?)),
            ),
        _ => None,
    };
    Sequential {
        outcome,
        confidence: spec.confidence,
        candidate_requests: candidate.requests,
        stable_requests: stable.requests,
        tests,
        needs_requests,
        needs_seconds: None,
    }
}

impl Sequential {
    /// Sets the time estimate from the candidate's current request rate.
    pub fn at_rate(mut self, candidate_per_second: f64) -> Sequential {
        self.needs_seconds = self
            .needs_requests
            .filter(|_| candidate_per_second > 0.0)
            .map(|n| n as f64 / candidate_per_second);
        self
    }

    /// One line per test for an operator, then the estimate.
    pub fn reasons(&self) -> Vec<String> {
        let mut out: Vec<String> = self.tests.iter().map(describe).collect();
        if self.outcome == Outcome::Inconclusive {
            out.push(self.estimate());
        }
        out
    }

    /// "needs about 1200 more candidate requests (about 4m at the current rate)".
    pub fn estimate(&self) -> String {
        let Some(n) = self.needs_requests else {
            return "inconclusive: the difference is too close to the tolerance to settle".into();
        };
        let time = match self.needs_seconds {
            Some(s) => format!(
                " (about {} at the current rate)",
                humantime::format_duration(std::time::Duration::from_secs(s.ceil() as u64))
            ),
            None => " (no candidate traffic now)".into(),
        };
        format!("needs about {n} more candidate requests{time}")
    }
}

fn describe(t: &TestResult) -> String {
    let verb = match t.outcome {
        Outcome::Pass => "pass",
        Outcome::Fail => "FAIL",
        Outcome::Inconclusive => "inconclusive",
    };
    if t.metric == "failure_rate" {
        format!(
            "failure rate {verb}: candidate {:.2}% vs stable {:.2}%, difference {:+.2} points in [{:+.2}, {:+.2}] against tolerance {:.2}",
            t.candidate, t.stable, t.estimate, t.lower, t.upper, t.limit
        )
    } else {
        format!(
            "{} {verb}: candidate {:.1}ms vs stable {:.1}ms, {:.1}% of candidate requests above the tolerated {} in [{:.1}%, {:.1}%] against {:.1}%",
            t.metric, t.candidate, t.stable, t.estimate, t.metric, t.lower, t.upper, t.limit
        )
    }
}

#[cfg(test)]
#[path = "sequential_tests.rs"]
mod tests;
