//! Sensing: what the controller reads from the data plane to drive a
//! rollout, taken at once from the routing snapshot and the counters.
//! Tests replace it with scripted figures.

use std::sync::Arc;

use crate::observe::{StatsSnapshot, Telemetry};
use crate::rollout::{Rollout, Sizes};
use crate::routing::Routing;

/// One reading for one rollout.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sensed {
    /// Cumulative counters of the candidate and the stable pool on this
    /// route; an analysis window is the difference of two readings.
    pub candidate: StatsSnapshot,
    pub stable: StatsSnapshot,
    /// Candidate failures in a row (the tripwire).
    pub consecutive_failures: u64,
    /// Healthy candidate endpoints among those the rollout put in rotation.
    pub ready: usize,
    pub sizes: Sizes,
}

pub trait Sensor: Send + 'static {
    fn sense(&self, rollout: &Rollout) -> Sensed;
}

/// Reads the live routing state.
pub struct RoutingSensor {
    pub routing: Arc<Routing>,
    pub telemetry: Arc<Telemetry>,
}

impl Sensor for RoutingSensor {
    fn sense(&self, r: &Rollout) -> Sensed {
        let snapshot = self.routing.load();
        let stats = |pool: &str| {
            let version = snapshot.pool(pool)?.version.clone().unwrap_or_default();
            Some(self.telemetry.stats(&r.route, pool, &version))
        };
        let candidate = stats(&r.candidate);
        let count = |name: &str| snapshot.pool(name).map_or(0, |p| p.endpoints.len());
        let limit = r.traffic.candidate_endpoints.unwrap_or(usize::MAX);
        let ready = snapshot.pool(&r.candidate).map_or(0, |pool| {
            pool.endpoints
                .iter()
                .take(limit)
                .filter(|e| e.is_healthy())
                .count()
        });
        Sensed {
            candidate: candidate.as_ref().map(|s| s.snapshot()).unwrap_or_default(),
            stable: stats(&r.stable).map(|s| s.snapshot()).unwrap_or_default(),
            consecutive_failures: candidate.map_or(0, |s| s.consecutive_failures()),
            ready,
            sizes: Sizes {
                stable_endpoints: count(&r.stable),
                candidate_endpoints: count(&r.candidate),
            },
        }
    }
}
