//! `GET /api/v1/status`: what every route serves now and how its pools'
//! endpoints are doing. Also what `veer status` reads back.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Control;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub routes: Vec<RouteStatus>,
    pub pools: Vec<PoolStatus>,
    /// Config reloads since start: `{"ok": n, "error": n}`.
    pub reloads: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteStatus {
    pub name: String,
    /// SPEC §3 phases; `idle` when nothing is in progress.
    pub phase: String,
    /// The pool the config file asks this route to serve.
    pub pool: String,
    pub stable: String,
    pub candidate: Option<String>,
    /// Percent per pool, as applied now.
    pub weights: BTreeMap<String, u32>,
    pub step: Option<usize>,
    pub failed_checks: u32,
    /// The last closed analysis window per pool (requests, failures,
    /// success rate, latency quantiles).
    pub analysis: BTreeMap<String, serde_json::Value>,
    /// The rollout controller's latest verdict for this route (figures,
    /// thresholds, failed bounds), if it has judged one.
    #[serde(default)]
    pub verdict: Option<serde_json::Value>,
    /// Weights come from the admin API, not the file.
    pub manual: bool,
    pub paused: bool,
    /// The configured rollout strategy and its canary steps (candidate
    /// percent per step), for showing progress; empty without a rollout.
    #[serde(default)]
    pub strategy: Option<String>,
    #[serde(default)]
    pub steps: Vec<u32>,
    /// Upstream attempts and failures per pool since start, so a client
    /// polling status can compute rates.
    #[serde(default)]
    pub totals: BTreeMap<String, PoolTotals>,
}

/// Cumulative counters of one route×pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolTotals {
    pub requests: u64,
    pub failures: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolStatus {
    pub name: String,
    pub version: Option<String>,
    pub endpoints: Vec<EndpointStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointStatus {
    pub address: String,
    pub healthy: bool,
    pub in_flight: usize,
    /// Attempts and failed attempts sent to this endpoint since start.
    #[serde(default)]
    pub requests: u64,
    #[serde(default)]
    pub failures: u64,
}

impl Control {
    pub fn status(&self) -> Status {
        let snapshot = self.routing.load();
        let phases: Vec<&'static str> = snapshot
            .routes
            .iter()
            .map(|r| self.phase(&r.name))
            .collect();
        let rollouts = self
            .controller
            .as_ref()
            .map(|c| c.rollouts())
            .unwrap_or_default();
        let inner = self.inner.lock().unwrap();
        let windows = self.routing.registry.all();
        let routes = snapshot
            .routes
            .iter()
            .zip(phases)
            .map(|(route, phase)| {
                let spec = snapshot.config.routes.iter().find(|r| r.name == route.name);
                let state = inner.state.routes.get(&route.name);
                let w = &route.weights;
                let rollout = rollouts.iter().find(|v| v.rollout.route == route.name);
                let candidate = rollout.map(|v| v.rollout.candidate.clone());
                let candidate = candidate
                    .or_else(|| state.and_then(|s| s.candidate.clone()))
                    .or_else(|| {
                        w.percent
                            .iter()
                            .filter(|(p, pct)| *p != w.stable && *pct > 0)
                            .max_by_key(|(_, pct)| *pct)
                            .map(|(p, _)| p.clone())
                    });
                RouteStatus {
                    name: route.name.clone(),
                    phase: phase.to_string(),
                    pool: spec.map(|s| s.pool.clone()).unwrap_or_default(),
                    stable: w.stable.clone(),
                    candidate,
                    weights: w.percent.iter().cloned().collect(),
                    step: rollout
                        .map(|v| v.rollout.step)
                        .or_else(|| state.and_then(|s| s.step)),
                    failed_checks: rollout
                        .map(|v| v.rollout.failed_checks)
                        .unwrap_or_else(|| state.map_or(0, |s| s.failed_checks)),
                    verdict: rollout
                        .and_then(|v| v.last_verdict.as_ref())
                        .and_then(|v| serde_json::to_value(v).ok()),
                    analysis: windows
                        .iter()
                        .filter(|s| s.route == route.name)
                        .filter_map(|s| {
                            let window = serde_json::to_value(s.last_window()?).ok()?;
                            Some((s.pool.clone(), window))
                        })
                        .collect(),
                    manual: state.is_some_and(|s| s.weights.is_some()),
                    paused: state.is_some_and(|s| s.paused),
                    strategy: spec
                        .and_then(|s| s.rollout.as_ref())
                        .and_then(|r| serde_json::to_value(r.strategy).ok())
                        .and_then(|v| v.as_str().map(str::to_string)),
                    steps: spec
                        .and_then(|s| s.rollout.as_ref())
                        .filter(|r| r.strategy == crate::config::Strategy::Canary)
                        .map_or_else(Vec::new, |r| r.steps.clone()),
                    totals: totals(&windows, &route.name),
                }
            })
            .collect();
        let pools = snapshot
            .pools
            .iter()
            .map(|pool| PoolStatus {
                name: pool.name.clone(),
                version: pool.version.clone(),
                endpoints: pool
                    .endpoints
                    .iter()
                    .map(|e| EndpointStatus {
                        address: e.spec.authority.clone(),
                        healthy: e.is_healthy(),
                        in_flight: e.in_flight(),
                        requests: e.counts().0,
                        failures: e.counts().1,
                    })
                    .collect(),
            })
            .collect();
        let (ok, error) = self.routing.registry.reloads();
        Status {
            routes,
            pools,
            reloads: [("ok".to_string(), ok), ("error".to_string(), error)].into(),
        }
    }
}

/// `route`'s cumulative counters per pool (summed over pool versions).
fn totals(
    stats: &[std::sync::Arc<crate::observe::RoutePoolStats>],
    route: &str,
) -> BTreeMap<String, PoolTotals> {
    let mut totals = BTreeMap::<String, PoolTotals>::new();
    for s in stats.iter().filter(|s| s.route == route) {
        let now = s.snapshot();
        let t = totals.entry(s.pool.clone()).or_default();
        t.requests += now.attempts;
        t.failures += now.failures;
    }
    totals
}
