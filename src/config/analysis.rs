//! The analysis additions of SPEC §15 as validated values: how candidate
//! and stable are compared, how sure a verdict must be, and what a
//! rollout does when it runs out of time.

/// `[route.rollout.analysis] compare`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compare {
    /// Each interval against the fixed bounds on its own (the default).
    #[default]
    Fixed,
    /// Running, always-valid tests of candidate versus stable over every
    /// interval so far, besides the fixed bounds.
    Sequential,
}

/// `tolerance = { failure_rate = 0.5, p95 = "10%" }`: the degradation
/// that counts as worse.
#[derive(Debug, Clone, PartialEq)]
pub struct Tolerance {
    /// Percentage points of failures the candidate may add.
    pub failure_rate: f64,
    /// Latency quantiles compared, with the fraction (0.10 = 10%) by
    /// which the candidate's may exceed stable's.
    pub latency: Vec<LatencyTolerance>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LatencyTolerance {
    /// `p50`, `p95` or `p99`.
    pub name: &'static str,
    /// 0.50, 0.95 or 0.99.
    pub quantile: f64,
    /// 0.10 for `"10%"`.
    pub fraction: f64,
}

impl Default for Tolerance {
    fn default() -> Tolerance {
        Tolerance {
            failure_rate: 0.5,
            latency: Vec::new(),
        }
    }
}

/// `[route.rollout] on_timeout`: a rollout still not promoted at
/// `max_duration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnTimeout {
    #[default]
    Rollback,
    /// Pause where it is for an operator (safety keeps acting); a resume
    /// gives it another `max_duration`.
    Hold,
}
