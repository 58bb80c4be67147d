//! Analysis windows: what one route×pool did during an interval, computed
//! as the difference of two counter snapshots (recorders never stop).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::stats::StatsSnapshot;

/// One interval's figures for one route×pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// Upstream attempts in the interval (a retried request counts twice).
    pub requests: u64,
    pub failures: u64,
    /// Percent of attempts that did not fail; 100 when there were none.
    pub success_rate: f64,
    #[serde(with = "optional_millis")]
    pub p50: Option<Duration>,
    #[serde(with = "optional_millis")]
    pub p95: Option<Duration>,
    #[serde(with = "optional_millis")]
    pub p99: Option<Duration>,
}

impl Window {
    /// The window between `earlier` and `later`.
    pub fn between(earlier: &StatsSnapshot, later: &StatsSnapshot) -> Window {
        let requests = later.attempts.saturating_sub(earlier.attempts);
        let failures = later
            .failures
            .saturating_sub(earlier.failures)
            .min(requests);
        let success_rate = if requests == 0 {
            100.0
        } else {
            100.0 * (requests - failures) as f64 / requests as f64
        };
        let latency = later.latency.since(&earlier.latency);
        Window {
            requests,
            failures,
            success_rate,
            p50: latency.quantile(0.50),
            p95: latency.quantile(0.95),
            p99: latency.quantile(0.99),
        }
    }
}

/// Durations as milliseconds (floating point) in JSON.
mod optional_millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(d) => s.serialize_some(&(d.as_secs_f64() * 1000.0)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let ms = Option::<f64>::deserialize(d)?;
        Ok(ms
            .filter(|ms| ms.is_finite() && *ms >= 0.0)
            .map(|ms| Duration::from_secs_f64(ms / 1000.0)))
    }
}
