//! The defaults of SPEC §3 as values: what a `[route.rollout]` with only
//! `strategy` means. Validation fills each absent key the same way.

use std::time::Duration;

use http::HeaderName;

use super::model::{AnalysisSpec, RolloutSpec, Strategy};

impl AnalysisSpec {
    /// `[route.rollout.analysis]` left out: at least 50 requests, no bound.
    pub fn defaults() -> AnalysisSpec {
        AnalysisSpec {
            min_requests: 50,
            success_rate: None,
            p50: None,
            p95: None,
            p99: None,
            max_success_rate_drop: None,
            queries: Vec::new(),
            compare: super::Compare::Fixed,
            confidence: 95.0,
            tolerance: super::Tolerance::default(),
        }
    }
}

impl RolloutSpec {
    /// What a `[route.rollout]` with only `strategy` means (SPEC §3).
    pub fn defaults(strategy: Strategy) -> RolloutSpec {
        let minute = Duration::from_secs(60);
        RolloutSpec {
            strategy,
            interval: minute,
            threshold: 3,
            tripwire: None,
            steps: vec![5, 25, 50, 100],
            hold: Duration::ZERO,
            max_surge: 1,
            max_unavailable: 0,
            ready_timeout: minute,
            preview_header: HeaderName::from_static("x-veer-preview"),
            auto_promote: true,
            rollback_window: 10 * minute,
            ab_match: None,
            iterations: 10,
            max_duration: None,
            on_timeout: super::OnTimeout::Rollback,
            freeze: Vec::new(),
            verify_window: None,
            analysis: AnalysisSpec::defaults(),
            webhooks: Vec::new(),
            shadow: None,
        }
    }
}
